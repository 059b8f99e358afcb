"""Exceptions raised by dimse.

Every error that dimse raises is a :class:`DimseError`. Errors caused by bytes a peer sent
(:class:`InvalidPDU`, :class:`InvalidCommandSet`, :class:`InvalidMessage`) say what was
wrong with them; errors caused by a caller's argument (:class:`InvalidArgument`, also a
:class:`ValueError`) say what to change. The Rust extension raises these classes through
one conversion point, so catching them here catches them everywhere.
"""

from __future__ import annotations

__all__ = [
    "DimseError",
    "InvalidArgument",
    "InvalidCommandSet",
    "InvalidMessage",
    "InvalidPDU",
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
