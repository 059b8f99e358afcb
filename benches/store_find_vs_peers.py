"""C-STORE and C-FIND throughput on loopback: dimse against pynetdicom and DCMTK, in one run.

Three measures, each scenario run several times (median reported), each run bounded in
count and in wall time, one association per run:

- C-STORE of a 0.5 MiB CT image (512 x 512, 16 bits), N times: images/s and MiB/s;
- C-STORE of a 64 MiB multi-frame image (128 frames of 512 x 512, 16 bits), a few
  times: MiB/s;
- one C-FIND with 10,000 matches (a pending response with a small identifier each):
  matches/s.

The images are generated at run time with pydicom into a temporary directory (Explicit VR
Little Endian files), and every SCP accepts only that transfer syntax, so no side converts.
Every Python SCP (dimse, pynetdicom) runs in its own subprocess of this script, with a
Python handler (EVT_C_STORE returns 0x0000; EVT_C_FIND yields 0xFF00 and a prebuilt
identifier), so that the SCU and the SCP never share an interpreter (nor a GIL), like the
DCMTK tools. DCMTK figures come from timing `/usr/bin/storescu` and `/usr/bin/findscu`
processes: t(N items) - t(1 item), which leaves N - 1 items on the association. The CPU
time (user + system) of the SCP process is read from /proc around the measured window; that
of the SCU from getrusage (this process, or the DCMTK child). Run:
`python benches/store_find_vs_peers.py` (after `pip install .`; needs pynetdicom and
`apt-get install dcmtk`), `--quick` for a smoke test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from echo_vs_peers import (
    HOST,
    cpu_model,
    cpu_seconds,
    dcmtk_env,
    dcmtk_version,
    load,
    patch_pynetdicom_nodelay,
    stop,
    storescp_process,
)

# Absolute paths: pynetdicom installs console scripts of these names.
STORESCU = "/usr/bin/storescu"
STORESCP = "/usr/bin/storescp"
FINDSCU = "/usr/bin/findscu"

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MULTIFRAME_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word SC
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
CONTEXTS = (CT_IMAGE, MULTIFRAME_WORD_SC, STUDY_ROOT_FIND)
MIB = 1 << 20
BIG_FRAMES = 128  # 128 x 512 x 512 x 2 bytes = 64 MiB
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROCESS_TIMEOUT = 60.0


# --- the SCP subprocesses ---------------------------------------------------------------


def find_identifier() -> Any:
    """The identifier every pending C-FIND response carries (about 200 bytes)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Bench^Patient"
    ds.PatientID = "BENCH-0001"
    ds.PatientBirthDate = "19700101"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1234567890123456789"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "ACC0001"
    ds.StudyDescription = "store_find_vs_peers"
    ds.ModalitiesInStudy = "CT"
    return ds


def matches_asked(identifier: Any) -> int:
    """The query's PatientID says how many matches the SCP returns (1 lets the DCMTK rows
    subtract process start-up); anything else: 10,000."""
    value = str(identifier.get("PatientID", "") or "")
    return min(int(value), 1_000_000) if value.isdigit() else 10_000


def serve(kind: str) -> None:
    """Runs a Storage + Study Root C-FIND SCP with Python handlers on a free loopback port,
    prints `PORT n`, and serves until stdin is closed (the parent closes it, or dies)."""
    identifier = find_identifier()

    def on_store(event: Any) -> int:
        return 0x0000

    def on_find(event: Any) -> Iterator[tuple[int, Any]]:
        for _ in range(matches_asked(event.identifier)):
            yield 0xFF00, identifier

    if kind == "dimse":
        from dimse import AE, evt

        ae = AE("DIMSE_SCP")
        for uid in CONTEXTS:
            ae.add_supported_context(uid, EXPLICIT_LE)
        handlers = [(evt.EVT_C_STORE, on_store), (evt.EVT_C_FIND, on_find)]
        server: Any = ae.start_server((HOST, 0), block=False, evt_handlers=handlers)
    else:
        from pynetdicom import AE as PnAE
        from pynetdicom import evt as pn_evt

        if kind == "pynetdicom-nodelay":
            patch_pynetdicom_nodelay()
        ae = PnAE("PYNETDICOM_SCP")
        for uid in CONTEXTS:
            ae.add_supported_context(uid, EXPLICIT_LE)
        ae.maximum_associations = 10
        handlers = [(pn_evt.EVT_C_STORE, on_store), (pn_evt.EVT_C_FIND, on_find)]
        server = ae.start_server((HOST, 0), block=False, evt_handlers=handlers)
    try:
        print("PORT", server.server_address[1], flush=True)
        sys.stdin.read()
    finally:
        server.shutdown()


