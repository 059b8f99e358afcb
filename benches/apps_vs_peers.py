"""The command-line storage apps against each other: `dimse storescu`/`storescp`, DCMTK's
`storescu`/`storescp` and pynetdicom's (`python -m pynetdicom storescu`/`storescp`), in one
run, on loopback.

Each scenario sends N files (default 1000 CT images of 0.5 MiB, generated at run time with
pydicom into a temporary folder) from one SCU process to one SCP process that writes every
file to a fresh output folder. The SCU process is timed from launch to exit (wall clock),
so process start-up, reading the files, association set-up and release count for every
tool alike. Each run checks that the SCU exited 0 and that exactly N files landed. The SCP's
CPU time (user + system, from /proc/<pid>/stat, over the SCU's lifetime) and peak RSS
(VmHWM, read just before it is stopped) are recorded, and so are the SCU's (CPU from wait4,
VmHWM sampled while it runs). Scenarios are run in turn, `--runs` times each (default 3);
medians are reported in one markdown table (MB = 10^6 bytes, MiB = 2^20). Run:
`python benches/apps_vs_peers.py` (after `pip install .`; needs pynetdicom and
`apt-get install dcmtk`), `--quick` for a smoke test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from echo_vs_peers import HOST, cpu_model, cpu_seconds, dcmtk_env, dcmtk_version, free_port, load

# Absolute paths: pynetdicom installs console scripts of these names.
DCMTK_STORESCU = "/usr/bin/storescu"
DCMTK_STORESCP = "/usr/bin/storescp"

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
MB = 1_000_000  # MB/s as dimse storescu reports it (and MiB for memory)
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT = 30.0  # seconds for an SCP to listen
STOP_TIMEOUT = 10.0  # seconds for an SCP to exit after SIGTERM


def dimse_command() -> list[str]:
    """The `dimse` console script of this interpreter's environment, not a pyenv shim on
    PATH (a shim adds a bash and a `pyenv exec` to every start-up); else `python -m dimse`."""
    script = os.path.join(os.path.dirname(sys.executable), "dimse")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "dimse"]


# --- the tools --------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    scu: Callable[[str, str], list[str]]  # (port, input folder) -> command
    scp: Callable[[str, str], list[str]]  # (port, output folder) -> command
    ready_line: str = ""  # an SCP that says when it listens; else probe the port
    stops_cleanly: bool = False  # its SCP exits 0 on SIGTERM (said in its --help)


def tools() -> dict[str, Tool]:
    dimse = dimse_command()
    pn = [sys.executable, "-m", "pynetdicom"]
    timeouts = ["-to", "30", "-ta", "30", "-td", "30"]
    return {
        "dimse": Tool(
            "dimse",
            lambda port, src: [*dimse, "storescu", HOST, port, src],
            lambda port, out: [
                *dimse,
                "storescp",
                port,
                "-od",
                out,
                "--layout",
                "flat",
                "--bind",
                HOST,
            ],
            ready_line="storescp listening on",
            stops_cleanly=True,
        ),
        "dcmtk": Tool(
            "DCMTK",
            lambda port, src: [DCMTK_STORESCU, *timeouts, "+sd", HOST, port, src],
            lambda port, out: [DCMTK_STORESCP, "-od", out, port],
        ),
        "pynetdicom": Tool(
            "pynetdicom",
            lambda port, src: [*pn, "storescu", HOST, port, src],
            lambda port, out: [*pn, "storescp", port, "-od", out, "-ba", HOST],
        ),
    }


# --- the data ---------------------------------------------------------------------------


def make_files(folder: str, count: int, size_kb: int) -> int:
    """`count` CT images (Explicit VR Little Endian, 512 rows x `size_kb` columns of 16-bit
    pixels: `size_kb` KiB of pixel data) with distinct SOP Instance UIDs, in one series.
    Returns the size of a file in bytes."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = EXPLICIT_LE
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE
    ds.SOPClassUID = CT_IMAGE
    ds.PatientName = "Bench^Apps"
    ds.PatientID = "BENCH-APPS"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.StudyDate = "20260101"
    ds.SeriesNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 512
    ds.Columns = size_kb  # 512 x size_kb x 2 bytes = size_kb KiB
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = os.urandom(512 * size_kb * 2)
    os.makedirs(folder)
    for i in range(count):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = i + 1
        ds.save_as(os.path.join(folder, f"ct{i:05}.dcm"), enforce_file_format=True)
    return os.path.getsize(os.path.join(folder, "ct00000.dcm"))


def subset(src: str, dst: str, count: int) -> None:
    """A folder of hard links to the first `count` files of `src`."""
    os.makedirs(dst)
    for name in sorted(os.listdir(src))[:count]:
        os.link(os.path.join(src, name), os.path.join(dst, name))


