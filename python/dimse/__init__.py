"""dimse: DICOM message exchange (PS3.7 DIMSE over the PS3.8 Upper Layer).

The codecs, the association state machine and the network I/O are Rust (``dimse._core``);
this package is the Python face of it.
"""

from __future__ import annotations

from dimse import _core, evt, sop
from dimse._core import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    MessageAssembler,
    PduReader,
    decode_command_set,
    decode_message,
    decode_pdu,
    encode_command_set,
    encode_message,
    encode_pdu,
    fragment,
    status_category,
    status_name,
)
from dimse.ae import AE, Server
from dimse.association import Association
from dimse.exceptions import (
    AcseTimeout,
    AssociationAborted,
    AssociationError,
    AssociationRejected,
    ConnectFailed,
    DimseError,
    DimseTimeout,
    InvalidArgument,
    InvalidCommandSet,
    InvalidMessage,
    InvalidPDU,
    InvalidResponse,
    NoAcceptedContext,
    NotEstablished,
)
from dimse.presentation import PresentationContext, build_context, build_role

__version__: str = _core.__version__

__all__ = [
    "AE",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "AcseTimeout",
    "Association",
    "AssociationAborted",
    "AssociationError",
    "AssociationRejected",
    "ConnectFailed",
    "DimseError",
    "DimseTimeout",
    "InvalidArgument",
    "InvalidCommandSet",
    "InvalidMessage",
    "InvalidPDU",
    "InvalidResponse",
    "MessageAssembler",
    "NoAcceptedContext",
    "NotEstablished",
    "PduReader",
    "PresentationContext",
    "Server",
    "__version__",
    "build_context",
    "build_role",
    "decode_command_set",
    "decode_message",
    "decode_pdu",
    "encode_command_set",
    "encode_message",
    "encode_pdu",
    "evt",
    "fragment",
    "sop",
    "status_category",
    "status_name",
]
