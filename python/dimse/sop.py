"""SOP Class UIDs by keyword, e.g. ``sop.Verification``, ``sop.CTImageStorage``.

Generated at import from pydicom's UID dictionary (PS3.6 Annex A), not written by hand, so
it follows the standard as pydicom ships it.
"""

from __future__ import annotations

from pydicom._uid_dict import UID_dictionary
from pydicom.uid import UID

#: Every SOP Class and Meta SOP Class UID (retired ones included) by its PS3.6 keyword.
SOP_CLASSES: dict[str, UID] = {
    info[4]: UID(uid)
    for uid, info in UID_dictionary.items()
    if info[1] in ("SOP Class", "Meta SOP Class") and info[4]
}


def __getattr__(name: str) -> UID:
    try:
        return SOP_CLASSES[name]
    except KeyError:
        raise AttributeError(f"no SOP class with keyword {name!r} in PS3.6") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *SOP_CLASSES])
