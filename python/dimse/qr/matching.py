"""Attribute matching for C-FIND and the retrieve services (PS3.4 C.2.2.2).

A query key's value is parsed once into a :class:`Condition`, which can both test a stored
value in Python and render itself as a parameterised SQL fragment over the index's columns,
so the two paths cannot drift apart: the index runs the selective kinds (exact values, UID
lists, ranges) in SQLite, where its B-tree indexes serve them, and the same object tests
computed attributes (ModalitiesInStudy, the Number of ... Related counts) in Python.

The rules, by kind of match:

- Universal Matching (C.2.2.2.3): a zero-length value, or a value of ``*`` only, matches
  every entity, including those where the attribute is empty.
- Single Value Matching (C.2.2.2.1): exact and case-sensitive, except for PN, where the
  standard lets an application be insensitive to case; we are (pydicom gives us decoded
  text, so "müller^hans" finds "Müller^Hans" whatever character set either was sent in).
  Leading and trailing spaces are padding for most string VRs and are dropped on both sides
  (PS3.5 6.2: only trailing ones for ST, LT, UT and UC; trailing NULs for UI).
- List of UID Matching (C.2.2.2.2): a backslash-separated list of UIDs matches any of them.
- Wild Card Matching (C.2.2.2.4): ``*`` is any run of characters, ``?`` one character, for
  every VR but DA, TM, DT, SL, SS, US, UL, FL, FD, OB, OW, UN, AT, DS, IS, AS and UI, where
  the two characters are taken literally.
- Range Matching (C.2.2.2.5): ``a-b``, ``a-``, ``-b`` for DA, TM and DT, inclusive. Times
  are compared as fixed-width ``HHMMSS.ffffff`` strings so that SQLite's string order is
  time order. A value of reduced precision (TM ``10``, DT ``2020``) denotes the whole hour
  or year (PS3.5 6.2 allows the components to be left out): as a lower bound it starts at
  its first instant, as an upper bound it ends at its last one, so ``-10`` keeps 10:30.
  Single values compare by their first instant, so ``1030`` equals ``103000.000``.
- Other multi-valued keys (``CT\\MR``; the standard only defines lists for UIDs): lenient,
  any of the values. Against a multi-valued stored attribute (ModalitiesInStudy) a key
  matches when it matches any one of the stored values.

DT offsets from UTC (``&ZZXX``) are parsed and dropped: the index stores no attribute that
carries one, so there is nothing to convert to a common zone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "NO_WILDCARD_VRS",
    "Condition",
    "MatchError",
    "StoredKind",
    "da_value",
    "dt_bounds",
    "normalize",
    "parse_condition",
    "pn_key",
    "tm_bounds",
    "wildcard_match",
]

#: PS3.4 C.2.2.2.4: the VRs for which ``*`` and ``?`` are not wild cards.
NO_WILDCARD_VRS = frozenset(
    {"DA", "TM", "DT", "SL", "SS", "US", "UL", "FL", "FD"}
    | {"OB", "OW", "UN", "AT", "DS", "IS", "AS", "UI"}
)
_INTEGER_VRS = frozenset({"IS", "SL", "SS", "UL", "US", "SV", "UV"})
# PS3.5 6.2: leading spaces are significant in these (only trailing ones are padding).
_RSTRIP_ONLY_VRS = frozenset({"ST", "LT", "UT", "UC"})


class MatchError(ValueError):
    """A query key value that the VR's matching rules cannot interpret (e.g. a bad date)."""


def normalize(vr: str, value: str) -> str:
    """``value`` without the padding PS3.5 6.2 declares insignificant for ``vr``."""
    if vr == "UI":
        return value.strip("\0 ")
    if vr in _RSTRIP_ONLY_VRS:
        return value.rstrip(" ")
    return value.strip(" ")


