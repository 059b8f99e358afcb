"""C-ECHO speed on loopback: dimse against pynetdicom and DCMTK, in one run.

Two measures, each scenario run several times (median reported), bounded in count and
in wall time:

- C-ECHO round trips per second on one established association;
- associations per second (associate + one C-ECHO + release).

Every Python SCP (dimse, pynetdicom) runs in its own subprocess of this script, so that
the SCU and the SCP never share an interpreter (nor a GIL), like the DCMTK tools. DCMTK
figures come from timing `/usr/bin/echoscu` processes against `/usr/bin/storescp`;
for echoes/s the time of an `echoscu --repeat 1` run (process start-up, association,
one echo, release) is subtracted from that of `--repeat N`, which leaves N - 1 echoes
on the association. Run: `python benches/echo_vs_peers.py` (after `pip install .`;
needs pynetdicom and `apt-get install dcmtk`), `--quick` for a smoke test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

ECHOSCU = "/usr/bin/echoscu"  # absolute: pynetdicom installs console scripts of these names
STORESCP = "/usr/bin/storescp"
HOST = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"


# --- the SCP subprocesses ---------------------------------------------------------------


def patch_pynetdicom_nodelay() -> Callable[[], None]:
    """Sets TCP_NODELAY on every socket pynetdicom's AssociationSocket wraps: the one it
    creates to request an association and the one its server accepted. Returns an undo."""
    from pynetdicom import transport

    original = transport.AssociationSocket.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.socket is not None:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    transport.AssociationSocket.__init__ = __init__  # type: ignore[method-assign]

    def undo() -> None:
        transport.AssociationSocket.__init__ = original  # type: ignore[method-assign]

    return undo


def serve(kind: str) -> None:
    """Runs a Verification SCP on a free loopback port, prints `PORT n`, and serves until
    stdin is closed (the parent closes it, or dies)."""
    if kind == "dimse":
        from dimse import AE, sop

        ae = AE("DIMSE_SCP")
        ae.add_supported_context(sop.Verification)
        server: Any = ae.start_server((HOST, 0), block=False)
    else:
        from pynetdicom import AE as PnAE

        if kind == "pynetdicom-nodelay":
            patch_pynetdicom_nodelay()
        ae = PnAE("PYNETDICOM_SCP")
        ae.add_supported_context(VERIFICATION)
        ae.maximum_associations = 10
        server = ae.start_server((HOST, 0), block=False)
    try:
        print("PORT", server.server_address[1], flush=True)
        sys.stdin.read()
    finally:
        server.shutdown()


@contextlib.contextmanager
def python_scp(kind: str) -> Iterator[int]:
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
        yield int(line[1])
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(OSError):
        if proc.stdin:
            proc.stdin.close()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def dcmtk_env(nodelay: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    return env


@contextlib.contextmanager
def storescp_process(nodelay: bool = True) -> Iterator[tuple[int, int]]:
    """DCMTK's `storescp --ignore` on a free port, once it accepts: yields (port, pid)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [STORESCP, "--ignore", "-aet", "STORESCP", str(port)],
            cwd=tmp,
            env=dcmtk_env(nodelay),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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
            yield port, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def dcmtk_scp(nodelay: bool = True) -> Iterator[int]:
    with storescp_process(nodelay) as (port, _pid):
        yield port


# --- the SCUs ---------------------------------------------------------------------------


@dataclass
class Bounds:
    echoes: int
    assocs: int
    seconds: float


@dataclass
class Sample:
    rate: float
    lost: int = 0  # responses the SCU lost (pynetdicom), excluded from `rate`


MAX_LOST = 20  # per run: more means something else is wrong


class DimseScu:
    def __init__(self) -> None:
        from dimse import AE, sop

        self.ae = AE("DIMSE_SCU")
        self.ae.add_requested_context(sop.Verification)

    def associate(self, port: int, called: str) -> Any:
        assoc = self.ae.associate(HOST, port, ae_title=called)
        if not assoc.is_established:
            raise RuntimeError(f"dimse: association to port {port} failed: {assoc.error}")
        return assoc

    @staticmethod
    def echo(assoc: Any) -> bool:
        if int(assoc.send_c_echo().Status) != 0:
            raise RuntimeError("C-ECHO failed")
        return True


