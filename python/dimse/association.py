"""Associations: the requestor side (``AE.associate``) and what handlers see."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import struct
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian as DEFLATED

from dimse import _core, dsutils, sop
from dimse.evt import (
    EVT_ABORTED,
    EVT_CONN_CLOSE,
    EVT_DIMSE_RECV,
    EVT_DIMSE_SENT,
    EVT_RELEASED,
    REQUESTOR_EVENTS,
    Event,
    EventType,
    bind_handler,
    check_events,
    notify,
    unbind_handler,
)
from dimse.exceptions import (
    AssociationAborted,
    AssociationRejected,
    DimseError,
    DimseTimeout,
    InvalidArgument,
    InvalidFile,
    InvalidResponse,
    NoAcceptedContext,
    NotEstablished,
)
from dimse.presentation import PresentationContext

__all__ = ["COMMAND_FIELDS", "Association", "ServiceUser", "status_dataset"]

_T = TypeVar("_T")

LOGGER = logging.getLogger(__name__)

#: Files whose data set is larger than this (bytes) are streamed by send_c_store, a
#: chunk at a time, instead of read whole first.
STREAM_THRESHOLD = 8 * 1024 * 1024

#: Command elements a response's status Dataset carries (PS3.7 Annex C): keyword ->
#: (tag, VR). Built with ``add_new``, which skips pydicom's keyword lookup.
STATUS_ELEMENTS: dict[str, tuple[int, str]] = {
    "AffectedSOPClassUID": (0x00000002, "UI"),
    "Status": (0x00000900, "US"),
    "OffendingElement": (0x00000901, "AT"),
    "ErrorComment": (0x00000902, "LO"),
    "ErrorID": (0x00000903, "US"),
    "AffectedSOPInstanceUID": (0x00001000, "UI"),
    "NumberOfRemainingSuboperations": (0x00001020, "US"),
    "NumberOfCompletedSuboperations": (0x00001021, "US"),
    "NumberOfFailedSuboperations": (0x00001022, "US"),
    "NumberOfWarningSuboperations": (0x00001023, "US"),
}

#: Command Field of each request (PS3.7 E.1); its response's is this | 0x8000.
COMMAND_FIELDS: dict[str, int] = {
    "C-STORE-RQ": 0x0001,
    "C-GET-RQ": 0x0010,
    "C-FIND-RQ": 0x0020,
    "C-MOVE-RQ": 0x0021,
    "C-ECHO-RQ": 0x0030,
    "N-EVENT-REPORT-RQ": 0x0100,
    "N-GET-RQ": 0x0110,
    "N-SET-RQ": 0x0120,
    "N-ACTION-RQ": 0x0130,
    "N-CREATE-RQ": 0x0140,
    "N-DELETE-RQ": 0x0150,
}


def _raw_value(vr: str, value: Any) -> bytes:
    """A command element's value encoded as Implicit VR Little Endian (PS3.5 7.1.2)."""
    if vr == "US":
        return struct.pack("<H", value)
    if vr == "AT":
        return b"".join(struct.pack("<HH", g, e) for g, e in value)
    raw = str(value).encode("ascii")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return raw


def command_dataset(command: bytes) -> Dataset:
    """A command set as a pydicom Dataset (``event.request``, ``event.message``)."""
    ds = Dataset()
    for keyword, value in _core.decode_command_set(command).items():
        if keyword.startswith("("):
            continue
        if keyword in ("OffendingElement", "AttributeIdentifierList"):
            value = [(g << 16) | e for g, e in value]
        setattr(ds, keyword, value)
    return ds


def status_dataset(command: bytes | dict[str, Any]) -> Dataset:
    """A response's Status and optional status elements, as a pydicom Dataset.

    The elements go in as raw (undecoded) elements, which pydicom converts on first
    access: building a status is then a few microseconds, not tens.
    """
    elements = _core.decode_command_set(command) if isinstance(command, bytes) else command
    ds = Dataset()
    for keyword, (tag, vr) in STATUS_ELEMENTS.items():
        if keyword in elements:
            raw = _raw_value(vr, elements[keyword])
            ds[tag] = RawDataElement(BaseTag(tag), vr, len(raw), raw, 0, True, True)
    return ds


class ServiceUser:
    """One side of an association: its AE title, address and implementation."""

    def __init__(self, ae_title: str, address: str, port: int) -> None:
        self.ae_title = ae_title
        self.address = address
        self.port = port
        self.implementation_class_uid: str | None = None
        self.implementation_version_name: str | None = None
        self.maximum_length: int | None = None

    def __repr__(self) -> str:
        return f"ServiceUser({self.ae_title!r}, {self.address}:{self.port})"


