"""The cost of TLS, side by side: dimse, DCMTK and pynetdicom, each over plain TCP and over
TLS 1.3, on loopback, in one run.

Three scenarios, each run for every stack with and without TLS (the same SCP program, the
same SCU program, only the TLS options differ):

1. C-STORE of N CT images of 0.5 MiB pixel data (default 300, generated with pydicom at
   run time) from files, one association, SCP discarding: `dimse storescu` ->
   `dimse storescp --ignore`, DCMTK `storescu` -> `storescp --ignore`, and a pynetdicom
   SCU (a subprocess of this script sending the file paths) -> a pynetdicom SCP (a
   subprocess of this script, EVT_C_STORE handler returning 0x0000). The SCU process is
   timed from launch to exit (start-up, reading files, handshake, association and release
   included); the same SCU sending 1 file to the same SCP just before gives t(1), and
   (N - 1) / (t(N) - t(1)) is the rate net of start-up. CPU: the SCU's from wait4, the
   SCP's from /proc/<pid>/stat around the SCU's run.
2. C-ECHO round trips on one established association: dimse's API in this process ->
   `dimse storescp --ignore` (2000 echoes), DCMTK `echoscu --repeat 2000` -> `storescp
   --ignore` ((N - 1) / (t(N) - t(1)), start-up and handshake subtracted), pynetdicom's API
   in this process -> the pynetdicom SCP (200 echoes: rates are per echo).
3. Associations per second, each a full TLS handshake: associate, one C-ECHO, release,
   one after the other. dimse's API (a new `dimse.TLS` per association, so that rustls
   has no session to resume; also with one shared `TLS`, where it may resume), DCMTK
   `echoscu` (one process per association: it cannot open more than one), pynetdicom's
   API (Python's ssl does not resume unless asked), and as extra rows the dimse API against
   DCMTK's storescp and `dimse echoscu` as one process per association.

TLS: TLS 1.3 only where the stack can say so (dimse `--tls-min-version 1.3` /
`minimum_version="1.3"` on both sides, Python ssl `minimum_version = TLSv1_3` on both
sides); DCMTK 3.6.7 has no such option, and the version and cipher suite DCMTK's echoscu
negotiates with each SCP are checked and reported at the start. The server certificate
has an RSA-2048 key, signed by a test CA (ECDSA P-256) made with `cryptography`
(tests/tlscerts.py); the clients verify it; no client certificate is asked for (mutual
TLS off: DCMTK's storescp runs with -ic; DCMTK's SCUs need +tls KEY CERT, which they
then do not send). Every process gets TCP_NODELAY=1 in its environment (tests/peers.py
dcmtk_env; only DCMTK reads it); pynetdicom runs as shipped.

Runs go in rounds (round 1 of every scenario, then round 2, ...), plain and TLS next to
each other (their order alternates between rounds); medians of --rounds (3) are
reported with the ratios TLS / plain and dimse / peer. Every loop is bounded in count
and in time, every process is stopped at the end of its run. Run: `python
benches/tls_vs_peers.py` (a full run writes benches/TLS-RESULTS.md), `--quick --rounds 1`
for a smoke test (writes a report only with --out).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
CALLED = "STORESCP"  # every SCP here answers to it (none of them checks it)
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
# Absolute paths: pynetdicom installs console scripts of these names.
DCMTK_STORESCU = "/usr/bin/storescu"
DCMTK_STORESCP = "/usr/bin/storescp"
DCMTK_ECHOSCU = "/usr/bin/echoscu"
MB = 1_000_000
TIMEOUT = 300.0  # seconds any one SCU process may run
MAX_LOST = 5  # pynetdicom responses lost per run before the run counts as failed
BENCHES = Path(__file__).resolve().parent

# The PKI's file names, in one folder (see make_pki).
CA_PEM, SERVER_PEM, SERVER_KEY, CLIENT_PEM, CLIENT_KEY = (
    "bench-ca.pem",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
)


# --- the pynetdicom processes (kept light: only pynetdicom is imported) ------------------


def pn_client_context(pki: str) -> Any:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=os.path.join(pki, CA_PEM))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def pn_server_context(pki: str) -> Any:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(os.path.join(pki, SERVER_PEM), os.path.join(pki, SERVER_KEY))
    return context


def pn_storescp(port: str, pki: str) -> int:
    """A pynetdicom SCP: Verification and CT Image Storage, a handler returning 0x0000.
    Says `listening`, serves until SIGTERM (or its parent goes), then says how many
    C-STOREs it answered."""
    from pynetdicom import AE, evt

    stored = 0

    def on_store(event: Any) -> int:
        nonlocal stored
        stored += 1
        return 0x0000

    ae = AE(CALLED)
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(CT_IMAGE, [EXPLICIT_LE, IMPLICIT_LE])
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    context = pn_server_context(pki) if pki != "-" else None
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    parent = os.getppid()
    server = ae.start_server(
        (HOST, int(port)),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
        ssl_context=context,
    )
    try:
        print("listening", flush=True)
        while not done.wait(0.5) and os.getppid() == parent:
            pass
    finally:
        server.shutdown()
    print(f"stored {stored}", flush=True)
    return 0


def pn_storescu(port: str, folder: str, pki: str) -> int:
    """A pynetdicom SCU: sends the files of `folder` (as paths: pynetdicom reads them) on
    one association; exit 0 if every C-STORE succeeded."""
    from pynetdicom import AE

    ae = AE("PYNET_SCU")
    ae.add_requested_context(CT_IMAGE, [EXPLICIT_LE, IMPLICIT_LE])
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    tls_args = (pn_client_context(pki), HOST) if pki != "-" else None
    files = sorted(os.path.join(folder, name) for name in os.listdir(folder))
    assoc = ae.associate(HOST, int(port), ae_title=CALLED, tls_args=tls_args)
    if not assoc.is_established:
        print("no association", file=sys.stderr)
        return 3
    ok = 0
    try:
        for path in files:
            status = assoc.send_c_store(path)
            if "Status" not in status or int(status.Status) != 0:
                print(f"{path}: {status}", file=sys.stderr)
                break
            ok += 1
    finally:
        if assoc.is_established:
            assoc.release()
    print(f"sent {ok} of {len(files)}")
    return 0 if ok == len(files) else 1


# --- the machine ------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads) so far."""
    from apps_vs_peers import proc_cpu as user_sys

    return sum(user_sys(pid))