@dataclass
class Scp:
    port: int
    pid: int
    called: str


@contextlib.contextmanager
def python_scp(kind: str) -> Iterator[Scp]:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise RuntimeError(f"{kind} SCP did not start (exit code {proc.wait(10)})")
        called = "DIMSE_SCP" if kind == "dimse" else "PYNETDICOM_SCP"
        yield Scp(int(line[1]), proc.pid, called)
    finally:
        stop(proc)


@contextlib.contextmanager
def dcmtk_scp() -> Iterator[Scp]:
    """`storescp --ignore` (receives, answers success, writes nothing), TCP_NODELAY=1."""
    with storescp_process(True) as (port, pid):
        yield Scp(port, pid, "STORESCP")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def own_cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


# --- the data ---------------------------------------------------------------------------


@dataclass
class Payload:
    """What a C-STORE scenario sends: `count` items of `size` bytes, as files (`files`)
    or as one pydicom Dataset whose SOP Instance UID changes per item."""

    name: str
    files: list[str]
    dataset: Any
    uids: list[str]
    size: int
    count: int

    def datasets(self, n: int) -> Iterator[Any]:
        for uid in self.uids[:n]:
            self.dataset.SOPInstanceUID = uid
            self.dataset.file_meta.MediaStorageSOPInstanceUID = uid
            yield self.dataset