def count_files(folder: str) -> tuple[int, int, list[str]]:
    """(number of regular files under `folder`, at any depth; the size of the smallest;
    a few of their names)."""
    n = 0
    smallest = 0
    names: list[str] = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if os.path.isfile(path):
                size = os.path.getsize(path)
                smallest = size if n == 0 else min(smallest, size)
                n += 1
                if len(names) < 3:
                    names.append(name)
    return n, smallest, names


# --- the processes ----------------------------------------------------------------------


def proc_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process `pid` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime


def rss_mib(pid: int, what: str = "VmHWM") -> float:
    """VmHWM (peak RSS) or VmRSS of process `pid`, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{what}:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {what} for pid {pid}")


def tail(path: str, lines: int = 8) -> str:
    with contextlib.suppress(OSError), open(path, errors="replace") as f:
        return " / ".join(line.strip() for line in f.readlines()[-lines:] if line.strip())
    return ""


def wait_ready(proc: subprocess.Popen[Any], port: int, log: str, ready_line: str) -> None:
    """Until the SCP listens: it says so in its log (`ready_line`), or accepts a TCP
    connection; at most READY_TIMEOUT seconds."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"SCP exited with {proc.returncode} at start: {tail(log)}")
        if ready_line:
            with open(log, errors="replace") as f:
                if ready_line in f.read():
                    return
        else:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"SCP not listening on port {port} after {READY_TIMEOUT:g} s")
        time.sleep(0.02)


def stop_scp(proc: subprocess.Popen[Any]) -> int:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT s. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@dataclass
class ScuResult:
    wall: float
    returncode: int
    user: float
    sys: float
    rss_mib: float