def pn_key(value: str) -> str:
    """The comparison key of a PN value: case-folded, without empty trailing components.

    PS3.5 6.2.1 lets trailing empty components and component groups be left out, so
    ``DOE^JOHN^^`` and ``DOE^JOHN`` are one name; spaces around components are padding.
    """
    groups = [
        "^".join(part.strip(" ") for part in group.split("^")).rstrip("^")
        for group in value.split("=")
    ]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups).casefold()


# -- dates and times -------------------------------------------------------------------

_DA = re.compile(r"\d{8}")
_TM = re.compile(r"(\d\d)(?:(\d\d)(?:(\d\d)(?:\.(\d{1,6}))?)?)?")
_DT = re.compile(
    r"(\d{4})(?:(\d\d)(?:(\d\d)(?:(\d\d)(?:(\d\d)(?:(\d\d)(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"(?:[+-]\d{4})?"
)


def da_value(value: str) -> str | None:
    """A DA value as ``YYYYMMDD``, or None when it is not one.

    ``YYYY.MM.DD`` (ACR-NEMA, PS3.5 6.2 DA note) is accepted and rewritten.
    """
    value = value.strip(" ")
    if len(value) == 10 and value[4] == "." and value[7] == ".":
        value = value.replace(".", "")
    return value if _DA.fullmatch(value) else None


def tm_bounds(value: str) -> tuple[str, str] | None:
    """The first and last instant a TM value denotes, as ``HHMMSS.ffffff``; None if invalid.

    ``HH:MM:SS`` (ACR-NEMA, PS3.5 6.2 TM note) is accepted.
    """
    value = value.strip(" ")
    if len(value) >= 5 and value[2:3] == ":":
        value = value.replace(":", "")
    m = _TM.fullmatch(value)
    if m is None:
        return None
    hh, mm, ss, frac = m.groups()
    if int(hh) > 23 or (mm is not None and int(mm) > 59) or (ss is not None and int(ss) > 60):
        return None
    return _bounds([hh], [(mm, "00", "59"), (ss, "00", "59")], frac)


def dt_bounds(value: str) -> tuple[str, str] | None:
    """The first and last instant a DT value denotes, as ``YYYYMMDDHHMMSS.ffffff``.

    None when it is not a DT value. The offset from UTC, if any, is dropped.
    """
    m = _DT.fullmatch(value.strip(" "))
    if m is None:
        return None
    yyyy, mo, dd, hh, mi, ss, frac = m.groups()
    # Day 31 as the ceiling of every month: the bound only has to sort after real days.
    optional = [(mo, "01", "12"), (dd, "01", "31"), (hh, "00", "23"), (mi, "00", "59")]
    return _bounds([yyyy], [*optional, (ss, "00", "59")], frac)


def _bounds(
    fixed: list[str], optional: list[tuple[str | None, str, str]], frac: str | None
) -> tuple[str, str]:
    low, high = "".join(fixed), "".join(fixed)
    truncated = False
    for part, first, last in optional:
        if part is None or truncated:
            truncated = True
            low += first
            high += last
        else:
            low += part
            high += part
    if truncated or frac is None:
        return low + ".000000", high + ".999999"
    return low + "." + frac.ljust(6, "0"), high + "." + frac.ljust(6, "9")


# -- wild cards ------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # A PN pattern ending in "^*" ("DOE^*") also finds names stored without the empty
    # given-name component ("DOE"), which PS3.5 6.2.1 makes the same name.
    tail = ""
    if pattern.endswith("^*"):
        pattern, tail = pattern[:-2], r"(?:\^.*)?"
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(body + tail, flags)


def wildcard_match(pattern: str, value: str | None, ignore_case: int) -> int:
    """1 when ``value`` matches the C.2.2.2.4 ``pattern`` (SQL function ``dimse_wildcard``)."""
    if value is None:
        return 0
    return int(_wildcard_regex(pattern, bool(ignore_case)).fullmatch(value) is not None)


