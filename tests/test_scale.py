"""Many associations in one process: an SCP (run in a subprocess, tests/scale_scp.py)
holds 1000 established associations and 10,000 idle connections with a bounded number of
threads and bounded memory; past its limits (maximum_associations, file descriptors) it
says no and keeps serving; its Python handler pool has the size it is given.

The bounds are functional (threads, resident memory), never timings. Numbers measured on
a run are printed (``pytest -s``) and recorded in docs/scaling.md.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import APP_CONTEXT, ECHO_CONTEXT, associate_rq, item
from dimse import AE, sop
from dimse.exceptions import AcseTimeout, AssociationRejected

LOOPBACK = "127.0.0.1"
SCP_SCRIPT = Path(__file__).with_name("scale_scp.py")
HANDLER_THREADS = 8
#: tokio starts one worker per CPU the process may run on.
CPUS = len(os.sched_getaffinity(0))
#: The threads an SCP may have whatever the number of its associations and connections:
#: the main thread, tokio's workers, the Python handler pool, and a few more.
THREAD_LIMIT = 1 + CPUS + HANDLER_THREADS + 8
#: Resident memory an SCP may use at 1000 associations or 10,000 idle connections.
RSS_LIMIT_KB = 300 * 1024
#: File descriptors one requestor association costs this (test) process: its socket and
#: its own runtime's (an epoll instance, an eventfd, ...). Measured: 4.
FDS_PER_REQUESTOR = 4

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc and sets RLIMIT_NOFILE"
)


def raise_fd_limit(needed: int) -> None:
    """Raises this process's RLIMIT_NOFILE soft limit to the hard limit; fails the test
    (never skips it) when even the hard limit is below `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(
            f"this test needs {needed} file descriptors, but the hard RLIMIT_NOFILE is "
            f"{hard} (ulimit -Hn): raise it (ulimit -n {needed}, LimitNOFILE= for a service, "
            "--ulimit nofile= for a container) and run again"
        )
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads of a process, and its open file descriptors."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Scp:
    """tests/scale_scp.py in a subprocess: its port, its counters, its /proc figures."""

    def __init__(self, **settings: object) -> None:
        settings.setdefault("handler_threads", HANDLER_THREADS)
        self.proc = subprocess.Popen(
            [sys.executable, str(SCP_SCRIPT), json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), f"the SCP did not start: {line!r}"
        self.port = int(line.split()[1])
        self.pid = self.proc.pid
        self.base = proc_status(self.pid)
        self.peak_threads = self.base["Threads"]
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        # Sample all along: a thread started per job would show as a peak.
        while self._sampling:
            try:
                self.peak_threads = max(self.peak_threads, self.status()["Threads"])
            except (OSError, ValueError):
                return
            time.sleep(0.02)

    def status(self) -> dict[str, int]:
        return proc_status(self.pid)

    def command(self, line: str) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stats(self) -> dict[str, int]:
        return json.loads(self.command("stats"))

    def wait_fds(self, predicate, timeout: float, what: str) -> int:
        """Waits until `predicate(open fds of the SCP)` holds; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            fds = self.status()["fds"]
            if predicate(fds):
                return fds
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: the SCP still has {fds} open file descriptors")
            time.sleep(0.05)

    def check_bounds(self, what: str, cause: str = "") -> dict[str, int]:
        """Asserts the SCP's threads and memory are within bounds; returns its figures.
        `cause` is where to look when the thread count is not bounded."""
        now = self.status()
        now["peak_threads"] = max(self.peak_threads, now["Threads"])
        print(f"\n{what}: SCP at start {self.base}, now {now}")
        assert now["peak_threads"] <= THREAD_LIMIT, (
            f"{what}: the SCP ran {now['peak_threads']} threads (limit {THREAD_LIMIT}: "
            f"1 + {CPUS} tokio workers + {HANDLER_THREADS} handler threads + 8): it grows with "
            f"the connections in flight, not with a setting. {cause}"
        )
        assert now["VmHWM"] < RSS_LIMIT_KB, f"{what}: the SCP's peak RSS is {now['VmHWM']} kB"
        return now

    def stop(self) -> None:
        self._sampling = False
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def scp():
    """Starts SCPs (``scp(maximum_associations=..., store=...)``); stops them after."""
    started: list[Scp] = []

    def start(**settings: object) -> Scp:
        server = Scp(**settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def requestor(**settings: object) -> AE:
    ae = AE("SCALESCU")
    ae.acse_timeout = 10
    ae.dimse_timeout = 10
    for name, value in settings.items():
        setattr(ae, name, value)
    ae.add_requested_context(sop.Verification)
    ae.add_requested_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
    return ae


def small_ct() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop.CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "SCALE"
    ds.PatientName = "Scale^Test"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def echo_ok(port: int) -> bool:
    with requestor().associate(LOOPBACK, port, ae_title="SCALESCP") as assoc:
        return assoc.send_c_echo().Status == 0x0000


def open_idle(scp: Scp, n: int, batch: int = 250) -> list[socket.socket]:
    """Opens `n` TCP connections to `scp` that never send anything, in batches that the
    SCP accepts before the next one starts: beyond the listen backlog, SYN cookies would
    complete the handshake on our side only, and the SCP would never see the connection."""
    socks: list[socket.socket] = []
    base = scp.status()["fds"]
    try:
        while len(socks) < n:
            for _ in range(min(batch, n - len(socks))):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                socks.append(s)
                err = s.connect_ex((LOOPBACK, scp.port))
                assert err in (0, errno.EINPROGRESS), f"connect: {os.strerror(err)}"
            deadline = time.monotonic() + 20
            while (fds := scp.status()["fds"]) < base + len(socks):
                if time.monotonic() > deadline:
                    failed = [
                        os.strerror(e)
                        for s in socks
                        if (e := s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
                    ]
                    pytest.fail(
                        f"{len(socks)} connections opened, the SCP holds {fds - base}; "
                        f"{len(failed)} failed on our side {sorted(set(failed))}"
                    )
                time.sleep(0.02)
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


def verification_rq(user_identity: bool = False) -> bytes:
    """A minimal A-ASSOCIATE-RQ for Verification (Maximum Length 16384), with a User
    Identity item (username "scale") or not."""
    user = item(0x51, (16384).to_bytes(4, "big"))
    if user_identity:
        user += item(0x58, bytes([1, 0]) + struct.pack(">H", 5) + b"scale" + bytes(2))
    return associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, user))


# -- 1000 established associations ------------------------------------------------------


@pytest.mark.parametrize("store", ["discard", "python"])
def test_1000_associations_at_once(scp, store):
    """1000 associations opened one after the other and held; a C-ECHO and a C-STORE on
    each while all are open; then all released. The SCP answers C-STORE in Rust
    (FileStorage(discard=True)) or through a Python EVT_C_STORE handler."""
    n = 1000
    raise_fd_limit(n * FDS_PER_REQUESTOR + 200)
    server = scp(maximum_associations=2000, store=store, acse_timeout=60, network_timeout=300)
    me_before = proc_status(os.getpid())
    ae = requestor()
    assocs = []
    try:
        for i in range(n):
            assoc = ae.associate(LOOPBACK, server.port, ae_title="SCALESCP")
            assert assoc.is_established, f"association {i + 1}: {assoc.error}"
            assocs.append(assoc)
        established = server.status()
        me = proc_status(os.getpid())
        ds = small_ct()
        for assoc in assocs:
            assert assoc.send_c_echo().Status == 0x0000
            ds.SOPInstanceUID = generate_uid()
            assert assoc.send_c_store(ds).Status == 0x0000
        assert server.status()["fds"] >= established["fds"]  # all still open
        peak = server.check_bounds(f"{n} associations ({store})")
    finally:
        for assoc in assocs:
            if assoc.is_established:
                assoc.release()
    if store == "python":
        assert server.stats()["stored"] == n
    server.wait_fds(lambda fds: fds <= server.base["fds"] + 2, 10, "after the releases")
    per_assoc = (established["VmRSS"] - server.base["VmRSS"]) / n
    print(
        f"SCP: {per_assoc:.1f} kB per established association, {peak['VmHWM']} kB peak, "
        f"{peak['peak_threads']} threads at most; requestor process: "
        f"{(me['fds'] - me_before['fds']) / n:.1f} fds and "
        f"{(me['VmRSS'] - me_before['VmRSS']) / n:.1f} kB per association"
    )
    assert me["fds"] - me_before["fds"] <= n * FDS_PER_REQUESTOR


@pytest.mark.parametrize("hook", [False, True], ids=["no-hook", "EVT_USER_ID"])
def test_1000_association_requests_at_once(scp, hook):
    """1000 connections each send an A-ASSOCIATE-RQ at the same moment (raw sockets):
    all are accepted, and the SCP's threads stay bounded, with no negotiation handler or
    with a Python EVT_USER_ID handler (a negotiation hook)."""
    n = 1000
    raise_fd_limit(n + 200)
    server = scp(maximum_associations=2000, acse_timeout=60, user_id=hook)
    socks = open_idle(server, n)
    try:
        rq = verification_rq(user_identity=hook)
        for s in socks:
            s.setblocking(True)
            s.sendall(rq)
        for i, s in enumerate(socks):
            s.settimeout(10)
            assert s.recv(1) == b"\x02", f"request {i + 1} not accepted"
        server.check_bounds(
            f"{n} association requests at once" + (", EVT_USER_ID bound" if hook else ""),
            cause="Negotiation must run on the I/O task without Python hooks, and on the "
            "service's fixed notify pool with them (rust/dimse-core/src/net/server.rs, "
            "serve_one, AssociationEvent::Requested; Service::run_blocking); a "
            "spawn_blocking per negotiation would take a thread per request in flight.",
        )
    finally:
        close_all(socks)


# -- idle connections ----------------------------------------------------------------------


def test_10000_idle_connections(scp):
    """10,000 connections that never send a byte: the SCP holds them with bounded
    threads and memory, and serves a normal association meanwhile."""
    n = 10_000
    raise_fd_limit(n + 200)
    server = scp(maximum_associations=2000, acse_timeout=60)
    socks = open_idle(server, n)
    try:
        held = server.status()
        assert held["fds"] >= n
        assert echo_ok(server.port)
        now = server.check_bounds(f"{n} idle connections")
        print(
            f"SCP: {(held['VmRSS'] - server.base['VmRSS']) / n:.1f} kB per idle connection, "
            f"{now['VmHWM']} kB peak"
        )
    finally:
        close_all(socks)
    server.wait_fds(lambda fds: fds <= server.base["fds"] + 2, 15, "after closing them")
    assert echo_ok(server.port)


def test_idle_connections_with_a_notification_handler(scp):
    """The same with an EVT_CONN_OPEN handler bound: notifications run on tokio's
    notify pool, and must not take a thread per connection either."""
    n = 2000
    raise_fd_limit(n + 200)
    server = scp(maximum_associations=2000, acse_timeout=60, notify=True)
    socks = open_idle(server, n)
    try:
        deadline = time.monotonic() + 20
        while server.stats()["conn_open"] < n:
            assert time.monotonic() < deadline, f"EVT_CONN_OPEN: {server.stats()}"
            time.sleep(0.05)
        assert echo_ok(server.port)
        server.check_bounds(
            f"{n} idle connections, EVT_CONN_OPEN bound",
            cause="Notifications must go through the fixed notify pool "
            "(rust/dimse-python/src/net.rs, PyService::notify); a spawn_blocking per "
            "notification would grow tokio's blocking pool to 512 threads.",
        )
    finally:
        close_all(socks)


def test_artim_closes_idle_connections(scp):
    """ARTIM (the ACSE timeout) closes connections that send no A-ASSOCIATE-RQ: 500 of
    them, with acse_timeout=1, all see the server close within a few seconds."""
    n = 500
    raise_fd_limit(n + 200)
    server = scp(acse_timeout=1)
    socks = open_idle(server, n)
    try:
        start = time.monotonic()
        for s in socks:
            s.setblocking(True)
            s.settimeout(max(0.1, start + 5 - time.monotonic()))
            try:
                while s.recv(4096):
                    pass  # an A-ABORT may come before the close; EOF is what counts
            except ConnectionResetError:
                pass
        elapsed = time.monotonic() - start
    finally:
        close_all(socks)
    print(f"\n{n} idle connections closed by ARTIM after {elapsed:.2f} s (acse_timeout=1)")
    assert elapsed < 5
    server.wait_fds(lambda fds: fds <= server.base["fds"] + 2, 5, "after ARTIM")
    assert echo_ok(server.port)


# -- past the limits -------------------------------------------------------------------------


def test_past_maximum_associations_is_local_limit_exceeded(scp):
    """With maximum_associations=5 the 6th association is rejected: transient (2),
    service-provider presentation (3), local limit exceeded (2). Once one ends, a new one
    is accepted."""
    server = scp(maximum_associations=5)
    ae = requestor()
    assocs = [ae.associate(LOOPBACK, server.port, ae_title="SCALESCP") for _ in range(5)]
    try:
        assert all(a.is_established for a in assocs)
        sixth = ae.associate(LOOPBACK, server.port, ae_title="SCALESCP")
        assert sixth.is_rejected
        assert not sixth.is_established
        assert (sixth.result, sixth.result_source, sixth.diagnostic) == (2, 3, 2)
        with pytest.raises(AssociationRejected) as raised:
            with ae.associate(LOOPBACK, server.port, ae_title="SCALESCP"):
                pass
        assert (raised.value.result, raised.value.source, raised.value.reason) == (2, 3, 2)
        assert "local limit exceeded" in str(raised.value)
        assert all(a.send_c_echo().Status == 0x0000 for a in assocs)
        # A slot is free again once an association's connection has closed.
        assocs.pop().release()
        deadline = time.monotonic() + 5
        while True:
            again = ae.associate(LOOPBACK, server.port, ae_title="SCALESCP")
            if again.is_established:
                break
            assert again.is_rejected
            assert time.monotonic() < deadline, "the slot of a released association stays taken"
            time.sleep(0.05)
        assocs.append(again)
    finally:
        for a in assocs:
            a.release()


def test_past_the_file_descriptor_limit(scp):
    """An SCP run with RLIMIT_NOFILE=64 gets 100 connections: it accepts what it can,
    then accept() fails with EMFILE; it backs off instead of spinning (little CPU), keeps
    running, and serves a normal association once the connections close."""
    server = scp(nofile=64, acse_timeout=60)
    socks = []
    try:
        for _ in range(100):
            # The kernel completes the handshake (listen backlog) whether or not the SCP
            # can accept.
            socks.append(socket.create_connection((LOOPBACK, server.port), timeout=5))
        server.wait_fds(lambda fds: fds >= 64, 10, "at the limit")
        time.sleep(0.2)
        before = cpu_seconds(server.pid)
        time.sleep(2)
        used = cpu_seconds(server.pid) - before
        print(f"\nSCP at its fd limit (64): {used:.3f} s of CPU in 2 s, {server.status()}")
        assert used < 0.2, f"the SCP used {used:.2f} s of CPU in 2 s at EMFILE: it spins"
        assert server.proc.poll() is None
        assert server.stats()["running"] == 0  # its main thread still answers
        # A requestor meanwhile: connected (the kernel's backlog) but not served in time.
        late = requestor(acse_timeout=1).associate(LOOPBACK, server.port, ae_title="SCALESCP")
        assert not late.is_established
        assert isinstance(late.error, AcseTimeout), late.error
    finally:
        close_all(socks)
    server.wait_fds(lambda fds: fds < 20, 10, "after the connections closed")
    assert echo_ok(server.port)


# -- the handler pool ------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [2, 6])
def test_handler_threads_bounds_python_handlers(scp, threads):
    """AE.handler_threads is the number of Python handlers running at once: 6
    associations storing at the same time (handler sleeps 0.2 s) run at most that many."""
    server = scp(store="python", handler_sleep=0.2, handler_threads=threads)
    ae = requestor()
    assocs = [ae.associate(LOOPBACK, server.port, ae_title="SCALESCP") for _ in range(6)]
    assert all(a.is_established for a in assocs)
    start = threading.Barrier(len(assocs))
    statuses: list[int] = []

    def store(assoc) -> None:
        start.wait()
        for _ in range(3):
            statuses.append(int(assoc.send_c_store(small_ct()).Status))

    workers = [threading.Thread(target=store, args=(a,)) for a in assocs]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    for a in assocs:
        a.release()
    assert statuses == [0] * 18
    stats = server.stats()
    assert stats["stored"] == 18
    assert stats["max_running"] == threads, stats
    server.check_bounds(f"handler_threads={threads}")
