"""Events and handlers, as in pynetdicom: ``evt_handlers=[(evt.EVT_C_ECHO, handler)]``.

Intervention events expect an answer from their handler (a status, a verdict); a
notification event only informs, and costs nothing unless a handler is bound to it.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

LOGGER = logging.getLogger(__name__)

__all__ = [
    "EVT_ABORTED",
    "EVT_ACCEPTED",
    "EVT_ASYNC_OPS",
    "EVT_CONN_CLOSE",
    "EVT_CONN_OPEN",
    "EVT_C_ECHO",
    "EVT_C_FIND",
    "EVT_C_GET",
    "EVT_C_MOVE",
    "EVT_C_STORE",
    "EVT_DIMSE_RECV",
    "EVT_DIMSE_SENT",
    "EVT_ESTABLISHED",
    "EVT_N_ACTION",
    "EVT_N_CREATE",
    "EVT_N_DELETE",
    "EVT_N_EVENT_REPORT",
    "EVT_N_GET",
    "EVT_N_SET",
    "EVT_PDU_RECV",
    "EVT_PDU_SENT",
    "EVT_REJECTED",
    "EVT_RELEASED",
    "EVT_REQUESTED",
    "EVT_SOP_COMMON",
    "EVT_SOP_EXTENDED",
    "EVT_USER_ID",
    "Event",
    "EventType",
    "HandlerArg",
]


@dataclass(frozen=True)
class EventType:
    """An event; ``is_intervention`` says whether its handler must answer."""

    name: str
    description: str
    is_intervention: bool

    def __repr__(self) -> str:
        return self.name


EVT_C_ECHO = EventType("EVT_C_ECHO", "C-ECHO request received", True)
EVT_C_STORE = EventType("EVT_C_STORE", "C-STORE request received", True)
EVT_C_FIND = EventType("EVT_C_FIND", "C-FIND request received", True)
EVT_C_GET = EventType("EVT_C_GET", "C-GET request received", True)
EVT_C_MOVE = EventType("EVT_C_MOVE", "C-MOVE request received", True)
EVT_N_EVENT_REPORT = EventType("EVT_N_EVENT_REPORT", "N-EVENT-REPORT request received", True)
EVT_N_GET = EventType("EVT_N_GET", "N-GET request received", True)
EVT_N_SET = EventType("EVT_N_SET", "N-SET request received", True)
EVT_N_ACTION = EventType("EVT_N_ACTION", "N-ACTION request received", True)
EVT_N_CREATE = EventType("EVT_N_CREATE", "N-CREATE request received", True)
EVT_N_DELETE = EventType("EVT_N_DELETE", "N-DELETE request received", True)
EVT_USER_ID = EventType("EVT_USER_ID", "user identity negotiation", True)
EVT_SOP_EXTENDED = EventType("EVT_SOP_EXTENDED", "SOP class extended negotiation", True)
EVT_SOP_COMMON = EventType("EVT_SOP_COMMON", "SOP class common extended negotiation", True)
EVT_ASYNC_OPS = EventType("EVT_ASYNC_OPS", "asynchronous operations window negotiation", True)

EVT_ESTABLISHED = EventType("EVT_ESTABLISHED", "association established", False)
EVT_RELEASED = EventType("EVT_RELEASED", "association released", False)
EVT_ABORTED = EventType("EVT_ABORTED", "association aborted", False)
EVT_REJECTED = EventType("EVT_REJECTED", "association rejected", False)
EVT_REQUESTED = EventType("EVT_REQUESTED", "association requested", False)
EVT_ACCEPTED = EventType("EVT_ACCEPTED", "association accepted", False)
EVT_CONN_OPEN = EventType("EVT_CONN_OPEN", "connection opened", False)
EVT_CONN_CLOSE = EventType("EVT_CONN_CLOSE", "connection closed", False)
EVT_DIMSE_RECV = EventType("EVT_DIMSE_RECV", "DIMSE message received", False)
EVT_DIMSE_SENT = EventType("EVT_DIMSE_SENT", "DIMSE message sent", False)
EVT_PDU_RECV = EventType("EVT_PDU_RECV", "PDU received", False)
EVT_PDU_SENT = EventType("EVT_PDU_SENT", "PDU sent", False)

#: Intervention events of the performing side (a server's handlers).
SERVICE_EVENTS = frozenset(
    {
        EVT_C_ECHO,
        EVT_C_FIND,
        EVT_C_GET,
        EVT_C_MOVE,
        EVT_C_STORE,
        EVT_N_EVENT_REPORT,
        EVT_N_GET,
        EVT_N_SET,
        EVT_N_ACTION,
        EVT_N_CREATE,
        EVT_N_DELETE,
    }
)
NEGOTIATION_EVENTS = frozenset({EVT_USER_ID, EVT_SOP_EXTENDED, EVT_SOP_COMMON, EVT_ASYNC_OPS})
#: Every notification event; a server delivers them all, a requestor all but the PDU ones.
NOTIFICATION_EVENTS = frozenset(
    {
        EVT_ESTABLISHED,
        EVT_RELEASED,
        EVT_ABORTED,
        EVT_REJECTED,
        EVT_REQUESTED,
        EVT_ACCEPTED,
        EVT_CONN_OPEN,
        EVT_CONN_CLOSE,
        EVT_DIMSE_RECV,
        EVT_DIMSE_SENT,
        EVT_PDU_RECV,
        EVT_PDU_SENT,
    }
)
#: Events a requestor's association calls handlers for: the C-STORE sub-operations of a
#: C-GET, and the notifications it can see from Python.
REQUESTOR_EVENTS = frozenset({EVT_C_STORE}) | (
    NOTIFICATION_EVENTS - {EVT_PDU_RECV, EVT_PDU_SENT, EVT_REQUESTED, EVT_ACCEPTED}
)

#: A handler binding: (event, handler) or (event, handler, [extra args]).
HandlerArg = (
    tuple[EventType, Callable[..., Any]] | tuple[EventType, Callable[..., Any], Sequence[Any]]
)


@dataclass
class Event:
    """What a handler receives.

    ``assoc`` is the association the event came on; ``request`` the request's command set
    as a pydicom Dataset (``event.request.MessageID``); ``context`` the presentation
    context; ``timestamp`` when the event was raised.
    """

    assoc: Any
    event: EventType
    request: Dataset | None = None
    context: Any = None
    timestamp: datetime.datetime = field(default_factory=datetime.datetime.now)
    attrs: dict[str, Any] = field(default_factory=dict)
    #: The request's data set as received (encoded in the context's transfer syntax).
    data: bytes | None = None
    #: C-STORE: a data set larger than ``AE.stream_threshold`` is not held in memory but
    #: spooled to this DICOM file (File Meta Information + the data set as received) as
    #: it arrives; ``data`` is then None. The file is removed after the handler returns,
    #: unless the handler moved it (as pynetdicom's ``event.dataset_path``).
    dataset_path: Path | None = None
    _decoded: Dataset | None = field(default=None, repr=False)

    @property
    def dataset(self) -> Dataset:
        """The request's data set, decoded by pydicom on first access."""
        if self._decoded is None and self.dataset_path is not None:
            self._decoded = dcmread(self.dataset_path)
        if self._decoded is not None:
            return self._decoded
        if self.data is None:
            raise AttributeError(f"{self.event.name} has no data set")
        from dimse import dsutils

        self._decoded = dsutils.decode(self.data, self.context.transfer_syntax[0])
        return self._decoded

    @property
    def is_cancelled(self) -> bool:
        """Whether the peer sent a C-CANCEL-RQ for this request (C-FIND, C-GET, C-MOVE):
        a handler should stop yielding when it turns True."""
        check = self.attrs.get("_cancelled")
        return bool(check()) if check is not None else False

    @property
    def attribute_list(self) -> Dataset:
        """N-CREATE: the request's Attribute List, decoded on first access."""
        return self.dataset

    @property
    def modification_list(self) -> Dataset:
        """N-SET: the request's Modification List, decoded on first access."""
        return self.dataset

    @property
    def action_information(self) -> Dataset:
        """N-ACTION: the request's Action Information, decoded on first access."""
        return self.dataset

    @property
    def event_information(self) -> Dataset:
        """N-EVENT-REPORT: the request's Event Information, decoded on first access."""
        return self.dataset

    @property
    def action_type(self) -> int | None:
        """N-ACTION: the Action Type ID."""
        return None if self.request is None else self.request.get("ActionTypeID")

    @property
    def event_type(self) -> int | None:
        """N-EVENT-REPORT: the Event Type ID."""
        return None if self.request is None else self.request.get("EventTypeID")

    @property
    def attribute_identifiers(self) -> list[int]:
        """N-GET: the tags of the Attribute Identifier List (empty: all attributes)."""
        if self.request is None or "AttributeIdentifierList" not in self.request:
            return []
        value = self.request.AttributeIdentifierList
        return [int(value)] if isinstance(value, int) else [int(t) for t in value]

    @property
    def identifier(self) -> Dataset:
        """The request's identifier (C-FIND, C-GET, C-MOVE), decoded on first access."""
        return self.dataset

    @property
    def file_meta(self) -> FileMetaDataset:
        """File Meta Information for saving the data set as a DICOM file (PS3.10)."""
        from dimse import _core

        meta = FileMetaDataset()
        meta.FileMetaInformationVersion = b"\x00\x01"
        if self.request is not None:
            meta.MediaStorageSOPClassUID = self.request.get("AffectedSOPClassUID")
            meta.MediaStorageSOPInstanceUID = self.request.get("AffectedSOPInstanceUID")
        meta.TransferSyntaxUID = UID(self.context.transfer_syntax[0])
        meta.ImplementationClassUID = UID(_core.IMPLEMENTATION_CLASS_UID)
        meta.ImplementationVersionName = _core.IMPLEMENTATION_VERSION_NAME
        # The source is the peer that sent the data set: the requestor on a server, the
        # acceptor for the C-STORE sub-operations of our own C-GET.
        side = "acceptor" if getattr(self.assoc, "is_requestor", False) else "requestor"
        peer = getattr(self.assoc, side, None)
        if peer is not None and peer.ae_title:
            meta.SourceApplicationEntityTitle = peer.ae_title
        return meta

    def encoded_dataset(self, include_meta: bool = True) -> bytes:
        """The data set bytes as received, without decoding them. With ``include_meta``
        (the default, as in pynetdicom) a complete DICOM file: preamble, File Meta
        Information and data set."""
        if self.dataset_path is not None:
            # Spooled: read it (it was too large to hold; the caller asked for it).
            raw = self.dataset_path.read_bytes()
            if include_meta:
                return raw
            from dimse import _core

            return raw[_core.read_file_meta(self.dataset_path)["data_offset"] :]
        if self.data is None:
            raise AttributeError(f"{self.event.name} has no data set")
        if not include_meta:
            return self.data
        from dimse import dsutils

        return dsutils.encode_file_meta(self.file_meta) + self.data

    @property
    def message_id(self) -> int | None:
        """The request's Message ID."""
        if self.request is None:
            return None
        value = self.request.get("MessageID")
        return int(value) if value is not None else None

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["attrs"][name]
        except KeyError:
            raise AttributeError(f"{self.event.name} has no attribute {name!r}") from None