def machine_cpu() -> tuple[float, float]:
    """(user + system CPU seconds at nice 0 or below, nice > 0) of the whole machine."""
    with open("/proc/stat") as f:
        user, nice, system = map(int, f.readline().split()[1:4])
    tck = os.sysconf("SC_CLK_TCK")
    return (user + system) / tck, nice / tck


def niced_processes() -> dict[int, tuple[str, int, float]]:
    """{pid: (name, nice, CPU seconds)} of the processes with nice > 0."""
    tck = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            nice = int(fields[16])
            if nice > 0:
                found[int(entry)] = (name, nice, (int(fields[11]) + int(fields[12])) / tck)
    return found


def memory_gib() -> str:
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    return "? GiB"


# --- the PKI and the data ----------------------------------------------------------------


class Pki:
    """The paths of the PKI's files, in `folder`."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.ca = os.path.join(folder, CA_PEM)
        self.server_cert = os.path.join(folder, SERVER_PEM)
        self.server_key = os.path.join(folder, SERVER_KEY)
        self.client_cert = os.path.join(folder, CLIENT_PEM)
        self.client_key = os.path.join(folder, CLIENT_KEY)


def make_pki(folder: str) -> Pki:
    """A test CA (ECDSA P-256), a server certificate with an RSA-2048 key naming 127.0.0.1
    and localhost, and a client certificate (for DCMTK's +tls, which wants one)."""
    from tlscerts import CA

    os.makedirs(folder)
    ca = CA(Path(folder), CA_PEM.removesuffix(".pem"))
    ca.issue(SERVER_PEM.removesuffix(".pem"), ["localhost", HOST], rsa_key=True)
    ca.issue(CLIENT_PEM.removesuffix(".pem"), [], server=False)
    return Pki(folder)


# --- the SCPs ---------------------------------------------------------------------------


@dataclass
class Scp:
    port: int
    pid: int
    log: str
    proc: subprocess.Popen[Any]


def scp_command(stack: str, port: int, pki: Pki | None) -> tuple[list[str], str]:
    """(command, the line it prints once listening, "" to probe the port instead)."""
    from apps_vs_peers import dimse_command

    if stack == "dimse":
        tls = []
        if pki:
            tls = ["--tls-cert", pki.server_cert, "--tls-key", pki.server_key]
            tls += ["--tls-min-version", "1.3"]
        cmd = [*dimse_command(), "storescp", str(port), "--ignore", "--bind", HOST, *tls]
        return cmd, "storescp listening on"
    if stack == "dcmtk":
        tls = ["+tls", pki.server_key, pki.server_cert, "-pw", "-ic"] if pki else []
        return [DCMTK_STORESCP, "--ignore", *tls, str(port)], ""
    if stack == "pynetdicom":
        me = os.path.abspath(__file__)
        return [sys.executable, me, "--pn-storescp", str(port), pki.folder if pki else "-"], (
            "listening"
        )
    raise ValueError(stack)


@contextlib.contextmanager
def scp(stack: str, pki: Pki | None, work: str) -> Iterator[Scp]:
    """A fresh SCP of `stack` on a free port, with TLS when `pki`; stopped at the end
    (SIGTERM, then SIGKILL after 10 s)."""
    from apps_vs_peers import stop_scp, tail, wait_ready
    from peers import dcmtk_env, free_port

    port = free_port()
    cmd, ready = scp_command(stack, port, pki)
    fd, log = tempfile.mkstemp(prefix=f"scp-{stack}-", suffix=".log", dir=work)
    with os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=dcmtk_env()
        )
    try:
        wait_ready(proc, port, log, ready)
        yield Scp(port, proc.pid, log, proc)
        if proc.poll() is not None:
            raise RuntimeError(f"{stack} SCP exited with {proc.returncode}: {tail(log)}")
    finally:
        stop_scp(proc)


# --- the SCUs ---------------------------------------------------------------------------


def storescu_command(stack: str, port: int, folder: str, pki: Pki | None) -> list[str]:
    from apps_vs_peers import dimse_command

    if stack == "dimse":
        tls = ["--tls-ca", pki.ca, "--tls-min-version", "1.3"] if pki else []
        return [*dimse_command(), "storescu", HOST, str(port), folder, *tls]
    if stack == "dcmtk":
        tls = ["+tls", pki.client_key, pki.client_cert, "-pw", "+cf", pki.ca] if pki else []
        timeouts = ["-to", "30", "-ta", "30", "-td", "30"]
        return [DCMTK_STORESCU, *timeouts, *tls, "+sd", HOST, str(port), folder]
    if stack == "pynetdicom":
        me = os.path.abspath(__file__)
        return [sys.executable, me, "--pn-storescu", str(port), folder, pki.folder if pki else "-"]
    raise ValueError(stack)


def echoscu_command(stack: str, port: int, repeat: int, pki: Pki | None) -> list[str]:
    from apps_vs_peers import dimse_command

    if stack == "dcmtk":
        tls = ["+tls", pki.client_key, pki.client_cert, "-pw", "+cf", pki.ca] if pki else []
        timeouts = ["-to", "30", "-ta", "30", "-td", "30"]
        repeat_ = ["--repeat", str(repeat)]
        return [DCMTK_ECHOSCU, *timeouts, *tls, "-aec", CALLED, *repeat_, HOST, str(port)]
    if stack == "dimse":
        tls = ["--tls-ca", pki.ca, "--tls-min-version", "1.3"] if pki else []
        repeat_ = ["--repeat", str(repeat)]
        return [*dimse_command(), "echoscu", HOST, str(port), "-aec", CALLED, *repeat_, *tls]
    raise ValueError(stack)


@dataclass
class Proc:
    wall: float
    cpu: float  # SCU, user + system
    scp_cpu: float  # over the SCU's run
    out: str


def run_process(cmd: list[str], scp_: Scp, work: str, timeout: float = TIMEOUT) -> Proc:
    """Runs an SCU process to its exit (at most `timeout` s): wall time, CPU of it and of
    the SCP meanwhile; raises if it did not exit 0."""
    from apps_vs_peers import run_scu, tail
    from peers import dcmtk_env

    fd, log = tempfile.mkstemp(prefix="scu-", suffix=".log", dir=work)
    os.close(fd)
    try:
        before = proc_cpu(scp_.pid)
        r = run_scu(cmd, dcmtk_env(), log, timeout)
        scp_cpu = proc_cpu(scp_.pid) - before
        with open(log, errors="replace") as f:
            out = f.read()
        if r.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(cmd)} exited with {r.returncode}: {tail(log)}; "
                f"SCP: {tail(scp_.log, 4)}"
            )
    finally:
        os.remove(log)
    return Proc(r.wall, r.user + r.sys, scp_cpu, out)