class Association:
    """An association requested by ``AE.associate()``.

    Whether or not it was accepted, the object is returned, as in pynetdicom: check
    ``is_established``, ``is_rejected`` (with ``result``, ``result_source`` and
    ``diagnostic``) and ``is_aborted``. As a context manager it raises the reason it is
    not established instead, and releases on exit.
    """

    def __init__(self, ae: Any, requestor: ServiceUser, acceptor: ServiceUser) -> None:
        self.ae = ae
        self.requestor = requestor
        self.acceptor = acceptor
        self.is_established = False
        self.is_rejected = False
        self.is_aborted = False
        self.is_released = False
        self.result: int | None = None
        self.result_source: int | None = None
        self.diagnostic: int | None = None
        self.error: Exception | None = None
        self.accepted_contexts: list[PresentationContext] = []
        self.rejected_contexts: list[PresentationContext] = []
        self.negotiated: dict[str, Any] = {}
        self.dimse_timeout: float | None = ae.dimse_timeout
        self._core: _core.Association | None = None
        self._message_ids = itertools.count(1)
        #: Handlers bound with associate(evt_handlers=...): EVT_C_STORE for C-GET.
        self._handlers: dict[Any, Any] = {}
        self._lock = threading.Lock()
        self._closed_told = False
        #: Message ID -> presentation context of the C-FIND/C-GET/C-MOVE in progress.
        self._outstanding: dict[int, int] = {}

    #: This side requested the association (pynetdicom's names).
    is_requestor = True
    is_acceptor = False

    # -- handlers -------------------------------------------------------------------------

    def bind(
        self, event: EventType, handler: Callable[..., Any], args: Sequence[Any] = ()
    ) -> None:
        """Binds ``handler`` to ``event`` on this association (called as
        ``handler(event, *args)``); an intervention event's handler replaces the one bound."""
        bind_handler(self._handlers, event, handler, args)
        check_events(self._handlers, REQUESTOR_EVENTS, "Association.bind()")

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        """Unbinds ``handler`` from ``event``; unknown bindings are ignored."""
        unbind_handler(self._handlers, event, handler)

    def get_handlers(self, event: EventType) -> list[tuple[Callable[..., Any], Sequence[Any]]]:
        """The handlers bound to ``event`` with their extra arguments."""
        return list(self._handlers.get(event, []))

    def _emit(self, event_type: EventType, **attrs: Any) -> None:
        """Calls the handlers of a notification event (nothing to do when none is bound)."""
        handlers = self._handlers.get(event_type)
        if handlers:
            notify(handlers, Event(self, event_type, attrs=attrs))

    def _emit_dimse(self, event_type: EventType, context_id: int, command: bytes) -> None:
        if self._handlers.get(event_type):
            self._emit(event_type, message=command_dataset(command), context_id=context_id)

    def _ended(self, event_type: EventType, **attrs: Any) -> None:
        """The association ended (released or aborted): tell once, then the connection
        closed."""
        if self._closed_told:
            return
        self._closed_told = True
        self._emit(event_type, **attrs)
        self._emit(EVT_CONN_CLOSE)

    # -- set up by AE.associate ---------------------------------------------------------

    def _established(self, core: _core.Association) -> None:
        self._core = core
        self.is_established = True
        self.negotiated = core.negotiated()
        n = self.negotiated
        self.acceptor.maximum_length = n["peer_max_pdu_length"]
        self.acceptor.implementation_class_uid = n.get("peer_implementation_class_uid")
        self.acceptor.implementation_version_name = n.get("peer_implementation_version_name")
        results = {
            "Acceptance": 0,
            "UserRejection": 1,
            "NoReason": 2,
            "AbstractSyntaxNotSupported": 3,
            "TransferSyntaxesNotSupported": 4,
        }
        for c in n["contexts"]:
            ts = [c["transfer_syntax"]] if c.get("transfer_syntax") else ["1.2.840.10008.1.2"]
            pc = PresentationContext(
                c["abstract_syntax"] if _is_uid(c["abstract_syntax"]) else "0",
                ts,
                context_id=c["id"],
                scu_role=c["requestor_is_scu"],
                scp_role=c["requestor_is_scp"],
                result=results.get(c["result"], 2),
            )
            (self.accepted_contexts if pc.result == 0 else self.rejected_contexts).append(pc)

    def _failed(self, error: Exception) -> None:
        self.error = error
        if isinstance(error, AssociationRejected):
            self.is_rejected = True
            self.result = error.result
            self.result_source = error.source
            self.diagnostic = error.reason
        else:
            self.is_aborted = True

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> Association:
        if not self.is_established:
            raise self.error or NotEstablished("the association is not established")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.is_established:
            if exc_type is None or issubclass(exc_type, Exception):
                self.release()
            else:
                self.abort()  # KeyboardInterrupt and friends: do not wait on the peer

    def __repr__(self) -> str:
        state = (
            "established"
            if self.is_established
            else "rejected"
            if self.is_rejected
            else "aborted"
            if self.is_aborted
            else "released"
        )
        return f"<Association {self.requestor.ae_title} -> {self.acceptor.ae_title} {state}>"

    # -- life cycle ---------------------------------------------------------------------

    def _require(self) -> _core.Association:
        if not self.is_established or self._core is None:
            raise NotEstablished(
                "the association is not established"
                + (f" ({self.error})" if self.error else "")
                + ": check is_established, or use it as a context manager"
            )
        return self._core

    def release(self) -> None:
        """Releases the association (A-RELEASE), waiting at most the ACSE timeout; a peer
        that does not answer gets an A-ABORT (and ``AcseTimeout`` is raised)."""
        if not self.is_established or self._core is None:
            return
        core, self._core = self._core, None
        self.is_established = False
        try:
            core.release(self.ae.acse_timeout)
            self.is_released = True
            self._ended(EVT_RELEASED)
        except DimseError as e:
            self.is_aborted = True
            core.abort()
            self._ended(EVT_ABORTED, reason=str(e))
            raise

    def abort(self) -> None:
        """Aborts the association (A-ABORT, service-user source); returns once it is sent."""
        core, self._core = self._core, None
        if core is not None and self.is_established:
            core.abort()
            self._ended(EVT_ABORTED, reason="aborted by this AE")
        self.is_established = False
        self.is_aborted = True

    # -- DIMSE --------------------------------------------------------------------------

    def _context_for(self, abstract_syntax: str) -> PresentationContext:
        for pc in self.accepted_contexts:
            if pc.abstract_syntax == abstract_syntax and pc.scu_role is not False:
                return pc
        proposed = ", ".join(sorted({p.abstract_syntax for p in self.accepted_contexts})) or "none"
        raise NoAcceptedContext(
            f"no accepted presentation context for {abstract_syntax}; "
            f"accepted abstract syntaxes: {proposed}. Add it with ae.add_requested_context()"
        )

    def _next_message_id(self, msg_id: int | None) -> int:
        if msg_id is not None:
            if not 0 <= msg_id <= 0xFFFF:
                raise ValueError(f"msg_id must be 0..65535, not {msg_id}")
            return msg_id
        with self._lock:
            return next(self._message_ids) % 0x10000

    def _exchange(
        self,
        context_id: int,
        request: dict[str, Any],
        dataset: bytes | tuple[str, int] | None,
    ) -> tuple[dict[str, Any], bytes, bytes | None]:
        """Sends a request and returns its response (command elements by keyword, the raw
        command set, the data set). ``dataset`` is the data set's bytes, or (path, offset)
        of a file whose bytes from offset on are the data set, streamed as read."""
        core = self._require()
        command = _core.encode_message(request, has_dataset=dataset is not None)
        self._emit_dimse(EVT_DIMSE_SENT, context_id, command)
        if isinstance(dataset, tuple):
            path, offset = dataset
            event = self._call_core(
                lambda: core.request_file(context_id, command, path, offset, self.dimse_timeout)
            )
        else:
            event = self._call_core(
                lambda: core.request(context_id, command, dataset, self.dimse_timeout)
            )
        event = self._message_event(core, event)
        response = self._check_response(event, request["type"], {request["message_id"]})
        return response, event[2], event[3]

    def _call_core(self, call: Callable[[], _T]) -> _T:
        """Runs a blocking call on the link; a timeout aborts, an abort ends the
        association (and both raise)."""
        try:
            return call()
        except DimseTimeout:
            LOGGER.warning("no response within the DIMSE timeout: aborting the association")
            self.abort()
            raise
        except AssociationAborted as e:
            self.is_established = False
            self.is_aborted = True
            self._core = None
            self._ended(EVT_ABORTED, reason=str(e))
            raise

    def _message_event(self, core: _core.Association, event: tuple[Any, ...]) -> tuple[Any, ...]:
        """``event`` when it is a message; otherwise the association ended: raise why."""
        kind = event[0]
        if kind == "release_requested":
            # The acceptor asked to release while our request was outstanding: answer it
            # (PS3.8 AR-2/AR-4), the request goes unanswered.
            core.release_response()
            self.is_established = False
            self.is_released = True
            self._core = None
            self._ended(EVT_RELEASED)
            raise NotEstablished("the peer released the association before responding")
        if kind != "message":
            self.is_established = False
            self.is_aborted = True
            self._core = None
            self._ended(EVT_ABORTED, reason=repr(event[1:]))
            if kind == "aborted":
                raise AssociationAborted(
                    "the peer aborted the association "
                    f"(A-ABORT source {event[1]}, reason {event[2]})"
                )
            raise AssociationAborted(
                f"the association ended: {event[1] if len(event) > 1 else kind}"
            )
        self._emit_dimse(EVT_DIMSE_RECV, event[1], event[2])
        return event

    def _check_response(
        self, event: tuple[Any, ...], request_type: str, message_ids: Collection[int]
    ) -> dict[str, Any]:
        """The response's command elements, checked to answer one of ``message_ids``;
        anything else is a protocol error: abort and raise InvalidResponse."""
        response = _core.decode_command_set(event[2])
        expected = COMMAND_FIELDS[request_type] | 0x8000
        if (
            response.get("CommandField") != expected
            or response.get("MessageIDBeingRespondedTo") not in message_ids
            or "Status" not in response
        ):
            self.abort()
            raise InvalidResponse(
                f"expected a response (Command Field 0x{expected:04X}) with a Status to "
                f"message {', '.join(map(str, sorted(message_ids)))}, got Command Field "
                f"{response.get('CommandField')} to message "
                f"{response.get('MessageIDBeingRespondedTo')}"
            )
        return response

    def _store_context(
        self, sop_class: str, transfer_syntax: str | None
    ) -> tuple[PresentationContext, bool]:
        """The accepted context to send an instance of ``sop_class`` encoded in
        ``transfer_syntax`` on, and whether the data set must be re-encoded for it."""
        candidates = [
            pc
            for pc in self.accepted_contexts
            if pc.abstract_syntax == sop_class and pc.scu_role is not False
        ]
        for pc in candidates:
            if transfer_syntax is None or pc.transfer_syntax[0] == transfer_syntax:
                return pc, transfer_syntax is None
        if transfer_syntax is None or transfer_syntax in dsutils.UNCOMPRESSED:
            for pc in candidates:
                if pc.transfer_syntax[0] in dsutils.UNCOMPRESSED:
                    return pc, True
        accepted = ", ".join(pc.transfer_syntax[0] for pc in candidates) or "none"
        raise NoAcceptedContext(
            f"no accepted presentation context can carry SOP class {sop_class} in transfer "
            f"syntax {transfer_syntax}: accepted transfer syntaxes for it: {accepted}. Propose "
            "the data set's transfer syntax (ae.add_requested_context(sop_class, ts)), or "
            "decompress it first"
        )

    def send_c_store(
        self,
        dataset: Dataset | str | os.PathLike[str],
        msg_id: int | None = None,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> Dataset:
        """Sends a C-STORE request (Storage, PS3.4 B) and returns the response status.

        ``dataset`` is a pydicom Dataset (encoded by pydicom in the accepted transfer
        syntax) or the path of a DICOM file: its File Meta Information is read in Rust and
        the bytes after it are sent as they are when its transfer syntax was accepted; it
        is re-encoded through pydicom only to convert between uncompressed syntaxes.
        """
        context_id, request, data = self._prepare_store(
            dataset, msg_id, priority, originator_aet, originator_id
        )
        response, _command, _ = self._exchange(context_id, request, data)
        return status_dataset(response)

    def _prepare_store(
        self,
        dataset: Dataset | str | os.PathLike[str],
        msg_id: int | None,
        priority: int,
        originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> tuple[int, dict[str, Any], bytes | tuple[str, int]]:
        """The context, request and data set (bytes, or (path, offset) to stream) of a
        C-STORE."""
        if priority not in _PRIORITIES:
            raise ValueError(f"priority must be 0 (medium), 1 (high) or 2 (low), not {priority}")
        self._require()
        data: bytes | tuple[str, int]
        if isinstance(dataset, Dataset):
            sop_class = str(dataset.SOPClassUID)
            sop_instance = str(dataset.SOPInstanceUID)
            meta = getattr(dataset, "file_meta", None)
            ts = str(meta.TransferSyntaxUID) if meta and "TransferSyntaxUID" in meta else None
            pc, _ = self._store_context(sop_class, ts)
            data = dsutils.encode(dataset, pc.transfer_syntax[0])
        else:
            path = os.fspath(dataset)
            header = _core.read_file_meta(path)
            sop_class = header["media_storage_sop_class_uid"]
            sop_instance = header["media_storage_sop_instance_uid"]
            pc, convert = self._store_context(sop_class, header["transfer_syntax_uid"])
            if convert:
                ds = dcmread(path)
                data = dsutils.encode(ds, pc.transfer_syntax[0])
            elif (
                header["transfer_syntax_uid"] != DEFLATED
                and os.path.getsize(path) - header["data_offset"] > STREAM_THRESHOLD
            ):
                # Large: read as it is sent, a chunk at a time (memory stays bounded).
                data = (path, header["data_offset"])
            else:
                with open(path, "rb") as f:
                    f.seek(header["data_offset"])
                    data = f.read()
                if len(data) % 2 and header["transfer_syntax_uid"] == DEFLATED:
                    # PS3.5 A.5: deflated data sets are padded to even length with one
                    # NUL; some writers (DCMTK's dcmconv) leave the pad to the sender.
                    data += b"\0"
        request: dict[str, Any] = {
            "type": "C-STORE-RQ",
            "affected_sop_class_uid": sop_class,
            "message_id": self._next_message_id(msg_id),
            "priority": _PRIORITIES[priority],
            "affected_sop_instance_uid": sop_instance,
        }
        if originator_aet is not None:
            request["move_originator_ae_title"] = originator_aet
        if originator_id is not None:
            request["move_originator_message_id"] = originator_id
        return pc.context_id or 1, request, data

    @property
    def async_window(self) -> int | None:
        """How many operations we may have outstanding at once (PS3.7 D.3.3.3, the
        negotiated Asynchronous Operations Window): 1 unless both sides agreed to more,
        None when the peer set no limit."""
        invoked = int(self.negotiated.get("async_ops", (1, 1))[0]) if self.negotiated else 1
        return None if invoked == 0 else invoked

    def send_c_store_many(
        self,
        datasets: Iterable[Dataset | str | os.PathLike[str]],
        window: int | None = None,
        priority: int = 2,
    ) -> Iterator[tuple[Dataset | str | os.PathLike[str], Dataset | Exception]]:
        """Sends a C-STORE for each data set or file with up to ``window`` requests
        outstanding at once, and yields ``(item, status)`` as the responses arrive,
        matched by Message ID. ``window`` defaults to, and never exceeds, the negotiated
        window (:attr:`async_window`; 16 when the peer set no limit): propose one with
        ``AsynchronousOperationsWindowNegotiation`` in ``associate(ext_neg=...)``. Without
        one this is :meth:`send_c_store` in a loop.

        An item that cannot be sent (an unreadable file, no accepted context for it)
        yields ``(item, exception)`` and the others go on; a failure of the association
        raises. Files above the streaming threshold are sent alone, after the responses
        outstanding. Leaving the loop early waits for the responses outstanding."""
        if window is not None and window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        negotiated = self.async_window
        limit = window or negotiated or 16
        if negotiated is not None:
            limit = min(limit, negotiated)
        return self._store_many(iter(datasets), limit, priority)

    def _store_many(
        self,
        items: Iterator[Dataset | str | os.PathLike[str]],
        limit: int,
        priority: int,
    ) -> Iterator[tuple[Dataset | str | os.PathLike[str], Dataset | Exception]]:
        pending: dict[int, Dataset | str | os.PathLike[str]] = {}

        def collect() -> tuple[Dataset | str | os.PathLike[str], Dataset]:
            core = self._require()
            event = self._message_event(
                core, self._call_core(lambda: core.receive(self.dimse_timeout))
            )
            response = self._check_response(event, "C-STORE-RQ", pending)
            return pending.pop(response["MessageIDBeingRespondedTo"]), status_dataset(response)

        try:
            for item in items:
                try:
                    context_id, request, data = self._prepare_store(item, None, priority)
                except (InvalidFile, NoAcceptedContext, OSError) as e:
                    yield item, e
                    continue
                while len(pending) >= limit or (pending and isinstance(data, tuple)):
                    yield collect()
                if isinstance(data, tuple):
                    response, _, _ = self._exchange(context_id, request, data)
                    yield item, status_dataset(response)
                    continue
                core = self._require()
                command = _core.encode_message(request, has_dataset=True)
                self._emit_dimse(EVT_DIMSE_SENT, context_id, command)
                self._call_core(functools.partial(core.send, context_id, command, data))
                pending[request["message_id"]] = item
            while pending:
                yield collect()
        finally:
            # Left early: the responses outstanding still come; read them so that the
            # association stays usable.
            while pending and self.is_established:
                collect()

    # -- C-FIND (PS3.4 C.4.1) -------------------------------------------------------------

    def send_c_find(
        self,
        dataset: Dataset,
        query_model: str,
        msg_id: int | None = None,
        priority: int = 2,
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """Sends a C-FIND request; returns an iterator of ``(status, identifier)``: one per
        pending match, then the final status with ``None``. Stopping the iteration early
        (``break``, or closing it) sends a C-CANCEL-RQ and reads the remaining responses.

        ``query_model`` is the information model's SOP Class UID, or "P" (patient root),
        "S" (study root), "W" (modality worklist)."""
        model = _QUERY_MODELS.get(query_model, query_model)
        return self._send_query("C-FIND", dataset, model, msg_id, priority, {})

    def _send_query(
        self,
        kind: str,
        dataset: Dataset,
        model: str,
        msg_id: int | None,
        priority: int,
        extra: dict[str, Any],
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """Sends a C-FIND/C-GET/C-MOVE request and returns the iterator of its responses."""
        if priority not in _PRIORITIES:
            raise ValueError(f"priority must be 0 (medium), 1 (high) or 2 (low), not {priority}")
        pc = self._context_for(model)
        core = self._require()
        ts = pc.transfer_syntax[0]
        message_id = self._next_message_id(msg_id)
        request = {
            "type": f"{kind}-RQ",
            "affected_sop_class_uid": model,
            "message_id": message_id,
            "priority": _PRIORITIES[priority],
            **extra,
        }
        command = _core.encode_message(request, has_dataset=True)
        self._emit_dimse(EVT_DIMSE_SENT, pc.context_id or 1, command)
        core.send(pc.context_id or 1, command, dsutils.encode(dataset, ts))
        self._outstanding[message_id] = pc.context_id or 1
        field = COMMAND_FIELDS[f"{kind}-RQ"] | 0x8000
        return self._retrieve_responses(core, pc.context_id or 1, message_id, ts, field)

    def _next_response(
        self, core: _core.Association, message_id: int, expected: int
    ) -> tuple[dict[str, Any], bytes | None]:
        try:
            event = core.receive(self.dimse_timeout)
        except DimseTimeout:
            LOGGER.warning("no response within the DIMSE timeout: aborting the association")
            self.abort()
            raise
        except AssociationAborted as e:
            self.is_established = False
            self.is_aborted = True
            self._core = None
            self._ended(EVT_ABORTED, reason=str(e))
            raise
        if event[0] != "message":
            self.is_established = False
            self.is_aborted = True
            self._core = None
            self._ended(EVT_ABORTED, reason=repr(event[1:]))
            raise AssociationAborted(f"the association ended: {event[1:]}")
        self._emit_dimse(EVT_DIMSE_RECV, event[1], event[2])
        response = _core.decode_command_set(event[2])
        if response.get("CommandField") == 0x0001:
            # A C-STORE sub-operation of our C-GET (PS3.4 C.4.3): answer it, read on.
            self._serve_sub_store(core, event[1], event[2], event[3], response)
            return self._next_response(core, message_id, expected)
        if (
            response.get("CommandField") != expected
            or response.get("MessageIDBeingRespondedTo") != message_id
            or "Status" not in response
        ):
            self.abort()
            raise InvalidResponse(
                f"expected a response (Command Field 0x{expected:04X}) to message {message_id}, "
                f"got Command Field {response.get('CommandField')} to message "
                f"{response.get('MessageIDBeingRespondedTo')}"
            )
        return response, event[3]

    def _serve_sub_store(
        self,
        core: _core.Association,
        context_id: int,
        command: bytes,
        data: bytes | None,
        request: dict[str, Any],
    ) -> None:
        from dimse.evt import EVT_C_STORE, Event

        pc = next((c for c in self.accepted_contexts if c.context_id == context_id), None)
        status: dict[str, Any]
        handler = self._handlers.get(EVT_C_STORE)
        if handler is None or pc is None:
            status = {"status": 0xC211, "error_comment": "no handler bound to EVT_C_STORE"}
        else:
            fn, args = handler[0]
            event = Event(
                self,
                EVT_C_STORE,
                request=_request_dataset(request),
                context=pc,
                data=data or b"",
            )
            try:
                result = fn(event, *args)
                code = int(result.Status) if isinstance(result, Dataset) else int(result)
                status = {"status": code}
            except Exception as e:
                LOGGER.exception("the EVT_C_STORE handler raised")
                status = {"status": 0xC211, "error_comment": repr(e).replace("\\", "/")[:64]}
        rsp = {
            "type": "C-STORE-RSP",
            "message_id_being_responded_to": request["MessageID"],
            "affected_sop_class_uid": request["AffectedSOPClassUID"],
            "affected_sop_instance_uid": request["AffectedSOPInstanceUID"],
            **status,
        }
        command = _core.encode_message(rsp, has_dataset=False)
        self._emit_dimse(EVT_DIMSE_SENT, context_id, command)
        core.send(context_id, command)

    def send_c_get(
        self,
        dataset: Dataset,
        query_model: str,
        msg_id: int | None = None,
        priority: int = 2,
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """Sends a C-GET request; returns an iterator of ``(status, identifier)`` (pending
        statuses carry the sub-operation counters; the final one may carry the Failed SOP
        Instance UID List). The instances arrive as C-STORE sub-operations on this
        association and go to its ``EVT_C_STORE`` handler: propose the storage contexts
        with SCP role selection (``build_role(uid, scp_role=True)`` in ``ext_neg``).

        ``query_model`` is the model's SOP Class UID, or "P" / "S"."""
        model = _GET_MODELS.get(query_model, query_model)
        return self._send_query("C-GET", dataset, model, msg_id, priority, {})

    def _retrieve_responses(
        self, core: _core.Association, context_id: int, message_id: int, ts: str, field: int
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        finished = False
        try:
            while True:
                response, data = self._next_response(core, message_id, field)
                status = status_dataset(response)
                identifier = dsutils.decode(data, ts) if data else None
                if response["Status"] in (0xFF00, 0xFF01):
                    yield status, identifier
                    continue
                finished = True
                yield status, identifier
                return
        finally:
            self._outstanding.pop(message_id, None)
            if not finished and self.is_established and self._core is core:
                self.send_c_cancel(message_id, context_id)
                while True:
                    response, _ = self._next_response(core, message_id, field)
                    if response["Status"] not in (0xFF00, 0xFF01):
                        break

    def send_c_move(
        self,
        dataset: Dataset,
        move_aet: str,
        query_model: str,
        msg_id: int | None = None,
        priority: int = 2,
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        """Sends a C-MOVE request asking the peer to store the matches at the AE
        ``move_aet``; returns an iterator of ``(status, identifier)`` as ``send_c_get``.

        ``query_model`` is the model's SOP Class UID, or "P" / "S"."""
        model = _MOVE_MODELS.get(query_model, query_model)
        extra = {"move_destination": move_aet}
        return self._send_query("C-MOVE", dataset, model, msg_id, priority, extra)

    def send_c_cancel(
        self, msg_id: int, context_id: int | None = None, query_model: str | None = None
    ) -> None:
        """Sends a C-CANCEL-RQ for the request ``msg_id`` (PS3.7 9.3.2.3), on the
        presentation context ``context_id`` or that of ``query_model`` (the request's)."""
        core = self._require()
        if context_id is None:
            context_id = self._outstanding.get(msg_id)
        if context_id is None:
            if query_model is None:
                raise InvalidArgument(
                    f"message {msg_id} is not outstanding here: give send_c_cancel() the "
                    "request's context_id or its query_model"
                )
            models = [
                table.get(query_model, query_model)
                for table in (_QUERY_MODELS, _GET_MODELS, _MOVE_MODELS)
            ]
            accepted = [pc for pc in self.accepted_contexts if pc.abstract_syntax in models]
            if not accepted:
                self._context_for(models[0])  # raises NoAcceptedContext, naming the model
            context_id = accepted[0].context_id or 1
        command = _core.encode_message(
            {"type": "C-CANCEL-RQ", "message_id_being_responded_to": msg_id}
        )
        self._emit_dimse(EVT_DIMSE_SENT, context_id, command)
        core.send(context_id, command)

    # -- DIMSE-N (PS3.7 10) --------------------------------------------------------------

    def _n_request(
        self,
        request: dict[str, Any],
        dataset: Dataset | None,
        class_uid: str,
        meta_uid: str | None,
        msg_id: int | None,
    ) -> tuple[Dataset, Dataset | None]:
        """Sends an N-service request on the context of ``meta_uid`` (a Meta SOP Class,
        e.g. print management) or ``class_uid``; returns the status and the reply data
        set (None when the response carries none)."""
        pc = self._context_for(meta_uid or class_uid)
        ts = pc.transfer_syntax[0]
        request["message_id"] = self._next_message_id(msg_id)
        data = dsutils.encode(dataset, ts) if dataset is not None else None
        response, _command, reply = self._exchange(pc.context_id or 1, request, data)
        return status_dataset(response), (dsutils.decode(reply, ts) if reply else None)

    def send_n_event_report(
        self,
        dataset: Dataset | None,
        event_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-EVENT-REPORT (PS3.7 10.1.1): returns (status, event reply)."""
        request = {
            "type": "N-EVENT-REPORT-RQ",
            "affected_sop_class_uid": class_uid,
            "affected_sop_instance_uid": instance_uid,
            "event_type_id": event_type,
        }
        return self._n_request(request, dataset, class_uid, meta_uid, msg_id)

    def send_n_get(
        self,
        identifier_list: list[int] | None,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-GET (PS3.7 10.1.2) of the attributes whose tags are listed (None or empty:
        all); returns (status, attribute list)."""
        request: dict[str, Any] = {
            "type": "N-GET-RQ",
            "requested_sop_class_uid": class_uid,
            "requested_sop_instance_uid": instance_uid,
        }
        if identifier_list:
            request["attribute_identifier_list"] = [
                (int(t) >> 16, int(t) & 0xFFFF) for t in identifier_list
            ]
        return self._n_request(request, None, class_uid, meta_uid, msg_id)

    def send_n_set(
        self,
        dataset: Dataset,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-SET (PS3.7 10.1.3) with ``dataset`` as the modification list; returns
        (status, attribute list)."""
        request = {
            "type": "N-SET-RQ",
            "requested_sop_class_uid": class_uid,
            "requested_sop_instance_uid": instance_uid,
        }
        return self._n_request(request, dataset, class_uid, meta_uid, msg_id)

    def send_n_action(
        self,
        dataset: Dataset | None,
        action_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-ACTION (PS3.7 10.1.4): returns (status, action reply)."""
        request = {
            "type": "N-ACTION-RQ",
            "requested_sop_class_uid": class_uid,
            "requested_sop_instance_uid": instance_uid,
            "action_type_id": action_type,
        }
        return self._n_request(request, dataset, class_uid, meta_uid, msg_id)

    def send_n_create(
        self,
        dataset: Dataset | None,
        class_uid: str,
        instance_uid: str | None = None,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-CREATE (PS3.7 10.1.5); without ``instance_uid`` the SCP chooses it (in the
        response's AffectedSOPInstanceUID). Returns (status, attribute list)."""
        request: dict[str, Any] = {"type": "N-CREATE-RQ", "affected_sop_class_uid": class_uid}
        if instance_uid is not None:
            request["affected_sop_instance_uid"] = instance_uid
        return self._n_request(request, dataset, class_uid, meta_uid, msg_id)

    def send_n_delete(
        self,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> Dataset:
        """N-DELETE (PS3.7 10.1.6): returns the status."""
        request = {
            "type": "N-DELETE-RQ",
            "requested_sop_class_uid": class_uid,
            "requested_sop_instance_uid": instance_uid,
        }
        status, _ = self._n_request(request, None, class_uid, meta_uid, msg_id)
        return status

    def send_c_echo(self, msg_id: int | None = None) -> Dataset:
        """Sends a C-ECHO request (Verification, PS3.4 A) and returns the response status
        as a Dataset (``.Status``). A failure status is returned, not raised; an abort or a
        timeout raises."""
        pc = self._context_for(sop.Verification)
        request = {
            "type": "C-ECHO-RQ",
            "affected_sop_class_uid": sop.Verification,
            "message_id": self._next_message_id(msg_id),
        }
        response, _command, _ = self._exchange(pc.context_id or 1, request, None)
        return status_dataset(response)


_PRIORITIES = {0: "Medium", 1: "High", 2: "Low"}

#: Short names of the retrieve (C-MOVE) information models.
_MOVE_MODELS = {
    "P": "1.2.840.10008.5.1.4.1.2.1.2",  # Patient Root Query/Retrieve - MOVE
    "S": "1.2.840.10008.5.1.4.1.2.2.2",  # Study Root Query/Retrieve - MOVE
}

#: Short names of the retrieve (C-GET) information models.
_GET_MODELS = {
    "P": "1.2.840.10008.5.1.4.1.2.1.3",  # Patient Root Query/Retrieve - GET
    "S": "1.2.840.10008.5.1.4.1.2.2.3",  # Study Root Query/Retrieve - GET
}

#: Short names of the query information models, as pynetdicom users pass them.
_QUERY_MODELS = {
    "P": "1.2.840.10008.5.1.4.1.2.1.1",  # Patient Root Query/Retrieve - FIND
    "S": "1.2.840.10008.5.1.4.1.2.2.1",  # Study Root Query/Retrieve - FIND
    "W": "1.2.840.10008.5.1.4.31",  # Modality Worklist - FIND
}


def _request_dataset(elements: dict[str, Any]) -> Dataset:
    """A request's command elements as a Dataset (``event.request``)."""
    ds = Dataset()
    for keyword, value in elements.items():
        if not keyword.startswith("(") and keyword not in ("OffendingElement",):
            setattr(ds, keyword, value)
    return ds


def _is_uid(value: str) -> bool:
    return bool(value) and len(value) <= 64 and all(c.isdigit() or c == "." for c in value)