class PynetdicomScu:
    def __init__(self, nodelay: bool) -> None:
        from pynetdicom import AE as PnAE

        self.nodelay = nodelay
        self.ae = PnAE("PYNETDICOM_SCU")
        self.ae.add_requested_context(VERIFICATION)
        # A response its reactor thread swallows (pynetdicom's race with a fast peer) then
        # costs 1 s rather than the default 30 s before pynetdicom gives up and aborts.
        self.ae.dimse_timeout = 1

    def associate(self, port: int, called: str) -> Any:
        assoc = self.ae.associate(HOST, port, ae_title=called)
        if not assoc.is_established:
            raise RuntimeError(f"pynetdicom: association to port {port} failed")
        sock = assoc.dul.socket.socket
        if self.nodelay != bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)):
            raise RuntimeError("pynetdicom: TCP_NODELAY is not as intended")
        return assoc

    @staticmethod
    def echo(assoc: Any) -> bool:
        status = assoc.send_c_echo()
        if "Status" not in status:
            return False  # no response within dimse_timeout: pynetdicom aborted
        if int(status.Status) != 0:
            raise RuntimeError(f"C-ECHO failed: status {status.Status:#06x}")
        return True


Scu = DimseScu | PynetdicomScu


def check_lost(lost: int) -> None:
    if lost > MAX_LOST:
        raise RuntimeError(f"{lost} responses lost")


def echo_rate(scu: Scu, port: int, called: str, bounds: Bounds) -> Sample:
    """Echoes/s on one association, over at most `bounds.echoes` and `bounds.seconds`.

    Should the SCU lose a response (it then aborts), the time waiting for it is left
    out, and the run goes on on a new association."""
    count = lost = 0
    busy = 0.0
    while count < bounds.echoes and busy < bounds.seconds:
        assoc = scu.associate(port, called)
        try:
            if not all(scu.echo(assoc) for _ in range(10)):  # warm up
                lost += 1
                continue
            start = end = time.perf_counter()
            while count < bounds.echoes and busy + end - start < bounds.seconds:
                if not scu.echo(assoc):
                    lost += 1
                    break
                count += 1
                end = time.perf_counter()
            busy += end - start
        finally:
            if assoc.is_established:
                assoc.release()
        check_lost(lost)
    return Sample(count / busy, lost)


def assoc_rate(scu: Scu, port: int, called: str, bounds: Bounds) -> Sample:
    """Associations/s (associate, one C-ECHO, release), over at most `bounds.assocs` and
    `bounds.seconds`; an association whose response the SCU lost is left out."""

    def one() -> bool:
        assoc = scu.associate(port, called)
        if not scu.echo(assoc):
            return False
        assoc.release()
        if not assoc.is_released:
            raise RuntimeError("release failed")
        return True

    lost = 0 if one() else 1  # warm up
    count = 0
    busy = 0.0
    while count < bounds.assocs and busy < bounds.seconds:
        start = time.perf_counter()
        if one():
            count += 1
            busy += time.perf_counter() - start
        else:
            lost += 1
            check_lost(lost)
    return Sample(count / busy, lost)