class DimseApi:
    """dimse's SCU API in this process."""

    def __init__(self, pki: Pki | None, fresh: bool) -> None:
        from dimse import AE, TLS, sop

        self.ae = AE("BENCH_SCU")
        self.ae.add_requested_context(sop.Verification)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = 30
        self.ca = Path(pki.ca).read_bytes() if pki else None
        self.fresh = fresh
        self.shared = TLS(ca=self.ca, minimum_version="1.3") if pki else None

    def tls(self) -> Any:
        from dimse import TLS

        if self.ca is None:
            return None
        # A new TLS builds a new rustls client configuration: no session to resume.
        return TLS(ca=self.ca, minimum_version="1.3") if self.fresh else self.shared

    def associate(self, port: int) -> Any:
        assoc = self.ae.associate(HOST, port, ae_title=CALLED, tls=self.tls())
        if not assoc.is_established:
            raise RuntimeError(f"dimse: no association with port {port}: {assoc.error}")
        return assoc

    @staticmethod
    def echo(assoc: Any) -> bool:
        status = int(assoc.send_c_echo().Status)
        if status != 0:
            raise RuntimeError(f"dimse: C-ECHO status {status:#06x}")
        return True


class PynetdicomApi:
    """pynetdicom's SCU API in this process, as shipped."""

    def __init__(self, pki: Pki | None) -> None:
        from pynetdicom import AE

        self.ae = AE("BENCH_SCU")
        self.ae.add_requested_context(VERIFICATION)
        self.ae.acse_timeout = self.ae.network_timeout = 30
        # A response its reactor thread swallows (pynetdicom's race with a fast peer) then
        # costs 2 s, not 30, before it gives up and aborts (that time is left out).
        self.ae.dimse_timeout = 2
        self.tls_args = (pn_client_context(pki.folder), HOST) if pki else None

    def associate(self, port: int) -> Any:
        assoc = self.ae.associate(HOST, port, ae_title=CALLED, tls_args=self.tls_args)
        if not assoc.is_established:
            raise RuntimeError(f"pynetdicom: no association with port {port}")
        return assoc

    @staticmethod
    def echo(assoc: Any) -> bool:
        status = assoc.send_c_echo()
        if "Status" not in status:
            return False  # lost: pynetdicom aborted
        if int(status.Status) != 0:
            raise RuntimeError(f"pynetdicom: C-ECHO status {status.Status:#06x}")
        return True


# --- the measurements -------------------------------------------------------------------


@dataclass
class Sample:
    rate: float  # items/s
    scu_cpu: float  # CPU seconds per item
    scp_cpu: float
    items: int
    note: str = ""
    own_rate: float | None = None  # dimse storescu's own measure, association to release


@dataclass
class Context:
    work: str
    pki: Pki
    data: str  # N files
    one: str  # a folder with the first of them
    files: int
    file_size: int
    echoes: dict[str, int]
    assocs: dict[str, int]
    seconds: float  # time bound of an in-process loop


def store_run(stack: str, tls: bool, ctx: Context) -> dict[str, Sample]:
    """One SCP; the SCU sends 1 file (t(1)), N files (t(N)), then 1 file twice more, each
    a new process: the net rate takes the median of the three t(1) off t(N)."""
    pki = ctx.pki if tls else None
    n = ctx.files
    with scp(stack, pki, ctx.work) as s:

        def send(folder: str, count: int) -> Proc:
            p = run_process(storescu_command(stack, s.port, folder, pki), s, ctx.work)
            if stack == "dimse" and f"sent {count} of {count} files: {count} success" not in p.out:
                raise RuntimeError(f"dimse storescu did not report {count} successes: {p.out}")
            if stack == "pynetdicom" and f"sent {count} of {count}" not in p.out:
                raise RuntimeError(f"pynetdicom SCU did not send {count}: {p.out}")
            return p

        ones = [send(ctx.one, 1)]
        many = send(ctx.data, n)
        ones += [send(ctx.one, 1), send(ctx.one, 1)]
    if stack == "pynetdicom":
        with open(s.log) as f:
            said = re.findall(r"stored (\d+)", f.read())
        if said != [str(n + 3)]:
            raise RuntimeError(f"the pynetdicom SCP said it stored {said}, not {n + 3}")
    whole = Sample(n / many.wall, many.cpu / n, many.scp_cpu / n, n)
    if stack == "dimse":  # what dimse storescu measures itself (association to release)
        own = re.search(r"in [0-9.]+ s \(([0-9.]+) images/s", many.out)
        if own:
            whole.own_rate = float(own.group(1))
            whole.note = f"dimse storescu's own clock: {fmt(whole.own_rate)}/s"
    one_wall = statistics.median(p.wall for p in ones)
    if many.wall <= one_wall:  # start-up varied more than the N - 1 files took
        whole.note = "; ".join(
            x
            for x in (whole.note, f"no net rate: t(N) {many.wall:.2f} s <= t(1) {one_wall:.2f} s")
            if x
        )
        return {"store": whole}
    net = Sample(
        (n - 1) / (many.wall - one_wall),
        (many.cpu - statistics.median(p.cpu for p in ones)) / (n - 1),
        (many.scp_cpu - statistics.median(p.scp_cpu for p in ones)) / (n - 1),
        n - 1,
        note=f"t(1) {one_wall:.2f} s, t(N) {many.wall:.2f} s",
    )
    return {"store": whole, "store-net": net}


