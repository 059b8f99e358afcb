"""``dimse echoscu``: is the peer there and does it speak DICOM? Verification (C-ECHO).

Requests an association proposing the Verification SOP Class, sends one C-ECHO (or
``--repeat N``), then releases it (or aborts it with ``--abort``). Prints nothing on
success unless asked (-v); the exit code says how it went.
"""

from __future__ import annotations

import argparse

from dimse import sop
from dimse.apps import common

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = common.add_app_parser(
        subparsers, "echoscu", "Verification SCU: send C-ECHO requests", __doc__ or ""
    )
    common.add_peer_arguments(parser)
    parser.add_argument(
        "--repeat",
        metavar="N",
        type=common.positive_int,
        default=1,
        help="send N C-ECHO requests on the association (default 1)",
    )
    parser.add_argument(
        "--abort",
        action="store_true",
        help="end the association with an A-ABORT instead of releasing it",
    )
    common.add_network_options(parser, "ECHOSCU")
    common.add_logging_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = common.Console(args)
    ae = common.make_ae(args)
    ae.add_requested_context(sop.Verification)
    assoc = common.associate(ae, args, needed=[sop.Verification])
    out.verbose(
        f"association with {args.call} at {args.host}:{args.port} established "
        f"(peer maximum PDU {assoc.acceptor.maximum_length})"
    )
    failed: list[str] = []
    with common.released(assoc, abort=args.abort):
        for n in range(1, args.repeat + 1):
            code = int(assoc.send_c_echo().Status)
            text = common.status_text(code, "C-ECHO")
            out.verbose(f"C-ECHO {n}: {text}")
            if code != 0x0000:
                failed.append(text)
    out.verbose("association aborted" if args.abort else "association released")
    if failed:
        raise common.AppError(
            f"{len(failed)} of {args.repeat} C-ECHO failed (last status {failed[-1]})"
        )
    return common.EXIT_OK
