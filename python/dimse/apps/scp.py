"""What the SCP apps (``storescp``, ``qrscp``) share: where to listen, which transfer
syntaxes to accept, and serving until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

from pydicom import uid as pydicom_uid

from dimse import AE
from dimse.ae import Server
from dimse.apps import common
from dimse.evt import EVT_ASYNC_OPS, Event, EventType
from dimse.exceptions import InvalidArgument

__all__ = [
    "add_listen_options",
    "is_worker",
    "make_scp_ae",
    "negotiation_handlers",
    "run_workers",
    "serve",
    "storage_transfer_syntaxes",
]


def storage_transfer_syntaxes(prefer_uncompressed: bool = False) -> list[str]:
    """Every transfer syntax pydicom knows, in our order of preference (the acceptor's
    order decides, PS3.8 9.3.3.2): a storage SCP that writes what it receives keeps
    compressed pixel data compressed, so the encapsulated syntaxes come first unless
    ``prefer_uncompressed``; then Explicit VR Little Endian, Implicit VR Little Endian,
    Deflated and Big Endian."""
    uncompressed: list[str] = [
        pydicom_uid.ExplicitVRLittleEndian,
        pydicom_uid.ImplicitVRLittleEndian,
        pydicom_uid.DeflatedExplicitVRLittleEndian,
        pydicom_uid.ExplicitVRBigEndian,
    ]
    compressed = [str(ts) for ts in pydicom_uid.AllTransferSyntaxes if ts not in uncompressed]
    ordered = uncompressed + compressed if prefer_uncompressed else compressed + uncompressed
    return [str(ts) for ts in ordered]


def add_listen_options(parser: argparse.ArgumentParser, default_aet: str) -> None:
    """Our AE title, where to listen, how many associations, PDU size and timeouts."""
    common.add_network_options(parser, default_aet, requestor=False)
    group = parser.add_argument_group("server")
    group.add_argument(
        "--bind",
        metavar="ADDRESS",
        default="0.0.0.0",
        help="the local address to listen on (default 0.0.0.0: every IPv4 interface; "
        "127.0.0.1 for this machine only)",
    )
    group.add_argument(
        "--max-associations",
        metavar="N",
        type=common.positive_int,
        default=32,
        help="associations served at once; more are rejected (A-ASSOCIATE-RJ, transient, "
        "local limit exceeded) (default 32)",
    )
    group.add_argument(
        "--require-called-aet",
        action="store_true",
        help="reject associations whose called AE title is not ours (-aet)",
    )
    access = parser.add_argument_group(
        "access control", "every rejection is logged with the peer's address and the reason"
    )
    access.add_argument(
        "--allow-calling",
        metavar="AE",
        action="append",
        type=common.ae_title,
        default=[],
        help="accept only this calling AE title (repeat for several; default any): others "
        "get A-ASSOCIATE-RJ 'calling AE title not recognized'",
    )
    access.add_argument(
        "--allow-network",
        metavar="NET",
        action="append",
        default=[],
        help="accept associations only from this address or network, as 10.1.0.0/16 or "
        "192.168.1.20 (repeat for several; default any)",
    )
    access.add_argument(
        "--max-associations-per-peer",
        metavar="N",
        type=int,
        default=0,
        help="associations one client address may hold at once; 0 = no limit but "
        "--max-associations (default 0)",
    )
    group.add_argument(
        "--workers",
        metavar="N",
        type=common.positive_int,
        default=1,
        help="serve from N processes sharing the port (SO_REUSEPORT; the kernel spreads "
        "connections over them), so that the work in Python uses N cores; needs a fixed "
        "port (default 1)",
    )
    group.add_argument(
        "--max-ops",
        metavar="N",
        type=common.positive_int,
        default=16,
        help="operations a requestor may have outstanding at once when it proposes an "
        "asynchronous operations window (PS3.7 D.3.3.3); 1 answers synchronous (default 16)",
    )
    group.add_argument(
        "--prefer-uncompressed",
        action="store_true",
        help="when a peer proposes both, accept an uncompressed transfer syntax rather than "
        "the compressed one (the default keeps what the peer sends compressed)",
    )


def make_scp_ae(args: argparse.Namespace) -> AE:
    """The AE of an SCP app, from the listen options."""
    ae = common.make_ae(args)
    ae.maximum_associations = args.max_associations
    ae.require_called_aet = bool(args.require_called_aet)
    try:
        ae.require_calling_aet = args.allow_calling
        ae.allowed_networks = args.allow_network
        ae.maximum_associations_per_peer = args.max_associations_per_peer
    except InvalidArgument as e:
        raise common.UsageError(str(e)) from None
    return ae


def negotiation_handlers(args: argparse.Namespace) -> list[tuple[EventType, Any]]:
    """The EVT_ASYNC_OPS handler granting up to --max-ops outstanding operations."""
    window = int(args.max_ops)

    def on_async_ops(event: Event) -> tuple[int, int]:
        invoked = int(event.nr_invoked)
        # 0 proposes no limit: grant ours. Requests are performed in order of arrival.
        return (window if invoked == 0 else min(invoked, window)), 1

    return [(EVT_ASYNC_OPS, on_async_ops)]


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    """SIGTERM (what service managers and ``kill`` send) stops the server as Ctrl-C does."""
    stop = threading.Event()

    def handler(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


#: Set in the environment of the processes ``--workers`` starts.
WORKER_ENV = "DIMSE_WORKER"


def is_worker() -> bool:
    """Whether this process is one of several ``--workers`` sharing a port."""
    return os.environ.get(WORKER_ENV) == "1"


def run_workers(args: argparse.Namespace, port: int, out: common.Console, name: str) -> int | None:
    """With ``--workers N`` (N > 1) in the first process: starts N copies of the app, each
    listening on ``port`` with SO_REUSEPORT, passes SIGTERM/Ctrl-C on to them, waits, and
    returns the worst exit code. None when this process is to serve itself."""
    if args.workers <= 1 or is_worker():
        return None
    if port == 0:
        raise common.UsageError("--workers needs a fixed port: the workers share it")
    argv = [sys.executable, "-m", "dimse", *getattr(args, "argv", sys.argv[1:])]
    env = dict(os.environ, **{WORKER_ENV: "1"})
    workers = [subprocess.Popen(argv, env=env) for _ in range(args.workers)]
    out.info(f"{name}: {args.workers} workers on port {port} (pids {[w.pid for w in workers]})")
    try:
        with _stop_on_sigterm() as stop:
            while not stop.wait(0.2):
                if all(w.poll() is not None for w in workers):
                    break
    except KeyboardInterrupt:
        pass
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for w in workers:
            try:
                w.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    return max(w.returncode or 0 for w in workers)


def serve(server: Server, out: common.Console, name: str) -> int:
    """Serves until Ctrl-C or SIGTERM, then shuts down; the exit code."""
    host, port = server.server_address
    # Tests and scripts read the port from this line (with port 0 the system picks it).
    out.info(f"{name} listening on {host}:{port}")
    try:
        with _stop_on_sigterm() as stop:
            while server.is_running() and not stop.wait(0.2):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        out.info(f"{name} shutting down")
        server.shutdown()
    return common.EXIT_OK