def api_loop(
    api: DimseApi | PynetdicomApi,
    s: Scp,
    count: int,
    seconds: float,
    per_association: bool,
) -> Sample:
    """`count` C-ECHOs on one association (after 10 to warm up), or `count` associations
    each with one C-ECHO (after one to warm up), at most `seconds`. CPU: this process's
    (every thread) and the SCP's over the whole loop. A lost response (pynetdicom: it
    then aborts) is left out with the time waiting for it (at most MAX_LOST per run)."""
    done = lost = 0
    busy = 0.0

    def lose() -> None:
        nonlocal lost
        lost += 1
        if lost > MAX_LOST:
            raise RuntimeError(f"{lost} responses lost")

    if per_association:
        assoc = api.associate(s.port)
        api.echo(assoc)
        assoc.release()
        c0, p0 = time.process_time(), proc_cpu(s.pid)
        while done < count and busy < seconds:
            t0 = time.perf_counter()
            assoc = api.associate(s.port)
            if api.echo(assoc):
                assoc.release()
                if not assoc.is_released:
                    raise RuntimeError("release failed")
                busy += time.perf_counter() - t0
                done += 1
            else:
                lose()
    else:
        assoc = api.associate(s.port)
        c0, p0 = time.process_time(), proc_cpu(s.pid)  # replaced after the warm-up
        try:
            while done < count and busy < seconds:
                if not assoc.is_established:
                    assoc = api.associate(s.port)
                if not all(api.echo(assoc) for _ in range(10)):  # warm up
                    lose()
                    continue
                if done == 0:
                    c0, p0 = time.process_time(), proc_cpu(s.pid)
                t0 = t1 = time.perf_counter()
                while done < count and busy + t1 - t0 < seconds:
                    if not api.echo(assoc):
                        lose()
                        break
                    done += 1
                    t1 = time.perf_counter()
                busy += t1 - t0
        finally:
            if assoc.is_established:
                assoc.release()
    cpu, scp_cpu = time.process_time() - c0, proc_cpu(s.pid) - p0
    if not done:
        raise RuntimeError("nothing measured")
    notes = [f"{lost} response(s) lost, left out" if lost else ""]
    notes.append(f"time bound: {done} of {count}" if done < count else "")
    return Sample(done / busy, cpu / done, scp_cpu / done, done, "; ".join(x for x in notes if x))


def echo_run(stack: str, tls: bool, ctx: Context) -> dict[str, Sample]:
    pki = ctx.pki if tls else None
    n = ctx.echoes[stack]
    with scp(stack, pki, ctx.work) as s:
        if stack == "dcmtk":
            return {"echo": dcmtk_echo(s, n, pki, ctx.work)}
        api = DimseApi(pki, fresh=False) if stack == "dimse" else PynetdicomApi(pki)
        return {"echo": api_loop(api, s, n, ctx.seconds, per_association=False)}


def dcmtk_echo(s: Scp, n: int, pki: Pki | None, work: str) -> Sample:
    """(N - 1) / (t(echoscu --repeat N) - t(--repeat 1)): the median of 4 runs of
    --repeat 1 (2 before, 2 after; one more before them to warm up)."""

    def run(repeat: int) -> Proc:
        return run_process(echoscu_command("dcmtk", s.port, repeat, pki), s, work)

    run(1)
    ones = [run(1), run(1)]
    many = run(n)
    ones += [run(1), run(1)]
    wall = many.wall - statistics.median(p.wall for p in ones)
    cpu = many.cpu - statistics.median(p.cpu for p in ones)
    scp_cpu = many.scp_cpu - statistics.median(p.scp_cpu for p in ones)
    return Sample((n - 1) / wall, cpu / (n - 1), scp_cpu / (n - 1), n - 1)


def assoc_api_run(
    scu_stack: str, scp_stack: str, fresh: bool
) -> Callable[[bool, Context], dict[str, Sample]]:
    def run(tls: bool, ctx: Context) -> dict[str, Sample]:
        pki = ctx.pki if tls else None
        n = ctx.assocs[scu_stack]
        with scp(scp_stack, pki, ctx.work) as s:
            api = DimseApi(pki, fresh) if scu_stack == "dimse" else PynetdicomApi(pki)
            return {"assoc": api_loop(api, s, n, ctx.seconds, per_association=True)}

    return run


def assoc_process_run(stack: str) -> Callable[[bool, Context], dict[str, Sample]]:
    """One echoscu process per association, one after the other (start-up included)."""

    def run(tls: bool, ctx: Context) -> dict[str, Sample]:
        pki = ctx.pki if tls else None
        n = ctx.assocs[f"{stack}-process"]
        with scp(stack, pki, ctx.work) as s:
            cmd = echoscu_command(stack, s.port, 1, pki)
            run_process(cmd, s, ctx.work)  # warm up
            done = 0
            cpu = scp_cpu = 0.0
            start = time.perf_counter()
            while done < n and time.perf_counter() - start < ctx.seconds:
                p = run_process(cmd, s, ctx.work)
                cpu += p.cpu
                scp_cpu += p.scp_cpu
                done += 1
            wall = time.perf_counter() - start
        note = f"time bound: {done} of {n}" if done < n else ""
        return {"assoc": Sample(done / wall, cpu / done, scp_cpu / done, done, note)}

    return run


# --- the cases --------------------------------------------------------------------------


SCENARIOS = {
    "store": ("C-STORE {files} x 0.5 MiB CT from files, SCU process launch to exit", "images/s"),
    "store-net": ("C-STORE {files} x 0.5 MiB CT, net of start-up: t(N) - t(1)", "images/s"),
    "echo": ("C-ECHO round trips on one association", "echoes/s"),
    "assoc": ("Associations: associate + C-ECHO + release, full handshake each", "assocs/s"),
}


@dataclass
class Case:
    key: str
    label: str  # SCU -> SCP
    stack: str  # dimse, dcmtk, pynetdicom: whose row in the comparisons
    run: Callable[[bool, Context], dict[str, Sample]]
    note: str = ""
    main: bool = True  # the stack's row in the comparisons of its scenario
    # {(scenario key, "plain"/"tls"): samples}
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    error: dict[str, str] = field(default_factory=dict)  # mode -> error


