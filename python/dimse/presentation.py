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
    "PresentationContext",
    "QueryRetrievePresentationContexts",
    "StoragePresentationContexts",
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


#: Storage SOP classes (PS3.4 B.5), at most 128 (one association's limit, PS3.8 9.3.2.2).
StoragePresentationContexts: list[PresentationContext] = contexts_for(
    _current(lambda k: k.endswith("Storage"))[:128]
)

#: The Query/Retrieve information models (PS3.4 C.6): FIND, MOVE and GET of the patient
#: root, study root and composite instance root models.
QueryRetrievePresentationContexts: list[PresentationContext] = contexts_for(
    _current(lambda k: "QueryRetrieve" in k and k.endswith(("Find", "Move", "Get")))
)
