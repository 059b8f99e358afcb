"""Exceptions raised by dimse.

Every error that dimse raises is a :class:`DimseError`. Errors caused by bytes a peer sent
(:class:`InvalidPDU`, :class:`InvalidCommandSet`, :class:`InvalidMessage`) say what was
wrong with them; errors caused by a caller's argument (:class:`InvalidArgument`, also a
:class:`ValueError`) say what to change. The Rust extension raises these classes through
one conversion point, so catching them here catches them everywhere.
"""

from __future__ import annotations

__all__ = [
    "AcseTimeout",
    "AssociationAborted",
    "AssociationError",
    "AssociationRejected",
    "ConnectFailed",
    "DimseError",
    "DimseTimeout",
    "InvalidArgument",
    "InvalidCommandSet",
    "InvalidFile",
    "InvalidMessage",
    "InvalidPDU",
    "InvalidResponse",
    "NoAcceptedContext",
    "NotEstablished",
    "TLSError",
]


class DimseError(Exception):
    """Base class of every dimse error."""


class InvalidPDU(DimseError, ValueError):
    """Bytes received from a peer are not a valid PDU (PS3.8 9.3).

    ``abort_reason`` holds the A-ABORT provider reason (PS3.8 Table 9-26) that answers
    the error: 1 unrecognized PDU, 2 unexpected PDU, 4 unrecognized PDU parameter,
    5 unexpected PDU parameter, 6 invalid PDU parameter value.
    """

    abort_reason: int = 0


class InvalidCommandSet(DimseError, ValueError):
    """Bytes received as a command set are not a valid DIMSE command (PS3.7 6.3, 9, 10)."""


class InvalidMessage(DimseError, ValueError):
    """Presentation data values do not form a valid message (PS3.8 Annex E)."""


class InvalidArgument(DimseError, ValueError):
    """An argument passed to dimse is not valid; the message says what to change."""


class AssociationError(DimseError):
    """An association could not be established or did not end normally."""


class AssociationRejected(AssociationError):
    """The peer rejected the association (A-ASSOCIATE-RJ, PS3.8 9.3.4).

    ``result``, ``source`` and ``reason`` hold the reject's values, as numbers; the message
    names them.
    """

    def __init__(self, message: str, result: int = 0, source: int = 0, reason: int = 0) -> None:
        super().__init__(message)
        self.result = result
        self.source = source
        self.reason = reason


class AssociationAborted(AssociationError, ConnectionError):
    """The association was aborted (A-ABORT from the peer, or by the service provider)."""


class ConnectFailed(AssociationError, ConnectionError):
    """No transport connection to the peer (refused, unreachable, or timed out)."""


class TLSError(ConnectFailed):
    """The TLS handshake failed: the peer's certificate was not trusted or does not name
    it, ours was refused, no common protocol version, or the peer does not speak TLS."""


class DimseTimeout(DimseError, TimeoutError):
    """The peer did not answer within the DIMSE timeout."""


class AcseTimeout(AssociationError, TimeoutError):
    """The peer did not answer association negotiation or release in time."""


class NotEstablished(DimseError):
    """The association is not established (it was rejected, aborted or released)."""


class NoAcceptedContext(DimseError, ValueError):
    """No accepted presentation context fits the request (SOP class, transfer syntax)."""


class InvalidFile(DimseError, ValueError):
    """A file is not a DICOM Part 10 file (no valid File Meta Information, PS3.10 7.1)."""


class InvalidResponse(DimseError):
    """The peer's response does not answer the request (wrong message or Message ID)."""


class StorageFailed(DimseError, OSError):
    """A received instance could not be written to disk (no space, no permission ...)."""
