"""``dimse storescp``: a Storage SCP that writes every instance it receives as a DICOM file.

The data sets are written in Rust, as they arrive, after a File Meta Information (PS3.10),
without passing through Python or being decoded: to a temporary name in the final folder,
then renamed. Success (0x0000) is returned only once the file is complete under its final
name; a failed write (disk full, no permission) returns 0xA700 (Refused: Out of Resources)
and leaves no partial file. Files are named after the SOP Instance UID (``<uid>.dcm``); a
UID that is not a valid UID is named by a digest, so no file lands outside the output
folder. It accepts every storage SOP class and every transfer syntax pydicom knows, and
answers C-ECHO.
"""

from __future__ import annotations

import argparse
import os
import threading

from dimse import AllStoragePresentationContexts, sop
from dimse.apps import common, scp
from dimse.storage import FileStorage, StoredInstance

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = common.add_app_parser(
        subparsers, "storescp", "Storage SCP: write received instances to files", __doc__ or ""
    )
    parser.add_argument(
        "port",
        metavar="PORT",
        type=common.listen_port,
        help="the TCP port to listen on (0: let the system pick one, printed at start)",
    )
    common.add_output_directory(parser, "received files")
    storage = parser.add_argument_group("storage")
    storage.add_argument(
        "--layout",
        choices=("flat", "study"),
        default="flat",
        help="flat: DIR/<SOP Instance UID>.dcm (default); study: "
        "DIR/<Study Instance UID>/<Series Instance UID>/<SOP Instance UID>.dcm",
    )
    storage.add_argument(
        "--ignore",
        action="store_true",
        help="accept and answer success without writing anything (to measure the network)",
    )
    storage.add_argument(
        "--fsync",
        action="store_true",
        help="flush each file and its folder to the device before answering success (an "
        "acknowledged instance then survives a power loss; without it, a killed process)",
    )
    scp.add_listen_options(parser, "STORESCP")
    common.add_logging_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = common.Console(args)
    workers = scp.run_workers(args, args.port, out, "storescp")
    if workers is not None:
        return workers
    directory = args.output_directory
    if not args.ignore:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise common.UsageError(f"cannot create the output directory: {e}") from e
    ae = scp.make_scp_ae(args)
    syntaxes = scp.storage_transfer_syntaxes(args.prefer_uncompressed)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, syntaxes)
    ae.add_supported_context(sop.Verification)

    count = 0
    lock = threading.Lock()
    # Several workers write to one terminal: each says who it is.
    who = f"[worker {os.getpid()}] " if scp.is_worker() else ""

    def on_stored(instance: StoredInstance) -> None:
        # Only with -v: telling Python of each file costs a little.
        nonlocal count
        with lock:
            count += 1
        out.verbose(f"{who}stored {instance.path} from {instance.calling_ae_title}")

    storage = FileStorage(
        directory,
        layout=args.layout,
        fsync=args.fsync,
        discard=args.ignore,
        on_stored=on_stored if out.is_verbose else None,
    )
    # Files a killed predecessor was writing: never acknowledged, never complete (the
    # temporary files of live processes, as other workers', stay).
    for stale in storage.remove_stale_parts():
        out.verbose(f"deleted {stale}, left incomplete by a process that stopped")
    server = ae.start_server(
        (args.bind, args.port),
        block=False,
        storage=storage,
        evt_handlers=scp.negotiation_handlers(args),
        reuse_port=scp.is_worker(),
        tls=common.tls_from_args(args, server=True),
    )
    assert server is not None
    out.verbose(
        "discarding received data sets"
        if args.ignore
        else f"writing to {directory.absolute()} ({args.layout} layout)"
    )
    return scp.serve(server, out, "storescp")