def make_image(sop_class: str, frames: int) -> Any:
    """A 512 x 512 16-bit MONOCHROME2 image of `frames` frames, random pixels."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = EXPLICIT_LE
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = "Bench^Patient"
    ds.PatientID = "BENCH-0001"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT" if sop_class == CT_IMAGE else "OT"
    ds.StudyDate = "20260101"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 512
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = os.urandom(512 * 512 * 2 * frames)
    return ds


def make_payloads(tmp: str, images: int, big: int) -> tuple[Payload, Payload]:
    from pydicom.uid import generate_uid

    ct = make_image(CT_IMAGE, 1)
    ct_uids = [generate_uid() for _ in range(images)]
    files = []
    for i, uid in enumerate(ct_uids):  # distinct files, as a real series
        ct.SOPInstanceUID = ct.file_meta.MediaStorageSOPInstanceUID = uid
        ct.InstanceNumber = i + 1
        path = os.path.join(tmp, f"ct{i:05}.dcm")
        ct.save_as(path, enforce_file_format=True)
        files.append(path)
    small = Payload("CT", files, ct, ct_uids, os.path.getsize(files[0]), images)

    mf = make_image(MULTIFRAME_WORD_SC, BIG_FRAMES)
    path = os.path.join(tmp, "multiframe.dcm")
    mf.save_as(path, enforce_file_format=True)
    # The big file is sent `big` times over (storescu and dimse read it each time).
    big_uids = [generate_uid() for _ in range(big)]
    large = Payload("multi-frame", [path] * big, mf, big_uids, os.path.getsize(path), big)
    return small, large


# --- the SCUs ---------------------------------------------------------------------------


@dataclass
class Bounds:
    images: int
    big: int
    matches: int
    seconds: float


@dataclass
class Sample:
    rate: float  # items/s
    scp_cpu: float  # CPU seconds of the SCP process per item
    scu_cpu: float  # CPU seconds of the SCU per item
    note: str = ""


class DimseScu:
    def __init__(self) -> None:
        from dimse import AE

        self.ae = AE("DIMSE_SCU")
        self.ae.dimse_timeout = 120
        for uid in CONTEXTS:
            self.ae.add_requested_context(uid, [EXPLICIT_LE])

    def associate(self, scp: Scp) -> Any:
        assoc = self.ae.associate(HOST, scp.port, ae_title=scp.called)
        if not assoc.is_established:
            raise RuntimeError(f"dimse: association to port {scp.port} failed: {assoc.error}")
        return assoc

    @staticmethod
    def store(assoc: Any, item: Any) -> None:
        status = int(assoc.send_c_store(item).Status)
        if status != 0:
            raise RuntimeError(f"C-STORE failed: status {status:#06x}")

    @staticmethod
    def find(assoc: Any, query: Any) -> Iterator[int]:
        """The Status of each response; closing the iterator early sends a C-CANCEL."""
        responses = assoc.send_c_find(query, STUDY_ROOT_FIND)
        try:
            for status, _ in responses:
                yield int(status.Status)
        finally:
            responses.close()


class PynetdicomScu:
    def __init__(self, nodelay: bool) -> None:
        from pynetdicom import AE as PnAE

        self.nodelay = nodelay
        self.ae = PnAE("PYNETDICOM_SCU")
        self.ae.dimse_timeout = 120
        for uid in CONTEXTS:
            self.ae.add_requested_context(uid, [EXPLICIT_LE])

    def associate(self, scp: Scp) -> Any:
        assoc = self.ae.associate(HOST, scp.port, ae_title=scp.called)
        if not assoc.is_established:
            raise RuntimeError(f"pynetdicom: association to port {scp.port} failed")
        sock = assoc.dul.socket.socket
        if self.nodelay != bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)):
            raise RuntimeError("pynetdicom: TCP_NODELAY is not as intended")
        return assoc

    @staticmethod
    def store(assoc: Any, item: Any) -> None:
        status = assoc.send_c_store(item)
        if "Status" not in status:
            raise RuntimeError("pynetdicom: no C-STORE response (DIMSE timeout or abort)")
        if int(status.Status) != 0:
            raise RuntimeError(f"C-STORE failed: status {status.Status:#06x}")

    @staticmethod
    def find(assoc: Any, query: Any) -> Iterator[int]:
        for status, _ in assoc.send_c_find(query, STUDY_ROOT_FIND):
            if "Status" not in status:
                raise RuntimeError("pynetdicom: no C-FIND response (DIMSE timeout or abort)")
            yield int(status.Status)


Scu = DimseScu | PynetdicomScu


def store_run(
    scu: Scu, scp: Scp, items: Iterable[Any], total: int, warm_up: Any, seconds: float
) -> Sample:
    """C-STOREs of the `total` `items` on one association, after one warm-up C-STORE of
    `warm_up`; stops early after `seconds`."""
    assoc = scu.associate(scp)
    try:
        scu.store(assoc, warm_up)
        scp0, scu0 = proc_cpu(scp.pid), own_cpu(resource.RUSAGE_SELF)
        count = 0
        start = time.perf_counter()
        for item in items:
            scu.store(assoc, item)
            count += 1
            if time.perf_counter() - start > seconds:
                break
        took = time.perf_counter() - start
        scp1, scu1 = proc_cpu(scp.pid), own_cpu(resource.RUSAGE_SELF)
    finally:
        if assoc.is_established:
            assoc.release()
    note = f"time bound hit after {count} of {total}" if count < total else ""
    return Sample(count / took, (scp1 - scp0) / count, (scu1 - scu0) / count, note)


def find_query(matches: int) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = str(matches)
    ds.PatientName = ""
    ds.StudyInstanceUID = ""
    ds.StudyDate = ""
    return ds


def find_run(scu: Scu, scp: Scp, matches: int, seconds: float) -> Sample:
    """One C-FIND asking for `matches` matches; stops early (C-CANCEL for dimse, A-ABORT for
    pynetdicom) after `seconds`."""
    assoc = scu.associate(scp)
    note = ""
    try:
        for _ in scu.find(assoc, find_query(1)):  # warm up
            pass
        scp0, scu0 = proc_cpu(scp.pid), own_cpu(resource.RUSAGE_SELF)
        count = 0
        start = time.perf_counter()
        responses = scu.find(assoc, find_query(matches))
        for status in responses:
            if status != 0xFF00:
                if status != 0:
                    raise RuntimeError(f"C-FIND failed: status {status:#06x}")
                break
            count += 1
            if time.perf_counter() - start > seconds:
                note = f"time bound hit after {count} of {matches}"
                if isinstance(scu, PynetdicomScu):
                    assoc.abort()
                else:
                    responses.close()  # C-CANCEL
                break
        took = time.perf_counter() - start
        scp1, scu1 = proc_cpu(scp.pid), own_cpu(resource.RUSAGE_SELF)
    finally:
        if assoc.is_established:
            assoc.release()
    if not note and count != matches:
        raise RuntimeError(f"C-FIND: {count} matches, not {matches}")
    return Sample(count / took, (scp1 - scp0) / count, (scu1 - scu0) / count, note)


def run_tool(
    cmd: list[str], scp: Scp, timeout: float, quiet: bool = False
) -> tuple[float, float, float]:
    """(wall, SCU CPU, SCP CPU) seconds of one DCMTK SCU process run to completion. `quiet`:
    its output goes to /dev/null (findscu logs every response), only its exit code says
    whether it failed."""
    scp0, scu0 = proc_cpu(scp.pid), own_cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        cmd,
        env=dcmtk_env(True),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if quiet else subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    took = time.perf_counter() - start
    scp1, scu1 = proc_cpu(scp.pid), own_cpu(resource.RUSAGE_CHILDREN)
    stderr = done.stderr or ""
    errors = [line for line in stderr.splitlines() if line.startswith(("E:", "F:"))]
    if done.returncode != 0 or errors:
        raise RuntimeError(f"{shlex.join(cmd[:6])}... exited with {done.returncode}: {stderr}")
    return took, scu1 - scu0, scp1 - scp0


def tool_rate(
    cmd: Callable[[int], list[str]], n: int, scp: Scp, seconds: float, quiet: bool = False
) -> Sample:
    """Items/s of a DCMTK SCU: (n - 1) / (t(n items) - t(1 item)), t(1) the median of 6 runs
    taken around the timed one; CPU likewise."""
    timeout = PROCESS_TIMEOUT + 4 * seconds
    ones = [run_tool(cmd(1), scp, timeout, quiet) for _ in range(3)]
    many = run_tool(cmd(n), scp, timeout, quiet)
    ones += [run_tool(cmd(1), scp, timeout, quiet) for _ in range(3)]
    one = [statistics.median(x[i] for x in ones) for i in range(3)]
    k = n - 1
    return Sample(k / (many[0] - one[0]), (many[2] - one[2]) / k, (many[1] - one[1]) / k)


def check_findscu(scp: Scp, n: int = 3) -> None:
    """findscu's responses, once and not timed (with -v): `n` pending ones, then success."""
    cmd = findscu(scp)(n)
    cmd.insert(1, "-v")
    done = subprocess.run(
        cmd, env=dcmtk_env(True), capture_output=True, text=True, timeout=PROCESS_TIMEOUT
    )
    pending = done.stderr.count("(Pending)")
    if done.returncode != 0 or pending != n or "Final Find Response (Success)" not in done.stderr:
        raise RuntimeError(f"findscu: {pending} pending responses, not {n}: {done.stderr[-2000:]}")


