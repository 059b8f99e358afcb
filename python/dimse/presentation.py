"""Presentation contexts: what an AE proposes (requestor) or supports (acceptor)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydicom._uid_dict import UID_dictionary
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dimse import sop
from dimse.exceptions import InvalidArgument

__all__ = [
    "DEFAULT_TRANSFER_SYNTAXES",
    "AllStoragePresentationContexts",
    "ApplicationEventLoggingPresentationContexts",
    "BasicWorklistManagementPresentationContexts",
    "ColorPalettePresentationContexts",
    "DefinedProcedureProtocolPresentationContexts",
    "DisplaySystemPresentationContexts",
    "HangingProtocolPresentationContexts",
    "ImplantTemplatePresentationContexts",
    "InstanceAvailabilityPresentationContexts",
    "MediaCreationManagementPresentationContexts",
    "ModalityPerformedPresentationContexts",
    "ModalityWorklistPresentationContexts",
    "PresentationContext",
    "PrintManagementPresentationContexts",
    "ProcedureStepPresentationContexts",
    "ProtocolApprovalPresentationContexts",
    "QueryRetrievePresentationContexts",
    "RTMachineVerificationPresentationContexts",
    "RelevantPatientInformationPresentationContexts",
    "StorageCommitmentPresentationContexts",
    "StoragePresentationContexts",
    "SubstanceAdministrationPresentationContexts",
    "UnifiedProcedurePresentationContexts",
    "VerificationPresentationContexts",
    "build_context",
    "build_role",
]

#: The transfer syntaxes proposed or supported when none are given: the uncompressed
#: ones every DICOM application understands (Implicit VR Little Endian is mandatory,
#: PS3.5 10.1).
DEFAULT_TRANSFER_SYNTAXES: list[str] = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
]


def _check_uid(what: str, uid: str) -> str:
    uid = str(uid)
    if not uid or len(uid) > 64 or not all(c.isdigit() or c == "." for c in uid):
        raise InvalidArgument(f"{what} {uid!r} is not a UID: digits and dots, at most 64")
    return uid


@dataclass
class PresentationContext:
    """A presentation context: an abstract syntax and its transfer syntaxes.

    On an association, ``context_id`` is its ID, ``transfer_syntax`` holds the accepted
    one (a one-item list) and ``result`` the acceptor's answer.
    """

    abstract_syntax: str
    transfer_syntax: list[str] = field(default_factory=lambda: list(DEFAULT_TRANSFER_SYNTAXES))
    context_id: int | None = None
    scu_role: bool | None = None
    scp_role: bool | None = None
    result: int | None = None

    def __post_init__(self) -> None:
        self.abstract_syntax = _check_uid("abstract syntax", self.abstract_syntax)
        if isinstance(self.transfer_syntax, str):
            self.transfer_syntax = [self.transfer_syntax]
        if not self.transfer_syntax:
            raise InvalidArgument(
                f"context {self.abstract_syntax}: give at least one transfer syntax"
            )
        self.transfer_syntax = [_check_uid("transfer syntax", t) for t in self.transfer_syntax]

    def add_transfer_syntax(self, syntax: str) -> None:
        """Adds a transfer syntax (ignored if already present)."""
        syntax = _check_uid("transfer syntax", syntax)
        if syntax not in self.transfer_syntax:
            self.transfer_syntax.append(syntax)


def build_context(
    abstract_syntax: str, transfer_syntax: str | Sequence[str] | None = None
) -> PresentationContext:
    """A presentation context for ``abstract_syntax`` with the given (or default)
    transfer syntaxes."""
    if transfer_syntax is None:
        return PresentationContext(abstract_syntax)
    if isinstance(transfer_syntax, str):
        transfer_syntax = [transfer_syntax]
    return PresentationContext(abstract_syntax, list(transfer_syntax))


@dataclass(frozen=True)
class RoleSelection:
    """An SCP/SCU Role Selection item (PS3.7 D.3.3.4) to pass in ``associate(ext_neg=...)``."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


def build_role(uid: str, scu_role: bool = False, scp_role: bool = False) -> RoleSelection:
    """An SCP/SCU role selection proposal for ``uid``, as pynetdicom's ``build_role``."""
    return RoleSelection(_check_uid("SOP class", uid), bool(scu_role), bool(scp_role))


def contexts_for(uids: Iterable[str]) -> list[PresentationContext]:
    return [build_context(u) for u in uids]


VerificationPresentationContexts: list[PresentationContext] = contexts_for([sop.Verification])


def _current(keyword_filter: Callable[[str], bool]) -> list[str]:
    """Current (not retired) SOP classes whose keyword passes ``keyword_filter``, by UID."""
    return sorted(
        (
            uid
            for uid, info in UID_dictionary.items()
            if info[1] == "SOP Class" and info[4] and not info[3] and keyword_filter(info[4])
        ),
        key=lambda u: [int(p) for p in u.split(".")],
    )


def _is_storage(keyword: str) -> bool:
    """Storage SOP classes: ``...Storage`` and ``...StorageForPresentation/Processing``."""
    return keyword.endswith("Storage") or "StorageFor" in keyword


