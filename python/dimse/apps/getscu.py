"""``dimse getscu``: retrieve instances with C-GET, on the same association.

The query (QUERYFILE and -k keys, as findscu) names what to retrieve. The association
proposes the Get model and the storage SOP Classes with SCP role selection, so that the
peer may send the instances back as C-STORE sub-operations; each is written to -od as it
arrived, without being decoded. The sub-operation counts are printed at the end.

The storage contexts are those of dimse.StoragePresentationContexts (the first 127 of
them, with the uncompressed transfer syntaxes): with the Get context that makes the 128
an association can carry.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from dimse import StoragePresentationContexts, build_role, evt
from dimse.apps import common
from dimse.evt import Event
from dimse.exceptions import DimseError

if TYPE_CHECKING:
    from dimse.storage import FileStorage

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = common.add_app_parser(
        subparsers,
        "getscu",
        "Retrieve SCU: get instances with C-GET, write them to files",
        __doc__ or "",
    )
    common.add_peer_arguments(parser)
    common.add_query_options(parser)
    common.add_output_directory(parser, "the retrieved instances")
    common.add_network_options(parser, "GETSCU")
    common.add_logging_options(parser)
    parser.set_defaults(run=run)


class Receiver:
    """The EVT_C_STORE handler of the C-GET's sub-operations: writes each instance as it
    arrived and answers 0x0000, or 0xA700 (out of resources) when writing fails."""

    def __init__(self, storage: FileStorage, out: common.Console) -> None:
        self.storage = storage
        self.out = out
        self.written: list[Path] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def _failed(self, uid: str, reason: str, status: int) -> int:
        with self.lock:
            self.failures.append(f"{uid}: {reason}")
        self.out.info(f"{uid}: {reason}")
        return status

    def __call__(self, event: Event) -> int:
        request = event.request
        assert request is not None
        uid = str(request.AffectedSOPInstanceUID)
        try:
            path = self.storage.write(
                sop_class_uid=str(request.AffectedSOPClassUID),
                sop_instance_uid=uid,
                transfer_syntax_uid=event.context.transfer_syntax[0],
                data=event.encoded_dataset(include_meta=False),
                source_ae_title=event.assoc.acceptor.ae_title,
            )
        except OSError as e:
            return self._failed(uid, f"not written: {e}", 0xA700)
        except DimseError as e:
            # A UID that File Meta Information cannot carry: the peer's data is at fault.
            return self._failed(uid, f"not written: {e}", 0xC211)
        with self.lock:
            self.written.append(Path(path))
        self.out.verbose(f"stored {path}")
        return 0x0000


def run(args: argparse.Namespace) -> int:
    out = common.Console(args)
    query = common.load_query(args)
    model = common.query_model(args, "C-GET")
    try:
        args.output_directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise common.AppError(f"cannot create {args.output_directory}: {e}") from None
    from dimse.storage import FileStorage  # the Rust writer; imported when needed

    receiver = Receiver(FileStorage(args.output_directory, layout="flat"), out)

    ae = common.make_ae(args)
    ae.add_requested_context(model)
    storage = [pc.abstract_syntax for pc in StoragePresentationContexts][:127]
    for uid in storage:
        ae.add_requested_context(uid)
    roles = [build_role(uid, scp_role=True) for uid in storage]
    assoc = common.associate(
        ae, args, needed=[model], ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver)]
    )
    out.verbose(f"association with {args.call} at {args.host}:{args.port} established")
    final: tuple[Dataset, Dataset | None] | None = None
    with common.released(assoc):
        for status, identifier in assoc.send_c_get(query, model):
            if int(status.Status) in (0xFF00, 0xFF01):
                counts = common.sub_operation_counts(status)
                out.verbose(
                    "pending: {remaining} remaining, {completed} completed, {failed} failed, "
                    "{warning} warning".format(**counts)
                )
            else:
                final = (status, identifier)
    if final is None:
        raise common.AppError("the C-GET ended without a final response")
    code, counts = common.report_retrieve(out, "C-GET", *final)
    out.info(f"{len(receiver.written)} file(s) written to {args.output_directory}")
    for line in receiver.failures:
        out.info(f"  failure: {line}")
    if code != 0x0000 or counts["failed"] or counts["warning"] or receiver.failures:
        raise common.AppError(
            f"C-GET ended with status {common.status_text(code, 'C-GET')}: "
            f"{counts['failed']} failed, {counts['warning']} warning"
        )
    return common.EXIT_OK
