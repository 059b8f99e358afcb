"""The Application Entity: settings, presentation contexts, and both roles."""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from dimse import _core, dsutils, sop
from dimse.access import check_permissions, expand_permissions
from dimse.association import Association, ServiceUser, command_dataset
from dimse.evt import (
    EVT_ABORTED,
    EVT_ACCEPTED,
    EVT_ASYNC_OPS,
    EVT_C_ECHO,
    EVT_C_FIND,
    EVT_C_GET,
    EVT_C_MOVE,
    EVT_C_STORE,
    EVT_CONN_CLOSE,
    EVT_CONN_OPEN,
    EVT_DIMSE_RECV,
    EVT_DIMSE_SENT,
    EVT_ESTABLISHED,
    EVT_N_ACTION,
    EVT_N_CREATE,
    EVT_N_DELETE,
    EVT_N_EVENT_REPORT,
    EVT_N_GET,
    EVT_N_SET,
    EVT_PDU_RECV,
    EVT_PDU_SENT,
    EVT_REJECTED,
    EVT_RELEASED,
    EVT_REQUESTED,
    EVT_SOP_COMMON,
    EVT_SOP_EXTENDED,
    EVT_USER_ID,
    NEGOTIATION_EVENTS,
    NOTIFICATION_EVENTS,
    REQUESTOR_EVENTS,
    SERVICE_EVENTS,
    Event,
    EventType,
    HandlerArg,
    bind_handler,
    check_events,
    normalize_handlers,
    notify,
    unbind_handler,
)
from dimse.exceptions import (
    AcseTimeout,
    AssociationAborted,
    AssociationRejected,
    ConnectFailed,
    DimseError,
    InvalidArgument,
    InvalidFile,
)
from dimse.forward import Forward
from dimse.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from dimse.presentation import (
    AllStoragePresentationContexts,
    PresentationContext,
    RoleSelection,
    build_context,
)
from dimse.storage import FileStorage, StoredInstance, StoredResult
from dimse.tls import TLS

__all__ = ["AE", "Server"]

LOGGER = logging.getLogger(__name__)

_IDENTITY_TYPES = {1: "Username", 2: "UsernameAndPasscode", 3: "Kerberos", 4: "Saml", 5: "Jwt"}


def _check_ae_title(value: str, what: str = "AE title") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    stripped = value.strip(" ")
    if not stripped or len(value) > 16 or "\\" in value or not value.isascii():
        raise InvalidArgument(
            f"{what} {value!r} is not valid: 1 to 16 ASCII characters, no backslash, "
            "not all spaces (PS3.5 6.2, AE)"
        )
    if any(ord(c) < 0x20 for c in value):
        raise InvalidArgument(f"{what} {value!r} contains control characters")
    return stripped