def run_scu(cmd: list[str], env: dict[str, str], log: str, timeout: float) -> ScuResult:
    """Runs the SCU to its exit, at most `timeout` s (then kills it): wall time from launch
    to exit, exit code, CPU time (from wait4) and peak RSS (its VmHWM, read every 20 ms while
    it runs: wait4's maxrss would count the memory of this process, which it was forked
    from)."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    reaped = False
    rss = 0.0
    try:
        pidfd = os.pidfd_open(proc.pid)  # readable once the process has exited
        try:
            deadline = start + timeout
            while True:
                with contextlib.suppress(OSError, RuntimeError):
                    rss = rss_mib(proc.pid)  # (none once it has exited)
                if select.select([pidfd], [], [], 0.02)[0]:
                    break
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"SCU still running after {timeout:g} s: {tail(log)}")
        finally:
            os.close(pidfd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        reaped = True
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if not reaped:
            proc.kill()
            proc.wait()
    return ScuResult(wall, proc.returncode, usage.ru_utime, usage.ru_stime, rss)


# --- the scenarios ----------------------------------------------------------------------


@dataclass
class Sample:
    rate: float  # images/s
    wall: float  # s, SCU launch to exit
    files: int  # files sent in this run
    scp_user: float  # s, over the SCU's lifetime
    scp_sys: float
    scp_rss: float  # MiB, peak
    scp_rss0: float  # MiB, once listening
    scu_user: float  # s
    scu_sys: float
    scu_rss: float  # MiB
    note: str = ""


@dataclass
class Scenario:
    key: str
    scu: Tool
    scp: Tool
    source: str  # the folder the SCU sends
    files: int  # how many files it holds
    pixel_bytes: int  # in each file: what the SCP writes can't be smaller
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.scu.name} storescu -> {self.scp.name} storescp"

    def median(self, what: str) -> float:
        """The median of a Sample field, or of `scp_cpu`/`scu_cpu` (user + system)."""
        if what.endswith("_cpu"):
            side = what[:3]
            return statistics.median(
                getattr(s, f"{side}_user") + getattr(s, f"{side}_sys") for s in self.samples
            )
        return statistics.median(getattr(s, what) for s in self.samples)


def run_once(case: Scenario, work: str, timeout: float) -> Sample:
    """One run: a fresh SCP and output folder, the SCU timed to its exit, the checks."""
    env = dcmtk_env(True)  # TCP_NODELAY=1 for every process; only DCMTK reads it
    run_dir = tempfile.mkdtemp(prefix=f"{case.key}-", dir=work)
    out = os.path.join(run_dir, "out")
    os.makedirs(out)
    scp_log = os.path.join(run_dir, "scp.log")
    scu_log = os.path.join(run_dir, "scu.log")
    port = free_port()
    try:
        with open(scp_log, "wb") as log:
            scp = subprocess.Popen(
                case.scp.scp(str(port), out),
                cwd=run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        try:
            wait_ready(scp, port, scp_log, case.scp.ready_line)
            rss0 = rss_mib(scp.pid, "VmRSS")
            user0, sys0 = proc_cpu(scp.pid)
            scu = run_scu(case.scu.scu(str(port), case.source), env, scu_log, timeout)
            if scp.poll() is not None:
                raise RuntimeError(f"SCP exited with {scp.returncode}: {tail(scp_log)}")
            user1, sys1 = proc_cpu(scp.pid)
            rss1 = rss_mib(scp.pid)
        finally:
            code = stop_scp(scp)
        if scu.returncode != 0:
            raise RuntimeError(f"SCU exited with {scu.returncode}: {tail(scu_log)}")
        landed, smallest, names = count_files(out)
        if landed != case.files:
            raise RuntimeError(
                f"{landed} files written, not {case.files} (e.g. {names}); "
                f"SCU: {tail(scu_log, 4)}; SCP: {tail(scp_log, 4)}"
            )
        if smallest < case.pixel_bytes:
            raise RuntimeError(f"a file of {smallest} bytes written, less than its pixel data")
        note = ""
        if case.scp.stops_cleanly and code != 0:
            note = f"SCP exit code {code} after SIGTERM: {tail(scp_log, 3)}"
        return Sample(
            rate=case.files / scu.wall,
            wall=scu.wall,
            files=case.files,
            scp_user=user1 - user0,
            scp_sys=sys1 - sys0,
            scp_rss=rss1,
            scp_rss0=rss0,
            scu_user=scu.user,
            scu_sys=scu.sys,
            scu_rss=scu.rss_mib,
            note=note,
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        os.sync()  # the next run starts without this one's dirty pages to write back


def measure(cases: list[Scenario], runs: int, work: str, timeout: float) -> None:
    """Runs the scenarios in turn, `runs` rounds, so that a passing load spreads over all of
    them. A scenario that fails once is reported as failed and not run again."""
    for i in range(runs):
        print(f"round {i + 1} of {runs}", file=sys.stderr, flush=True)
        for case in cases:
            if case.error:
                continue
            try:
                s = run_once(case, work, timeout)
            except Exception as e:  # report it in the table, go on with the others
                traceback.print_exc()
                case.error = f"{type(e).__name__}: {e}"
                print(f"  {case.label}: {case.error}", file=sys.stderr, flush=True)
                continue
            case.samples.append(s)
            print(
                f"  {case.label}: {s.rate:,.1f} images/s ({s.wall:.2f} s), "
                f"SCP CPU {s.scp_user:.2f} + {s.scp_sys:.2f} s, {s.scp_rss:.0f} MiB; "
                f"SCU CPU {s.scu_user:.2f} + {s.scu_sys:.2f} s, {s.scu_rss:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )


# --- the report -------------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def cpu(case: Scenario, side: str, scale: float) -> str:
    """Median CPU s of `side` ("scp" or "scu") as "total (user + sys)", each a median."""
    total, user, system = (
        case.median(f"{side}_{what}") * scale for what in ("cpu", "user", "sys")
    )
    return f"{fmt(total)} ({fmt(user)} + {fmt(system)})"


def table(cases: list[Scenario], files: int, size: int) -> None:
    by_key = {c.key: c for c in cases if c.samples and not c.error}
    bases = [by_key.get("dcmtk-dcmtk"), by_key.get("pynetdicom-pynetdicom")]
    print(
        "\n| SCU -> SCP | images/s (median) | MB/s | runs (images/s) "
        "| this / DCMTK -> DCMTK | this / pynetdicom -> pynetdicom "
        f"| SCP CPU s per {files} files (user + sys) | SCP peak RSS MiB (once listening) "
        f"| SCU CPU s per {files} files (user + sys) | SCU peak RSS MiB | notes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for case in cases:
        if case.error or not case.samples:
            error = (case.error or "no run").replace("|", "\\|")
            print(f"| {case.label} | failed | | | | | | | | | {error} |")
            continue
        rate = case.median("rate")
        runs = " / ".join(fmt(s.rate) for s in case.samples)
        ratios = [f"{rate / b.median('rate'):,.2f}x" if b else "n/a" for b in bases]
        scale = files / case.files  # CPU per `files` files, if this one sent fewer
        notes = []
        if case.files != files:
            notes.append(f"{case.files} files per run, CPU scaled to {files}")
        notes += [s.note for s in case.samples if s.note]
        print(
            f"| {case.label} | {fmt(rate)} | {fmt(rate * size / MB)} | {runs} "
            f"| {' | '.join(ratios)} | {cpu(case, 'scp', scale)} "
            f"| {fmt(case.median('scp_rss'))} ({fmt(case.median('scp_rss0'))}) "
            f"| {cpu(case, 'scu', scale)} | {fmt(case.median('scu_rss'))} "
            f"| {'; '.join(notes)} |"
        )


def summary(cases: list[Scenario]) -> None:
    by_key = {c.key: c for c in cases if c.samples and not c.error}
    ours = by_key.get("dimse-dimse")
    for key, name in (("dcmtk-dcmtk", "DCMTK"), ("pynetdicom-pynetdicom", "pynetdicom")):
        peer = by_key.get(key)
        if not ours or not peer:
            print(f"- dimse -> dimse against {name} -> {name}: n/a (a scenario failed)")
            continue

        def per_file(c: Scenario, what: str) -> float:
            return c.median(what) / c.files

        print(
            f"- dimse -> dimse against {name} -> {name}: "
            f"{ours.median('rate') / peer.median('rate'):,.2f}x the images/s; "
            f"SCP CPU per file {name} / dimse "
            f"{per_file(peer, 'scp_cpu') / max(per_file(ours, 'scp_cpu'), 1e-9):,.2f}x; "
            f"SCP peak RSS dimse / {name} "
            f"{ours.median('scp_rss') / peer.median('scp_rss'):,.2f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 files, 1 run: a smoke test")
    parser.add_argument("--files", type=int, help="files per run (default 1000)")
    parser.add_argument("--size-kb", type=int, default=512, help="pixel data per file, KiB")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3)")
    parser.add_argument(
        "--pynetdicom-files",
        type=int,
        help="files per run for pynetdicom's storescu (default: --files); rates are per "
        "file, CPU is scaled to --files",
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds an SCU may run (default 300)"
    )
    args = parser.parse_args()

    import pydicom
    import pynetdicom

    import dimse

    files = max(1, args.files or (100 if args.quick else 1000))
    runs = max(1, args.runs or (1 if args.quick else 3))
    pn_files = max(1, min(files, args.pynetdicom_files or files))
    size_kb = max(1, args.size_kb)
    t = tools()
    print("## The storage apps on loopback: dimse vs DCMTK vs pynetdicom\n")
    print(f"- command: `{shlex.join(['python', *sys.argv])}`")
    nproc = len(os.sched_getaffinity(0))
    print(f"- machine: nproc {nproc} ({os.cpu_count()} CPUs), {cpu_model()}")
    print(f"- {platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(
        f"- dimse {dimse.__version__}, pynetdicom {pynetdicom.__version__}, "
        f"pydicom {pydicom.__version__}, DCMTK {dcmtk_version()}"
    )
    for tool in t.values():
        print(
            f"- {tool.name}: `{shlex.join(tool.scu('PORT', 'IN'))}` -> "
            f"`{shlex.join(tool.scp('PORT', 'OUT'))}`"
        )
    print(
        f"- per run: {files} files of {size_kb} KiB pixel data (pynetdicom: {pn_files}), "
        "one SCU process timed from launch to exit, to a fresh SCP writing to a fresh "
        f"folder; {runs} run(s) per scenario, in turns, median shown; TCP_NODELAY=1 in "
        "every process's environment (only DCMTK reads it)"
    )
    print(f"- load average at start: {load()}", flush=True)
    busy0, own0 = cpu_seconds()
    wall0 = time.monotonic()

    work = tempfile.mkdtemp(prefix="apps_bench")
    try:
        print("generating the files...", file=sys.stderr, flush=True)
        data = os.path.join(work, "data")
        size = make_files(data, files, size_kb)
        pn_data = data
        if pn_files < files:
            pn_data = os.path.join(work, "data-pynetdicom")
            subset(data, pn_data, pn_files)

        def case(scu: str, scp: str) -> Scenario:
            pn = scu == "pynetdicom"
            return Scenario(
                f"{scu}-{scp}",
                t[scu],
                t[scp],
                pn_data if pn else data,
                pn_files if pn else files,
                size_kb * 1024,
            )

        cases = [
            case("dimse", "dimse"),
            case("dcmtk", "dcmtk"),
            case("pynetdicom", "pynetdicom"),
            case("dimse", "dcmtk"),
            case("dcmtk", "dimse"),
        ]
        measure(cases, runs, work, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n### {files} files of {size:,} bytes, written by the SCP (flat folder)")
    table(cases, files, size)
    print()
    summary(cases)
    busy1, own1 = cpu_seconds()
    others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (time.monotonic() - wall0)
    print(
        f"- load average at end: {load()} (this bench's own processes included); "
        f"CPU used by other processes during the run: {others:.2f} CPUs on average"
    )
    return 1 if any(c.error for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