def storescu(scp: Scp, files: list[str]) -> Callable[[int], list[str]]:
    def cmd(n: int) -> list[str]:
        timeouts = ["-to", "30", "-ta", "30", "-td", "120"]
        return [STORESCU, *timeouts, "-aec", scp.called, HOST, str(scp.port), *files[:n]]

    return cmd


def findscu(scp: Scp) -> Callable[[int], list[str]]:
    def cmd(n: int) -> list[str]:
        keys = [f"PatientID={n}", "PatientName", "StudyInstanceUID", "StudyDate"]
        timeouts = ["-to", "30", "-ta", "30", "-td", "120"]
        args = [x for k in ["QueryRetrieveLevel=STUDY", *keys] for x in ("-k", k)]
        return [FINDSCU, *timeouts, "-S", "-aec", scp.called, *args, HOST, str(scp.port)]

    return cmd


# --- the scenarios ----------------------------------------------------------------------


@dataclass
class Scenario:
    key: str  # to find it for the summary
    label: str
    run: Callable[[], Sample]
    note: str = ""
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    def median(self, what: str = "rate") -> float:
        return statistics.median(getattr(s, what) for s in self.samples)


def with_scp(kind: str, fn: Callable[[Scp], Sample]) -> Callable[[], Sample]:
    """Each run of a scenario starts its SCP, measures, and stops it."""

    def run() -> Sample:
        scp = dcmtk_scp() if kind == "dcmtk" else python_scp(kind)
        with scp as s:
            return fn(s)

    return run


