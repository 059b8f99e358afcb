"""``dimse movescu``: have a Query/Retrieve SCP send instances to an AE (C-MOVE).

The query (QUERYFILE and -k keys, as findscu) names what to move; the peer sends the
instances to the move destination (-aem, default: our own AE title) over an association
it opens itself, so it must know that AE title's host and port. With --store-port this
app also is that destination: it listens on the port while the move runs and writes
each instance it receives to -od, as it arrived (never decoded). The sub-operation
counts are printed at the end.
"""

from __future__ import annotations

import argparse
import threading
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes

from dimse import AE, AllStoragePresentationContexts, Server
from dimse.apps import common
from dimse.presentation import DEFAULT_TRANSFER_SYNTAXES

if TYPE_CHECKING:
    from dimse.storage import StoredInstance

__all__ = ["register", "run"]

#: What the built-in storage SCP accepts: the uncompressed syntaxes first, then any other
#: (the instances are written as they arrive, so any encoding will do).
STORE_SYNTAXES = list(dict.fromkeys([*DEFAULT_TRANSFER_SYNTAXES, *map(str, AllTransferSyntaxes)]))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = common.add_app_parser(
        subparsers,
        "movescu",
        "Retrieve SCU: have the peer send instances to an AE (C-MOVE)",
        __doc__ or "",
    )
    common.add_peer_arguments(parser)
    common.add_query_options(parser)
    parser.add_argument(
        "-aem",
        "--move-destination",
        metavar="AE",
        type=common.ae_title,
        help="the AE title to send the instances to (default: our AE title, -aet)",
    )
    store = parser.add_argument_group("built-in storage SCP")
    store.add_argument(
        "--store-port",
        metavar="PORT",
        type=common.listen_port,
        help="receive the instances here: run a storage SCP with our AE title on PORT "
        "while the move runs (the peer must know our AE title at this port)",
    )
    store.add_argument(
        "--store-host",
        metavar="HOST",
        default="0.0.0.0",
        help="the address the storage SCP listens on (default 0.0.0.0: every interface)",
    )
    common.add_output_directory(parser, "the instances received with --store-port")
    common.add_network_options(parser, "MOVESCU")
    common.add_logging_options(parser)
    parser.set_defaults(run=run)


class Received:
    """Counts what the built-in storage SCP wrote (told by FileStorage's on_stored)."""

    def __init__(self, out: common.Console) -> None:
        self.out = out
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, instance: StoredInstance) -> None:
        with self.lock:
            self.count += 1
        self.out.verbose(f"stored {instance.path} (from {instance.calling_ae_title})")


def start_storage(args: argparse.Namespace, received: Received) -> Server:
    """The storage SCP of --store-port, writing what it receives to -od."""
    from dimse.storage import FileStorage  # the Rust writer; imported when needed

    try:
        args.output_directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise common.AppError(f"cannot create {args.output_directory}: {e}") from None
    scp = AE(args.aetitle)
    scp.maximum_pdu_size = args.max_pdu
    scp.acse_timeout = args.acse_timeout
    scp.dimse_timeout = args.dimse_timeout
    scp.network_timeout = args.network_timeout
    for pc in AllStoragePresentationContexts:
        scp.add_supported_context(pc.abstract_syntax, STORE_SYNTAXES)
    address = (args.store_host, args.store_port)
    try:
        storage = FileStorage(args.output_directory, layout="flat", on_stored=received)
        server = scp.start_server(address, block=False, storage=storage)
    except OSError as e:
        raise common.AppError(f"cannot listen on {address[0]}:{address[1]}: {e}") from None
    assert server is not None
    host, port = server.server_address
    received.out.verbose(f"storage SCP {args.aetitle} listening on {host}:{port}")
    return server


def run(args: argparse.Namespace) -> int:
    out = common.Console(args)
    query = common.load_query(args)
    model = common.query_model(args, "C-MOVE")
    destination = args.move_destination or args.aetitle
    received = Received(out)
    server = start_storage(args, received) if args.store_port is not None else None
    try:
        ae = common.make_ae(args)
        ae.add_requested_context(model)
        assoc = common.associate(ae, args, needed=[model])
        out.verbose(
            f"association with {args.call} at {args.host}:{args.port} established; "
            f"moving to {destination}"
        )
        final: tuple[Dataset, Dataset | None] | None = None
        with common.released(assoc):
            for status, identifier in assoc.send_c_move(query, destination, model):
                if int(status.Status) in (0xFF00, 0xFF01):
                    counts = common.sub_operation_counts(status)
                    out.verbose(
                        "pending: {remaining} remaining, {completed} completed, "
                        "{failed} failed, {warning} warning".format(**counts)
                    )
                else:
                    final = (status, identifier)
    finally:
        if server is not None:
            server.shutdown()
    if final is None:
        raise common.AppError("the C-MOVE ended without a final response")
    code, counts = common.report_retrieve(out, "C-MOVE", *final)
    if server is not None:
        out.info(f"{received.count} instance(s) received, written to {args.output_directory}")
    if code != 0x0000 or counts["failed"] or counts["warning"]:
        raise common.AppError(
            f"C-MOVE ended with status {common.status_text(code, 'C-MOVE')}: "
            f"{counts['failed']} failed, {counts['warning']} warning"
        )
    return common.EXIT_OK