def cases() -> list[Case]:
    def store(stack: str) -> Callable[[bool, Context], dict[str, Sample]]:
        return lambda tls, ctx: store_run(stack, tls, ctx)

    def echo(stack: str) -> Callable[[bool, Context], dict[str, Sample]]:
        return lambda tls, ctx: echo_run(stack, tls, ctx)

    return [
        Case(
            "store-dimse",
            "dimse storescu -> dimse storescp --ignore",
            "dimse",
            store("dimse"),
            "window of 16 C-STOREs proposed and granted",
        ),
        Case("store-dcmtk", "DCMTK storescu -> DCMTK storescp --ignore", "dcmtk", store("dcmtk")),
        Case(
            "store-pynetdicom",
            "pynetdicom SCU -> pynetdicom SCP",
            "pynetdicom",
            store("pynetdicom"),
            "SCU: a process of this script sending file paths; SCP: handler returning 0x0000",
        ),
        Case("echo-dimse", "dimse API -> dimse storescp --ignore", "dimse", echo("dimse")),
        Case(
            "echo-dcmtk",
            "DCMTK echoscu --repeat N -> DCMTK storescp --ignore",
            "dcmtk",
            echo("dcmtk"),
            "(N - 1) / (t(N) - t(1))",
        ),
        Case(
            "echo-pynetdicom",
            "pynetdicom API -> pynetdicom SCP",
            "pynetdicom",
            echo("pynetdicom"),
        ),
        Case(
            "assoc-dimse",
            "dimse API -> dimse storescp --ignore",
            "dimse",
            assoc_api_run("dimse", "dimse", fresh=True),
            "a new dimse.TLS per association: no session to resume",
        ),
        Case(
            "assoc-dimse-shared",
            "dimse API, one TLS object -> dimse storescp --ignore",
            "dimse",
            assoc_api_run("dimse", "dimse", fresh=False),
            "one dimse.TLS for every association: rustls may resume the session",
            main=False,
        ),
        Case(
            "assoc-dcmtk",
            "DCMTK echoscu, a process per association -> DCMTK storescp --ignore",
            "dcmtk",
            assoc_process_run("dcmtk"),
            "process start-up included",
        ),
        Case(
            "assoc-pynetdicom",
            "pynetdicom API -> pynetdicom SCP",
            "pynetdicom",
            assoc_api_run("pynetdicom", "pynetdicom", fresh=False),
            "one SSLContext; Python's ssl resumes no session unless asked",
        ),
        Case(
            "assoc-dimse-dcmtk",
            "dimse API -> DCMTK storescp --ignore",
            "dimse",
            assoc_api_run("dimse", "dcmtk", fresh=True),
            "the same SCU as the dimse row: the SCPs compared",
            main=False,
        ),
        Case(
            "assoc-dimse-process",
            "dimse echoscu, a process per association -> dimse storescp --ignore",
            "dimse",
            assoc_process_run("dimse"),
            "process start-up included, as DCMTK's row",
            main=False,
        ),
    ]


def measure(all_cases: list[Case], rounds: int, ctx: Context) -> None:
    """Rounds of every case, plain and TLS next to each other (TLS first in even
    rounds). A case and mode that fails once is reported as failed and not run again."""
    for r in range(rounds):
        print(f"round {r + 1} of {rounds}", file=sys.stderr, flush=True)
        for case in all_cases:
            modes = ["plain", "tls"] if r % 2 == 0 else ["tls", "plain"]
            for mode in modes:
                if mode in case.error:
                    continue
                t0 = time.perf_counter()
                try:
                    got = case.run(mode == "tls", ctx)
                except Exception as e:  # report it, go on with the others
                    traceback.print_exc()
                    case.error[mode] = f"{type(e).__name__}: {e}"
                    print(f"  {case.key} {mode}: {case.error[mode]}", file=sys.stderr)
                    continue
                took = time.perf_counter() - t0
                for scenario, s in got.items():
                    case.samples.setdefault((scenario, mode), []).append(s)
                    print(
                        f"  {case.key} {mode} [{scenario}]: {fmt(s.rate)}/s, CPU/item "
                        f"{s.scu_cpu * 1e3:.3f} + {s.scp_cpu * 1e3:.3f} ms ({took:.1f} s)"
                        + (f"; {s.note}" if s.note else ""),
                        file=sys.stderr,
                        flush=True,
                    )


# --- the TLS details --------------------------------------------------------------------


def probe(ctx: Context) -> list[str]:
    """What DCMTK's echoscu (OpenSSL) negotiates with each TLS SCP: version and cipher."""
    lines = []
    for stack in ("dcmtk", "dimse", "pynetdicom"):
        try:
            with scp(stack, ctx.pki, ctx.work) as s:
                cmd = echoscu_command("dcmtk", s.port, 1, ctx.pki)
                cmd.insert(1, "-d")
                p = run_process(cmd, s, ctx.work, timeout=60)
            protocol = re.search(r"Protocol\s*:\s*([^\s,]+)", p.out)
            cipher = re.search(r"Ciphersuite\s*:\s*([^\s,]+)", p.out)
            lines.append(
                f"DCMTK echoscu -> {stack} SCP: "
                f"{protocol.group(1) if protocol else '?'}, {cipher.group(1) if cipher else '?'}"
            )
        except Exception as e:
            lines.append(f"DCMTK echoscu -> {stack} SCP: failed: {type(e).__name__}: {e}")
    return lines


ASSOCIATE_RJ = bytes([3, 0, 0, 0, 0, 4, 0, 1, 1, 1])  # rejected-permanent, by the user


