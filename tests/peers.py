"""Helpers for the interoperability tests: real peers (DCMTK's tools, pynetdicom) on loopback.

The tests that use these must really run: a missing peer is a failure, never a skip.
pynetdicom's wheel installs console scripts named ``echoscu``, ``storescp``... that shadow
DCMTK's, so DCMTK's tools are always run by absolute path from /usr/bin (Debian's ``dcmtk``).
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import time
from pathlib import Path

from dimse import AE

LOOPBACK = "127.0.0.1"

#: Seconds any one subprocess may run; DCMTK's own timeouts (below) are shorter.
PROCESS_TIMEOUT = 30.0

#: Seconds given to our AEs and to the peers for ACSE/DIMSE/network waits.
PEER_TIMEOUT = 10

DCMTK_BIN = Path("/usr/bin")


def free_port() -> int:
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def dcmtk_env() -> dict[str, str]:
    return dict(os.environ, TCP_NODELAY="1")


@functools.cache
def dcmtk_tool(name: str) -> str:
    """The absolute path of DCMTK's ``name``, checked to be DCMTK's (not pynetdicom's)."""
    path = DCMTK_BIN / name
    assert path.is_file(), f"{path} is missing: install Debian's dcmtk (apt-get install dcmtk)"
    assert os.access(path, os.X_OK), f"{path} is not executable"
    proc = subprocess.run(
        [str(path), "--version"],
        capture_output=True,
        text=True,
        env=dcmtk_env(),
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    version = proc.stdout + proc.stderr
    assert "dcmtk" in version.lower() or "offis" in version.lower(), (
        f"{path} --version does not mention DCMTK/OFFIS:\n{version}"
    )
    return str(path)


def run_dcmtk(name: str, *args: str | int) -> subprocess.CompletedProcess[str]:
    """Runs a DCMTK tool to completion; stdout and stderr are merged into ``.stdout``."""
    return subprocess.run(
        [dcmtk_tool(name), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dcmtk_env(),
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


def echoscu(port: int, *args: str | int) -> subprocess.CompletedProcess[str]:
    """DCMTK's echoscu against 127.0.0.1:port, with every DCMTK timeout bounded."""
    timeouts = ("-to", PEER_TIMEOUT, "-ta", PEER_TIMEOUT, "-td", PEER_TIMEOUT)
    return run_dcmtk("echoscu", *timeouts, *args, LOOPBACK, port)


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Waits (at most ~10 s) until something accepts TCP connections on ``port``."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the peer exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listens on {LOOPBACK}:{port} after 10 s")


class DcmtkServer:
    """A DCMTK server process (for example storescp) whose output goes to a log file."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [dcmtk_tool(name), *args, str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dcmtk_env(),
            )
        try:
            wait_for_port(self.port, self.proc)
        except BaseException:
            self.stop()
            raise

    def is_running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=PROCESS_TIMEOUT)


def our_ae(ae_title: str = "OURSCP", maximum_pdu_size: int | None = None) -> AE:
    """A dimse AE with short timeouts."""
    ae = AE(ae_title)
    ae.acse_timeout = PEER_TIMEOUT
    ae.dimse_timeout = PEER_TIMEOUT
    ae.network_timeout = PEER_TIMEOUT
    ae.connection_timeout = PEER_TIMEOUT
    if maximum_pdu_size is not None:
        ae.maximum_pdu_size = maximum_pdu_size
    return ae