def pn_nodelay(fn: Callable[[PynetdicomScu], Sample]) -> Sample:
    undo = patch_pynetdicom_nodelay()
    try:
        return fn(PynetdicomScu(nodelay=True))
    finally:
        undo()


NODELAY = "TCP_NODELAY set on both sides (monkeypatched)"
TOOL = "DCMTK SCU time: t(N) - t(1) (process start-up and association subtracted)"


def store_scenarios(p: Payload, warm: Payload, seconds: float) -> list[Scenario]:
    """The C-STORE scenarios for payload `p`; each Python SCU run first stores one image of
    `warm` (the small one), in the same form (Dataset or file) as the measured ones."""
    dimse = DimseScu()
    pn = PynetdicomScu(nodelay=False)

    def ds_items(scu: Scu, scp: Scp) -> Sample:
        return store_run(scu, scp, p.datasets(p.count), p.count, warm.dataset, seconds)

    def file_items(scu: Scu, scp: Scp) -> Sample:
        return store_run(scu, scp, p.files[: p.count], p.count, warm.files[0], seconds)

    def tool(scp: Scp) -> Sample:
        return tool_rate(storescu(scp, p.files), p.count, scp, seconds)

    return [
        Scenario(
            "dimse-ds",
            "dimse (Dataset) -> dimse",
            with_scp("dimse", lambda s: ds_items(dimse, s)),
            "Python handler",
        ),
        Scenario(
            "dimse-file",
            "dimse (file path) -> dimse",
            with_scp("dimse", lambda s: file_items(dimse, s)),
            "Python handler",
        ),
        Scenario(
            "pn",
            "pynetdicom -> pynetdicom, as shipped",
            with_scp("pynetdicom", lambda s: ds_items(pn, s)),
            "Dataset; Python handler",
        ),
        Scenario(
            "pn-nodelay",
            "pynetdicom -> pynetdicom, TCP_NODELAY",
            with_scp("pynetdicom-nodelay", lambda s: pn_nodelay(lambda scu: ds_items(scu, s))),
            f"Dataset; {NODELAY}",
        ),
        Scenario(
            "dcmtk",
            "DCMTK storescu -> DCMTK storescp",
            with_scp("dcmtk", tool),
            f"storescp --ignore; {TOOL}",
        ),
        Scenario(
            "dcmtk-dimse",
            "DCMTK storescu -> dimse",
            with_scp("dimse", tool),
            f"Python handler; {TOOL}",
        ),
        Scenario(
            "dcmtk-pn",
            "DCMTK storescu -> pynetdicom",
            with_scp("pynetdicom", tool),
            f"pynetdicom as shipped; {TOOL}",
        ),
        Scenario(
            "dimse-file-dcmtk",
            "dimse (file path) -> DCMTK storescp",
            with_scp("dcmtk", lambda s: file_items(dimse, s)),
            "storescp --ignore",
        ),
    ]


def find_scenarios(matches: int, seconds: float) -> list[Scenario]:
    dimse = DimseScu()
    pn = PynetdicomScu(nodelay=False)

    def tool(scp: Scp) -> Sample:
        check_findscu(scp)
        return tool_rate(findscu(scp), matches, scp, seconds, quiet=True)

    return [
        Scenario(
            "dimse",
            "dimse -> dimse",
            with_scp("dimse", lambda s: find_run(dimse, s, matches, seconds)),
        ),
        Scenario(
            "pn",
            "pynetdicom -> pynetdicom, as shipped",
            with_scp("pynetdicom", lambda s: find_run(pn, s, matches, seconds)),
        ),
        Scenario(
            "pn-nodelay",
            "pynetdicom -> pynetdicom, TCP_NODELAY",
            with_scp(
                "pynetdicom-nodelay",
                lambda s: pn_nodelay(lambda scu: find_run(scu, s, matches, seconds)),
            ),
            NODELAY,
        ),
        Scenario("dcmtk-dimse", "DCMTK findscu -> dimse", with_scp("dimse", tool), TOOL),
        Scenario(
            "dcmtk-pn",
            "DCMTK findscu -> pynetdicom",
            with_scp("pynetdicom", tool),
            f"pynetdicom as shipped; {TOOL}",
        ),
        Scenario(
            "dimse-pn",
            "dimse -> pynetdicom",
            with_scp("pynetdicom", lambda s: find_run(dimse, s, matches, seconds)),
            "pynetdicom as shipped",
        ),
        Scenario(
            "pn-dimse",
            "pynetdicom -> dimse",
            with_scp("dimse", lambda s: find_run(pn, s, matches, seconds)),
            "pynetdicom as shipped",
        ),
    ]