class _Timeout:
    """A timeout setting: seconds (int or float, >= 0) or None for no limit."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.attr = "_" + name

    def __get__(self, obj: object, owner: type | None = None) -> float | None:
        return getattr(obj, self.attr)  # type: ignore[no-any-return]

    def __set__(self, obj: object, value: float | None) -> None:
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not value >= 0  # also refuses NaN
        ):
            raise InvalidArgument(
                f"{self.name} must be seconds (a number >= 0) or None for no limit, not {value!r}"
            )
        setattr(obj, self.attr, value)


class _Count:
    """A whole-number setting from `low` up."""

    def __init__(self, low: int, what: str) -> None:
        self.low = low
        self.what = what

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.attr = "_" + name

    def __get__(self, obj: object, owner: type | None = None) -> int:
        return getattr(obj, self.attr)  # type: ignore[no-any-return]

    def __set__(self, obj: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.low:
            raise InvalidArgument(
                f"{self.name} must be an int >= {self.low} ({self.what}), not {value!r}"
            )
        setattr(obj, self.attr, value)


class AE:
    """An Application Entity: the local end of associations, in either role.

    Settings (seconds, ``None`` = no limit): ``acse_timeout`` (negotiation and release),
    ``dimse_timeout`` (waiting for a response), ``network_timeout`` (no data at all),
    ``connection_timeout`` (TCP connect); ``maximum_pdu_size`` (the Maximum Length we
    announce, 0 = unlimited); ``maximum_associations`` (served at once; beyond it the
    server rejects with "local limit exceeded"); ``require_called_aet`` and
    ``require_calling_aet`` (acceptor checks).

    Access control (acceptor): ``allowed_networks`` (client addresses or networks, e.g.
    ``["10.1.0.0/16", "127.0.0.1"]``; empty = any), ``maximum_associations_per_peer``
    (0 = no limit beyond ``maximum_associations``), ``require_user_identity`` (reject a
    request without a User Identity item; EVT_USER_ID decides on those that have one),
    ``permissions`` (which services each calling AE may use, see :mod:`dimse.access`).
    Every rejection is logged (logger ``dimse.ae``, WARNING) with the peer's address and
    the reason. ``maximum_queued_requests``: requests of one association waiting for a
    handler before the server stops reading that association. docs/limits.md lists
    every limit with its default; docs/security.md covers TLS and access control.
    """

    acse_timeout = _Timeout()
    dimse_timeout = _Timeout()
    network_timeout = _Timeout()
    connection_timeout = _Timeout()
    handler_threads = _Count(1, "threads running Python handlers")
    maximum_dataset_size = _Count(1, "bytes")
    stream_threshold = _Count(0, "bytes")

    def __init__(self, ae_title: str = "DIMSE") -> None:
        self._ae_title = _check_ae_title(ae_title)
        self.acse_timeout = 30.0
        self.dimse_timeout = 30.0
        self.network_timeout = 60.0
        # A connect the kernel keeps retrying (a host that drops SYNs) would otherwise
        # take about two minutes to fail.
        self.connection_timeout = 30.0
        self._maximum_pdu_size = 16382
        self._maximum_associations = 10
        self.require_called_aet = False
        self._require_calling_aet: list[str] = []
        self.handler_threads = 8
        #: The largest data set of one message held in memory (bytes); a peer sending
        #: more gets an A-ABORT.
        self.maximum_dataset_size = 1 << 30
        #: A server with native storage (``start_server(storage=...)``) writes a data set
        #: above this many bytes to its file as it arrives, never holding it whole (the
        #: socket is read no faster than the disk takes it); ``maximum_dataset_size``
        #: then does not apply to it.
        self.stream_threshold = 8 << 20
        self._allowed_networks: list[str] = []
        self._maximum_associations_per_peer = 0
        self._maximum_queued_requests = 16
        self.require_user_identity = False
        self._permissions: dict[str, list[str]] | None = None
        self._requested: list[PresentationContext] = []
        self._supported: list[PresentationContext] = []
        self._servers: list[Server] = []

    # -- settings -----------------------------------------------------------------------

    @property
    def ae_title(self) -> str:
        return self._ae_title

    @ae_title.setter
    def ae_title(self, value: str) -> None:
        self._ae_title = _check_ae_title(value)

    @property
    def implementation_class_uid(self) -> str:
        return _core.IMPLEMENTATION_CLASS_UID

    @property
    def implementation_version_name(self) -> str:
        return _core.IMPLEMENTATION_VERSION_NAME

    @property
    def maximum_pdu_size(self) -> int:
        return self._maximum_pdu_size

    @maximum_pdu_size.setter
    def maximum_pdu_size(self, value: int) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (value == 0 or 7 <= value <= 0xFFFFFFFF)
        ):
            raise InvalidArgument(
                f"maximum_pdu_size must be 0 (unlimited) or 7..4294967295, not {value!r}"
            )
        self._maximum_pdu_size = value

    @property
    def maximum_associations(self) -> int:
        return self._maximum_associations

    @maximum_associations.setter
    def maximum_associations(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgument(f"maximum_associations must be a positive int, not {value!r}")
        self._maximum_associations = value

    @property
    def require_calling_aet(self) -> list[str]:
        return list(self._require_calling_aet)

    @require_calling_aet.setter
    def require_calling_aet(self, titles: Sequence[str]) -> None:
        self._require_calling_aet = [_check_ae_title(t, "calling AE title") for t in titles]

    @property
    def allowed_networks(self) -> list[str]:
        return list(self._allowed_networks)

    @allowed_networks.setter
    def allowed_networks(self, networks: Sequence[str]) -> None:
        if isinstance(networks, str):
            raise InvalidArgument(
                f"allowed_networks must be a list of addresses or networks, not the string "
                f"{networks!r} (write [{networks!r}])"
            )
        checked = []
        for n in networks:
            try:
                checked.append(str(ipaddress.ip_network(str(n).strip(), strict=False)))
            except ValueError as e:
                raise InvalidArgument(
                    f"allowed_networks: {n!r} is not an address or network "
                    f"(as '10.0.0.0/8', '192.168.1.20' or '::1'): {e}"
                ) from None
        self._allowed_networks = checked

    @property
    def maximum_associations_per_peer(self) -> int:
        return self._maximum_associations_per_peer

    @maximum_associations_per_peer.setter
    def maximum_associations_per_peer(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidArgument(
                f"maximum_associations_per_peer must be an int >= 0 (0 = no limit), not {value!r}"
            )
        self._maximum_associations_per_peer = value

    @property
    def maximum_queued_requests(self) -> int:
        return self._maximum_queued_requests

    @maximum_queued_requests.setter
    def maximum_queued_requests(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            raise InvalidArgument(
                f"maximum_queued_requests must be an int from 1 to 65535, not {value!r}"
            )
        self._maximum_queued_requests = value

    @property
    def permissions(self) -> dict[str, list[str]] | None:
        """Which services each calling AE title may use (None: any supported one)."""
        return None if self._permissions is None else dict(self._permissions)

    @permissions.setter
    def permissions(self, value: Mapping[str, Sequence[str]] | None) -> None:
        self._permissions = None if value is None else check_permissions(value)

    def _settings(self) -> dict[str, Any]:
        return {
            "allowed_networks": self._allowed_networks,
            "maximum_associations_per_peer": self._maximum_associations_per_peer,
            "maximum_queued_requests": self._maximum_queued_requests,
            "acse_timeout": self.acse_timeout,
            "network_timeout": self.network_timeout,
            "connection_timeout": self.connection_timeout,
            "maximum_associations": self._maximum_associations,
            "maximum_dataset_size": int(self.maximum_dataset_size),
            "stream_threshold": int(self.stream_threshold),
        }

    # -- presentation contexts ----------------------------------------------------------

    @property
    def requested_contexts(self) -> list[PresentationContext]:
        """The contexts proposed by ``associate()`` (at most 128)."""
        return list(self._requested)

    @requested_contexts.setter
    def requested_contexts(self, contexts: Sequence[PresentationContext]) -> None:
        self._requested = []
        for c in contexts:
            self.add_requested_context(c.abstract_syntax, c.transfer_syntax)

    @property
    def supported_contexts(self) -> list[PresentationContext]:
        """The contexts a server accepts."""
        return list(self._supported)

    @supported_contexts.setter
    def supported_contexts(self, contexts: Sequence[PresentationContext]) -> None:
        self._supported = []
        for c in contexts:
            self.add_supported_context(
                c.abstract_syntax, c.transfer_syntax, c.scu_role, c.scp_role
            )

    def add_requested_context(
        self, abstract_syntax: str, transfer_syntax: str | Sequence[str] | None = None
    ) -> None:
        """Proposes ``abstract_syntax`` with these (or the default) transfer syntaxes."""
        if len(self._requested) >= 128:
            raise InvalidArgument(
                "at most 128 presentation contexts can be requested (odd IDs 1-255, PS3.8 9.3.2.2)"
            )
        self._requested.append(build_context(abstract_syntax, transfer_syntax))

    def add_supported_context(
        self,
        abstract_syntax: str,
        transfer_syntax: str | Sequence[str] | None = None,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
    ) -> None:
        """Supports ``abstract_syntax`` with these transfer syntaxes (in preference order).
        ``scu_role``/``scp_role`` say whether a requestor may take that role when it asks
        with role selection (default: SCU yes, SCP no)."""
        pc = build_context(abstract_syntax, transfer_syntax)
        pc.scu_role, pc.scp_role = scu_role, scp_role
        for existing in self._supported:
            if existing.abstract_syntax == pc.abstract_syntax:
                for ts in pc.transfer_syntax:
                    existing.add_transfer_syntax(ts)
                existing.scu_role = scu_role if scu_role is not None else existing.scu_role
                existing.scp_role = scp_role if scp_role is not None else existing.scp_role
                return
        self._supported.append(pc)

    def remove_requested_context(self, abstract_syntax: str) -> None:
        self._requested = [c for c in self._requested if c.abstract_syntax != abstract_syntax]

    def remove_supported_context(self, abstract_syntax: str) -> None:
        self._supported = [c for c in self._supported if c.abstract_syntax != abstract_syntax]

    # -- requestor ----------------------------------------------------------------------

    def associate(
        self,
        addr: str,
        port: int,
        contexts: Sequence[PresentationContext] | None = None,
        ae_title: str = "ANY-SCP",
        max_pdu: int | None = None,
        ext_neg: Sequence[Any] | None = None,
        evt_handlers: Sequence[HandlerArg] | None = None,
        tls: TLS | Mapping[str, Any] | None = None,
    ) -> Association:
        """Requests an association with the AE ``ae_title`` at ``addr:port``.

        Returns the Association established or not (check ``is_established``); used as
        a context manager it raises ``AssociationRejected``, ``AssociationAborted``,
        ``AcseTimeout`` or ``ConnectFailed`` (``TLSError`` for a failed TLS handshake)
        instead. With ``tls`` (a :class:`dimse.TLS`) the association runs over TLS.
        """
        tls_config = _tls_config(tls, "associate()", server=False)
        called = _check_ae_title(ae_title, "called AE title")
        contexts = list(contexts) if contexts is not None else self._requested
        if not contexts:
            raise InvalidArgument(
                "no presentation context to propose: call ae.add_requested_context() first"
            )
        if len(contexts) > 128:
            raise InvalidArgument("at most 128 presentation contexts can be proposed")
        handlers = normalize_handlers(evt_handlers)
        check_events(handlers, REQUESTOR_EVENTS, "associate()")
        params: dict[str, Any] = {
            "calling_ae_title": self._ae_title,
            "called_ae_title": called,
            "contexts": [
                {
                    "id": 2 * i + 1,
                    "abstract_syntax": c.abstract_syntax,
                    "transfer_syntaxes": list(c.transfer_syntax),
                }
                for i, c in enumerate(contexts)
            ],
            "max_pdu_length": self._maximum_pdu_size if max_pdu is None else max_pdu,
            "implementation_class_uid": _core.IMPLEMENTATION_CLASS_UID,
            "implementation_version_name": _core.IMPLEMENTATION_VERSION_NAME,
            "async_ops": None,
            "roles": [],
            "extended": [],
            "common_extended": [],
            "user_identity": None,
        }
        for item in ext_neg or []:
            _add_ext_neg(params, item)
        requestor = ServiceUser(self._ae_title, "", 0)
        acceptor = ServiceUser(called, addr, port)
        assoc = Association(self, requestor, acceptor)
        assoc._handlers = handlers
        LOGGER.debug("requesting an association with %s at %s:%s", called, addr, port)
        try:
            core = _core.associate(
                f"{_host(addr)}:{port}",
                params,
                self._settings(),
                tls=None if tls_config is None else tls_config._client_config(),
            )
        except (AssociationRejected, AssociationAborted, ConnectFailed, AcseTimeout) as e:
            LOGGER.info("association to %s:%s failed: %s", addr, port, e)
            assoc._failed(e)
            if not isinstance(e, ConnectFailed):
                assoc._emit(EVT_CONN_OPEN)
                if isinstance(e, AssociationRejected):
                    assoc._ended(EVT_REJECTED, result=e.result, source=e.source, reason=e.reason)
                else:
                    assoc._ended(EVT_ABORTED, reason=str(e))
            return assoc
        assoc._established(core)
        LOGGER.info(
            "association with %s at %s:%s established (%d of %d contexts accepted)",
            called,
            addr,
            port,
            len(assoc.accepted_contexts),
            len(contexts),
        )
        assoc._emit(EVT_CONN_OPEN)
        assoc._emit(EVT_ESTABLISHED)
        return assoc

    # -- acceptor -----------------------------------------------------------------------

    def start_server(
        self,
        address: tuple[str, int],
        block: bool = True,
        evt_handlers: Sequence[HandlerArg] | None = None,
        ae_title: str | None = None,
        contexts: Sequence[PresentationContext] | None = None,
        storage: FileStorage | None = None,
        reuse_port: bool = False,
        forward: Forward | None = None,
        tls: TLS | Mapping[str, Any] | None = None,
    ) -> Server | None:
        """Starts a server on ``address`` (host, port; port 0 picks a free one).

        With ``block=False`` returns the running Server (stop it with ``shutdown()``);
        with ``block=True`` serves until interrupted (Ctrl-C), then shuts down.
        With ``storage`` (a :class:`dimse.storage.FileStorage`) every C-STORE is written
        to a file in Rust instead of going to an EVT_C_STORE handler; with ``forward``
        (a :class:`dimse.forward.Forward`) it is passed on to another AE in Rust. With
        ``reuse_port`` (SO_REUSEPORT) several processes may listen on the same port, the
        kernel spreading connections over them (one server per core, each with its own
        GIL). With ``tls`` (a :class:`dimse.TLS` with ``cert`` and ``key``) every
        connection is TLS; the handshake must complete within ``acse_timeout``.
        """
        supported = list(contexts) if contexts is not None else self._supported
        if not supported:
            raise InvalidArgument(
                "no supported presentation context: call ae.add_supported_context() first"
            )
        server = Server(
            self,
            address,
            supported,
            evt_handlers,
            ae_title or self._ae_title,
            storage,
            reuse_port=reuse_port,
            forward=forward,
            tls=tls,
        )
        self._servers.append(server)
        if not block:
            return server
        try:
            while server.is_running():
                time.sleep(0.2)
        except KeyboardInterrupt:
            # Ctrl-C is how a blocking server is stopped (as in pynetdicom): not an error.
            LOGGER.info("interrupted: shutting down")
        finally:
            server.shutdown()
        return None

    def shutdown(self) -> None:
        """Stops every server this AE started."""
        for server in self._servers:
            server.shutdown()
        self._servers.clear()


_N_EVENTS = {
    "N-EVENT-REPORT-RQ": EVT_N_EVENT_REPORT,
    "N-GET-RQ": EVT_N_GET,
    "N-SET-RQ": EVT_N_SET,
    "N-ACTION-RQ": EVT_N_ACTION,
    "N-CREATE-RQ": EVT_N_CREATE,
    "N-DELETE-RQ": EVT_N_DELETE,
}
#: Every event a server calls handlers for.
_ACCEPTOR_EVENTS = SERVICE_EVENTS | NEGOTIATION_EVENTS | NOTIFICATION_EVENTS

#: The notification kinds the Rust server reports, and their events.
_NOTIFICATIONS = {
    "conn_open": EVT_CONN_OPEN,
    "conn_close": EVT_CONN_CLOSE,
    "requested": EVT_REQUESTED,
    "accepted": EVT_ACCEPTED,
    "rejected": EVT_REJECTED,
    "established": EVT_ESTABLISHED,
    "released": EVT_RELEASED,
    "aborted": EVT_ABORTED,
    "dimse_recv": EVT_DIMSE_RECV,
    "dimse_sent": EVT_DIMSE_SENT,
    "pdu_recv": EVT_PDU_RECV,
    "pdu_sent": EVT_PDU_SENT,
}
_NOTIFICATION_KINDS = {event: kind for kind, event in _NOTIFICATIONS.items()}


def _tls_config(tls: object, where: str, server: bool) -> TLS | None:
    if tls is None or isinstance(tls, TLS):
        return tls
    if isinstance(tls, Mapping):
        return TLS.from_ssl_args(tls, server=server)
    if isinstance(tls, ssl.SSLContext):
        raise InvalidArgument(
            f"{where}: tls= takes a dimse.TLS or a mapping in the ssl module's words "
            "({'certfile': ..., 'keyfile': ..., 'cafile': ...}), not an ssl.SSLContext: "
            "an SSLContext does not give its certificates and keys back"
        )
    raise InvalidArgument(
        f"{where}: tls= takes a dimse.TLS or a mapping of ssl-style arguments, "
        f"not {type(tls).__name__}"
    )


def _host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr and not addr.startswith("[") else addr


def _add_ext_neg(params: dict[str, Any], item: Any) -> None:
    if isinstance(item, RoleSelection | SCP_SCU_RoleSelectionNegotiation):
        role = item if isinstance(item, RoleSelection) else item.as_role()
        params["roles"].append(
            {
                "sop_class_uid": role.sop_class_uid,
                "scu_role": role.scu_role,
                "scp_role": role.scp_role,
            }
        )
    elif isinstance(item, UserIdentityNegotiation):
        kind = _IDENTITY_TYPES.get(item.user_identity_type)
        params["user_identity"] = {
            "identity_type": kind if kind else {"Other": item.user_identity_type},
            "positive_response_requested": bool(item.positive_response_requested),
            "primary": bytes(item.primary_field),
            "secondary": bytes(item.secondary_field or b""),
        }
    elif isinstance(item, SOPClassExtendedNegotiation):
        params["extended"].append(
            {
                "sop_class_uid": item.sop_class_uid,
                "info": bytes(item.service_class_application_information),
            }
        )
    elif isinstance(item, SOPClassCommonExtendedNegotiation):
        params["common_extended"].append(
            {
                "sop_class_uid": item.sop_class_uid,
                "service_class_uid": item.service_class_uid,
                "related_general_sop_classes": list(item.related_general_sop_class_identification),
            }
        )
    elif isinstance(item, AsynchronousOperationsWindowNegotiation):
        params["async_ops"] = [
            item.maximum_number_operations_invoked,
            item.maximum_number_operations_performed,
        ]
    else:
        raise InvalidArgument(
            f"{item!r} is not an extended negotiation item: use build_role() or the classes "
            "of dimse.pdu_primitives"
        )


class _AcceptorView:
    """What handlers see as ``event.assoc`` on the server side: one per association, with
    its own ``bind``/``unbind`` (handlers for this association only)."""

    #: This side accepted the association (pynetdicom's names).
    is_requestor = False
    is_acceptor = True

    def __init__(self, server: Server, info: dict[str, Any]) -> None:
        self.ae = server.ae
        self._server = server
        self.id = info["id"]
        self.requestor = ServiceUser("", *info["peer"])
        self.acceptor = ServiceUser("", "", 0)
        self.negotiated: dict[str, Any] = {}
        self._handlers: dict[Any, Any] = {}
        self._update(info)

    def _update(self, info: dict[str, Any]) -> None:
        n = info.get("negotiated")
        if n is None or self.negotiated:
            return
        self.requestor.ae_title = n["calling_ae_title"]
        self.acceptor.ae_title = n["called_ae_title"]
        self.requestor.implementation_class_uid = n.get("peer_implementation_class_uid")
        self.requestor.implementation_version_name = n.get("peer_implementation_version_name")
        self.requestor.maximum_length = n.get("peer_max_pdu_length")
        self.negotiated = n

    def bind(
        self, event: EventType, handler: Callable[..., Any], args: Sequence[Any] = ()
    ) -> None:
        """Binds ``handler`` to ``event`` for this association only."""
        bind_handler(self._handlers, event, handler, args)
        check_events(self._handlers, _ACCEPTOR_EVENTS, "an association's bind()")
        self._server._update_core()

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        """Unbinds ``handler`` from ``event`` for this association."""
        unbind_handler(self._handlers, event, handler)

    def get_handlers(self, event: EventType) -> list[tuple[Callable[..., Any], Sequence[Any]]]:
        """The handlers bound to ``event`` on this association (then the server's)."""
        own: list[tuple[Callable[..., Any], Sequence[Any]]] = self._handlers.get(event, [])
        return own + self._server.get_handlers(event)

    def __repr__(self) -> str:
        return f"<Association {self.requestor.ae_title} -> {self.acceptor.ae_title} #{self.id}>"


class Server:
    """A running server; ``shutdown()`` stops it."""

    def __init__(
        self,
        ae: AE,
        address: tuple[str, int],
        contexts: Sequence[PresentationContext],
        evt_handlers: Sequence[HandlerArg] | None,
        ae_title: str,
        storage: FileStorage | None = None,
        reuse_port: bool = False,
        forward: Forward | None = None,
        tls: TLS | Mapping[str, Any] | None = None,
    ) -> None:
        self.ae = ae
        tls_config = _tls_config(tls, "start_server()", server=True)
        self._storage = storage
        self._forward = forward
        if storage is not None and forward is not None:
            raise InvalidArgument("give storage= or forward=, not both: each answers C-STORE")
        self._handlers = normalize_handlers(evt_handlers)
        check_events(self._handlers, _ACCEPTOR_EVENTS, "start_server()")
        self._check_storage()
        self._views: dict[int, _AcceptorView] = {}
        self._views_lock = threading.Lock()
        acceptor = {
            "ae_title": _check_ae_title(ae_title),
            "require_called_aet": bool(ae.require_called_aet),
            "allowed_calling_aets": ae.require_calling_aet,
            "contexts": [
                {
                    "abstract_syntax": c.abstract_syntax,
                    "transfer_syntaxes": list(c.transfer_syntax),
                    "scu_role": True if c.scu_role is None else bool(c.scu_role),
                    "scp_role": bool(c.scp_role),
                }
                for c in contexts
            ],
            "max_pdu_length": ae.maximum_pdu_size,
            "implementation_class_uid": _core.IMPLEMENTATION_CLASS_UID,
            "implementation_version_name": _core.IMPLEMENTATION_VERSION_NAME,
            "require_user_identity": bool(ae.require_user_identity),
            "permissions": None
            if ae._permissions is None
            else expand_permissions(ae._permissions, (c.abstract_syntax for c in contexts)),
        }
        host, port = address
        self._core = _core.Server(
            host,
            port,
            acceptor,
            ae._settings(),
            dispatch=self._dispatch,
            hooks=_Hooks(self),
            native_echo=EVT_C_ECHO not in self._handlers,
            handler_threads=ae.handler_threads,
            notify=self._notify,
            storage=storage.settings() if storage is not None else None,
            on_stored=self._on_stored if storage and storage.on_stored else None,
            reuse_port=reuse_port,
            forward=forward.settings(ae_title) if forward is not None else None,
            forward_tls=forward.tls._client_config()
            if forward is not None and forward.tls is not None
            else None,
            tls=None if tls_config is None else tls_config._server_config(),
        )
        self._update_core()
        LOGGER.info("serving %s on %s:%s", ae_title, *self._core.address)

    # -- handlers -------------------------------------------------------------------------

    def bind(
        self, event: EventType, handler: Callable[..., Any], args: Sequence[Any] = ()
    ) -> None:
        """Binds ``handler`` to ``event`` for every association, from now on (an
        intervention event's handler replaces the one bound)."""
        bind_handler(self._handlers, event, handler, args)
        check_events(self._handlers, _ACCEPTOR_EVENTS, "Server.bind()")
        try:
            self._check_storage()
        except InvalidArgument:
            unbind_handler(self._handlers, event, handler)
            raise
        self._update_core()

    def _check_storage(self) -> None:
        if self._forward is not None and EVT_C_STORE in self._handlers:
            raise InvalidArgument(
                "this server forwards C-STORE data sets itself (forward=Forward(...)): "
                "unbind the EVT_C_STORE handler or leave forward= out"
            )
        if self._storage is not None and EVT_C_STORE in self._handlers:
            raise InvalidArgument(
                "this server writes C-STORE data sets itself (storage=FileStorage(...)): "
                "use FileStorage(on_stored=...) to see each stored file instead of an "
                "EVT_C_STORE handler"
            )

    def _on_stored(self, info: dict[str, Any], stored: dict[str, Any]) -> StoredResult:
        """Rust wrote a file: tell the FileStorage's on_stored (errors become 0xC211)."""
        assert self._storage is not None
        assert self._storage.on_stored is not None
        instance = StoredInstance(
            path=Path(stored["path"]),
            sop_class_uid=stored["sop_class_uid"],
            sop_instance_uid=stored["sop_instance_uid"],
            transfer_syntax_uid=stored["transfer_syntax_uid"],
            size=stored["size"],
            calling_ae_title=stored["calling_ae_title"],
            assoc=self._view(info),
        )
        try:
            result = self._storage.on_stored(instance)
        except Exception as e:
            LOGGER.error("the on_stored callback raised:\n%s", traceback.format_exc())
            return 0xC211, _comment(f"on_stored raised {e!r}")
        if result is None or isinstance(result, int):
            return result
        status, comment = result
        return int(status), _comment(str(comment))

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        """Unbinds ``handler`` from ``event``; unknown bindings are ignored."""
        unbind_handler(self._handlers, event, handler)
        self._update_core()

    def get_handlers(self, event: EventType) -> list[tuple[Callable[..., Any], Sequence[Any]]]:
        """The handlers bound to ``event`` for every association."""
        return list(self._handlers.get(event, []))

    def _update_core(self) -> None:
        """Tells Rust which notifications to report and whether to answer C-ECHO itself."""
        with self._views_lock:
            views = list(self._views.values())
        bound = set(self._handlers).union(*(v._handlers for v in views))
        # Rejections and refused connections are always reported: they are logged.
        self._core.set_notifications(
            [kind for event, kind in _NOTIFICATION_KINDS.items() if event in bound]
            + ["rejected", "refused"]
        )
        self._core.set_native_echo(EVT_C_ECHO not in self._handlers)
        self._core.set_negotiation_hooks(any(e in self._handlers for e in _HOOK_EVENTS.values()))

    def _view(self, info: dict[str, Any]) -> _AcceptorView:
        """The association's view, kept while it lives (for its own bindings)."""
        with self._views_lock:
            for ended in self._core.ended():
                self._views.pop(ended, None)
            view = self._views.get(info["id"])
            if view is None:
                view = self._views[info["id"]] = _AcceptorView(self, info)
                self._core.track(info["id"])
            else:
                view._update(info)
            return view

    def _notify(self, kind: str, info: dict[str, Any], payload: Any) -> None:
        """Called from Rust (in order, per association) for the notifications asked for."""
        if kind == "refused":
            LOGGER.warning("connection from %s:%s refused: %s", *info["peer"], payload)
            return
        if kind == "rejected":
            LOGGER.warning(
                "association from %s:%s rejected (result %d, source %d, reason %d): %s",
                *info["peer"],
                *payload,
            )
        event_type = _NOTIFICATIONS[kind]
        view = self._view(info)
        handlers = view._handlers.get(event_type, []) + self._handlers.get(event_type, [])
        if not handlers:
            return
        attrs: dict[str, Any] = {}
        if kind == "requested":
            attrs["associate_rq"] = payload
        elif kind == "accepted":
            attrs["associate_ac"] = payload
        elif kind == "rejected":
            attrs["result"], attrs["source"], attrs["reason"], attrs["why"] = payload
        elif kind == "aborted":
            attrs["reason"] = payload
        elif kind in ("dimse_recv", "dimse_sent"):
            attrs["context_id"] = payload[0]
            attrs["message"] = command_dataset(payload[1])
        elif kind in ("pdu_recv", "pdu_sent"):
            attrs["pdu_type"], attrs["pdu_length"] = payload
        notify(handlers, Event(view, event_type, attrs=attrs))

    @property
    def server_address(self) -> tuple[str, int]:
        """The (host, port) listened on."""
        return self._core.address

    def is_running(self) -> bool:
        return self._core.is_running()

    def shutdown(self) -> None:
        """Stops accepting, aborts associations in progress, and waits for them."""
        self._core.shutdown()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _call(self, event_type: Any, event: Event) -> Any:
        handlers = event.assoc.get_handlers(event_type) if event.assoc else None
        (handler, args), *_ = handlers or self._handlers[event_type]
        return handler(event, *args)

    def _has_handler(self, event_type: Any, info: dict[str, Any]) -> bool:
        return bool(self._view(info).get_handlers(event_type))

    def _store(
        self,
        info: dict[str, Any],
        context_id: int,
        command: bytes,
        dataset: bytes | None,
        path: str | None = None,
    ) -> dict[str, Any]:
        # A data set above AE.stream_threshold was spooled to a file as it arrived: the
        # handler gets its path (and reads it only if it asks for the data set).
        event = Event(
            self._view(info),
            EVT_C_STORE,
            request=command_dataset(command),
            context=_context(info, context_id),
            data=dataset if dataset is not None or path is not None else b"",
            dataset_path=Path(path) if path is not None else None,
        )
        return _store_status(self, event)

    def _dispatch(
        self,
        info: dict[str, Any],
        context_id: int,
        command: bytes,
        dataset: bytes | None,
        responder: _core.Responder,
        path: str | None = None,
    ) -> list[tuple[int, bytes, bytes | None]]:
        """Called from the handler pool for every request Rust does not answer itself;
        ``path``: a C-STORE data set spooled to that file instead of ``dataset``."""
        try:
            request = _core.decode_message(command)
        except Exception:
            LOGGER.exception("undecodable request")
            return []
        if request["type"] == "C-CANCEL-RQ" or not request["type"].endswith("-RQ"):
            return []
        response: dict[str, Any] = {
            "type": request["type"].replace("-RQ", "-RSP"),
            "message_id_being_responded_to": request["message_id"],
        }
        if "affected_sop_class_uid" in request:
            response["affected_sop_class_uid"] = request["affected_sop_class_uid"]
        if dataset is not None and len(dataset) % 2:
            # Every encoding of a data set has even length (PS3.5 7.1.1, A.5): refuse it
            # before a handler sees a silently truncated decode.
            if request["type"] == "C-STORE-RQ":
                response["affected_sop_instance_uid"] = request["affected_sop_instance_uid"]
            response.update(
                status=_UNDECODABLE.get(request["type"], 0x0110),
                error_comment=f"data set of odd length {len(dataset)}",
            )
            return [(context_id, _encode_response(response, False), None)]
        if request["type"] == "C-ECHO-RQ" and self._has_handler(EVT_C_ECHO, info):
            event = Event(
                self._view(info),
                EVT_C_ECHO,
                request=command_dataset(command),
                context=_context(info, context_id),
            )
            try:
                status = self._call(EVT_C_ECHO, event)
                response.update(_status_fields(status))
            except Exception as e:
                LOGGER.error("the EVT_C_ECHO handler raised:\n%s", traceback.format_exc())
                response.update(status=0x0110, error_comment=_comment(f"handler raised {e!r}"))
        elif request["type"] == "C-STORE-RQ":
            response["affected_sop_instance_uid"] = request["affected_sop_instance_uid"]
            response.update(self._store(info, context_id, command, dataset, path))
        elif request["type"] == "C-MOVE-RQ":
            return self._move(info, context_id, command, dataset, request, response, responder)
        elif request["type"] == "C-GET-RQ":
            return self._get(info, context_id, command, dataset, response, responder)
        elif request["type"] == "C-FIND-RQ":
            return self._find(info, context_id, command, dataset, request, response, responder)
        elif request["type"] in _N_EVENTS:
            reply = self._n_service(info, context_id, command, dataset, request, response)
            return [(context_id, _encode_response(response, reply is not None), reply)]
        else:
            # The other services arrive with the rest of the service-user roles issue.
            response.update(status=0x0211, error_comment="Unrecognized Operation")
        return [(context_id, _encode_response(response, False), None)]

    def _query_event(
        self,
        info: dict[str, Any],
        event_type: EventType,
        context_id: int,
        command: bytes,
        dataset: bytes | None,
        responder: _core.Responder,
    ) -> Event:
        """The event of a C-FIND/C-GET/C-MOVE request: its ``is_cancelled`` follows the
        peer's C-CANCEL-RQ through ``responder``."""
        event = Event(
            self._view(info),
            event_type,
            request=command_dataset(command),
            context=_context(info, context_id),
            data=dataset,
        )
        event.attrs["_cancelled"] = responder.is_cancelled
        return event

    def _find(
        self,
        info: dict[str, Any],
        context_id: int,
        command: bytes,
        dataset: bytes | None,
        request: dict[str, Any],
        response: dict[str, Any],
        responder: _core.Responder,
    ) -> list[tuple[int, bytes, bytes | None]]:
        """C-FIND (PS3.4 C.4.1): the EVT_C_FIND handler yields (status, identifier) pairs;
        each pending one is sent at once, the C-CANCEL of the peer is seen through
        ``event.is_cancelled``, and the last response says how it ended."""
        event = self._query_event(info, EVT_C_FIND, context_id, command, dataset, responder)
        context = event.context

        def final(
            status: int, comment: str | None = None
        ) -> list[tuple[int, bytes, bytes | None]]:
            response["status"] = status
            if comment:
                response["error_comment"] = _comment(comment)
            return [(context_id, _encode_response(response, False), None)]

        if not self._has_handler(EVT_C_FIND, info) or context is None:
            return final(0xC311, "no handler bound to EVT_C_FIND")
        results = None
        try:
            results = self._call(EVT_C_FIND, event)
            for status, identifier in results:
                if responder.is_cancelled():
                    return final(0xFE00)
                fields = _status_fields(status)
                if fields["status"] not in (0xFF00, 0xFF01):
                    response.update(fields)
                    return [(context_id, _encode_response(response, False), None)]
                if identifier is None:
                    raise InvalidArgument("a pending C-FIND status needs an identifier")
                pending = {**response, **fields}
                data = dsutils.encode(identifier, context.transfer_syntax[0])
                if not responder.send(context_id, _encode_response(pending, True), data):
                    return []
        except Exception as e:
            LOGGER.error("the EVT_C_FIND handler raised:\n%s", traceback.format_exc())
            return final(0xC311, f"handler raised {e!r}")
        finally:
            _close(results)
        if responder.is_cancelled():
            return final(0xFE00)
        return final(0x0000)

    def _get(
        self,
        info: dict[str, Any],
        context_id: int,
        command: bytes,
        dataset: bytes | None,
        response: dict[str, Any],
        responder: _core.Responder,
    ) -> list[tuple[int, bytes, bytes | None]]:
        """C-GET (PS3.4 C.4.3): the EVT_C_GET handler yields the number of sub-operations,
        then (status, dataset) pairs; each dataset goes back as a C-STORE sub-operation
        on this association (the requestor acting as SCP through role selection), with a
        pending C-GET-RSP after each carrying the four counters."""
        event = self._query_event(info, EVT_C_GET, context_id, command, dataset, responder)
        context = event.context
        progress = _SubOperations(response, context_id, context, responder)
        send = progress.send

        if not self._has_handler(EVT_C_GET, info) or context is None:
            send(0xC411, True, "no handler bound to EVT_C_GET")
            return []
        results = None
        try:
            results = iter(self._call(EVT_C_GET, event))
            progress.counts["remaining"] = int(next(results))
            sub_id = 0
            for status, ds in results:
                if responder.is_cancelled():
                    send(0xFE00, True)
                    return []
                fields = _status_fields(status)
                if fields["status"] not in (0xFF00, 0xFF01):
                    send(fields["status"], True, fields.get("error_comment"))
                    return []
                sub_id = (sub_id + 1) % 0x10000
                progress.record(self._sub_store(info, ds, sub_id, responder), ds)
                if not send(0xFF00, False):
                    return []
        except Exception as e:
            LOGGER.error("the EVT_C_GET handler raised:\n%s", traceback.format_exc())
            send(0xC411, True, f"handler raised {e!r}")
            return []
        finally:
            _close(results)
        progress.finish()
        return []

    def _move(
        self,
        info: dict[str, Any],
        context_id: int,
        command: bytes,
        dataset: bytes | None,
        request: dict[str, Any],
        response: dict[str, Any],
        responder: _core.Responder,
    ) -> list[tuple[int, bytes, bytes | None]]:
        """C-MOVE (PS3.4 C.4.2): the EVT_C_MOVE handler yields the destination's
        (address, port) for ``event.move_destination`` (or (None, None) when unknown:
        0xA801), the number of sub-operations, then (status, dataset) pairs; the datasets
        are sent with C-STORE on a new association to the destination."""
        event = self._query_event(info, EVT_C_MOVE, context_id, command, dataset, responder)
        context = event.context
        event.attrs["move_destination"] = request["move_destination"]
        progress = _SubOperations(response, context_id, context, responder)
        send = progress.send

        if not self._has_handler(EVT_C_MOVE, info) or context is None:
            send(0xC511, True, "no handler bound to EVT_C_MOVE")
            return []
        results = None
        destination: Association | None = None
        try:
            results = iter(self._call(EVT_C_MOVE, event))
            # (addr, port), or pynetdicom's (addr, port, kwargs for associate()).
            addr, port, *more = next(results)
            kwargs = dict(more[0]) if more and more[0] else {}
            if addr is None or port is None:
                send(0xA801, True, f"move destination {request['move_destination']} unknown")
                return []
            progress.counts["remaining"] = int(next(results))
            scu = AE(self.ae.ae_title)
            for attr in ("acse_timeout", "dimse_timeout", "network_timeout"):
                setattr(scu, attr, getattr(self.ae, attr))
            # The contexts proposed to the destination: the handler's, else the AE's
            # requested contexts (as pynetdicom), else the storage contexts it supports.
            if "contexts" not in kwargs:
                kwargs["contexts"] = (
                    self.ae.requested_contexts
                    or [pc for pc in self.ae.supported_contexts if pc.abstract_syntax in _STORAGE][
                        :128
                    ]
                )
            destination = scu.associate(
                str(addr), int(port), ae_title=request["move_destination"], **kwargs
            )
            if not destination.is_established:
                send(0xA801, True, f"cannot associate with {request['move_destination']}")
                return []
            for status, ds in results:
                if responder.is_cancelled():
                    send(0xFE00, True)
                    return []
                fields = _status_fields(status)
                if fields["status"] not in (0xFF00, 0xFF01):
                    send(fields["status"], True, fields.get("error_comment"))
                    return []
                try:
                    code = int(
                        destination.send_c_store(
                            ds,
                            originator_aet=info["negotiated"]["calling_ae_title"],
                            originator_id=request["message_id"],
                        ).Status
                    )
                except DimseError as e:
                    LOGGER.warning("C-MOVE sub-operation failed: %s", e)
                    code = 0xA700
                    if not destination.is_established:
                        destination = None
                        raise
                progress.record(_outcome(code), ds)
                if not send(0xFF00, False):
                    return []
        except Exception as e:
            LOGGER.error("the C-MOVE failed:\n%s", traceback.format_exc())
            send(0xC511, True, f"{e!r}")
            return []
        finally:
            _close(results)
            if destination is not None and destination.is_established:
                destination.release()
        progress.finish()
        return []

    def _sub_store(
        self,
        info: dict[str, Any],
        ds: Dataset | str | os.PathLike[str],
        sub_id: int,
        responder: _core.Responder,
    ) -> str:
        """One C-STORE sub-operation of a C-GET: "completed", "warning" or "failed".

        ``ds`` is a Dataset or the path of a DICOM file, whose data set is sent as it is
        in the file when the requestor accepted the file's transfer syntax."""
        header: dict[str, Any] | None = None
        if isinstance(ds, Dataset):
            sop_class = str(getattr(ds, "SOPClassUID", ""))
            sop_instance = str(ds.SOPInstanceUID)
            meta = getattr(ds, "file_meta", None)
            own_ts = str(meta.TransferSyntaxUID) if meta and "TransferSyntaxUID" in meta else None
        else:
            try:
                header = _core.read_file_meta(ds)
            except (InvalidFile, OSError) as e:
                LOGGER.warning("C-GET sub-operation: %s", e)
                return "failed"
            sop_class = header["media_storage_sop_class_uid"]
            sop_instance = header["media_storage_sop_instance_uid"]
            own_ts = header["transfer_syntax_uid"]
        candidates = [
            c
            for c in info["negotiated"]["contexts"]
            if c["abstract_syntax"] == sop_class
            and c.get("transfer_syntax")
            and c["requestor_is_scp"]
        ]
        chosen = next((c for c in candidates if c["transfer_syntax"] == own_ts), None)
        if chosen is None and (own_ts is None or own_ts in dsutils.UNCOMPRESSED):
            chosen = next(
                (c for c in candidates if c["transfer_syntax"] in dsutils.UNCOMPRESSED), None
            )
        if chosen is None:
            LOGGER.warning(
                "C-GET sub-operation failed: no context on which the requestor takes the SCP "
                "role for %s in %s (it accepted it as SCP in: %s)",
                sop_class,
                own_ts or "an uncompressed transfer syntax",
                ", ".join(c["transfer_syntax"] for c in candidates) or "none",
            )
            return "failed"
        request = {
            "type": "C-STORE-RQ",
            "affected_sop_class_uid": sop_class,
            "message_id": sub_id,
            "priority": "Medium",
            "affected_sop_instance_uid": sop_instance,
        }
        try:
            if header is None:
                assert isinstance(ds, Dataset)
                data = dsutils.encode(ds, chosen["transfer_syntax"])
            elif chosen["transfer_syntax"] == own_ts:
                with open(ds, "rb") as f:
                    f.seek(header["data_offset"])
                    data = f.read()
            else:
                data = dsutils.encode(dcmread(ds), chosen["transfer_syntax"])
        except (OSError, ValueError) as e:
            LOGGER.warning("C-GET sub-operation: cannot read %s: %s", ds, e)
            return "failed"
        command = _core.encode_message(request, has_dataset=True)
        if not responder.send(chosen["id"], command, data):
            return "failed"
        reply = responder.reply(self.ae.dimse_timeout)
        if reply is None:
            return "failed"
        return _outcome(_core.decode_command_set(reply[1]).get("Status", 0xC000))

    def _n_service(
        self,
        info: dict[str, Any],
        context_id: int,
        command: bytes,
        dataset: bytes | None,
        request: dict[str, Any],
        response: dict[str, Any],
    ) -> bytes | None:
        """An N-service request (PS3.7 10): runs its handler, fills ``response`` and
        returns the reply data set bytes, if any."""
        event_type = _N_EVENTS[request["type"]]
        response["affected_sop_class_uid"] = request.get(
            "affected_sop_class_uid", request.get("requested_sop_class_uid")
        )
        instance = request.get(
            "affected_sop_instance_uid", request.get("requested_sop_instance_uid")
        )
        for key in ("event_type_id", "action_type_id"):
            if key in request:
                response[key] = request[key]
        context = _context(info, context_id)
        event = Event(
            self._view(info),
            event_type,
            request=command_dataset(command),
            context=context,
            data=dataset,
        )
        if not event.assoc.get_handlers(event_type):
            response.update(
                status=0x0110, error_comment=_comment(f"no handler bound to {event_type.name}")
            )
            return None
        try:
            result = self._call(event_type, event)
            status, reply = (result, None) if event_type is EVT_N_DELETE else result
            response.update(_status_fields(status))
        except Exception as e:
            LOGGER.error("the %s handler raised:\n%s", event_type.name, traceback.format_exc())
            response.update(status=0x0110, error_comment=_comment(f"handler raised {e!r}"))
            return None
        if not instance and isinstance(reply, Dataset) and "SOPInstanceUID" in reply:
            instance = str(reply.SOPInstanceUID)  # N-CREATE: the SCP chose the UID
        if instance:
            response["affected_sop_instance_uid"] = instance
        ok = response["status"] == 0 or 0xB000 <= response["status"] <= 0xBFFF
        if reply is None or not ok or context is None:
            return None
        return dsutils.encode(reply, context.transfer_syntax[0])


def _close(results: object) -> None:
    """Closes a handler's generator left mid-way (cancel, failure), so that its cleanup
    (closing a cursor, say) runs now rather than at garbage collection."""
    close = getattr(results, "close", None)
    if close is not None:
        close()


def _outcome(status: int) -> str:
    """How a C-STORE sub-operation ended, for the counters: completed, warning, failed."""
    if status == 0:
        return "completed"
    return "warning" if (0xB000 <= status <= 0xBFFF or status == 0x0001) else "failed"


class _SubOperations:
    """The sub-operation counters of a C-GET or C-MOVE and the responses that carry them
    (PS3.4 C.4.2.1.5, C.4.3.1.4)."""

    def __init__(
        self,
        response: dict[str, Any],
        context_id: int,
        context: PresentationContext | None,
        responder: _core.Responder,
    ) -> None:
        self.response = response
        self.context_id = context_id
        self.context = context
        self.responder = responder
        self.counts = {"remaining": 0, "completed": 0, "failed": 0, "warning": 0}
        self.failed_uids: list[str] = []

    def record(self, outcome: str, ds: Dataset | str | os.PathLike[str]) -> None:
        self.counts["remaining"] = max(0, self.counts["remaining"] - 1)
        self.counts[outcome] += 1
        if outcome == "failed":
            if isinstance(ds, Dataset):
                self.failed_uids.append(str(getattr(ds, "SOPInstanceUID", "")))
                return
            try:
                self.failed_uids.append(_core.read_file_meta(ds)["media_storage_sop_instance_uid"])
            except (InvalidFile, OSError):
                LOGGER.warning("failed sub-operation of an unreadable file %s", ds)

    def send(self, status: int, final: bool, comment: str | None = None) -> bool:
        """A response with the counters and the Failed SOP Instance UID List when there
        were failures. Remaining goes with Pending and Cancel only (the related fields of
        PS3.4 Tables C.4-2 and C.4-3)."""
        rsp = {**self.response, "status": status}
        with_remaining = not final or status == 0xFE00
        rsp.update({k: v for k, v in self.counts.items() if with_remaining or k != "remaining"})
        if comment:
            rsp["error_comment"] = _comment(comment)
        data = None
        if final and self.failed_uids and self.context is not None:
            data = dsutils.encode(_failed_list(self.failed_uids), self.context.transfer_syntax[0])
        return self.responder.send(self.context_id, _encode_response(rsp, data is not None), data)

    def finish(self) -> None:
        """The final response: cancelled, complete with failures or warnings (0xB000), or
        success."""
        if self.responder.is_cancelled():
            self.send(0xFE00, True)
        elif self.counts["failed"] or self.counts["warning"]:
            self.send(0xB000, True)
        else:
            self.send(0x0000, True)


def _failed_list(uids: list[str]) -> Dataset:
    """The identifier of a final C-GET/C-MOVE response with failures (PS3.4 C.4.3.1.3.1)."""
    ds = Dataset()
    ds.FailedSOPInstanceUIDList = uids
    return ds


def _encode_response(response: dict[str, Any], has_dataset: bool) -> bytes:
    """The response's command set; a status a handler got wrong becomes a processing
    failure that says so."""
    try:
        return _core.encode_message(response, has_dataset=has_dataset)
    except Exception as e:
        LOGGER.error("invalid handler result: %s", e)
        response = {k: v for k, v in response.items() if k != "error_comment"}
        response.update(status=0x0110, error_comment=_comment(f"invalid status: {e}"))
        return _core.encode_message(response, has_dataset=False)


def _store_status(server: Server, event: Event) -> dict[str, Any]:
    """Runs the EVT_C_STORE handler: its status, or 0xC211 (storage: cannot understand)
    with an error comment when there is no handler or it raised (as pynetdicom does)."""
    if not event.assoc.get_handlers(EVT_C_STORE):
        return {"status": 0xC211, "error_comment": "no handler bound to EVT_C_STORE"}
    try:
        return _status_fields(server._call(EVT_C_STORE, event))
    except Exception as e:
        LOGGER.error("the EVT_C_STORE handler raised:\n%s", traceback.format_exc())
        return {"status": 0xC211, "error_comment": _comment(f"handler raised {e!r}")}


def _comment(text: str) -> str:
    # ErrorComment is LO: 64 characters, no backslash (PS3.5 6.2).
    return text.replace("\\", "/")[:64]


def _status_fields(status: Any) -> dict[str, Any]:
    """A handler's status (an int, or a Dataset with Status and status elements)."""
    if isinstance(status, Dataset):
        out: dict[str, Any] = {"status": int(status.Status)}
        if "ErrorComment" in status:
            out["error_comment"] = _comment(str(status.ErrorComment))
        if "ErrorID" in status:
            out["error_id"] = int(status.ErrorID)
        if "OffendingElement" in status:
            value = status.OffendingElement
            tags = [value] if isinstance(value, int) else list(value)
            out["offending_element"] = [(int(t) >> 16, int(t) & 0xFFFF) for t in tags]
        return out
    if isinstance(status, int) and not isinstance(status, bool) and 0 <= status <= 0xFFFF:
        return {"status": status}
    raise InvalidArgument(f"a handler must return a status int or Dataset, not {status!r}")


def _context(info: dict[str, Any], context_id: int) -> PresentationContext | None:
    for c in info["negotiated"]["contexts"]:
        if c["id"] == context_id and c.get("transfer_syntax"):
            return PresentationContext(
                c["abstract_syntax"], [c["transfer_syntax"]], context_id=context_id, result=0
            )
    return None


class _Hooks:
    """Negotiation hooks called from Rust (on a blocking thread) for the EVT_* handlers."""

    def __init__(self, server: Server) -> None:
        self._server = server

    def __getattr__(self, name: str) -> Any:
        # Rust asks for a hook by name; None when no handler is bound (the default
        # answer then costs no call into Python).
        event = _HOOK_EVENTS.get(name)
        if event is None:
            raise AttributeError(name)
        if event not in self._server._handlers:
            return None
        return getattr(self, "_" + name)

    def _event(self, event_type: Any, **attrs: Any) -> Event:
        return Event(None, event_type, attrs=attrs)

    def _user_identity(
        self, kind: int, primary: bytes, secondary: bytes, positive: bool
    ) -> tuple[bool, bytes | None]:
        event = self._event(
            EVT_USER_ID,
            user_id_type=kind,
            primary_field=bytes(primary),
            secondary_field=bytes(secondary),
        )
        verified, response = self._server._call(EVT_USER_ID, event)
        return bool(verified), (bytes(response) if response is not None and positive else None)

    def _sop_extended(self, items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        event = self._event(EVT_SOP_EXTENDED, app_info={uid: bytes(i) for uid, i in items})
        answers = self._server._call(EVT_SOP_EXTENDED, event) or {}
        return [(str(uid), bytes(info)) for uid, info in dict(answers).items()]

    def _sop_common(self, items: list[tuple[str, str, list[str]]]) -> list[str]:
        proposed = {
            uid: SOPClassCommonExtendedNegotiation(uid, service, related)
            for uid, service, related in items
        }
        event = self._event(EVT_SOP_COMMON, items=proposed)
        accepted = self._server._call(EVT_SOP_COMMON, event) or {}
        return [str(uid) for uid in dict(accepted)]

    def _async_ops(self, invoked: int, performed: int) -> tuple[int, int]:
        event = self._event(EVT_ASYNC_OPS, nr_invoked=invoked, nr_performed=performed)
        result = self._server._call(EVT_ASYNC_OPS, event)
        return int(result[0]), int(result[1])


#: Failure statuses for a data set that cannot be decoded ("cannot understand", as
#: pynetdicom uses them); the DIMSE-N services use 0x0110 (processing failure).
_UNDECODABLE = {"C-STORE-RQ": 0xC210, "C-FIND-RQ": 0xC310, "C-GET-RQ": 0xC410, "C-MOVE-RQ": 0xC510}

#: Every storage SOP class UID (the contexts a C-MOVE may need toward a destination).
_STORAGE = frozenset(pc.abstract_syntax for pc in AllStoragePresentationContexts)

_HOOK_EVENTS = {
    "user_identity": EVT_USER_ID,
    "sop_extended": EVT_SOP_EXTENDED,
    "sop_common": EVT_SOP_COMMON,
    "async_ops": EVT_ASYNC_OPS,
}

# Keep `sop` referenced for users reading this module's namespace.
_ = sop
