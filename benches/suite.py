"""The benchmark suite: dimse against pynetdicom and DCMTK on loopback, in one command.

Every scenario is run for dimse, pynetdicom (as shipped, and with TCP_NODELAY
monkeypatched on both sides) and DCMTK (tools by absolute path, TCP_NODELAY=1), several
times each (median reported), in rounds (round 1 of every scenario, then round 2, ...),
each run bounded in count and in wall time:

- limits: raw loopback TCP (a small Rust program, `rust/dimse-core/examples/tcp_limit.rs`):
  throughput of one connection (1 MiB writes) and 64-byte ping-pong round trips/s;
- echo: C-ECHO round trips/s on one association;
- assoc: associations/s (associate, one C-ECHO, release);
- store: C-STORE on one association, N x 0.5 MB CT and a few 64 MiB multi-frames, the SCP
  discarding (dimse: Python handler returning success, and native `--ignore`; DCMTK
  `storescp --ignore`; pynetdicom: handler returning success) or writing files (dimse
  native FileStorage, DCMTK `storescp -od`, pynetdicom: handler writing
  `event.encoded_dataset()`), with a maximum PDU of 16 KiB and of 1 MiB on both sides
  (DCMTK accepts at most 128 KiB); the dimse SCU with an asynchronous operations window
  (`send_c_store_many`) and one at a time (`send_c_store`);
- find: one C-FIND returning 10,000 matches;
- concurrency: K parallel associations (K = 1, 10, 64, 100, 256, 1000) storing 16 KiB
  images into one SCP (dimse native discard, DCMTK `storescp --fork --ignore`,
  pynetdicom handler up to K = 100), all driven by the same SCU: a minimal load generator
  (pre-encoded PDUs on plain sockets, `RawStoreScu`) in 4 processes of this script, each
  holding its share of the K associations (one thread each), all established before the
  clock starts.

For each run: items/s (and MB/s), CPU time (user + system) of SCU and SCP per item, the
SCP's peak RSS and thread count. The output is markdown: a summary table of medians and
of ratios dimse / each peer (and dimse as a fraction of the TCP limit), detail tables, the
targets table; it is printed and written to OUT/RESULTS.md with a chart of the ratios,
OUT/results.png (matplotlib, a bench-only dependency).

Run: `python benches/suite.py` (after `pip install .`, with pynetdicom, matplotlib and
`apt-get install dcmtk`; builds the Rust example with cargo). `--quick` for a smoke test,
`--only SECTION[,..]` for some sections, `--runs N`, `--out DIR`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import platform
import queue
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import echo_vs_peers as em
import store_find_vs_peers as sf
from echo_vs_peers import (
    HOST,
    cpu_model,
    cpu_seconds,
    dcmtk_env,
    dcmtk_version,
    free_port,
    load,
    patch_pynetdicom_nodelay,
    stop,
)

BENCHES = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCHES)

# Absolute paths: pynetdicom installs console scripts of these names.
ECHOSCU = "/usr/bin/echoscu"
STORESCU = "/usr/bin/storescu"
STORESCP = "/usr/bin/storescp"
FINDSCU = "/usr/bin/findscu"

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE = sf.CT_IMAGE
MULTIFRAME = sf.MULTIFRAME_WORD_SC
EXPLICIT_LE = sf.EXPLICIT_LE
MB = 1_000_000  # MB/s: 10^6 bytes per second (as dimse storescu reports it)
MIB = 1 << 20
KIB16 = 16384
MIB1 = 1 << 20
DCMTK_MAX_PDU = 131072  # storescu/storescp -pdu accept 4096..131072
CLK_TCK = os.sysconf("SC_CLK_TCK")
WINDOW = 16  # the asynchronous operations window the dimse SCU proposes, the SCP grants
KS = (1, 10, 64, 100, 256, 1000)
QUICK_KS = (1, 10, 100, 1000)
SECTIONS = ("limits", "echo", "assoc", "store", "find", "concurrency")


def raise_nofile() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit (1000 associations need > 1024 sockets);
    inherited by every process started after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- /proc ------------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads) so far; 0 if gone."""
    try:
        return sf.proc_cpu(pid)
    except (OSError, IndexError, ValueError):
        return 0.0


