"""dimse: DICOM message exchange (PS3.7 DIMSE over the PS3.8 Upper Layer).

The codecs, the association state machine and the network I/O are Rust (``dimse._core``);
this package is the Python face of it.
"""

from __future__ import annotations

import logging

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
    TLSError,
)
from dimse.pool import AssociationPool, Peer, PoolClosed, PoolKey, PoolStats, PoolTimeout
from dimse.presentation import (
    AllStoragePresentationContexts,
    ApplicationEventLoggingPresentationContexts,
    BasicWorklistManagementPresentationContexts,
    ColorPalettePresentationContexts,
    DefinedProcedureProtocolPresentationContexts,
    DisplaySystemPresentationContexts,
    HangingProtocolPresentationContexts,
    ImplantTemplatePresentationContexts,
    InstanceAvailabilityPresentationContexts,
    MediaCreationManagementPresentationContexts,
    ModalityPerformedPresentationContexts,
    ModalityWorklistPresentationContexts,
    PresentationContext,
    PrintManagementPresentationContexts,
    ProcedureStepPresentationContexts,
    ProtocolApprovalPresentationContexts,
    QueryRetrievePresentationContexts,
    RelevantPatientInformationPresentationContexts,
    RTMachineVerificationPresentationContexts,
    StorageCommitmentPresentationContexts,
    StoragePresentationContexts,
    SubstanceAdministrationPresentationContexts,
    UnifiedProcedurePresentationContexts,
    VerificationPresentationContexts,
    build_context,
    build_role,
)
from dimse.tls import TLS

__version__: str = _core.__version__

# Quiet by default (PEP 282 libraries): nothing is printed unless the application
# configures logging, or calls debug_logger().
logging.getLogger("dimse").addHandler(logging.NullHandler())


def debug_logger() -> None:
    """Logs everything dimse does (level DEBUG) to stderr, as pynetdicom's
    ``debug_logger()``: for scripts and troubleshooting."""
    logger = logging.getLogger("dimse")
    logger.setLevel(logging.DEBUG)
    if not any(getattr(h, "_dimse_debug", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname).1s: %(name)s: %(message)s"))
        handler._dimse_debug = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


__all__ = [
    "AE",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "TLS",
    "AcseTimeout",
    "AllStoragePresentationContexts",
    "ApplicationEventLoggingPresentationContexts",
    "Association",
    "AssociationAborted",
    "AssociationError",
    "AssociationPool",
    "AssociationRejected",
    "BasicWorklistManagementPresentationContexts",
    "ColorPalettePresentationContexts",
    "ConnectFailed",
    "DefinedProcedureProtocolPresentationContexts",
    "DimseError",
    "DimseTimeout",
    "DisplaySystemPresentationContexts",
    "HangingProtocolPresentationContexts",
    "ImplantTemplatePresentationContexts",
    "InstanceAvailabilityPresentationContexts",
    "InvalidArgument",
    "InvalidCommandSet",
    "InvalidMessage",
    "InvalidPDU",
    "InvalidResponse",
    "MediaCreationManagementPresentationContexts",
    "MessageAssembler",
    "ModalityPerformedPresentationContexts",
    "ModalityWorklistPresentationContexts",
    "NoAcceptedContext",
    "NotEstablished",
    "PduReader",
    "Peer",
    "PoolClosed",
    "PoolKey",
    "PoolStats",
    "PoolTimeout",
    "PresentationContext",
    "PrintManagementPresentationContexts",
    "ProcedureStepPresentationContexts",
    "ProtocolApprovalPresentationContexts",
    "QueryRetrievePresentationContexts",
    "RTMachineVerificationPresentationContexts",
    "RelevantPatientInformationPresentationContexts",
    "Server",
    "StorageCommitmentPresentationContexts",
    "StoragePresentationContexts",
    "SubstanceAdministrationPresentationContexts",
    "TLSError",
    "UnifiedProcedurePresentationContexts",
    "VerificationPresentationContexts",
    "__version__",
    "build_context",
    "build_role",
    "debug_logger",
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