# -- conditions ------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredKind:
    """How the index stores an attribute, which decides how a condition renders to SQL.

    ``kind`` is one of ``text`` (compared as is), ``pn`` (``key_column`` holds
    :func:`pn_key`), ``int``, ``da`` (normalized ``YYYYMMDD``), ``tm`` and ``dt``
    (``key_column`` holds the first instant, :func:`tm_bounds` / :func:`dt_bounds`).
    """

    column: str
    kind: str
    key_column: str | None = None


class Condition:
    """One query key's matching rule: test a stored value, or render SQL."""

    def test(self, stored: str | int | None) -> bool:
        raise NotImplementedError

    def test_any(self, stored: Sequence[str | int]) -> bool:
        """For multi-valued stored attributes: true when any one value matches."""
        return any(self.test(value) for value in stored)

    def sql(self, where: StoredKind) -> tuple[str, list[object]]:
        raise NotImplementedError


@dataclass(frozen=True)
class _Text(Condition):
    """Single Value Matching of a string (C.2.2.2.1); PN compares :func:`pn_key`."""

    value: str
    vr: str

    def test(self, stored: str | int | None) -> bool:
        if stored is None:
            return False
        if self.vr == "PN":
            return _pn_equal(pn_key(self.value), pn_key(str(stored)))
        return normalize(self.vr, str(stored)) == self.value

    def sql(self, where: StoredKind) -> tuple[str, list[object]]:
        if where.kind == "pn":
            key = pn_key(self.value)
            # The name as a whole, or only its first (alphabetic) component group when the
            # query gives just that one: "Yamada^Tarou" finds "Yamada^Tarou=山田^太郎".
            return (
                f"({where.key_column} = ? OR substr({where.key_column}, 1, ?) = ?)",
                [key, len(key) + 1, key + "="],
            )
        return f"{where.column} = ?", [self.value]


def _pn_equal(query_key: str, stored_key: str) -> bool:
    return stored_key == query_key or stored_key.startswith(query_key + "=")


@dataclass(frozen=True)
class _Wildcard(Condition):
    """Wild Card Matching (C.2.2.2.4), case-insensitive for PN."""

    pattern: str
    ignore_case: bool

    def test(self, stored: str | int | None) -> bool:
        return stored is not None and bool(
            wildcard_match(self.pattern, str(stored), self.ignore_case)
        )

    def sql(self, where: StoredKind) -> tuple[str, list[object]]:
        return f"dimse_wildcard(?, {where.column}, ?)", [self.pattern, int(self.ignore_case)]


@dataclass(frozen=True)
class _UidList(Condition):
    """List of UID Matching (C.2.2.2.2); one UID is the list of one."""

    uids: tuple[str, ...]

    def test(self, stored: str | int | None) -> bool:
        return stored is not None and normalize("UI", str(stored)) in self.uids

    def sql(self, where: StoredKind) -> tuple[str, list[object]]:
        if len(self.uids) == 1:
            return f"{where.column} = ?", [self.uids[0]]
        marks = ", ".join("?" * len(self.uids))
        return f"{where.column} IN ({marks})", list(self.uids)


@dataclass(frozen=True)
class _Integer(Condition):
    """Single Value Matching of IS, US, UL, SS, SL: by number, so ``01`` finds 1."""

    value: int

    def test(self, stored: str | int | None) -> bool:
        if stored is None:
            return False
        try:
            return int(str(stored).strip(" ")) == self.value
        except ValueError:
            return False

    def sql(self, where: StoredKind) -> tuple[str, list[object]]:
        return f"{where.column} = ?", [self.value]