def measure(cases: list[Scenario], runs: int) -> None:
    for case in cases:
        for _ in range(runs):
            try:
                case.samples.append(case.run())
            except Exception as e:  # report it in the table, go on with the others
                traceback.print_exc()
                case.error = f"{type(e).__name__}: {e}"
                break
        status = case.error or ", ".join(f"{s.rate:,.1f}" for s in case.samples)
        print(f"  {case.label}: {status}", file=sys.stderr, flush=True)


# --- the report -------------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def table(title: str, unit: str, cases: list[Scenario], size: int | None, cpu_unit: str) -> None:
    base = next((c for c in cases if c.key == "pn"), None)
    scale = 1e3 if cpu_unit == "ms" else 1e6
    mib = " | MiB/s" if size else ""
    print(f"\n### {title}\n")
    print(
        f"| SCU -> SCP | {unit} (median){mib} | runs | this / pynetdicom -> pynetdicom "
        f"| SCP CPU {cpu_unit}/item | SCU CPU {cpu_unit}/item | notes |"
    )
    print(f"|---|---:|{'---:|' if size else ''}---:|---:|---:|---:|---|")
    for case in cases:
        if case.error or not case.samples:
            print(f"| {case.label} | failed |{' |' if size else ''} | | | | {case.error} |")
            continue
        rate = case.median()
        runs = " / ".join(fmt(s.rate) for s in case.samples)
        ratio = f"{rate / base.median():,.2f}x" if base and base.samples else ""
        mibs = f" | {fmt(rate * size / MIB)}" if size else ""
        notes = [case.note] if case.note else []
        notes += [s.note for s in case.samples if s.note]
        print(
            f"| {case.label} | {fmt(rate)}{mibs} | {runs} | {ratio} "
            f"| {fmt(case.median('scp_cpu') * scale)} | {fmt(case.median('scu_cpu') * scale)} "
            f"| {'; '.join(notes)} |"
        )


def ratio(cases: list[Scenario], a: str, b: str, what: str = "rate") -> str:
    x = {c.key: c for c in cases if c.samples and not c.error}
    if a not in x or b not in x:
        return "n/a"
    return f"{x[a].median(what) / x[b].median(what):,.2f}x"


