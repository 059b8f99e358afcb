"""Which peer may use which service: ``AE.permissions`` turned into abstract syntaxes.

``AE.permissions`` maps a calling AE title (``"*"``: any other) to what it may use: service
names and SOP Class UIDs::

    ae.permissions = {
        "CT_SCANNER": ["echo", "store"],
        "VIEWER": ["echo", "find", "get", "move"],
        "*": ["echo"],
    }

The service names stand for the supported SOP classes of that service: ``"echo"``
(Verification), ``"store"`` (every ``...Storage`` SOP class), ``"find"``, ``"get"``,
``"move"`` (the Query/Retrieve and worklist models by their last word); anything else
(N-services, Storage Commitment ...) is named by its SOP Class UID. A context for a SOP
class the calling AE may not use is refused as a user rejection (PS3.8 9.3.3.2, result
1); a calling AE title that is not listed, without ``"*"``, gets A-ASSOCIATE-RJ "calling
AE title not recognized".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .exceptions import InvalidArgument

__all__ = ["SERVICES", "expand_permissions", "service_of"]

#: The service names ``AE.permissions`` understands.
SERVICES = ("echo", "store", "find", "get", "move")

_VERIFICATION = "1.2.840.10008.1.1"


def service_of(abstract_syntax: str) -> str | None:
    """The service name of a SOP class (by its PS3.6 keyword), or None."""
    from . import sop

    if abstract_syntax == _VERIFICATION:
        return "echo"
    keyword = _keywords(sop.SOP_CLASSES).get(abstract_syntax, "")
    for suffix, service in (
        ("Storage", "store"),
        ("Find", "find"),
        ("Get", "get"),
        ("Move", "move"),
    ):
        if keyword.endswith(suffix):
            return service
    return None


_KEYWORDS: dict[str, str] = {}


def _keywords(classes: Mapping[str, str]) -> dict[str, str]:
    if not _KEYWORDS:
        for keyword, uid in classes.items():
            _KEYWORDS.setdefault(str(uid), keyword)
    return _KEYWORDS


def _is_uid(value: str) -> bool:
    parts = value.split(".")
    return 0 < len(value) <= 64 and all(p.isdigit() and (p == "0" or p[0] != "0") for p in parts)


def check_permissions(permissions: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """``permissions`` checked: AE titles (or ``"*"``) to service names or UIDs."""
    from .ae import _check_ae_title

    if not isinstance(permissions, Mapping):
        raise InvalidArgument(
            "AE.permissions must map calling AE titles to lists of services or SOP Class "
            f"UIDs, e.g. {{'CT1': ['echo', 'store']}}, not {type(permissions).__name__}"
        )
    checked: dict[str, list[str]] = {}
    for title, allowed in permissions.items():
        key = "*" if title == "*" else _check_ae_title(title, "AE.permissions calling AE title")
        if isinstance(allowed, str):
            raise InvalidArgument(
                f"AE.permissions[{title!r}] must be a list of services or UIDs, not the string "
                f"{allowed!r} (write [{allowed!r}])"
            )
        entries = []
        for entry in allowed:
            if not isinstance(entry, str) or not (entry in SERVICES or _is_uid(entry)):
                raise InvalidArgument(
                    f"AE.permissions[{title!r}]: {entry!r} is neither a service "
                    f"({', '.join(SERVICES)}) nor a SOP Class UID"
                )
            entries.append(entry)
        checked[key] = entries
    return checked


def expand_permissions(
    permissions: Mapping[str, list[str]], supported: Iterable[str]
) -> dict[str, object]:
    """The core's form: each AE title's services and UIDs as the supported abstract
    syntaxes they allow."""
    supported = list(dict.fromkeys(supported))
    services = {uid: service_of(uid) for uid in supported}

    def syntaxes(entries: list[str]) -> list[str]:
        wanted = set(entries)
        return [uid for uid in supported if uid in wanted or services[uid] in wanted]

    return {
        "by_calling_ae": {t: syntaxes(e) for t, e in permissions.items() if t != "*"},
        "default": syntaxes(permissions["*"]) if "*" in permissions else None,
    }