def normalize_handlers(
    handlers: Sequence[HandlerArg] | None,
) -> dict[EventType, list[tuple[Callable[..., Any], Sequence[Any]]]]:
    """Checks and groups handler bindings by event."""
    out: dict[EventType, list[tuple[Callable[..., Any], Sequence[Any]]]] = {}
    for binding in handlers or []:
        if not isinstance(binding, tuple) or len(binding) not in (2, 3):
            raise TypeError(
                f"a handler binding is (event, handler) or (event, handler, args), not {binding!r}"
            )
        event, handler = binding[0], binding[1]
        args = binding[2] if len(binding) == 3 else ()
        if not isinstance(event, EventType):
            raise TypeError(f"{event!r} is not an event: use one of dimse.evt.EVT_*")
        if not callable(handler):
            raise TypeError(f"the handler for {event.name} is not callable: {handler!r}")
        if event.is_intervention and event in out:
            raise ValueError(f"{event.name} is an intervention event: bind only one handler to it")
        out.setdefault(event, []).append((handler, args))
    return out


Handlers = dict[EventType, list[tuple[Callable[..., Any], Sequence[Any]]]]


def bind_handler(
    handlers: Handlers, event: EventType, handler: Callable[..., Any], args: Sequence[Any] = ()
) -> None:
    """Adds a binding to ``handlers``: an intervention event has one handler (a new one
    replaces it), a notification event any number (binding one twice is a no-op)."""
    if not isinstance(event, EventType):
        raise TypeError(f"{event!r} is not an event: use one of dimse.evt.EVT_*")
    if not callable(handler):
        raise TypeError(f"the handler for {event.name} is not callable: {handler!r}")
    args = tuple(args or ())
    if event.is_intervention:
        handlers[event] = [(handler, args)]
        return
    bound = handlers.setdefault(event, [])
    for i, (h, _) in enumerate(bound):
        if h == handler:
            bound[i] = (handler, args)
            return
    bound.append((handler, args))


def unbind_handler(handlers: Handlers, event: EventType, handler: Callable[..., Any]) -> None:
    """Removes a binding from ``handlers`` (nothing when it is not bound)."""
    bound = [(h, a) for h, a in handlers.get(event, []) if h != handler]
    if bound:
        handlers[event] = bound
    else:
        handlers.pop(event, None)


def check_events(handlers: Handlers, supported: frozenset[EventType], where: str) -> None:
    """Refuses bindings whose handlers would never be called here."""
    unsupported = sorted(e.name for e in handlers if e not in supported)
    if unsupported:
        for name in unsupported:
            handlers.pop(globals()[name], None)
        names = ", ".join(sorted(e.name for e in supported))
        from dimse.exceptions import InvalidArgument

        raise InvalidArgument(
            f"{where} does not call handlers for {', '.join(unsupported)}; "
            f"events handled here: {names}"
        )


def notify(handlers: Sequence[tuple[Callable[..., Any], Sequence[Any]]], event: Event) -> None:
    """Calls the handlers of a notification event; one that raises is logged and the
    others still run (a notification never changes what happens on the association)."""
    for handler, args in handlers:
        try:
            handler(event, *args)
        except Exception:
            LOGGER.exception("the %s handler %r raised", event.event.name, handler)
