"""Extended negotiation items for ``AE.associate(ext_neg=[...])``, named as in pynetdicom's
``pdu_primitives`` so that scripts port by changing the import."""

from __future__ import annotations

from dataclasses import dataclass, field

from dimse.presentation import RoleSelection

__all__ = [
    "AsynchronousOperationsWindowNegotiation",
    "SCP_SCU_RoleSelectionNegotiation",
    "SOPClassCommonExtendedNegotiation",
    "SOPClassExtendedNegotiation",
    "UserIdentityNegotiation",
]


@dataclass
class SCP_SCU_RoleSelectionNegotiation:
    """SCP/SCU Role Selection (PS3.7 D.3.3.4)."""

    sop_class_uid: str = ""
    scu_role: bool = False
    scp_role: bool = False

    def as_role(self) -> RoleSelection:
        return RoleSelection(self.sop_class_uid, self.scu_role, self.scp_role)


@dataclass
class UserIdentityNegotiation:
    """User Identity (PS3.7 D.3.3.7): type 1 username, 2 username and passcode,
    3 Kerberos, 4 SAML, 5 JWT."""

    user_identity_type: int = 1
    primary_field: bytes = b""
    secondary_field: bytes = b""
    positive_response_requested: bool = False


@dataclass
class SOPClassExtendedNegotiation:
    """SOP Class Extended Negotiation (PS3.7 D.3.3.5)."""

    sop_class_uid: str = ""
    service_class_application_information: bytes = b""


@dataclass
class SOPClassCommonExtendedNegotiation:
    """SOP Class Common Extended Negotiation (PS3.7 D.3.3.6)."""

    sop_class_uid: str = ""
    service_class_uid: str = ""
    related_general_sop_class_identification: list[str] = field(default_factory=list)


@dataclass
class AsynchronousOperationsWindowNegotiation:
    """Asynchronous Operations Window (PS3.7 D.3.3.3); 0 means unlimited."""

    maximum_number_operations_invoked: int = 1
    maximum_number_operations_performed: int = 1