def summary(small: list[Scenario], big: list[Scenario], find: list[Scenario]) -> None:
    print("\n### Aims\n")
    print("| aim | 0.5 MiB CT | 64 MiB multi-frame | C-FIND |")
    print("|---|---:|---:|---:|")
    rows = [
        (
            "dimse SCP vs pynetdicom SCP, same SCU (DCMTK): throughput (aim >= 10x)",
            lambda c: ratio(c, "dcmtk-dimse", "dcmtk-pn"),
        ),
        (
            "dimse SCP vs pynetdicom SCP, same SCU (DCMTK): SCP CPU per item, pynetdicom / dimse",
            lambda c: ratio(c, "dcmtk-pn", "dcmtk-dimse", "scp_cpu"),
        ),
        (
            "dimse -> dimse (Dataset) vs pynetdicom -> pynetdicom: throughput",
            lambda c: ratio(c, "dimse-ds", "pn") if c is not find else ratio(c, "dimse", "pn"),
        ),
        (
            "dimse -> dimse (file path) vs pynetdicom -> pynetdicom: throughput",
            lambda c: ratio(c, "dimse-file", "pn") if c is not find else "",
        ),
        (
            "dimse (file path) -> storescp vs storescu -> storescp: throughput (aim >= 1x)",
            lambda c: ratio(c, "dimse-file-dcmtk", "dcmtk") if c is not find else "",
        ),
    ]
    for label, fn in rows:
        print(f"| {label} | {fn(small)} | {fn(big)} | {fn(find)} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 run each, small counts")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3)")
    parser.add_argument("--images", type=int, help="0.5 MiB C-STOREs per run (default 200)")
    parser.add_argument("--big", type=int, help="64 MiB C-STOREs per run (default 5)")
    parser.add_argument("--matches", type=int, help="C-FIND matches per run (default 10000)")
    parser.add_argument("--seconds", type=float, help="time bound per run (default 30)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    import pydicom
    import pynetdicom

    import dimse

    quick = args.quick
    runs = args.runs or (1 if quick else 3)
    bounds = Bounds(
        images=max(2, args.images or (10 if quick else 200)),
        big=max(2, args.big or (2 if quick else 5)),
        matches=max(2, args.matches or (500 if quick else 10_000)),
        seconds=args.seconds or (10.0 if quick else 30.0),
    )
    print("## C-STORE and C-FIND on loopback: dimse vs pynetdicom vs DCMTK\n")
    print(f"- command: `{shlex.join(['python', *sys.argv])}`")
    nproc = len(os.sched_getaffinity(0))
    print(f"- machine: nproc {nproc} ({os.cpu_count()} CPUs), {cpu_model()}")
    print(f"- {platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(
        f"- dimse {dimse.__version__}, pynetdicom {pynetdicom.__version__}, "
        f"pydicom {pydicom.__version__}, DCMTK {dcmtk_version()} "
        f"({STORESCU}, {STORESCP}, {FINDSCU})"
    )
    print(
        f"- per run, on one association: {bounds.images} C-STOREs of a 0.5 MiB CT, "
        f"{bounds.big} of a 64 MiB multi-frame, one C-FIND of {bounds.matches} matches; "
        f"at most {bounds.seconds:g} s; {runs} run(s) per scenario, median shown"
    )
    print(
        "- every Python SCP runs in its own subprocess with a Python handler; "
        "DCMTK: TCP_NODELAY=1 in the environment of every tool; "
        "all PDU sizes at their defaults (16 KiB)"
    )
    print(f"- load average at start: {load()}", flush=True)
    busy0, own0 = cpu_seconds()
    wall0 = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="store_find_bench") as tmp:
        print("generating the images...", file=sys.stderr, flush=True)
        small_p, big_p = make_payloads(tmp, bounds.images, bounds.big)
        small = store_scenarios(small_p, small_p, bounds.seconds)
        big = store_scenarios(big_p, small_p, bounds.seconds)
        find = find_scenarios(bounds.matches, bounds.seconds)
        print("measuring C-STORE of 0.5 MiB...", file=sys.stderr, flush=True)
        measure(small, runs)
        print("measuring C-STORE of 64 MiB...", file=sys.stderr, flush=True)
        measure(big, runs)
        print("measuring C-FIND...", file=sys.stderr, flush=True)
        measure(find, runs)

    table(
        f"C-STORE of a 0.5 MiB CT ({small_p.size:,} bytes per file), "
        f"{bounds.images} per association",
        "images/s",
        small,
        small_p.size,
        "ms",
    )
    table(
        f"C-STORE of a 64 MiB multi-frame ({big_p.size:,} bytes per file), "
        f"{bounds.big} per association",
        "images/s",
        big,
        big_p.size,
        "ms",
    )
    table(
        f"C-FIND, {bounds.matches:,} matches (pending responses) on one request",
        "matches/s",
        find,
        None,
        "µs",
    )
    summary(small, big, find)
    busy1, own1 = cpu_seconds()
    others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (time.monotonic() - wall0)
    print(
        f"\n- load average at end: {load()} (this bench's own processes included); "
        f"CPU used by other processes during the run: {others:.2f} CPUs on average"
    )
    return 1 if any(c.error for c in small + big + find) else 0


if __name__ == "__main__":
    sys.exit(main())