def run_echoscu(port: int, repeat: int, nodelay: bool, timeout: float) -> float:
    """Wall time of one `echoscu --repeat <repeat>` process."""
    cmd = [ECHOSCU, "-aec", "STORESCP", "--repeat", str(repeat), HOST, str(port)]
    start = time.perf_counter()
    done = subprocess.run(
        cmd, env=dcmtk_env(nodelay), capture_output=True, text=True, timeout=timeout
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited with {done.returncode}: {done.stderr}")
    return took


def dcmtk_echo_rate(port: int, nodelay: bool, bounds: Bounds) -> Sample:
    """Echoes/s on one association of echoscu: (N - 1) / (t(--repeat N) - t(--repeat 1)).

    N is picked from a pilot run so that the timed run lasts about `bounds.seconds`."""
    timeout = 30 + 10 * bounds.seconds

    setups = [run_echoscu(port, 1, nodelay, timeout) for _ in range(3)]
    t1 = statistics.median(setups)
    pilot = 10
    while True:
        extra = run_echoscu(port, pilot, nodelay, timeout) - t1
        if extra >= 0.25 or pilot >= bounds.echoes:
            break
        pilot = min(pilot * 4, bounds.echoes)
    per_second = (pilot - 1) / max(extra, 1e-3)
    n = int(min(bounds.echoes, max(10, per_second * bounds.seconds)))
    tn = run_echoscu(port, n, nodelay, timeout)
    setups += [run_echoscu(port, 1, nodelay, timeout) for _ in range(3)]
    return Sample((n - 1) / (tn - statistics.median(setups)))  # setup measured around tn


def dcmtk_assoc_rate(port: int, bounds: Bounds) -> Sample:
    """Associations/s of `echoscu` processes run one after the other (start-up included)."""
    timeout = 30 + 10 * bounds.seconds
    run_echoscu(port, 1, True, timeout)  # warm up
    count = 0
    start = time.perf_counter()
    while count < bounds.assocs and time.perf_counter() - start < bounds.seconds:
        run_echoscu(port, 1, True, timeout)
        count += 1
    return Sample(count / (time.perf_counter() - start))


# --- the scenarios ----------------------------------------------------------------------


@dataclass
class Scenario:
    label: str
    run: Callable[[], Sample]
    note: str = ""
    once: bool = False  # measured once whatever --runs says
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(s.rate for s in self.samples)


def scenarios(bounds: Bounds) -> tuple[list[Scenario], list[Scenario]]:
    dimse_scu = DimseScu()
    pn_scu = PynetdicomScu(nodelay=False)

    def pn_nodelay(fn: Callable[[PynetdicomScu], Sample]) -> Sample:
        undo = patch_pynetdicom_nodelay()
        try:
            return fn(PynetdicomScu(nodelay=True))
        finally:
            undo()

    # Each run of a scenario starts its SCP, measures, and stops it.
    def py(kind: str, fn: Callable[[int, str], Sample]) -> Callable[[], Sample]:
        called = "DIMSE_SCP" if kind == "dimse" else "PYNETDICOM_SCP"

        def run() -> Sample:
            with python_scp(kind) as port:
                return fn(port, called)

        return run

    def dcmtk(nodelay: bool, fn: Callable[[int], Sample]) -> Callable[[], Sample]:
        def run() -> Sample:
            with dcmtk_scp(nodelay) as port:
                return fn(port)

        return run

    b = bounds
    subtracted = "association setup subtracted"
    processes = "one echoscu process per association: process start-up included"
    echo = [
        Scenario("dimse -> dimse", py("dimse", lambda p, c: echo_rate(dimse_scu, p, c, b))),
        Scenario(
            "pynetdicom -> pynetdicom, as shipped",
            py("pynetdicom", lambda p, c: echo_rate(pn_scu, p, c, b)),
        ),
        Scenario(
            "pynetdicom -> pynetdicom, TCP_NODELAY",
            py("pynetdicom-nodelay", lambda p, c: pn_nodelay(lambda s: echo_rate(s, p, c, b))),
            "TCP_NODELAY set on both sides (monkeypatched)",
        ),
        Scenario(
            "DCMTK echoscu -> DCMTK storescp",
            dcmtk(True, lambda p: dcmtk_echo_rate(p, True, b)),
            f"TCP_NODELAY=1 for both; {subtracted}",
        ),
        Scenario(
            "DCMTK echoscu -> DCMTK storescp, as shipped",
            dcmtk(False, lambda p: dcmtk_echo_rate(p, False, b)),
            f"no TCP_NODELAY: Nagle on; measured once; {subtracted}",
            once=True,
        ),
        Scenario(
            "dimse -> DCMTK storescp",
            dcmtk(True, lambda p: echo_rate(dimse_scu, p, "STORESCP", b)),
            "storescp with TCP_NODELAY=1",
        ),
        Scenario(
            "DCMTK echoscu -> dimse",
            py("dimse", lambda p, c: dcmtk_echo_rate(p, True, b)),
            f"echoscu with TCP_NODELAY=1; {subtracted}",
        ),
        Scenario(
            "pynetdicom -> dimse",
            py("dimse", lambda p, c: echo_rate(pn_scu, p, c, b)),
            "pynetdicom as shipped",
        ),
        Scenario(
            "dimse -> pynetdicom",
            py("pynetdicom", lambda p, c: echo_rate(dimse_scu, p, c, b)),
            "pynetdicom as shipped",
        ),
    ]
    assoc = [
        Scenario("dimse -> dimse", py("dimse", lambda p, c: assoc_rate(dimse_scu, p, c, b))),
        Scenario(
            "pynetdicom -> pynetdicom, as shipped",
            py("pynetdicom", lambda p, c: assoc_rate(pn_scu, p, c, b)),
        ),
        Scenario(
            "pynetdicom -> pynetdicom, TCP_NODELAY",
            py("pynetdicom-nodelay", lambda p, c: pn_nodelay(lambda s: assoc_rate(s, p, c, b))),
            "TCP_NODELAY set on both sides (monkeypatched)",
        ),
        Scenario(
            "dimse -> DCMTK storescp",
            dcmtk(True, lambda p: assoc_rate(dimse_scu, p, "STORESCP", b)),
            "storescp with TCP_NODELAY=1",
        ),
        Scenario(
            "DCMTK echoscu -> DCMTK storescp",
            dcmtk(True, lambda p: dcmtk_assoc_rate(p, b)),
            f"TCP_NODELAY=1 for both; {processes}",
        ),
        Scenario(
            "DCMTK echoscu -> dimse",
            py("dimse", lambda p, c: dcmtk_assoc_rate(p, b)),
            f"TCP_NODELAY=1; {processes}",
        ),
        Scenario(
            "pynetdicom -> dimse",
            py("dimse", lambda p, c: assoc_rate(pn_scu, p, c, b)),
            "pynetdicom as shipped",
        ),
    ]
    return echo, assoc


def measure(cases: list[Scenario], runs: int) -> None:
    for case in cases:
        for _ in range(1 if case.once else runs):
            try:
                case.samples.append(case.run())
            except Exception as e:  # report it in the table, go on with the others
                traceback.print_exc()
                case.error = f"{type(e).__name__}: {e}"
                break
        status = case.error or ", ".join(f"{s.rate:,.0f}" for s in case.samples)
        print(f"  {case.label}: {status}", file=sys.stderr, flush=True)


def table(title: str, unit: str, cases: list[Scenario]) -> None:
    base = cases[0]
    print(f"\n### {title}\n")
    print(f"| SCU -> SCP | {unit} (median) | runs | dimse -> dimse / this | notes |")
    print("|---|---:|---:|---:|---|")
    for case in cases:
        if case.error or not case.samples:
            print(f"| {case.label} | failed | | | {case.error} |")
            continue
        runs = " / ".join(f"{s.rate:,.0f}" for s in case.samples)
        ratio = f"{base.median / case.median:,.2f}x" if base.samples else ""
        notes = [case.note] if case.note else []
        lost = sum(s.lost for s in case.samples)
        if lost:
            notes.append(
                f"pynetdicom lost {lost} response(s) (its reactor race), each left out "
                "and the run resumed on a new association"
            )
        print(f"| {case.label} | {case.median:,.0f} | {runs} | {ratio} | {'; '.join(notes)} |")


# --- the report -------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def dcmtk_version() -> str:
    try:
        out = subprocess.run([ECHOSCU, "--version"], capture_output=True, text=True).stdout
    except OSError as e:
        return f"not available ({e})"
    m = re.search(r"v(\d+\.\d+\.\d+)", out)
    return m.group(1) if m else out.strip().splitlines()[0]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_seconds() -> tuple[float, float]:
    """(CPU time of all processes on the machine, of this process and its children).
    Interrupt time is left out: loopback traffic is mostly handled there."""
    with open("/proc/stat") as f:
        user, nice, system = map(int, f.readline().split()[1:4])
    busy = (user + nice + system) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 run each, small bounds")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3)")
    parser.add_argument("--seconds", type=float, help="time bound per run (default 3)")
    parser.add_argument("--echoes", type=int, help="echoes bound per run (default 20000)")
    parser.add_argument("--assocs", type=int, help="associations bound per run (default 300)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    import pynetdicom

    import dimse

    quick = args.quick
    runs = args.runs or (1 if quick else 3)
    bounds = Bounds(
        echoes=args.echoes or (2000 if quick else 20000),
        assocs=args.assocs or (30 if quick else 300),
        seconds=args.seconds or (0.5 if quick else 3.0),
    )
    print("## C-ECHO on loopback: dimse vs pynetdicom vs DCMTK\n")
    print(f"- command: `{shlex.join(['python', *sys.argv])}`")
    nproc = len(os.sched_getaffinity(0))
    print(f"- machine: nproc {nproc} ({os.cpu_count()} CPUs), {cpu_model()}")
    print(f"- {platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(
        f"- dimse {dimse.__version__}, pynetdicom {pynetdicom.__version__}, "
        f"DCMTK {dcmtk_version()} ({ECHOSCU}, {STORESCP})"
    )
    print(
        f"- bounds per run: {bounds.echoes} echoes or {bounds.assocs} associations, "
        f"{bounds.seconds:g} s; {runs} run(s) per scenario, median shown"
    )
    print(
        "- every Python SCP runs in its own subprocess (no GIL shared with the SCU); "
        "DCMTK: TCP_NODELAY=1 in the environment of both tools unless said otherwise"
    )
    print(f"- load average at start: {load()}", flush=True)
    busy0, own0 = cpu_seconds()
    wall0 = time.monotonic()

    echo, assoc = scenarios(bounds)
    print("\nmeasuring C-ECHO on one association...", file=sys.stderr, flush=True)
    measure(echo, runs)
    print("measuring associations...", file=sys.stderr, flush=True)
    measure(assoc, runs)

    table(
        "C-ECHO round trips on one association (DCMTK rows: association setup subtracted)",
        "echoes/s",
        echo,
    )
    table("Associations: associate + one C-ECHO + release", "associations/s", assoc)
    busy1, own1 = cpu_seconds()
    others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (time.monotonic() - wall0)
    print(
        f"\n- load average at end: {load()} (this bench's own processes included); "
        f"CPU used by other processes during the run: {others:.2f} CPUs on average"
    )
    return 1 if any(c.error for c in echo + assoc) else 0


if __name__ == "__main__":
    sys.exit(main())
