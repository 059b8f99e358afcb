"""``dimse selftest``: what this build is, and a C-ECHO over loopback through it.

It starts a Verification SCP on a free loopback port, associates to it, sends C-ECHO
requests, releases, and prints what happened: a quick check that the wheel works here.
"""

from __future__ import annotations

import argparse
import time

import dimse
from dimse import AE, sop
from dimse.apps import common

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = common.add_app_parser(
        subparsers,
        "selftest",
        "check this build: C-ECHOs to a loopback Verification SCP",
        __doc__ or "",
    )
    parser.add_argument(
        "--echoes", metavar="N", type=int, default=1000, help="C-ECHOs to send (default 1000)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(f"dimse {dimse.__version__}")
    print(f"implementation class UID {dimse.IMPLEMENTATION_CLASS_UID}")
    print(f"implementation version name {dimse.IMPLEMENTATION_VERSION_NAME}")

    scp = AE("DIMSE_SCP")
    scp.add_supported_context(sop.Verification)
    server = scp.start_server(("127.0.0.1", 0), block=False)
    assert server is not None
    try:
        host, port = server.server_address
        print(f"Verification SCP listening on {host}:{port}")
        scu = AE("DIMSE_SCU")
        scu.add_requested_context(sop.Verification)
        with scu.associate(host, port, ae_title="DIMSE_SCP") as assoc:
            (pc,) = assoc.accepted_contexts
            print(f"association established: context {pc.context_id}, {pc.transfer_syntax[0]}")
            statuses = set()
            start = time.perf_counter()
            for _ in range(max(1, args.echoes)):
                statuses.add(int(assoc.send_c_echo().Status))
            took = time.perf_counter() - start
        rate = args.echoes / took
        print(f"{args.echoes} C-ECHO in {took:.3f} s ({rate:,.0f}/s), statuses {statuses}")
        print(f"association released: {assoc.is_released}")
        return 0 if statuses == {0} and assoc.is_released else 1
    finally:
        server.shutdown()