def resumption_probes(ctx: Context) -> list[str]:
    """Does rustls resume TLS 1.3 sessions? The dimse SCU (a shared TLS, then a new one)
    against an OpenSSL server (Python's ssl, which answers A-ASSOCIATE-RJ), and a Python
    ssl client (offering the session ticket it got) against `dimse storescp`."""
    import socket
    import ssl

    from dimse import AE, TLS, sop

    lines = []
    server_context = pn_server_context(ctx.pki.folder)
    reused: list[object] = []
    with socket.create_server((HOST, 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            for _ in range(3):
                try:
                    raw, _ = listener.accept()
                    raw.settimeout(10)
                    with server_context.wrap_socket(raw, server_side=True) as conn:
                        conn.recv(65536)  # (the start of) the A-ASSOCIATE-RQ
                        reused.append(conn.session_reused)
                        conn.sendall(ASSOCIATE_RJ)
                except (OSError, ssl.SSLError) as e:
                    reused.append(f"{type(e).__name__}: {e}")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        ae = AE("PROBE")
        ae.add_requested_context(sop.Verification)
        ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 10
        ca = Path(ctx.pki.ca).read_bytes()
        shared = TLS(ca=ca, minimum_version="1.3")
        for tls in (shared, shared, TLS(ca=ca, minimum_version="1.3")):
            with contextlib.suppress(Exception):
                assoc = ae.associate(HOST, port, ae_title=CALLED, tls=tls)
                if assoc.is_established:
                    assoc.abort()
        thread.join(30)
    lines.append(
        "dimse SCU -> OpenSSL server, session resumed? 1st association: "
        + ", 2nd with the same dimse.TLS: ".join(map(str, reused[:2]))
        + (f", 3rd with a new dimse.TLS: {reused[2]}" if len(reused) > 2 else "")
    )
    try:
        with scp("dimse", ctx.pki, ctx.work) as s:
            client_context = pn_client_context(ctx.pki.folder)

            def connect(session: Any = None) -> tuple[Any, bool]:
                raw = socket.create_connection((HOST, s.port), timeout=10)
                with client_context.wrap_socket(
                    raw, server_hostname=HOST, session=session
                ) as conn:
                    conn.settimeout(0.5)
                    with contextlib.suppress(OSError):
                        conn.recv(1)  # (times out) reads the session tickets
                    return conn.session, conn.session_reused

            session, _ = connect()
            _, again = connect(session)
        lines.append(
            f"OpenSSL client -> dimse storescp: session ticket received: "
            f"{bool(session and session.has_ticket)}, resumed: {again}"
        )
    except Exception as e:
        lines.append(f"OpenSSL client -> dimse storescp: failed: {type(e).__name__}: {e}")
    return lines


GROUPS = {0x001D: "x25519", 0x0017: "secp256r1", 0x0018: "secp384r1", 0x11EC: "X25519MLKEM768"}


def client_hello_probe(ctx: Context) -> tuple[list[str], list[str]]:
    """The key exchange groups the dimse SCU offers (supported_groups, in its order of
    preference) and those it sends a key share for, read from its ClientHello."""
    import socket
    import struct

    from dimse import AE, TLS, sop

    hello = b""
    with socket.create_server((HOST, 0)) as listener:
        listener.settimeout(10)

        def serve() -> None:
            nonlocal hello
            with contextlib.suppress(OSError), listener.accept()[0] as conn:
                conn.settimeout(10)
                while len(hello) < 5 or len(hello) < 5 + struct.unpack(">H", hello[3:5])[0]:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    hello += chunk

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        ae = AE("PROBE")
        ae.add_requested_context(sop.Verification)
        ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 10
        with contextlib.suppress(Exception):
            ae.associate(
                HOST, listener.getsockname()[1], tls=TLS(ca=ctx.pki.ca, minimum_version="1.3")
            )
        thread.join(15)
    supported: list[str] = []
    shares: list[str] = []
    with contextlib.suppress(IndexError, struct.error):
        body = hello[5:]  # the handshake message: ClientHello
        p = 4 + 2 + 32
        p += 1 + body[p]  # session id
        p += 2 + struct.unpack(">H", body[p : p + 2])[0]  # cipher suites
        p += 1 + body[p]  # compression methods
        end = p + 2 + struct.unpack(">H", body[p : p + 2])[0]
        p += 2
        while p < end:
            kind, length = struct.unpack(">HH", body[p : p + 4])
            ext = body[p + 4 : p + 4 + length]
            p += 4 + length
            if kind == 10:  # supported_groups
                for i in range(2, len(ext), 2):
                    group = struct.unpack(">H", ext[i : i + 2])[0]
                    supported.append(GROUPS.get(group, hex(group)))
            elif kind == 51:  # key_share
                q = 2
                while q < len(ext):
                    group, size = struct.unpack(">HH", ext[q : q + 4])
                    shares.append(GROUPS.get(group, hex(group)))
                    q += 4 + size
    return supported, shares


# --- the report -------------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def fmt_cpu(seconds: float) -> str:
    """CPU per item in ms or µs."""
    if abs(seconds) >= 1e-3:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds * 1e6:,.0f} µs"


def median(samples: list[Sample], what: str) -> float:
    return statistics.median(getattr(s, what) for s in samples)


def cell(case: Case, scenario: str, mode: str, ctx: Context) -> str:
    samples = case.samples.get((scenario, mode))
    if not samples:
        return "failed" if mode in case.error else "-"
    rate = median(samples, "rate")
    if scenario.startswith("store"):
        return f"{fmt(rate)} ({fmt(rate * ctx.file_size / MB)} MB/s)"
    return fmt(rate)


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "n/a"
    return f"{a / b:,.2f}x"


def rate_of(case: Case | None, scenario: str, mode: str) -> float | None:
    if case is None:
        return None
    samples = case.samples.get((scenario, mode))
    return median(samples, "rate") if samples else None


def report(
    all_cases: list[Case], ctx: Context, header: list[str], footer: list[str], rounds: int
) -> str:
    out = list(header)
    out += [
        "",
        "## Summary: plain TCP vs TLS 1.3, medians",
        "",
        "TLS / plain: the throughput kept with TLS (1.00x: TLS costs nothing). Extra CPU: "
        "(TLS - plain) CPU per item, SCU + SCP, medians.",
        "",
        "| scenario | SCU -> SCP | unit | plain | TLS 1.3 | TLS / plain "
        "| CPU per item, plain (SCU + SCP) | CPU per item, TLS (SCU + SCP) | extra CPU per item "
        "with TLS |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, (title, unit) in SCENARIOS.items():
        title = title.format(files=ctx.files)
        for case in all_cases:
            if not any(k[0] == scenario for k in case.samples) and not (
                case.error and case.key.startswith(scenario.split("-")[0])
            ):
                continue
            plain = case.samples.get((scenario, "plain"))
            tls = case.samples.get((scenario, "tls"))
            cpus = []
            for samples in (plain, tls):
                if samples:
                    scu, scp_ = median(samples, "scu_cpu"), median(samples, "scp_cpu")
                    cpus.append((scu, scp_, f"{fmt_cpu(scu)} + {fmt_cpu(scp_)}"))
                else:
                    cpus.append(None)
            extra = "n/a"
            if cpus[0] and cpus[1]:
                extra = f"{fmt_cpu(cpus[1][0] - cpus[0][0])} + {fmt_cpu(cpus[1][1] - cpus[0][1])}"
            tls_rate, plain_rate = rate_of(case, scenario, "tls"), rate_of(case, scenario, "plain")
            kept = ratio(tls_rate, plain_rate)
            if tls_rate and plain_rate:
                kept += f" ({tls_rate / plain_rate - 1:+.0%})"
            out.append(
                f"| {title} | {case.label} | {unit} | {cell(case, scenario, 'plain', ctx)} "
                f"| {cell(case, scenario, 'tls', ctx)} | {kept} "
                f"| {cpus[0][2] if cpus[0] else '-'} | {cpus[1][2] if cpus[1] else '-'} "
                f"| {extra} |"
            )
    ours = next((c for c in all_cases if c.key == "store-dimse"), None)
    own = (
        {
            mode: [s.own_rate for s in (ours.samples.get(("store", mode)) or []) if s.own_rate]
            for mode in ("plain", "tls")
        }
        if ours
        else {}
    )
    if own and own["plain"] and own["tls"]:
        plain_own, tls_own = statistics.median(own["plain"]), statistics.median(own["tls"])
        out += [
            "",
            f"dimse storescu's own clock (it prints the time from association request to "
            f"release), the {ctx.files}-file runs: plain {fmt(plain_own)} images/s "
            f"({fmt(plain_own * ctx.file_size / MB)} MB/s), TLS {fmt(tls_own)} images/s "
            f"({fmt(tls_own * ctx.file_size / MB)} MB/s), TLS / plain "
            f"{tls_own / plain_own:.2f}x; runs: plain "
            + " / ".join(fmt(x) for x in own["plain"])
            + ", TLS "
            + " / ".join(fmt(x) for x in own["tls"]),
        ]
    out += [
        "",
        "## dimse against its peers, same scenario (ratios above 1: dimse faster)",
        "",
        "| scenario | dimse / DCMTK, TLS | dimse / DCMTK, plain | dimse / pynetdicom, TLS "
        "| dimse / pynetdicom, plain | rows compared |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for scenario, (title, _unit) in SCENARIOS.items():
        prefix = scenario.split("-")[0]
        main = {c.stack: c for c in all_cases if c.main and c.key.startswith(prefix + "-")}
        ours = main.get("dimse")
        if not main:
            continue
        cells = []
        for peer in ("dcmtk", "pynetdicom"):
            for mode in ("tls", "plain"):
                cells.append(
                    ratio(rate_of(ours, scenario, mode), rate_of(main.get(peer), scenario, mode))
                )
        rows = " / ".join(c.label for c in main.values())
        out.append(f"| {title.format(files=ctx.files)} | {' | '.join(cells)} | {rows} |")
    # The extra rows of the association scenario, against DCMTK's echoscu processes.
    by_key = {c.key: c for c in all_cases}
    dcmtk_assoc = by_key.get("assoc-dcmtk")
    for key in ("assoc-dimse-process", "assoc-dimse-shared", "assoc-dimse-dcmtk"):
        case = by_key.get(key)
        if case is None:
            continue
        cells = [
            ratio(rate_of(case, "assoc", m), rate_of(dcmtk_assoc, "assoc", m))
            for m in ("tls", "plain")
        ]
        pn = by_key.get("assoc-pynetdicom")
        cells += [
            ratio(rate_of(case, "assoc", m), rate_of(pn, "assoc", m)) for m in ("tls", "plain")
        ]
        out.append(
            f"| Associations, extra row: {case.label} | {' | '.join(cells)} | {case.note} |"
        )
    out += [
        "",
        "## Every run",
        "",
        f"{rounds} round(s); runs in the order measured. CPU: medians per item, SCU + SCP.",
        "",
        "| scenario | SCU -> SCP | mode | median | runs | CPU per item (SCU + SCP) | notes |",
        "|---|---|---|---:|---|---:|---|",
    ]
    for scenario, (_title, unit) in SCENARIOS.items():
        for case in all_cases:
            for mode in ("plain", "tls"):
                samples = case.samples.get((scenario, mode))
                error = case.error.get(mode)
                if not samples and not (error and case.key.startswith(scenario.split("-")[0])):
                    continue
                if not samples:
                    err = (error or "").replace("|", "\\|").replace("\n", " ")
                    out.append(f"| {scenario} | {case.label} | {mode} | failed | | | {err} |")
                    continue
                runs = " / ".join(fmt(s.rate) for s in samples)
                scu_cpu, scp_cpu = median(samples, "scu_cpu"), median(samples, "scp_cpu")
                cpu = f"{fmt_cpu(scu_cpu)} + {fmt_cpu(scp_cpu)}"
                notes = [case.note] if case.note else []
                notes += [s.note for s in samples if s.note and not s.note.startswith("t(1)")]
                if scenario == "store-net":
                    notes.append("; ".join(s.note for s in samples))
                if error:
                    notes.append(f"a later run failed: {error}")
                items = sorted({s.items for s in samples})
                notes.append(f"{'/'.join(map(str, items))} items per run")
                out.append(
                    f"| {scenario} | {case.label} | {mode} "
                    f"| {fmt(median(samples, 'rate'))} {unit} "
                    f"| {runs} | {cpu} | {'; '.join(n for n in notes if n)} |"
                )
    out += ["", *footer]
    return "\n".join(out) + "\n"


# --- main -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke test)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each case (default 3)")
    parser.add_argument("--files", type=int, help="C-STORE files per run (default 300; quick 60)")
    parser.add_argument(
        "--only", help="comma-separated case keys or prefixes (store, echo, assoc, ...)"
    )
    parser.add_argument(
        "--out",
        help="write the report to this file (default: benches/TLS-RESULTS.md for a full "
        "run, none with --quick or --only)",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(BENCHES.parent / "tests"))
    import pydicom
    import pynetdicom

    import dimse
    from apps_vs_peers import dimse_command, make_files, subset
    from echo_vs_peers import cpu_model, dcmtk_version, load

    quick = args.quick
    rounds = max(1, args.rounds)
    files = max(2, args.files or (60 if quick else 300))
    echoes = (
        {"dimse": 500, "dcmtk": 500, "pynetdicom": 50}
        if quick
        else {"dimse": 2000, "dcmtk": 2000, "pynetdicom": 200}
    )
    assocs = (
        {"dimse": 30, "dcmtk-process": 20, "pynetdicom": 20, "dimse-process": 5}
        if quick
        else {"dimse": 100, "dcmtk-process": 100, "pynetdicom": 100, "dimse-process": 10}
    )
    seconds = 20.0 if quick else 60.0
    chosen = cases()
    if args.only:
        wanted = args.only.split(",")
        chosen = [c for c in chosen if any(c.key.startswith(w) for w in wanted)]
    out_path = args.out or (None if quick or args.only else str(BENCHES / "TLS-RESULTS.md"))

    started = datetime.datetime.now(datetime.timezone.utc)
    niced0 = niced_processes()
    busy0, nice0 = machine_cpu()
    own0 = os.times()
    wall0 = time.monotonic()
    load0 = load()
    dcmtk_openssl = "?"
    with contextlib.suppress(OSError):
        v = subprocess.run([DCMTK_STORESCU, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"OpenSSL, Version (.*)|OpenSSL (\S+)", v)
        dcmtk_openssl = (m.group(1) or m.group(2)).strip() if m else "?"
    import ssl

    work = tempfile.mkdtemp(prefix="tls_bench")
    try:
        print("making the PKI and the files...", file=sys.stderr, flush=True)
        pki = make_pki(os.path.join(work, "pki"))
        data = os.path.join(work, "data")
        size = make_files(data, files, 512)
        one = os.path.join(work, "one")
        subset(data, one, 1)
        ctx = Context(work, pki, data, one, files, size, echoes, assocs, seconds)
        tls_lines = probe(ctx)
        resumption = resumption_probes(ctx)
        groups, shares = client_hello_probe(ctx)
        resumption.append(
            f"dimse SCU's ClientHello: supported_groups {', '.join(groups) or '?'}; "
            f"key share for {', '.join(shares) or '?'}"
        )
        for line in resumption:
            print(f"  {line}", file=sys.stderr, flush=True)
        for line in tls_lines:
            print(f"  {line}", file=sys.stderr, flush=True)
        measure(chosen, rounds, ctx)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)

    elapsed = time.monotonic() - wall0
    busy1, nice1 = machine_cpu()
    own1 = os.times()
    own = (own1.user + own1.system + own1.children_user + own1.children_system) - (
        own0.user + own0.system + own0.children_user + own0.children_system
    )
    others = max(0.0, (busy1 - busy0) - own) / elapsed
    low = (nice1 - nice0) / elapsed
    niced1 = niced_processes()
    busy_niced = []
    for pid, (name, nice, cpu) in niced1.items():
        if pid in niced0 and cpu - niced0[pid][2] > 1:
            busy_niced.append(f"{name} (nice {nice}, {(cpu - niced0[pid][2]) / elapsed:.2f} CPUs)")
    nproc = len(os.sched_getaffinity(0))
    command = shlex.join(["python", "benches/tls_vs_peers.py", *sys.argv[1:]])
    header = [
        "# The cost of TLS: dimse vs DCMTK vs pynetdicom, plain TCP and TLS 1.3, on loopback",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- command: `{command}`",
        f"- machine: a {nproc} vCPU VM ({os.cpu_count()} CPUs), {cpu_model()}, "
        f"{memory_gib()}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}",
        f"- dimse {dimse.__version__} (rustls on ring), pynetdicom {pynetdicom.__version__} "
        f"(Python's ssl: {ssl.OPENSSL_VERSION}), pydicom {pydicom.__version__}, DCMTK "
        f"{dcmtk_version()} (OpenSSL {dcmtk_openssl})",
        f"- dimse apps: `{shlex.join(dimse_command())}`",
        f"- {rounds} round(s), median shown; per run: C-STORE {files} files of {size:,} bytes "
        f"(512 x 512 x 16-bit pixels, Explicit VR Little Endian); C-ECHO: dimse "
        f"{echoes['dimse']}, DCMTK {echoes['dcmtk']}, pynetdicom {echoes['pynetdicom']} "
        f"echoes; associations: dimse {assocs['dimse']}, DCMTK {assocs['dcmtk-process']} "
        f"processes, pynetdicom {assocs['pynetdicom']}, dimse echoscu "
        f"{assocs['dimse-process']} processes; in-process loops bounded at {seconds:g} s",
        "- TLS: TLS 1.3, server certificate RSA-2048 (signed by an ECDSA P-256 test CA), "
        "verified by every client; no client certificate (mutual TLS off); what DCMTK's "
        "echoscu negotiates with each SCP: " + "; ".join(tls_lines),
        "- dimse's TLS, probed (resumption with TLS 1.3 tickets; key exchange offered): "
        + "; ".join(resumption),
        "- max PDU: each stack's default (16 KiB: dimse 16382, DCMTK 16384, pynetdicom 16382)",
        f"- load average at start: {load0}; at end: {load()} (this bench's processes included)",
        f"- CPU used by other processes during the run: {others:.2f} CPUs on average at "
        f"normal priority, {low:.2f} CPUs at low priority (nice > 0), of {nproc}"
        + (f"; busy low-priority processes: {', '.join(busy_niced)}" if busy_niced else ""),
        "- low-priority fuzzers (nice 19) may have been running: they yield the CPUs to "
        "this bench but still take caches and memory bandwidth, and a wake-up may wait "
        "for one",
        f"- the whole run took {elapsed / 60:.1f} min",
    ]
    footer = [
        "## Notes",
        "",
        "- Loopback on one machine: SCU and SCP share its CPUs, and TLS adds CPU work on "
        "both, so TLS / plain here is what a 2-vCPU machine running both ends keeps; "
        "compare the ratios of one run, not absolute figures across runs.",
        "- C-STORE: the SCU process is timed from launch to exit, as a user runs it: "
        "interpreter start-up (dimse, pynetdicom) or process start-up (DCMTK), reading the "
        "files, the TLS handshake, the association and its release are included. The net "
        "rows take t(1) (the same SCU, same SCP, 1 file) off t(N). dimse storescu proposes "
        "an asynchronous operations window of 16, which dimse storescp grants; DCMTK and "
        "pynetdicom send one at a time. MB = 10^6 bytes.",
        "- C-ECHO: dimse and pynetdicom are timed in this process around the echoes on an "
        "established association (after 10 to warm up); DCMTK as (N - 1) / (t(echoscu "
        "--repeat N) - t(--repeat 1)).",
        "- Associations: each dimse association with a new dimse.TLS builds a new rustls "
        "client configuration (parsing the CA, a few µs) and so has no session ticket to "
        "offer: a full handshake (ECDHE + the server's RSA-2048 signature + the client's "
        "chain check). With one shared dimse.TLS rustls may resume (TLS 1.3 PSK with ECDHE: "
        "no certificate, no RSA signature). DCMTK's echoscu opens one association per "
        "process, so its row includes process start-up and OpenSSL set-up (loading the "
        "key, certificate and CA) every time, as the 'dimse echoscu' process row does for "
        "dimse.",
        "- CPU: SCU from wait4 (processes) or this process's own CPU time (the API rows: "
        "every thread, including dimse's Rust runtime), SCP from /proc/<pid>/stat over "
        "the measured part.",
    ]
    if shares and shares[0] == "secp384r1":
        footer.append(
            "- Key exchange: the dimse SCU offers secp384r1 first and sends a P-384 key "
            "share only (the order of rustls 0.23.48's ring provider, whose default puts "
            "secp384r1 before x25519), so every handshake it opens, and every one into the "
            "dimse SCP from a dimse SCU, does P-384 ECDH, which ring computes with generic "
            "code (much slower than x25519). Peers that send an x25519 share (OpenSSL: "
            "DCMTK, Python) get x25519 from the dimse SCP."
        )
    text = report(chosen, ctx, header, footer, rounds)
    print(text)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)
        print(f"written to {out_path}", file=sys.stderr)
    return 1 if any(c.error for c in chosen) else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--pn-storescp":
        sys.exit(pn_storescp(*sys.argv[2:4]))
    if len(sys.argv) > 1 and sys.argv[1] == "--pn-storescu":
        sys.exit(pn_storescu(*sys.argv[2:5]))
    sys.exit(main())