#: Keyword parts of storage SOP classes that a general storage SCP rarely sees (security
#: screening, eyeglass prescriptions, treatment records ...): left out of the 128 first.
_NICHE = (
    "MediaStorageDirectory",
    "DICOS",
    "Lensometry",
    "Autorefraction",
    "Keratometry",
    "SubjectiveRefraction",
    "VisualAcuity",
    "SpectaclePrescription",
    "IntraocularLens",
    "OphthalmicAxial",
    "Protocol",
    "Inventory",
    "Implant",
    "ColorPalette",
    "RadiationRecord",
    "Tomotherapeutic",
    "CArmPhotonElectron",
    "RoboticArm",
    "EncapsulatedSTL",
    "EncapsulatedOBJ",
    "EncapsulatedMTL",
    "SurfaceScan",
    "Electrooculogram",
    "Electromyogram",
    "BodyPosition",
    "Volumetric",
    "ContentAssessment",
    "StereometricRelationship",
)


def _niche(keyword: str) -> bool:
    return any(part in keyword for part in _NICHE)


#: Storage SOP classes (PS3.4 B.5), at most 128 (one association's limit, PS3.8 9.3.2.2).
StoragePresentationContexts: list[PresentationContext] = contexts_for(
    sorted(
        sorted(_current(_is_storage), key=lambda u: _niche(UID_dictionary[u][4]))[:128],
        key=lambda u: [int(p) for p in u.split(".")],
    )
)

#: The Query/Retrieve information models (PS3.4 C.6): FIND, MOVE and GET of the patient
#: root, study root and composite instance root models.
QueryRetrievePresentationContexts: list[PresentationContext] = contexts_for(
    _current(lambda k: "QueryRetrieve" in k and k.endswith(("Find", "Move", "Get")))
)

#: Every current storage SOP class: more than one association can propose (128); pick
#: from it, as from pynetdicom's list of the same name.
AllStoragePresentationContexts: list[PresentationContext] = contexts_for(_current(_is_storage))


def _named(*keywords: str) -> list[PresentationContext]:
    """Contexts for the SOP classes with these PS3.6 keywords (those pydicom knows)."""
    return contexts_for(sop.SOP_CLASSES[k] for k in keywords if k in sop.SOP_CLASSES)


def _matching(*parts: str) -> list[PresentationContext]:
    """Contexts for the current SOP classes whose keyword contains one of ``parts``."""
    return contexts_for(_current(lambda k: any(p in k for p in parts)))


#: Modality Worklist (PS3.4 K).
ModalityWorklistPresentationContexts = _named("ModalityWorklistInformationModelFind")
BasicWorklistManagementPresentationContexts = ModalityWorklistPresentationContexts
#: Modality Performed Procedure Step (PS3.4 F).
ModalityPerformedPresentationContexts = _matching("ModalityPerformedProcedureStep")
ProcedureStepPresentationContexts = ModalityPerformedPresentationContexts
#: Storage Commitment (PS3.4 J).
StorageCommitmentPresentationContexts = _named("StorageCommitmentPushModel")
#: Print Management (PS3.4 H): the meta SOP classes and the print SOP classes.
PrintManagementPresentationContexts = _named(
    "BasicGrayscalePrintManagementMeta",
    "BasicColorPrintManagementMeta",
    "BasicFilmSession",
    "BasicFilmBox",
    "BasicGrayscaleImageBox",
    "BasicColorImageBox",
    "Printer",
    "PrinterConfigurationRetrieval",
    "PresentationLUT",
    "BasicAnnotationBox",
    "PrintJob",
)
#: Unified Procedure Step (PS3.4 CC).
UnifiedProcedurePresentationContexts = _matching("UnifiedProcedureStep")
#: Application Event Logging (PS3.4 P).
ApplicationEventLoggingPresentationContexts = _named(
    "ProceduralEventLogging", "SubstanceAdministrationLogging"
)
#: Instance Availability Notification (PS3.4 R).
InstanceAvailabilityPresentationContexts = _named("InstanceAvailabilityNotification")
#: Relevant Patient Information Query (PS3.4 Q).
RelevantPatientInformationPresentationContexts = _matching("RelevantPatientInformationQuery")
#: Hanging Protocol, Color Palette, Defined Procedure Protocol, Implant Template and
#: Protocol Approval storage and query/retrieve (PS3.4 T, U, X, HH, II).
HangingProtocolPresentationContexts = _matching("HangingProtocol")
ColorPalettePresentationContexts = _matching("ColorPalette")
DefinedProcedureProtocolPresentationContexts = _matching("DefinedProcedureProtocol")
ImplantTemplatePresentationContexts = _matching("ImplantTemplate", "ImplantAssemblyTemplate")
ProtocolApprovalPresentationContexts = _matching("ProtocolApproval")
#: Display System management (PS3.4 EE), RT Machine Verification (PS3.4 DD), Media
#: Creation Management (PS3.4 S), Substance Administration Query (PS3.4 V).
DisplaySystemPresentationContexts = _named("DisplaySystem")
RTMachineVerificationPresentationContexts = _matching(
    "RTConventionalMachineVerification", "RTIonMachineVerification"
)
MediaCreationManagementPresentationContexts = _named("MediaCreationManagement")
SubstanceAdministrationPresentationContexts = _matching(
    "ProductCharacteristicsQuery", "SubstanceApprovalQuery"
)