@dataclass(frozen=True)
class _Range(Condition):
    """Range Matching (C.2.2.2.5), inclusive; None is an open end. Single DA, TM and DT
    values are the range from their first instant to the same instant."""

    vr: str
    low: str | None
    high: str | None

    def _key(self, stored: str) -> str | None:
        if self.vr == "DA":
            return da_value(stored)
        bounds = tm_bounds(stored) if self.vr == "TM" else dt_bounds(stored)
        return None if bounds is None else bounds[0]

    def test(self, stored: str | int | None) -> bool:
        key = None if stored is None else self._key(str(stored))
        if key is None:
            return False
        return (self.low is None or key >= self.low) and (self.high is None or key <= self.high)

    def sql(self, where: StoredKind) -> tuple[str, list[object]]:
        column = where.column if where.kind == "da" else where.key_column
        parts, params = [], []
        if self.low is not None:
            parts.append(f"{column} >= ?")
            params.append(self.low)
        if self.high is not None:
            parts.append(f"{column} <= ?")
            params.append(self.high)
        return "(" + " AND ".join(parts) + ")", list(params)


@dataclass(frozen=True)
class _AnyOf(Condition):
    """A multi-valued key other than a UID list: lenient, any of its values."""

    conditions: tuple[Condition, ...]

    def test(self, stored: str | int | None) -> bool:
        return any(c.test(stored) for c in self.conditions)

    def sql(self, where: StoredKind) -> tuple[str, list[object]]:
        fragments, params = [], []
        for condition in self.conditions:
            fragment, values = condition.sql(where)
            fragments.append(fragment)
            params.extend(values)
        return "(" + " OR ".join(fragments) + ")", params


def parse_condition(vr: str, values: Sequence[str]) -> Condition | None:
    """The condition for a key of ``vr`` with ``values`` (its value multiplicity split).

    Returns None for Universal Matching. Raises :class:`MatchError` for a value the VR's
    rules cannot interpret.
    """
    cleaned = [normalize(vr, v) for v in values]
    cleaned = [v for v in cleaned if v]
    if not cleaned or any(set(v) == {"*"} for v in cleaned):
        return None  # C.2.2.2.3 (and a value of "*" alone, C.2.2.2.4)
    if vr == "UI":
        return _UidList(tuple(cleaned))
    conditions = [_parse_single(vr, v) for v in cleaned]
    return conditions[0] if len(conditions) == 1 else _AnyOf(tuple(conditions))


def _parse_single(vr: str, value: str) -> Condition:
    if vr == "DA":
        return _da_condition(value)
    if vr == "TM":
        return _time_condition("TM", value)
    if vr == "DT":
        return _time_condition("DT", value)
    if vr in _INTEGER_VRS:
        try:
            return _Integer(int(value))
        except ValueError:
            raise MatchError(f"{value!r} is not an integer ({vr})") from None
    if vr not in NO_WILDCARD_VRS and ("*" in value or "?" in value):
        return _Wildcard(value, vr == "PN")
    return _Text(value, vr)


def _da_condition(value: str) -> Condition:
    if "-" not in value:
        single = da_value(value)
        if single is None:
            raise MatchError(f"{value!r} is not a date (DA: YYYYMMDD)")
        return _Range("DA", single, single)
    first, _, second = value.partition("-")
    low = da_value(first) if first.strip() else None
    high = da_value(second) if second.strip() else None
    if (first.strip() and low is None) or (second.strip() and high is None):
        raise MatchError(f"{value!r} is not a date range (DA: YYYYMMDD-YYYYMMDD)")
    if low is None and high is None:
        raise MatchError(f"{value!r} is a range without either end")
    return _Range("DA", low, high)


def _time_condition(vr: str, value: str) -> Condition:
    parse = tm_bounds if vr == "TM" else dt_bounds
    single = parse(value)
    # DT offsets contain "-", so a DT value is first read as a single value, then split at
    # each "-" in turn until both sides are valid or empty.
    if single is not None:
        return _Range(vr, single[0], single[0])
    for at in [i for i, c in enumerate(value) if c == "-"]:
        first, second = value[:at].strip(" "), value[at + 1 :].strip(" ")
        low = parse(first) if first else None
        high = parse(second) if second else None
        if (first and low is None) or (second and high is None) or (not first and not second):
            continue
        return _Range(vr, low[0] if low else None, high[1] if high else None)
    raise MatchError(f"{value!r} is neither a {vr} value nor a {vr} range")