def status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS (kB) and Threads of process `pid` ({} if it is gone)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    return out


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc/<pid>/task/*/children), depth first."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
                for child in f.read().split():
                    found.append(int(child))
                    found += children(int(child))
    return found


def pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


@dataclass
class Snapshot:
    rss: float  # MiB: VmHWM of the SCP process; for a process tree, the sum of Pss
    threads: int  # threads of the SCP process; for a process tree, of all its processes
    cpu: float  # user + system s, the whole tree
    processes: int = 1


def snapshot(pid: int, tree: bool = False) -> Snapshot:
    if not tree:
        st = status(pid)
        return Snapshot(st.get("VmHWM", 0) / 1024, st.get("Threads", 0), proc_cpu(pid))
    kids = children(pid)
    pids = [pid, *kids]
    threads = sum(status(p).get("Threads", 0) for p in pids)
    return Snapshot(
        sum(pss_kb(p) for p in pids) / 1024,
        threads,
        proc_cpu(pid) + sum(task_cpu(p) for p in kids),
        len(pids),
    )


def task_cpu(pid: int) -> float:
    """CPU seconds of the main thread of `pid`, in ns from /proc/<pid>/schedstat (not
    rounded to 10 ms ticks as /proc/<pid>/stat is: a --fork child may use less than a
    tick); for a single-threaded process, all of it. 0 if it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9
    return 0.0


def tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` (all its threads) and of its children (single-threaded)."""
    return proc_cpu(pid) + sum(task_cpu(p) for p in children(pid))


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class ThreadPeak:
    """The most threads process `pid` had, sampled every `every` s in a thread of ours."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid = pid
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status(self.pid).get("Threads", 0))
            self._stop.wait(self.every)

    def __enter__(self) -> ThreadPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# --- the SCPs ---------------------------------------------------------------------------


@dataclass
class ScpConfig:
    """A Python SCP run by this script in a subprocess (`--serve`)."""

    kind: str  # dimse | pynetdicom | pynetdicom-nodelay
    store: str = "handler"  # handler (returns success) | discard (native) | write
    out: str = ""  # the folder written to (store = write)
    pdu: int = 16382
    max_assoc: int = 16
    window: int = WINDOW  # the asynchronous operations window a dimse SCP grants


def serve(config: str) -> None:
    """Runs a Verification + Storage SCP on a free loopback port, prints `PORT n`, and
    serves until stdin is closed (the parent closes it, or dies)."""
    cfg = ScpConfig(**json.loads(config))
    raise_nofile()
    storage_uids = (CT_IMAGE, MULTIFRAME)
    out = cfg.out

    def on_store(event: Any) -> int:
        return 0x0000

    def on_store_write(event: Any) -> int:  # pynetdicom: File Meta + data set as received
        uid = str(event.request.AffectedSOPInstanceUID)
        with open(os.path.join(out, f"{uid}.dcm"), "wb") as f:
            f.write(event.encoded_dataset())
        return 0x0000

    if cfg.kind == "dimse":
        from dimse import AE, evt
        from dimse.storage import FileStorage

        window = cfg.window

        def on_async_ops(event: Any) -> tuple[int, int]:
            invoked = int(event.nr_invoked)
            return (window if invoked == 0 else min(invoked, window)), 1

        ae = AE("DIMSE_SCP")
        ae.maximum_pdu_size = cfg.pdu
        ae.maximum_associations = cfg.max_assoc
        ae.network_timeout = 300
        ae.dimse_timeout = 120
        ae.add_supported_context(VERIFICATION)
        for uid in storage_uids:
            ae.add_supported_context(uid, EXPLICIT_LE)
        handlers: list[Any] = [(evt.EVT_ASYNC_OPS, on_async_ops)]
        storage = None
        if cfg.store == "handler":
            handlers.append((evt.EVT_C_STORE, on_store))
        else:
            storage = FileStorage(out or ".", discard=cfg.store == "discard")
        server: Any = ae.start_server(
            (HOST, 0), block=False, evt_handlers=handlers, storage=storage
        )
    else:
        from pynetdicom import AE as PnAE
        from pynetdicom import evt as pn_evt

        if cfg.kind == "pynetdicom-nodelay":
            patch_pynetdicom_nodelay()
        ae = PnAE("PYNETDICOM_SCP")
        ae.maximum_pdu_size = cfg.pdu
        ae.maximum_associations = cfg.max_assoc
        ae.network_timeout = 300
        ae.dimse_timeout = 120
        ae.add_supported_context(VERIFICATION)
        for uid in storage_uids:
            ae.add_supported_context(uid, EXPLICIT_LE)
        handler = on_store_write if cfg.store == "write" else on_store
        server = ae.start_server(
            (HOST, 0), block=False, evt_handlers=[(pn_evt.EVT_C_STORE, handler)]
        )
    try:
        print("PORT", server.server_address[1], flush=True)
        sys.stdin.read()
    finally:
        server.shutdown()


@contextlib.contextmanager
def python_scp(cfg: ScpConfig) -> Iterator[sf.Scp]:
    config = json.dumps(cfg.__dict__)
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", config],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise RuntimeError(f"{cfg.kind} SCP did not start (exit code {proc.wait(10)})")
        called = "DIMSE_SCP" if cfg.kind == "dimse" else "PYNETDICOM_SCP"
        yield sf.Scp(int(line[1]), proc.pid, called)
    finally:
        stop(proc)


@contextlib.contextmanager
def dcmtk_scp(
    store: str = "discard", out: str = "", pdu: int = KIB16, fork: bool = False
) -> Iterator[sf.Scp]:
    """DCMTK `storescp` (TCP_NODELAY=1): `--ignore` (store = discard) or `-od out`, with
    `-pdu`, optionally `--fork`. Started in a session of its own; on exit its children
    (--fork) are killed by their ids, then it."""
    port = free_port()
    cmd = [STORESCP, "-aet", "STORESCP", "-pdu", str(min(pdu, DCMTK_MAX_PDU)), "-ts", "300"]
    cmd += ["--ignore"] if store == "discard" else ["-od", out]
    if fork:
        cmd.append("--fork")
    with tempfile.TemporaryDirectory(prefix="storescp") as cwd:
        proc = subprocess.Popen(
            [*cmd, str(port)],
            cwd=cwd,
            env=dcmtk_env(True),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"storescp exited with {proc.returncode}")
                try:
                    socket.create_connection((HOST, port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield sf.Scp(port, proc.pid, "STORESCP")
        finally:
            kids = children(proc.pid)
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pid in kids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):  # any child forked after the list was taken
                os.killpg(proc.pid, signal.SIGKILL)


# --- the samples ------------------------------------------------------------------------


@dataclass
class Sample:
    rate: float  # items/s
    scu_cpu: float | None  # CPU s per item, SCU side
    scp_cpu: float | None  # CPU s per item, SCP side
    rss: float | None  # MiB, SCP peak (see Snapshot)
    threads: int | None  # SCP
    note: str = ""


# --- limits: raw TCP --------------------------------------------------------------------


def tcp_limit_binary() -> str:
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    return os.path.join(target, "release", "examples", "tcp_limit")


def build_tcp_limit() -> str | None:
    """Builds the example; None or why it failed."""
    cmd = ["cargo", "build", "--release", "--example", "tcp_limit", "-p", "dimse-core"]
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{shlex.join(cmd)}: {e}"
    if done.returncode != 0:
        return f"{shlex.join(cmd)} exited with {done.returncode}: {done.stderr[-500:]}"
    return None


class TcpLimit:
    """One run of tcp_limit per round gives both figures."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last: dict[str, Any] | None = None

    def run(self) -> dict[str, Any]:
        cmd = [tcp_limit_binary(), "--seconds", f"{self.seconds:g}", "--size", "64"]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=30 + 4 * self.seconds, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} exited with {done.returncode}: {done.stderr}")
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def throughput(self) -> Sample:
        self.last = self.run()
        return Sample(self.last["throughput"]["mb_per_s"], None, None, None, None)

    def pingpong(self) -> Sample:
        last, self.last = self.last, None  # the same run as throughput's, when there was one
        data = last or self.run()
        return Sample(data["pingpong"]["per_s"], None, None, None, None)


# --- echo and associations --------------------------------------------------------------


@dataclass
class EchoBounds:
    echoes: int
    assocs: int
    seconds: float


def echo_loop(scu: Any, scp: sf.Scp, b: EchoBounds) -> Sample:
    """C-ECHOs/s on one association (em.DimseScu or em.PynetdicomScu); a response the SCU
    loses (pynetdicom's reactor race) is left out and the run resumes on a new
    association, as in echo_vs_peers.py."""
    count = lost = 0
    busy = scu_cpu = scp_cpu = 0.0
    snap = None
    while count < b.echoes and busy < b.seconds:
        assoc = scu.associate(scp.port, scp.called)
        try:
            if not all(scu.echo(assoc) for _ in range(10)):  # warm up
                lost += 1
                continue
            c0, p0 = own_cpu(), proc_cpu(scp.pid)
            start = end = time.perf_counter()
            while count < b.echoes and busy + end - start < b.seconds:
                if not scu.echo(assoc):
                    lost += 1
                    break
                count += 1
                end = time.perf_counter()
            busy += end - start
            scu_cpu += own_cpu() - c0
            scp_cpu += proc_cpu(scp.pid) - p0
            snap = snapshot(scp.pid)
        finally:
            if assoc.is_established:
                assoc.release()
        em.check_lost(lost)
    assert snap is not None
    note = f"{lost} response(s) lost by pynetdicom, left out" if lost else ""
    return Sample(count / busy, scu_cpu / count, scp_cpu / count, snap.rss, snap.threads, note)


def assoc_loop(scu: Any, scp: sf.Scp, b: EchoBounds) -> Sample:
    """Associations/s: associate, one C-ECHO, release, one after the other."""

    def one() -> bool:
        assoc = scu.associate(scp.port, scp.called)
        if not scu.echo(assoc):
            return False
        assoc.release()
        if not assoc.is_released:
            raise RuntimeError("release failed")
        return True

    lost = 0 if one() else 1  # warm up
    count = 0
    busy = 0.0
    c0, p0 = own_cpu(), proc_cpu(scp.pid)
    while count < b.assocs and busy < b.seconds:
        start = time.perf_counter()
        if one():
            count += 1
            busy += time.perf_counter() - start
        else:
            lost += 1
            em.check_lost(lost)
    scu_cpu, scp_cpu = own_cpu() - c0, proc_cpu(scp.pid) - p0
    snap = snapshot(scp.pid)
    note = f"{lost} response(s) lost by pynetdicom, left out" if lost else ""
    return Sample(count / busy, scu_cpu / count, scp_cpu / count, snap.rss, snap.threads, note)


def echoscu(scp: sf.Scp) -> Callable[[int], list[str]]:
    def cmd(n: int) -> list[str]:
        timeouts = ["-to", "30", "-ta", "30", "-td", "30"]
        return [ECHOSCU, *timeouts, "-aec", scp.called, "--repeat", str(n), HOST, str(scp.port)]

    return cmd


def dcmtk_echo(scp: sf.Scp, b: EchoBounds) -> Sample:
    """echoscu: (n - 1) / (t(--repeat n) - t(--repeat 1)), n from a pilot run so that the
    timed run lasts about `b.seconds`; CPU likewise (sf.tool_rate)."""
    cmd = echoscu(scp)
    timeout = sf.PROCESS_TIMEOUT + 4 * b.seconds
    t1 = statistics.median(sf.run_tool(cmd(1), scp, timeout)[0] for _ in range(3))
    pilot = min(500, b.echoes)
    extra = sf.run_tool(cmd(pilot), scp, timeout)[0] - t1
    n = int(min(b.echoes, max(100, (pilot - 1) / max(extra, 1e-3) * b.seconds)))
    s = sf.tool_rate(cmd, n, scp, b.seconds)
    snap = snapshot(scp.pid)
    return Sample(s.rate, s.scu_cpu, s.scp_cpu, snap.rss, snap.threads, f"n = {n}")


def dcmtk_assoc(scp: sf.Scp, b: EchoBounds) -> Sample:
    """Associations/s of echoscu processes (one C-ECHO each) run one after the other:
    process start-up included."""
    cmd = echoscu(scp)(1)
    timeout = sf.PROCESS_TIMEOUT + 4 * b.seconds
    sf.run_tool(cmd, scp, timeout)  # warm up
    count = 0
    scu_cpu = scp_cpu = 0.0
    start = time.perf_counter()
    while count < b.assocs and time.perf_counter() - start < b.seconds:
        _, scu, scp_ = sf.run_tool(cmd, scp, timeout)
        scu_cpu += scu
        scp_cpu += scp_
        count += 1
    rate = count / (time.perf_counter() - start)
    snap = snapshot(scp.pid)
    return Sample(rate, scu_cpu / count, scp_cpu / count, snap.rss, snap.threads)


# --- C-STORE on one association ---------------------------------------------------------


class DimseStoreScu:
    def __init__(self, pdu: int, window: bool) -> None:
        from dimse import AE

        self.window = window
        self.ae = AE("DIMSE_SCU")
        self.ae.maximum_pdu_size = pdu
        self.ae.dimse_timeout = 120
        for uid in (CT_IMAGE, MULTIFRAME):
            self.ae.add_requested_context(uid, [EXPLICIT_LE])

    def associate(self, scp: sf.Scp) -> Any:
        from dimse.pdu_primitives import AsynchronousOperationsWindowNegotiation

        ext = [AsynchronousOperationsWindowNegotiation(WINDOW, 1)] if self.window else None
        assoc = self.ae.associate(HOST, scp.port, ae_title=scp.called, ext_neg=ext)
        if not assoc.is_established:
            raise RuntimeError(f"dimse: association to port {scp.port} failed: {assoc.error}")
        return assoc

    def store(self, assoc: Any, files: Iterable[str]) -> int:
        count = 0
        if self.window:
            for item, st in assoc.send_c_store_many(files):
                if isinstance(st, Exception):
                    raise RuntimeError(f"C-STORE of {item} failed: {st}")
                if int(st.Status) != 0:
                    raise RuntimeError(f"C-STORE failed: status {int(st.Status):#06x}")
                count += 1
        else:
            for path in files:
                st = int(assoc.send_c_store(path).Status)
                if st != 0:
                    raise RuntimeError(f"C-STORE failed: status {st:#06x}")
                count += 1
        return count

    def note(self, assoc: Any) -> str:
        if not self.window:
            return ""
        return f"window {assoc.async_window} negotiated"


class PnStoreScu:
    """pynetdicom's SCU, sending file paths (it reads and decodes each with dcmread, then
    encodes it again)."""

    def __init__(self, pdu: int, nodelay: bool) -> None:
        from pynetdicom import AE as PnAE

        self.nodelay = nodelay
        self.ae = PnAE("PYNETDICOM_SCU")
        self.ae.maximum_pdu_size = pdu
        self.ae.dimse_timeout = 120
        for uid in (CT_IMAGE, MULTIFRAME):
            self.ae.add_requested_context(uid, [EXPLICIT_LE])

    def associate(self, scp: sf.Scp) -> Any:
        assoc = self.ae.associate(HOST, scp.port, ae_title=scp.called)
        if not assoc.is_established:
            raise RuntimeError(f"pynetdicom: association to port {scp.port} failed")
        sock = assoc.dul.socket.socket
        if self.nodelay != bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)):
            raise RuntimeError("pynetdicom: TCP_NODELAY is not as intended")
        return assoc

    def store(self, assoc: Any, files: Iterable[str]) -> int:
        count = 0
        for path in files:
            st = assoc.send_c_store(path)
            if "Status" not in st:
                raise RuntimeError("pynetdicom: no C-STORE response (DIMSE timeout or abort)")
            if int(st.Status) != 0:
                raise RuntimeError(f"C-STORE failed: status {int(st.Status):#06x}")
            count += 1
        return count

    def note(self, assoc: Any) -> str:
        return ""


def until(files: list[str], deadline: float) -> Iterator[str]:
    """The files, as long as the deadline is not passed."""
    for path in files:
        if time.perf_counter() > deadline:
            return
        yield path


def store_run(scu: Any, scp: sf.Scp, files: list[str], warm: str, seconds: float) -> Sample:
    """C-STOREs of `files` on one association after one warm-up C-STORE of `warm`; no new
    one starts after `seconds`."""
    assoc = scu.associate(scp)
    try:
        scu.store(assoc, [warm])
        c0, p0 = own_cpu(), proc_cpu(scp.pid)
        start = time.perf_counter()
        count = scu.store(assoc, until(files, start + seconds))
        took = time.perf_counter() - start
        c1, p1 = own_cpu(), proc_cpu(scp.pid)
        snap = snapshot(scp.pid)
        notes = [scu.note(assoc)]
    finally:
        if assoc.is_established:
            assoc.release()
    if count < len(files):
        notes.append(f"time bound: {count} of {len(files)}")
    note = "; ".join(n for n in notes if n)
    return Sample(count / took, (c1 - c0) / count, (p1 - p0) / count, snap.rss, snap.threads, note)


def storescu(scp: sf.Scp, files: list[str], pdu: int) -> Callable[[int], list[str]]:
    def cmd(n: int) -> list[str]:
        timeouts = ["-to", "30", "-ta", "30", "-td", "120"]
        pdu_ = ["-pdu", str(min(pdu, DCMTK_MAX_PDU))]
        return [STORESCU, *timeouts, *pdu_, "-aec", scp.called, HOST, str(scp.port), *files[:n]]

    return cmd


def dcmtk_store(scp: sf.Scp, files: list[str], pdu: int, seconds: float) -> Sample:
    s = sf.tool_rate(storescu(scp, files, pdu), len(files), scp, seconds)
    snap = snapshot(scp.pid)
    note = "-pdu 131072 (DCMTK's maximum)" if pdu > DCMTK_MAX_PDU else ""
    return Sample(s.rate, s.scu_cpu, s.scp_cpu, snap.rss, snap.threads, note)


@contextlib.contextmanager
def out_dir(work: str, write: bool) -> Iterator[str]:
    """A fresh folder for an SCP to write to; removed (and synced) after the run."""
    if not write:
        yield ""
        return
    path = tempfile.mkdtemp(prefix="out", dir=work)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.sync()  # the next run starts without this one's dirty pages to write back


def check_written(path: str, expected: int) -> None:
    if path:
        n = sum(len(files) for _, _, files in os.walk(path))
        if n < expected:
            raise RuntimeError(f"the SCP wrote {n} files, not {expected}")


# --- concurrency ------------------------------------------------------------------------


class RawStoreScu:
    """A minimal C-STORE load generator on a plain blocking socket: the A-ASSOCIATE-RQ and
    each C-STORE-RQ's P-DATA-TF PDUs are encoded once (with dimse's codec), only the
    Message ID is patched in per request, and a response is read as far as its Status.
    It proposes the asynchronous operations window and keeps that many requests
    outstanding when the SCP grants it. Cheap per image, and the same for every SCP."""

    templates: ClassVar[dict[int, list[tuple[bytes, bytes]]]] = {}  # max PDU -> per file
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, port: int, called: str, files: list[str], window: int) -> None:
        self.port = port
        self.called = called
        self.files = files
        self.proposed = window
        self.window = 1
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.tpl: list[tuple[bytes, bytes]] = []

    def open(self, timeout: float) -> None:
        import dimse

        items: list[dict[str, Any]] = [
            {"type": "MaximumLength", "maximum_length": KIB16},
            {"type": "ImplementationClassUid", "uid": dimse.IMPLEMENTATION_CLASS_UID},
        ]
        if self.proposed > 1:
            items.append(
                {"type": "AsynchronousOperationsWindow", "invoked": self.proposed, "performed": 1}
            )
        rq = dimse.encode_pdu(
            {
                "pdu": "AAssociateRq",
                "protocol_version": 1,
                "called_ae_title": self.called,
                "calling_ae_title": "LOADGEN",
                "application_context_name": "1.2.840.10008.3.1.1.1",
                "presentation_contexts": [
                    {"id": 1, "abstract_syntax": CT_IMAGE, "transfer_syntaxes": [EXPLICIT_LE]}
                ],
                "user_information": {"items": items},
            }
        )
        self.sock = socket.create_connection((HOST, self.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(rq)
        kind, pdu = self.read_pdu()
        if kind != 2:
            raise RuntimeError(f"association not accepted: PDU type {kind}")
        self.sock.settimeout(300)
        ac = dimse.decode_pdu(pdu)
        if not any(c.get("result") == "Acceptance" for c in ac["presentation_contexts"]):
            raise RuntimeError("the CT context was not accepted")
        max_pdu = 0
        for item in ac.get("user_information", {}).get("items", []):
            if item["type"] == "MaximumLength":
                max_pdu = int(item["maximum_length"])
            elif item["type"] == "AsynchronousOperationsWindow":
                invoked = int(item["invoked"])
                self.window = min(self.proposed, invoked) if invoked else self.proposed
        self.tpl = self.templates_for(max_pdu or (1 << 24))

    def templates_for(self, max_pdu: int) -> list[tuple[bytes, bytes]]:
        """Per file: the request's PDUs, split around the Message ID's value."""
        with self.lock:
            if max_pdu not in self.templates:
                self.templates[max_pdu] = [self.encode(path, max_pdu) for path in self.files]
            return self.templates[max_pdu]

    @staticmethod
    def encode(path: str, max_pdu: int) -> tuple[bytes, bytes]:
        import dimse

        with open(path, "rb") as f:
            raw = f.read()
        if raw[128:132] != b"DICM" or raw[132:136] != b"\x02\x00\x00\x00":
            raise RuntimeError(f"{path}: no File Meta group length")
        offset = 144 + int.from_bytes(raw[140:144], "little")
        from pydicom import dcmread

        uid = str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        request = {
            "type": "C-STORE-RQ",
            "affected_sop_class_uid": CT_IMAGE,
            "message_id": 0x5A5A,
            "priority": "Low",
            "affected_sop_instance_uid": uid,
        }
        command = dimse.encode_message(request, has_dataset=True)
        pdus = b"".join(dimse.fragment(1, command, raw[offset:], max_pdu))
        marker = b"\x00\x00\x10\x01\x02\x00\x00\x00\x5a\x5a"  # (0000,0110) US 0x5A5A
        at = pdus.index(marker) + 8
        return pdus[:at], pdus[at + 2 :]

    def read_pdu(self) -> tuple[int, bytes]:
        """(type, the whole PDU)."""
        assert self.sock is not None
        buf = self.buf
        while len(buf) < 6:
            self.recv()
        n = 6 + int.from_bytes(buf[2:6], "big")
        while len(buf) < n:
            self.recv()
        pdu = bytes(buf[:n])
        del buf[:n]
        return pdu[0], pdu

    def recv(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the SCP closed the connection")
        self.buf += data

    def response_status(self) -> int:
        """Reads PDUs until a whole command set: its Status."""
        command = b""
        while True:
            kind, pdu = self.read_pdu()
            if kind != 4:
                raise RuntimeError(f"PDU type {kind} where a C-STORE-RSP was due")
            i = 6
            while i < len(pdu):
                length = int.from_bytes(pdu[i : i + 4], "big")
                flags = pdu[i + 5]
                command += pdu[i + 6 : i + 4 + length]
                i += 4 + length
                if flags & 3 == 3:  # command, last fragment
                    j = 0
                    while j + 8 <= len(command):
                        tag = command[j : j + 4]
                        size = int.from_bytes(command[j + 4 : j + 8], "little")
                        if tag == b"\x00\x00\x00\x09":
                            return int.from_bytes(command[j + 8 : j + 10], "little")
                        j += 8 + size
                    raise RuntimeError("a response without Status")

    def store(self, first: int, count: int, deadline: float) -> int:
        assert self.sock is not None
        sent = done = outstanding = 0
        mid = 0
        tpl = self.tpl
        while True:
            while outstanding < self.window and sent < count and time.monotonic() < deadline:
                head, tail = tpl[(first + sent) % len(tpl)]
                mid = mid % 65535 + 1
                parts = [head, mid.to_bytes(2, "little"), tail]
                n = self.sock.sendmsg(parts)
                if n < len(head) + 2 + len(tail):
                    self.sock.sendall(b"".join(parts)[n:])
                sent += 1
                outstanding += 1
            if not outstanding:
                return done
            st = self.response_status()
            if st != 0:
                raise RuntimeError(f"C-STORE failed: status {st:#06x}")
            done += 1
            outstanding -= 1

    def close(self) -> None:
        if self.sock is None:
            return
        try:
            self.sock.settimeout(30)
            self.sock.sendall(b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00")  # A-RELEASE-RQ
            kind, _ = self.read_pdu()
            if kind != 6:
                raise RuntimeError(f"PDU type {kind} where an A-RELEASE-RP was due")
        finally:
            self.sock.close()
            self.sock = None


class ApiStoreScu:
    """The same job through dimse's API: AE.associate, send_c_store_many (file paths)."""

    def __init__(self, ae: Any, port: int, called: str, files: list[str], window: int) -> None:
        self.ae = ae
        self.port = port
        self.called = called
        self.files = files
        self.proposed = window
        self.assoc: Any = None

    def open(self, timeout: float) -> None:
        from dimse.pdu_primitives import AsynchronousOperationsWindowNegotiation

        ext = [AsynchronousOperationsWindowNegotiation(self.proposed, 1)]
        assoc = self.ae.associate(
            HOST, self.port, ae_title=self.called, ext_neg=ext if self.proposed > 1 else None
        )
        if not assoc.is_established:
            raise RuntimeError(f"association failed: {assoc.error}")
        self.assoc = assoc

    def store(self, first: int, count: int, deadline: float) -> int:
        files = self.files
        items = (files[(first + j) % len(files)] for j in range(count))
        done = 0
        for _, st in self.assoc.send_c_store_many(
            itertools.takewhile(lambda _: time.monotonic() < deadline, items)
        ):
            if isinstance(st, Exception) or int(st.Status) != 0:
                raise RuntimeError(f"C-STORE failed: {st}")
            done += 1
        return done

    def close(self) -> None:
        if self.assoc is not None and self.assoc.is_established:
            self.assoc.release()


def scu_worker(config: str) -> None:
    """One SCU process of the concurrency scenario: `assocs` associations, one thread each,
    established at once; on `GO` (stdin) each sends `per_assoc` files (or until the time
    bound), then waits for `END` to release. Speaks JSON lines on stdout."""
    cfg = json.loads(config)
    raise_nofile()
    files: list[str] = cfg["files"]
    per: int = cfg["per_assoc"]
    n: int = cfg["assocs"]
    window: int = cfg["window"]
    ae: Any = None
    if cfg["scu"] == "dimse":
        from dimse import AE

        ae = AE("BENCH_SCU")
        ae.maximum_pdu_size = KIB16
        ae.acse_timeout = 120
        ae.dimse_timeout = 120
        ae.network_timeout = 300
        ae.add_requested_context(CT_IMAGE, [EXPLICIT_LE])
    else:
        RawStoreScu(0, "", files, 1).templates_for(KIB16)  # the usual case, before the clock
    go, end = threading.Event(), threading.Event()
    lock: ClassVar[threading.Lock] = threading.Lock()
    state: dict[str, Any] = {"ok": 0, "failed": 0, "errors": [], "stored": 0}
    ends: list[float] = []
    setup_done = threading.Semaphore(0)
    stores_done = threading.Semaphore(0)
    deadline = [0.0]

    def fail(e: BaseException) -> None:
        with lock:
            if len(state["errors"]) < 3:
                state["errors"].append(f"{type(e).__name__}: {e}")

    def work(i: int) -> None:
        scu: Any = (
            ApiStoreScu(ae, cfg["port"], cfg["called"], files, window)
            if ae is not None
            else RawStoreScu(cfg["port"], cfg["called"], files, window)
        )
        opened = False
        try:
            scu.open(cfg["setup_timeout"])
            opened = True
            with lock:
                state["ok"] += 1
        except Exception as e:
            fail(e)
            with lock:
                state["failed"] += 1
        finally:
            setup_done.release()
        go.wait()
        stored = 0
        try:
            if opened:
                stored = scu.store((i * per) % len(files), per, deadline[0])
        except Exception as e:
            fail(e)
        finally:
            with lock:
                state["stored"] += stored
                ends.append(time.monotonic())
            stores_done.release()
        end.wait()
        if opened:
            with contextlib.suppress(Exception):
                scu.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        if not setup_done.acquire(timeout=cfg["setup_timeout"]):
            break
    print("READY", json.dumps({k: state[k] for k in ("ok", "failed", "errors")}), flush=True)
    if sys.stdin.readline().strip() != "GO":
        os._exit(1)
    c0 = own_cpu()
    start = time.monotonic()
    deadline[0] = start + cfg["seconds"]
    go.set()
    for _ in range(n):
        if not stores_done.acquire(timeout=cfg["seconds"] + 120):
            break
    cpu = own_cpu() - c0
    result = {
        "stored": state["stored"],
        "start": start,
        "end": max(ends) if ends else time.monotonic(),
        "cpu": cpu,
        "errors": state["errors"],
    }
    print("DONE", json.dumps(result), flush=True)
    if sys.stdin.readline().strip() != "END":
        os._exit(1)
    end.set()
    for t in threads:
        t.join(30)
    sys.stdout.flush()
    os._exit(0)  # (daemon threads stuck in a release would hold a normal exit)


@dataclass
class ConcBounds:
    total: int  # images per run, spread over the K associations
    seconds: float
    workers: int  # SCU processes
    scu: str  # raw | dimse


def lines_of(proc: subprocess.Popen[str], into: queue.Queue[tuple[int, str]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        into.put((proc.pid, line))
    into.put((proc.pid, ""))


def concurrency_run(
    scp_cm: Callable[[], contextlib.AbstractContextManager[sf.Scp]],
    k: int,
    files: list[str],
    b: ConcBounds,
    window: int,
    tree: bool,
) -> Sample:
    """K associations at once into one SCP, from `b.workers` SCU processes: images/s from
    the first GO to the last image, SCU and SCP CPU over that window, the SCP's peak RSS
    and threads (a process tree: Pss and threads summed at the end of the stores)."""
    per = max(1, b.total // k)
    nw = min(k, b.workers)
    shares = [k // nw + (1 if i < k % nw else 0) for i in range(nw)]
    setup_timeout = 30 + 0.05 * k
    with scp_cm() as scp, ThreadPeak(scp.pid, 0.25 if tree else 0.1) as peak:
        procs: list[subprocess.Popen[str]] = []
        lines: queue.Queue[tuple[int, str]] = queue.Queue()
        try:
            for share in shares:
                cfg = {
                    "port": scp.port,
                    "called": scp.called,
                    "assocs": share,
                    "per_assoc": per,
                    "files": files,
                    "window": window,
                    "seconds": b.seconds,
                    "setup_timeout": setup_timeout,
                    "scu": b.scu,
                }
                proc = subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "--scu-worker", json.dumps(cfg)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                procs.append(proc)
                threading.Thread(target=lines_of, args=(proc, lines), daemon=True).start()

            def collect(word: str, timeout: float) -> list[dict[str, Any]]:
                got: dict[int, dict[str, Any]] = {}
                deadline = time.monotonic() + timeout
                while len(got) < len(procs):
                    try:
                        pid, line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                    except queue.Empty:
                        raise TimeoutError(f"SCU workers: no {word} after {timeout:g} s") from None
                    if not line:
                        raise RuntimeError(f"an SCU worker exited before {word}")
                    head, _, body = line.partition(" ")
                    if head == word:
                        got[pid] = json.loads(body)
                return list(got.values())

            ready = collect("READY", setup_timeout + 30)
            ok = sum(r["ok"] for r in ready)
            if ok < k:
                errors = [e for r in ready for e in r["errors"]][:2]
                raise RuntimeError(f"{ok} of {k} associations established: {errors}")
            cpu0 = tree_cpu(scp.pid) if tree else proc_cpu(scp.pid)
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("GO\n")
                proc.stdin.flush()
            done = collect("DONE", b.seconds + 150)
            snap = snapshot(scp.pid, tree)
            cpu1 = snap.cpu if tree else proc_cpu(scp.pid)
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("END\n")
                proc.stdin.flush()
            for proc in procs:
                proc.wait(60)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    stored = sum(d["stored"] for d in done)
    errors = [e for d in done for e in d["errors"]]
    if errors or stored == 0:
        raise RuntimeError(f"stored {stored}; errors: {errors[:2]}")
    took = max(d["end"] for d in done) - min(d["start"] for d in done)
    scu_cpu = sum(d["cpu"] for d in done)
    notes = []
    if stored < per * k:
        notes.append(f"time bound: {stored} of {per * k}")
    if tree:
        notes.append(f"{snap.processes} processes")
    threads = snap.threads if tree else max(peak.peak, snap.threads)
    return Sample(
        stored / took,
        scu_cpu / stored,
        (cpu1 - cpu0) / stored,
        snap.rss,
        threads,
        "; ".join(notes),
    )


# --- the data ---------------------------------------------------------------------------


@dataclass
class Data:
    ct: list[str]  # 0.5 MB CT files, distinct
    mf: list[str]  # 64 MiB multi-frame files, distinct
    small: list[str]  # 16 KiB CT files, distinct
    ct_size: int
    mf_size: int
    small_size: int


def make_data(tmp: str, ct: int, mf: int, frames: int, small: int) -> Data:
    """All the data, generated with pydicom (random pixels, Explicit VR Little Endian)."""
    from pydicom.uid import generate_uid

    def write(ds: Any, name: str, count: int) -> list[str]:
        paths = []
        for i in range(count):
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.InstanceNumber = i + 1
            path = os.path.join(tmp, f"{name}{i:05}.dcm")
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
        return paths

    ct_ds = sf.make_image(CT_IMAGE, 1)  # 512 x 512 x 16 bits
    ct_files = write(ct_ds, "ct", ct)
    mf_files = []
    for i in range(mf):  # distinct pixels too (a writing SCP then writes distinct files)
        mf_files += write(sf.make_image(MULTIFRAME, frames), f"mf{i}-", 1)
    small_ds = sf.make_image(CT_IMAGE, 1)
    small_ds.Rows, small_ds.Columns = 64, 128  # 16 KiB of pixel data
    small_ds.PixelData = os.urandom(64 * 128 * 2)
    small_files = write(small_ds, "small", small)

    def size(paths: list[str]) -> int:
        return os.path.getsize(paths[0]) if paths else 0

    return Data(ct_files, mf_files, small_files, size(ct_files), size(mf_files), size(small_files))


# --- the scenarios ----------------------------------------------------------------------


@dataclass
class Row:
    key: str
    label: str
    run: Callable[[], Sample]
    note: str = ""
    skip: str = ""  # why it is not run
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.samples) and not self.error

    def median(self, what: str = "rate") -> float | None:
        values = [getattr(s, what) for s in self.samples]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None


@dataclass
class Group:
    section: str
    key: str
    title: str
    unit: str
    rows: list[Row]
    # The dimse figure(s) compared, each a line of the summary: (what, the keys of the
    # dimse rows; the best of them is the headline, and named).
    views: list[tuple[str, list[str]]]
    dcmtk: str | None  # the key of the DCMTK row
    pynetdicom: list[str]  # the keys of the pynetdicom rows (the best is compared)
    size: int | None = None  # bytes per item: MB/s
    limit: str | None = None  # "throughput" | "pingpong"
    cpu_unit: str = "µs"
    note: str = ""

    @property
    def tag(self) -> str:
        """What tells this group from others of its section, for the targets table."""
        if self.section == "store":
            return self.title.rsplit(", ", 1)[-1]
        return ""

    def row(self, key: str | None) -> Row | None:
        return next((r for r in self.rows if r.key == key and r.ok), None)

    def best(self, keys: list[str]) -> Row | None:
        rows = [r for r in self.rows if r.key in keys and r.ok]
        return max(rows, key=lambda r: r.median() or 0.0) if rows else None


NODELAY = "TCP_NODELAY set on both sides (monkeypatched)"
TOOL = "DCMTK SCU time: t(N) - t(1) (process start-up and association subtracted)"


def pn_scu_run(nodelay: bool, fn: Callable[[], Sample]) -> Sample:
    """`fn` with pynetdicom's sockets patched for TCP_NODELAY (or not)."""
    if not nodelay:
        return fn()
    undo = patch_pynetdicom_nodelay()
    try:
        return fn()
    finally:
        undo()


def pn_kind(nodelay: bool) -> str:
    return "pynetdicom-nodelay" if nodelay else "pynetdicom"


def limit_groups(tcp: TcpLimit) -> list[Group]:
    return [
        Group(
            "limits",
            "limits-throughput",
            "Raw loopback TCP: one connection, 1 MiB writes",
            "MB/s",
            [Row("tcp", "tcp_limit (Rust, std::net)", tcp.throughput)],
            [("", ["tcp"])],
            None,
            [],
        ),
        Group(
            "limits",
            "limits-pingpong",
            "Raw loopback TCP: 64-byte ping-pong, TCP_NODELAY",
            "round trips/s",
            [Row("tcp", "tcp_limit (Rust, std::net)", tcp.pingpong)],
            [("", ["tcp"])],
            None,
            [],
        ),
    ]


def echo_groups(b: EchoBounds) -> list[Group]:
    def py_scp(
        kind: str, fn: Callable[[sf.Scp], Sample], nodelay: bool = False
    ) -> Callable[[], Sample]:
        def run() -> Sample:
            with python_scp(ScpConfig(kind)) as scp:
                return pn_scu_run(nodelay, lambda: fn(scp))

        return run

    def dcmtk(fn: Callable[[sf.Scp], Sample]) -> Callable[[], Sample]:
        def run() -> Sample:
            with dcmtk_scp() as scp:
                return fn(scp)

        return run

    dimse = em.DimseScu()

    def pn(nodelay: bool) -> em.PynetdicomScu:
        return em.PynetdicomScu(nodelay)

    echo = Group(
        "echo",
        "echo",
        "C-ECHO round trips on one association",
        "echoes/s",
        [
            Row("dimse", "dimse -> dimse", py_scp("dimse", lambda s: echo_loop(dimse, s, b))),
            Row(
                "pn",
                "pynetdicom -> pynetdicom, as shipped",
                py_scp("pynetdicom", lambda s: echo_loop(pn(False), s, b)),
            ),
            Row(
                "pn-nodelay",
                "pynetdicom -> pynetdicom, TCP_NODELAY",
                py_scp("pynetdicom-nodelay", lambda s: echo_loop(pn(True), s, b), True),
                NODELAY,
            ),
            Row(
                "dcmtk",
                "DCMTK echoscu -> DCMTK storescp",
                dcmtk(lambda s: dcmtk_echo(s, b)),
                f"storescp --ignore; {TOOL}",
            ),
        ],
        [("", ["dimse"])],
        "dcmtk",
        ["pn", "pn-nodelay"],
        limit="pingpong",
    )
    assoc = Group(
        "assoc",
        "assoc",
        "Associations: associate + one C-ECHO + release, one after the other",
        "associations/s",
        [
            Row("dimse", "dimse -> dimse", py_scp("dimse", lambda s: assoc_loop(dimse, s, b))),
            Row(
                "dimse-dcmtk",
                "dimse -> DCMTK storescp",
                dcmtk(lambda s: assoc_loop(dimse, s, b)),
                "the same SCU: the SCPs compared",
            ),
            Row(
                "pn",
                "pynetdicom -> pynetdicom, as shipped",
                py_scp("pynetdicom", lambda s: assoc_loop(pn(False), s, b)),
            ),
            Row(
                "pn-nodelay",
                "pynetdicom -> pynetdicom, TCP_NODELAY",
                py_scp("pynetdicom-nodelay", lambda s: assoc_loop(pn(True), s, b), True),
                NODELAY,
            ),
            Row(
                "dcmtk",
                "DCMTK echoscu -> DCMTK storescp",
                dcmtk(lambda s: dcmtk_assoc(s, b)),
                "one echoscu process per association: process start-up included",
            ),
        ],
        [("", ["dimse"])],
        "dimse-dcmtk",
        ["pn", "pn-nodelay"],
        note="DCMTK column: DCMTK's storescp with the dimse SCU (echoscu can only open one "
        "association per process, whose start-up would dominate)",
    )
    return [echo, assoc]


def store_groups(data: Data, work: str, seconds: float) -> list[Group]:
    groups = []
    for size_key, files, size, what in (
        ("ct", data.ct, data.ct_size, f"{len(data.ct)} x 0.5 MB CT"),
        (
            "mf",
            data.mf,
            data.mf_size,
            f"{len(data.mf)} x {data.mf_size / MIB:.0f} MiB multi-frame",
        ),
    ):
        for write in (False, True):
            for pdu in (KIB16, MIB1):
                groups.append(
                    store_group(size_key, files, size, what, write, pdu, data, work, seconds)
                )
    return groups


def store_group(
    size_key: str,
    files: list[str],
    size: int,
    what: str,
    write: bool,
    pdu: int,
    data: Data,
    work: str,
    seconds: float,
) -> Group:
    warm = data.ct[0]
    mode = "write" if write else "discard"
    pdu_name = "16 KiB" if pdu == KIB16 else "1 MiB"

    def py(
        kind: str, store: str, scu: Callable[[], Any], nodelay: bool = False
    ) -> Callable[[], Sample]:
        def run() -> Sample:
            with out_dir(work, write) as out:
                cfg = ScpConfig(kind, store, out, pdu)
                with python_scp(cfg) as scp:
                    s = pn_scu_run(nodelay, lambda: store_run(scu(), scp, files, warm, seconds))
                check_written(out, 1 + int(s.rate > 0))
                return s

        return run

    def dcmtk() -> Sample:
        with out_dir(work, write) as out, dcmtk_scp(mode, out, pdu) as scp:
            s = dcmtk_store(scp, files, pdu, seconds)
            check_written(out, 1)
            return s

    dimse_w = lambda: DimseStoreScu(pdu, True)  # noqa: E731
    dimse_1 = lambda: DimseStoreScu(pdu, False)  # noqa: E731
    rows: list[Row] = []
    if write:
        rows += [
            Row(
                "dimse",
                "dimse -> dimse",
                py("dimse", "write", dimse_w),
                "FileStorage; send_c_store_many",
            ),
            Row(
                "dimse-sync",
                "dimse (one at a time) -> dimse",
                py("dimse", "write", dimse_1),
                "FileStorage; send_c_store, one at a time",
            ),
        ]
        pn_note = "handler writing event.encoded_dataset()"
        dcmtk_note = "storescp -od DIR"
    else:
        rows += [
            Row(
                "dimse-ignore",
                "dimse -> dimse (native discard)",
                py("dimse", "discard", dimse_w),
                "FileStorage(discard=True), as `dimse storescp --ignore`; send_c_store_many",
            ),
            Row(
                "dimse-ignore-sync",
                "dimse (one at a time) -> dimse (native discard)",
                py("dimse", "discard", dimse_1),
                "FileStorage(discard=True); send_c_store, one at a time",
            ),
            Row(
                "dimse-handler",
                "dimse -> dimse (Python handler)",
                py("dimse", "handler", dimse_w),
                "EVT_C_STORE handler returning 0x0000; send_c_store_many",
            ),
            Row(
                "dimse-handler-sync",
                "dimse (one at a time) -> dimse (Python handler)",
                py("dimse", "handler", dimse_1),
                "EVT_C_STORE handler returning 0x0000; send_c_store, one at a time",
            ),
        ]
        pn_note = "handler returning 0x0000"
        dcmtk_note = "storescp --ignore"
    rows += [
        Row(
            "pn",
            "pynetdicom -> pynetdicom, as shipped",
            py("pynetdicom", mode, lambda: PnStoreScu(pdu, False)),
            f"{pn_note}; SCU sends file paths",
        ),
        Row(
            "pn-nodelay",
            "pynetdicom -> pynetdicom, TCP_NODELAY",
            py("pynetdicom-nodelay", mode, lambda: PnStoreScu(pdu, True), True),
            f"{pn_note}; {NODELAY}",
        ),
        Row("dcmtk", "DCMTK storescu -> DCMTK storescp", dcmtk, f"{dcmtk_note}; {TOOL}"),
    ]
    scp_what = "SCP writing files" if write else "SCP discarding"
    return Group(
        "store",
        f"store-{size_key}-{mode}-{'16k' if pdu == KIB16 else '1m'}",
        f"C-STORE {what}, one association, {scp_what}, max PDU {pdu_name}",
        "images/s",
        rows,
        [("", ["dimse", "dimse-sync"])]
        if write
        else [
            ("dimse native discard", ["dimse-ignore", "dimse-ignore-sync"]),
            ("dimse Python handler", ["dimse-handler", "dimse-handler-sync"]),
        ],
        "dcmtk",
        ["pn", "pn-nodelay"],
        size=size,
        limit="throughput",
        cpu_unit="ms",
        note="DCMTK at -pdu 131072 (its maximum)" if pdu > DCMTK_MAX_PDU else "",
    )


def find_groups(matches: int, seconds: float) -> list[Group]:
    def py(kind: str, fn: Callable[[sf.Scp], sf.Sample]) -> Callable[[], Sample]:
        def run() -> Sample:
            with sf.python_scp(kind) as scp:
                s = fn(scp)
                snap = snapshot(scp.pid)
            return Sample(s.rate, s.scu_cpu, s.scp_cpu, snap.rss, snap.threads, s.note)

        return run

    def tool(scp: sf.Scp) -> sf.Sample:
        sf.check_findscu(scp)
        return sf.tool_rate(sf.findscu(scp), matches, scp, seconds, quiet=True)

    dimse = sf.DimseScu()
    pn = sf.PynetdicomScu(nodelay=False)
    return [
        Group(
            "find",
            "find",
            f"C-FIND returning {matches:,} matches (one request)",
            "matches/s",
            [
                Row(
                    "dimse",
                    "dimse -> dimse",
                    py("dimse", lambda s: sf.find_run(dimse, s, matches, seconds)),
                ),
                Row(
                    "pn",
                    "pynetdicom -> pynetdicom, as shipped",
                    py("pynetdicom", lambda s: sf.find_run(pn, s, matches, seconds)),
                ),
                Row(
                    "pn-nodelay",
                    "pynetdicom -> pynetdicom, TCP_NODELAY",
                    py(
                        "pynetdicom-nodelay",
                        lambda s: sf.pn_nodelay(lambda scu: sf.find_run(scu, s, matches, seconds)),
                    ),
                    NODELAY,
                ),
                Row("findscu-dimse", "DCMTK findscu -> dimse", py("dimse", tool), TOOL),
                Row(
                    "findscu-pn",
                    "DCMTK findscu -> pynetdicom",
                    py("pynetdicom", tool),
                    f"pynetdicom as shipped; {TOOL}",
                ),
            ],
            [("", ["dimse"])],
            None,
            ["pn", "pn-nodelay"],
            note="both SCPs: a Python generator yielding the same prebuilt identifier (11 "
            "elements); no DCMTK C-FIND SCP answers from memory (wlmscpfs reads worklist files)",
        )
    ]


PN_SKIP = (
    "skipped above K = {k} (--pynetdicom-max-k; in trial runs pynetdicom's SCP did not "
    "establish 256 associations within 70 s, and at K = 1000 closed connections)"
)


def concurrency_groups(data: Data, b: ConcBounds, ks: Iterable[int], pn_max_k: int) -> list[Group]:
    groups = []
    for k in ks:
        max_assoc = k + 16

        def run(
            scp_cm: Callable[[], contextlib.AbstractContextManager[sf.Scp]],
            window: int,
            tree: bool = False,
            k: int = k,
        ) -> Callable[[], Sample]:
            return lambda: concurrency_run(scp_cm, k, data.small, b, window, tree)

        def dimse_scp(m: int = max_assoc) -> contextlib.AbstractContextManager[sf.Scp]:
            return python_scp(ScpConfig("dimse", "discard", pdu=KIB16, max_assoc=m))

        def dimse_scp1(m: int = max_assoc) -> contextlib.AbstractContextManager[sf.Scp]:
            return python_scp(ScpConfig("dimse", "discard", pdu=KIB16, max_assoc=m, window=1))

        def pn_scp(m: int = max_assoc) -> contextlib.AbstractContextManager[sf.Scp]:
            return python_scp(ScpConfig("pynetdicom", "handler", pdu=KIB16, max_assoc=m))

        scu = "load generator" if b.scu == "raw" else "dimse SCU"
        per = max(1, b.total // k)
        nw = min(k, b.workers)
        how = f"{nw} SCU process{'es' if nw > 1 else ''}, {per} images per association"
        rows = [
            Row(
                "dimse",
                f"{scu} x K -> dimse",
                run(dimse_scp, WINDOW),
                f"native discard; window 16 granted; {how}",
            ),
            Row(
                "dimse-w1",
                f"{scu} x K -> dimse, no window",
                run(dimse_scp1, WINDOW),
                f"native discard; window 1 granted: one C-STORE at a time; {how}",
            ),
            Row(
                "dcmtk",
                f"{scu} x K -> DCMTK storescp --fork",
                run(lambda: dcmtk_scp("discard", fork=True), WINDOW, True),
                f"storescp --fork --ignore: a process per association; RSS: the sum of their "
                f"Pss; {how}",
            ),
            Row(
                "pn",
                f"{scu} x K -> pynetdicom",
                run(pn_scp, WINDOW),
                f"handler returning 0x0000, as shipped; {how}",
                skip=PN_SKIP.format(k=pn_max_k) if k > pn_max_k else "",
            ),
        ]
        groups.append(
            Group(
                "concurrency",
                f"concurrency-{k}",
                f"K = {k} parallel associations storing 16 KiB images into one SCP",
                "images/s",
                rows,
                [("", ["dimse"])],
                "dcmtk",
                ["pn"],
                size=data.small_size,
                limit="throughput",
            )
        )
    return groups


# --- measuring --------------------------------------------------------------------------


def measure(groups: list[Group], runs: int) -> None:
    """Rounds: each round runs every row once; a row that fails is not run again."""
    for i in range(runs):
        print(f"round {i + 1} of {runs}", file=sys.stderr, flush=True)
        for g in groups:
            for row in g.rows:
                if row.error or row.skip:
                    continue
                t0 = time.monotonic()
                try:
                    row.samples.append(row.run())
                except Exception as e:  # report it in the table, go on with the others
                    traceback.print_exc()
                    row.error = f"{type(e).__name__}: {e}"
                took = time.monotonic() - t0
                got = row.error or f"{row.samples[-1].rate:,.1f} {g.unit}"
                print(
                    f"  [{g.key}] {row.label}: {got} ({took:.1f} s)", file=sys.stderr, flush=True
                )


# --- the report -------------------------------------------------------------------------


def fmt(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def fmt_ratio(x: float | None) -> str:
    return f"{x:,.2f}x" if x is not None else "n/a"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class Limits:
    def __init__(self, groups: list[Group]) -> None:
        by = {g.key: g for g in groups}
        self.throughput = self._median(by.get("limits-throughput"))
        self.pingpong = self._median(by.get("limits-pingpong"))

    @staticmethod
    def _median(g: Group | None) -> float | None:
        row = g.row("tcp") if g else None
        return row.median() if row else None

    def fraction(self, g: Group, rate: float | None) -> float | None:
        if rate is None:
            return None
        if g.limit == "pingpong" and self.pingpong:
            return rate / self.pingpong
        if g.limit == "throughput" and self.throughput and g.size:
            return rate * g.size / MB / self.throughput
        return None


def views(groups: list[Group]) -> Iterator[tuple[Group, str, list[str]]]:
    """(group, what, the keys of its dimse rows) for every line of the summary."""
    for g in groups:
        if g.section != "limits":
            for what, keys in g.views:
                yield g, what, keys


def summary(groups: list[Group], limits: Limits) -> list[str]:
    out = [
        "| scenario | unit | dimse | DCMTK | pynetdicom | pynetdicom, TCP_NODELAY "
        "| dimse / DCMTK | dimse / pynetdicom (best) | dimse, of the TCP limit | dimse row |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for g, what, keys in views(groups):
        d = g.best(keys)
        dc = g.row(g.dcmtk)
        pn = g.row("pn")
        pn_nd = g.row("pn-nodelay")
        pn_best = g.best(g.pynetdicom)
        dm = d.median() if d else None
        frac = limits.fraction(g, dm)
        title = f"{g.title} ({what})" if what else g.title

        def val(r: Row | None, key: str | None, g: Group = g) -> str:
            if r:
                mbs = f" ({fmt(r.median() * g.size / MB)} MB/s)" if g.size and r.median() else ""
                return f"{fmt(r.median())}{mbs}"
            if key is None:
                return "-"
            failed = next((x for x in g.rows if x.key == key), None)
            if failed and failed.skip:
                return "skipped"
            return "failed" if failed else "-"

        out.append(
            f"| {title} | {g.unit} | {val(d, 'x')} | {val(dc, g.dcmtk)} "
            f"| {val(pn, 'pn' if 'pn' in g.pynetdicom else None)} "
            f"| {val(pn_nd, 'pn-nodelay' if 'pn-nodelay' in g.pynetdicom else None)} "
            f"| {fmt_ratio(ratio(dm, dc.median() if dc else None))} "
            f"| {fmt_ratio(ratio(dm, pn_best.median() if pn_best else None))} "
            f"| {f'{frac:.0%}' if frac is not None else ''} | {d.label if d else ''} |"
        )
    return out


def merge_notes(notes: list[str]) -> list[str]:
    """The runs' notes, each piece once; pieces that differ only in their first number
    are merged: "time bound: 173 of 1000" and "time bound: 192 of 1000" give "time
    bound: 173 / 192 of 1000"."""
    merged: dict[tuple[str, str], list[str]] = {}
    for note in notes:
        for piece in filter(None, (p.strip() for p in note.split(";"))):
            m = re.match(r"^(.*?)(\d[\d,.]*)(.*)$", piece)
            key, number = ((m.group(1), m.group(3)), m.group(2)) if m else ((piece, ""), "")
            numbers = merged.setdefault(key, [])
            if number and number not in numbers:
                numbers.append(number)
    return [f"{a}{' / '.join(numbers)}{b}" for (a, b), numbers in merged.items()]


def details(g: Group, limits: Limits) -> list[str]:
    base = g.best(g.views[0][1])
    scale = 1e3 if g.cpu_unit == "ms" else 1e6
    mbs = "| MB/s " if g.size else ""
    out = [f"#### {g.title}", ""]
    if g.note:
        out += [g.note, ""]
    out += [
        f"| SCU -> SCP | {g.unit} (median) {mbs}| runs | best dimse / this "
        f"| CPU {g.cpu_unit}/item: SCU + SCP | SCP peak RSS MiB | SCP threads | notes |",
        f"|---|---:|{'---:|' if g.size else ''}---:|---:|---:|---:|---:|---|",
    ]
    for r in g.rows:
        if not r.ok:
            why = r.skip or (f"failed: {r.error}" if r.error else "not run")
            state = "skipped" if r.skip else "failed"
            blank = " |" if g.size else ""
            out.append(f"| {r.label} | {state} |{blank} | | | | | {cell(why)} |")
            continue
        m = r.median()
        runs = " / ".join(fmt(s.rate) for s in r.samples)
        ratio_ = (
            fmt_ratio(ratio(base.median() if base else None, m)) if g.section != "limits" else ""
        )
        scu, scp = r.median("scu_cpu"), r.median("scp_cpu")
        cpu = (
            f"{fmt(scu * scale)} + {fmt(scp * scale)}"
            if scu is not None and scp is not None
            else ""
        )
        threads = r.median("threads")
        notes = [r.note] if r.note else []
        notes += merge_notes([s.note for s in r.samples])
        mb = f"| {fmt(m * g.size / MB)} " if g.size and m else ""
        out.append(
            f"| {r.label} | {fmt(m)} {mb}| {runs} | {ratio_} | {cpu} | {fmt(r.median('rss'))} "
            f"| {'' if threads is None else f'{threads:.0f}'} | {cell('; '.join(notes))} |"
        )
    return [*out, ""]


@dataclass
class Target:
    what: str
    aim: float
    value: float | None
    how: str
    lower: bool = False  # the aim is an upper bound

    @property
    def met(self) -> str:
        if self.value is None:
            return "not measured"
        ok = self.value < self.aim if self.lower else self.value >= self.aim
        return "met" if ok else "not met"


def targets(groups: list[Group], limits: Limits) -> list[Target]:
    by = {g.key: g for g in groups}

    def best(prefix: str, keys: list[str]) -> tuple[float | None, str]:
        cands = []
        for g in groups:
            if g.key.startswith(prefix):
                r = g.best(keys)
                if r and r.median():
                    label = f"{r.label}, {g.tag}" if g.tag else r.label
                    cands.append((r.median() or 0.0, label, g))
        if not cands:
            return None, "n/a"
        v, label, g = max(cands, key=lambda c: c[0])
        shown = f"{fmt(v)} {g.unit}" + (f" ({fmt(v * g.size / MB)} MB/s)" if g.size else "")
        return v, f"{label}: {shown}"

    def vs(prefix: str, ours: list[str], theirs: list[str]) -> tuple[float | None, str]:
        a, how_a = best(prefix, ours)
        b, how_b = best(prefix, theirs)
        return ratio(a, b), f"{how_a} / {how_b}"

    out: list[Target] = []
    echo = by.get("echo")
    r, how = vs("echo", ["dimse"], ["dcmtk"])
    out.append(Target("C-ECHO/s on one association vs DCMTK", 2, r, how))
    r, how = vs("echo", ["dimse"], ["pn", "pn-nodelay"])
    out.append(Target("C-ECHO/s on one association vs pynetdicom", 50, r, how))
    d = echo.row("dimse") if echo else None
    out.append(
        Target(
            "C-ECHO/s on one association, of raw TCP ping-pong",
            0.5,
            limits.fraction(echo, d.median()) if echo and d else None,
            f"{fmt(d.median() if d else None)} / {fmt(limits.pingpong)} round trips/s",
        )
    )
    mf_write = ["dimse", "dimse-sync"]
    r, how = vs("store-mf-write", mf_write, ["dcmtk"])
    out.append(Target("C-STORE MB/s, 64 MiB objects, file to file, vs DCMTK", 1.5, r, how))
    r, how = vs("store-mf-write", mf_write, ["pn", "pn-nodelay"])
    out.append(Target("C-STORE MB/s, 64 MiB objects, file to file, vs pynetdicom", 10, r, how))
    v, how = best("store-mf-write", mf_write)
    mf = next((g for g in groups if g.key.startswith("store-mf-write")), None)
    out.append(
        Target(
            "C-STORE MB/s, 64 MiB objects, file to file, of raw loopback TCP",
            0.5,
            limits.fraction(mf, v) if mf else None,
            f"{how} / {fmt(limits.throughput)} MB/s",
        )
    )
    r, how = vs("store-ct-discard", ["dimse-handler", "dimse-handler-sync"], ["pn", "pn-nodelay"])
    out.append(
        Target(
            "C-STORE images/s, 0.5 MB, Python handler returning success, vs pynetdicom", 10, r, how
        )
    )
    r, how = vs("assoc", ["dimse"], ["dimse-dcmtk"])
    out.append(Target("associations/s vs DCMTK storescp (same SCU)", 1, r, how))
    for k in (64, 256):
        r, how = vs(f"concurrency-{k}", ["dimse"], ["dcmtk"])
        out.append(
            Target(f"K = {k} parallel associations, images/s vs storescp --fork", 2, r, how)
        )
    c1000 = by.get("concurrency-1000")
    d = c1000.row("dimse") if c1000 else None
    out.append(
        Target(
            "1000 concurrent associations: dimse SCP peak RSS, MiB (< 300)",
            300,
            d.median("rss") if d else None,
            "VmHWM",
            lower=True,
        )
    )
    out.append(
        Target(
            "1000 concurrent associations: dimse SCP threads (< 50)",
            50,
            d.median("threads") if d else None,
            "peak of /proc Threads",
            lower=True,
        )
    )
    return out


def targets_table(ts: list[Target]) -> list[str]:
    out = ["| target | aim | measured | met? | from |", "|---|---:|---:|---|---|"]
    for t in ts:
        if t.lower:
            aim, value = f"< {t.aim:g}", fmt(t.value)
        elif t.aim < 1:
            aim, value = f">= {t.aim:.0%}", f"{t.value:.0%}" if t.value is not None else "n/a"
        else:
            aim, value = f">= {t.aim:g}x", fmt_ratio(t.value)
        out.append(f"| {t.what} | {aim} | {value} | {t.met} | {cell(t.how)} |")
    return out


def chart(groups: list[Group], path: str, subtitle: str) -> str | None:
    """A horizontal bar chart of dimse / peer per scenario, log scale; None or why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError as e:
        return f"no chart: {e} (pip install matplotlib)"
    labels: list[str] = []
    sections: list[str] = []
    vs_dcmtk: list[float] = []
    vs_pn: list[float] = []
    for g, what, keys in views(groups):
        d = g.best(keys)
        dc, pn = g.row(g.dcmtk), g.best(g.pynetdicom)
        dm = d.median() if d else None
        labels.append(short_title(g) + (f" ({what})" if what else ""))
        sections.append(g.section)
        vs_dcmtk.append(ratio(dm, dc.median() if dc else None) or 0.0)
        vs_pn.append(ratio(dm, pn.median() if pn else None) or 0.0)
    if not labels:
        return "no chart: no scenario measured"
    n = len(labels)
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.42 * n))
    ys = list(range(n))
    h = 0.38
    bars_d = ax.barh([y - h / 2 for y in ys], vs_dcmtk, h, label="dimse / DCMTK", color="#4c72b0")
    bars_p = ax.barh(
        [y + h / 2 for y in ys], vs_pn, h, label="dimse / pynetdicom (best)", color="#dd8452"
    )
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    values = [v for v in vs_dcmtk + vs_pn if v > 0]
    ax.set_xlim(min([0.1, *values]) / 1.5, max([10.0, *values]) * 3)
    for bars in (bars_d, bars_p):
        for bar in bars:
            w = bar.get_width()
            if w > 0:
                text = f"{w:.0f}x" if w >= 10 else f"{w:.2f}x" if w < 1 else f"{w:.1f}x"
                y = bar.get_y() + bar.get_height() / 2
                ax.text(w * 1.05, y, text, va="center", fontsize=7)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    last = None
    for y, section in zip(ys, sections, strict=True):  # a line between sections
        if last is not None and section != last:
            ax.axhline(y - 0.5, color="grey", linewidth=0.6, linestyle=":")
        last = section
    ax.set_xlabel("ratio, log scale (right of the line: dimse faster)")
    ax.set_title(f"dimse / peer, medians\n{subtitle}", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def short_title(g: Group) -> str:
    t = re.sub(r"^C-STORE \d+ x ", "C-STORE ", g.title)
    for a, b in (
        ("C-ECHO round trips on one association", "C-ECHO/s, 1 association"),
        (
            "Associations: associate + one C-ECHO + release, one after the other",
            "associations/s (DCMTK: storescp, same SCU)",
        ),
        (", one association, ", ", "),
        ("SCP discarding", "discard"),
        ("SCP writing files", "write"),
        ("max PDU ", "PDU "),
        (
            " parallel associations storing 16 KiB images into one SCP",
            " x 16 KiB stores (DCMTK: storescp --fork)",
        ),
        ("C-FIND returning ", "C-FIND "),
        (" MiB multi-frame", " MiB"),
        (" (one request)", ""),
    ):
        t = t.replace(a, b)
    return t


# --- main -------------------------------------------------------------------------------


def git_head() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode == 0:
            return done.stdout.strip()
    return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="everything tiny, 1 run: a smoke test"
    )
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3; --quick 1)")
    parser.add_argument(
        "--only", help=f"sections or group keys, comma-separated: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--out",
        help="folder for RESULTS.md and results.png (default: benches/, "
        "or a temporary folder with --quick or --only)",
    )
    parser.add_argument(
        "--seconds", type=float, help="time bound per store/find/concurrency run (default 5)"
    )
    parser.add_argument("--images", type=int, help="0.5 MB CT images per run (default 1000)")
    parser.add_argument("--big", type=int, help="64 MiB multi-frames per run (default 5)")
    parser.add_argument("--matches", type=int, help="C-FIND matches (default 10000)")
    parser.add_argument(
        "--total",
        type=int,
        help="concurrency: images per run over the K associations (default 20000)",
    )
    parser.add_argument(
        "--ks",
        help=f"concurrency: the K values (default {','.join(map(str, KS))}; --quick: "
        f"{','.join(map(str, QUICK_KS))})",
    )
    parser.add_argument(
        "--pynetdicom-max-k",
        type=int,
        help="concurrency: largest K for the pynetdicom SCP (default 100; --quick: 10)",
    )
    parser.add_argument(
        "--conc-scu",
        choices=("raw", "dimse"),
        default="raw",
        help="concurrency: the SCU, a minimal load generator (raw, default) or dimse's API",
    )
    parser.add_argument(
        "--scu-processes", type=int, default=4, help="concurrency: SCU processes (default 4)"
    )
    parser.add_argument(
        "--rerender",
        metavar="DIR",
        help="only write DIR/RESULTS.md and DIR/results.png again from DIR/results.json",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--scu-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.scu_worker:
        scu_worker(args.scu_worker)
        return 0
    if args.rerender:
        return rerender(args.rerender)

    import pydicom
    import pynetdicom

    import dimse

    raise_nofile()
    quick = args.quick
    runs = max(1, args.runs or (1 if quick else 3))
    seconds = args.seconds or (2.0 if quick else 5.0)
    only = [x.strip() for x in args.only.split(",")] if args.only else []
    out = args.out or (tempfile.mkdtemp(prefix="dimse-suite-") if quick or only else BENCHES)
    os.makedirs(out, exist_ok=True)
    ks = [int(x) for x in args.ks.split(",")] if args.ks else list(QUICK_KS if quick else KS)
    echo_b = EchoBounds(
        echoes=2000 if quick else 20000, assocs=30 if quick else 300, seconds=0.5 if quick else 3.0
    )
    n_ct = max(2, args.images or (20 if quick else 1000))
    n_mf = max(2, args.big or (2 if quick else 5))
    frames = 32 if quick else sf.BIG_FRAMES
    matches = max(2, args.matches or (500 if quick else 10_000))
    conc = ConcBounds(
        total=args.total or (400 if quick else 20000),
        seconds=seconds,
        workers=args.scu_processes,
        scu=args.conc_scu,
    )

    def wanted(section: str) -> bool:
        return not only or any(section.startswith(o) or o.startswith(section) for o in only)

    started = datetime.datetime.now(datetime.timezone.utc)
    command = shlex.join(["python", "benches/suite.py", *sys.argv[1:]])
    nproc = len(os.sched_getaffinity(0))
    head: list[str] = [
        "# dimse benchmark suite: dimse vs pynetdicom vs DCMTK on loopback",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- command: `{command}`",
        f"- machine: nproc {nproc} ({os.cpu_count()} CPUs), {cpu_model()}, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / (1 << 30):.0f} GiB; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- dimse {dimse.__version__} (repo HEAD {git_head()}), "
        f"pynetdicom {pynetdicom.__version__}, "
        f"pydicom {pydicom.__version__}, DCMTK {dcmtk_version()}",
        f"- {runs} run(s) per scenario, in rounds, median shown; per run: "
        f"{echo_b.echoes} echoes or "
        f"{echo_b.assocs} associations or {echo_b.seconds:g} s; {n_ct} x 0.5 MB CT, {n_mf} x "
        f"{frames * 512 * 512 * 2 / MIB:.0f} MiB multi-frame, {matches:,} C-FIND matches, "
        f"{conc.total} x 16 KiB images over K associations, each run at most {seconds:g} s "
        "(pynetdicom hits it: its runs send fewer)",
        "- every Python SCP in its own subprocess; DCMTK by absolute path with TCP_NODELAY=1; "
        "pynetdicom as shipped and with TCP_NODELAY monkeypatched on both sides; MB = 10^6 bytes",
        f"- load average at start: {load()}",
    ]
    print("\n".join(head), flush=True)
    busy0, own0 = cpu_seconds()
    wall0 = time.monotonic()

    work = tempfile.mkdtemp(prefix="dimse-suite-data-")
    groups: list[Group] = []
    try:
        if wanted("limits"):
            print("building tcp_limit...", file=sys.stderr, flush=True)
            why = build_tcp_limit()
            tcp = TcpLimit(0.5 if quick else 2.0)
            lg = limit_groups(tcp)
            if why:
                for g in lg:
                    g.rows[0].error = why
            groups += lg
        if wanted("echo") or wanted("assoc"):
            groups += [g for g in echo_groups(echo_b) if wanted(g.key)]
        need_store = wanted("store")
        need_conc = wanted("concurrency")
        if need_store or need_conc:
            print("generating the data...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            data = make_data(
                work,
                n_ct if need_store else 1,
                n_mf if need_store else 0,
                frames,
                64 if need_conc else 0,
            )
            print(f"  {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
            if need_store:
                groups += [
                    g
                    for g in store_groups(data, work, seconds)
                    if not only or any(g.key.startswith(o) or o == "store" for o in only)
                ]
        if wanted("find"):
            groups += find_groups(matches, seconds)
        if need_conc:
            pn_max_k = args.pynetdicom_max_k or (10 if quick else 100)
            groups += concurrency_groups(data, conc, ks, pn_max_k)
        measure(groups, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    busy1, own1 = cpu_seconds()
    wall = time.monotonic() - wall0
    others = max(0.0, (busy1 - busy0) - (own1 - own0)) / wall
    state = {
        "head": head,
        "tail": [
            f"- load average at end: {load()} (this suite's own processes included); CPU used "
            f"by other processes during the run: {others:.2f} CPUs on average (of {nproc})",
            f"- the whole run took {wall / 60:.1f} min",
        ],
        "subtitle": f"{started:%Y-%m-%d}, nproc {nproc}, {cpu_model()}; `{command}`",
        "groups": [dump_group(g) for g in groups],
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(state, f, indent=1)
    write_report(state, groups, out, print_it=True)
    failed = [g.key for g in groups for r in g.rows if r.error]
    return 1 if failed else 0


NOTES = [
    "## Notes",
    "",
    "- Loopback on one machine: SCU and SCP share its CPUs, so any other load moves the "
    "figures (see the load lines above); compare the ratios of one run, not absolute "
    "figures across machines.",
    "- C-STORE: every SCU sends files (dimse: file paths, File Meta read in Rust; "
    "pynetdicom: file paths, which it decodes with dcmread and encodes again; DCMTK: "
    "storescu with the files), one association per run after one warm-up C-STORE. The dimse "
    "SCU runs twice: send_c_store_many with an asynchronous operations window of 16 proposed "
    "(granted by the dimse SCP) and send_c_store one at a time; the summary takes the better. "
    "pynetdicom and DCMTK do not grant the window. DCMTK's -pdu goes up to 131072: its 1 MiB "
    "rows run at 128 KiB. The DCMTK SCU is timed as a process: t(N) - t(1).",
    "- Concurrency: the SCU is the same for every SCP, a minimal load generator in this "
    "script (pre-encoded PDUs on plain sockets, one thread per association, 4 processes; "
    "only the Message ID changes per request), so that the SCU costs little CPU next to the "
    "SCP. All K associations are established before the clock starts and released after it "
    "stops; the SCPs discard (dimse native discard, storescp --fork --ignore, pynetdicom "
    "handler returning success). It proposes a window of 16: the dimse SCP grants it (the "
    "'no window' row grants 1), the others answer one at a time. `--conc-scu dimse` drives "
    "the same scenario with dimse's API instead (about 5x the SCU CPU per image).",
    "- pynetdicom's SCP is run up to K = 100 (--pynetdicom-max-k): in trial runs it did not "
    "establish 256 concurrent associations within 70 s, and at 1000 closed connections.",
    "- C-FIND: no DCMTK SCP: wlmscpfs answers worklist queries from files only.",
    "",
]


def write_report(
    state: dict[str, Any], groups: list[Group], out: str, print_it: bool = False
) -> None:
    """RESULTS.md and results.png in `out`, from the measured groups."""
    limits = Limits(groups)
    report = [*state["head"], *state["tail"]]
    report += [
        "",
        "## Summary: medians, and dimse / each peer",
        "",
        "Ratios above 1: dimse faster. The dimse figure is the better of its SCU's two ways "
        "where there are two (window, one at a time: the last column names the row); "
        "pynetdicom (best): the better of as shipped and TCP_NODELAY. Of the TCP limit: "
        "dimse's MB/s over raw loopback TCP throughput, or its echoes/s over raw 64-byte "
        "ping-pong round trips/s, both measured in the same rounds.",
        "",
    ]
    if limits.throughput or limits.pingpong:
        report += [
            f"Raw loopback TCP (tcp_limit): {fmt(limits.throughput)} MB/s, "
            f"{fmt(limits.pingpong)} ping-pong round trips/s.",
            "",
        ]
    png = os.path.join(out, "results.png")
    why = chart(groups, png, state["subtitle"])
    report += ["![dimse / peer ratios](results.png)" if not why else f"Chart: {why}", ""]
    report += summary(groups, limits)
    report += ["", "## Targets (reported, not asserted)", ""]
    report += targets_table(targets(groups, limits))
    report += ["", *NOTES, "## Details", ""]
    report += [
        "CPU: user + system time per item of the SCU (this process, the DCMTK tool, or the "
        "load generator's processes) and of the SCP process (for storescp --fork: the parent "
        "and its children). SCP peak RSS: VmHWM of the SCP process; for storescp --fork the "
        "sum of Pss over its processes at the end of the stores. Threads: the SCP's at the end "
        "of the measured window (concurrency: the peak seen, sampled every 0.1 s), for --fork "
        "summed over its processes.",
        "",
    ]
    for section in SECTIONS:
        sg = [g for g in groups if g.section == section]
        if sg:
            report += [f"### {section}", ""]
            for g in sg:
                report += details(g, limits)
    text = "\n".join(report) + "\n"
    if print_it:
        print("\n".join(report[len(state["head"]) :]))
    path = os.path.join(out, "RESULTS.md")
    with open(path, "w") as f:
        f.write(text)
    print(f"written: {path}" + ("" if why else f", {png}"), file=sys.stderr)


def dump_group(g: Group) -> dict[str, Any]:
    d = {k: v for k, v in g.__dict__.items() if k != "rows"}
    d["rows"] = [
        {
            "key": r.key,
            "label": r.label,
            "note": r.note,
            "skip": r.skip,
            "error": r.error,
            "samples": [s.__dict__ for s in r.samples],
        }
        for r in g.rows
    ]
    return d


def load_group(d: dict[str, Any]) -> Group:
    def no_run() -> Sample:
        raise RuntimeError("not measured here")

    rows = [
        Row(
            r["key"],
            r["label"],
            no_run,
            r["note"],
            r["skip"],
            [Sample(**s) for s in r["samples"]],
            r["error"],
        )
        for r in d["rows"]
    ]
    fields = {k: v for k, v in d.items() if k != "rows"}
    fields["views"] = [(what, keys) for what, keys in fields["views"]]
    return Group(rows=rows, **fields)


def rerender(folder: str) -> int:
    """RESULTS.md and results.png again from folder/results.json (after a change of the
    report's or the chart's code, without measuring again)."""
    with open(os.path.join(folder, "results.json")) as f:
        state = json.load(f)
    write_report(state, [load_group(g) for g in state["groups"]], folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
