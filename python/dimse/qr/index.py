"""The Query/Retrieve SCP's index of stored instances, on an embedded SQLite database.

The files under ``data_dir`` are the truth; ``data_dir/index.sqlite`` is a cache of what
the Query/Retrieve services need from them, which :meth:`Index.reconcile` can always
rebuild. That is why it runs with ``synchronous=NORMAL`` in WAL mode: a killed process loses
no committed transaction and never corrupts the database, and the most a power cut can cost
is the last few commits, whose files the next start-up's reconcile indexes again; FULL
would pay an fsync per stored instance for nothing.

Schema: one denormalised row per instance, with its patient, study and series attributes
on it, indexed on the UIDs, PatientID and StudyDate; the PATIENT, STUDY and SERIES answers
are GROUP BYs over it. Chosen over one table per level because every change is then one
row: an upsert or a removal is a single-statement transaction with no parent rows to create
or to garbage-collect when their last instance goes, which keeps crash consistency a matter
of SQLite's atomic commit alone, and keeps ``reconcile`` a per-file affair. The price is the
repeated patient and study text (a few hundred bytes an instance) and GROUP BY queries,
which the UID indexes keep proportional to the matches. When the instances of one study
disagree about a study attribute (a corrected re-send), the most recently received one of
those that match speaks for the study.

Thread safety: one connection, used under one lock, by every handler thread. A C-FIND's
matches are read in full under the lock and then turned into responses outside it, so a
slow or cancelled peer never holds up storage.

What C-FIND (PS3.4 C.4.1) answers, for the Patient Root and Study Root models (PS3.4 C.6.1,
C.6.2): the attributes of :data:`ATTRIBUTES`, and those computed from the instances
(``ModalitiesInStudy``, ``SOPClassesInStudy``, the ``NumberOf...Related...`` counts,
``AvailableTransferSyntaxUID``, ``InstanceAvailability``). Lenient where the standard
leaves room:

- Queries are relational (any key at or above the query level filters), so a Patient Root
  STUDY query needs no PatientID; keys of levels below the query level are ignored, for
  matching and in the response.
- The response holds each requested key at or above the level (with its value, or empty
  when the index does not keep the attribute), QueryRetrieveLevel, and the unique keys of
  the query level and the levels above it (PS3.4 C.4.1.2.2, C.4.1.3.2). Sequence keys come
  back empty (no sequence matching). RetrieveAETitle is left to the caller, which knows its
  own AE title; the same goes for the Pending status 0xFF01, as keys the index does not
  keep are not matched.
- Values are stored as pydicom decodes them (Python text, whatever the file's Specific
  Character Set), and a response with any non-ASCII value says Specific Character Set
  ``ISO_IR 192`` (UTF-8), which can carry every value.
- Combined StudyDate + StudyTime range matching (PS3.4 C.2.2.2.5.4) is done when the
  caller says the date-time matching extended negotiation (PS3.4 Table C.5-2, byte 2) was
  accepted: ``find(..., combine_datetime=True)``.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag, Tag

from dimse.qr.matching import (
    Condition,
    MatchError,
    StoredKind,
    da_value,
    dt_bounds,
    normalize,
    parse_condition,
    pn_key,
    tm_bounds,
    wildcard_match,
)

__all__ = [
    "ATTRIBUTES",
    "IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS",
    "UNABLE_TO_PROCESS",
    "Index",
    "IndexingError",
    "InstanceRecord",
    "QueryError",
    "ReconcileReport",
]

#: PS3.4 Table C.4-1 (C-FIND), C.4-2 (C-MOVE), C.4-3 (C-GET): the identifier is not one of
#: the Information Model (no or an unknown Query/Retrieve Level, a missing unique key).
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
#: Same tables, "Unable to process" (0xC000-0xCFFF): a key value the matching rules cannot
#: interpret, such as a malformed date range.
UNABLE_TO_PROCESS = 0xC000

LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION = 1
INDEX_NAME = "index.sqlite"
TEMPORARY_SUFFIX = ".part"

PATIENT, STUDY, SERIES, IMAGE = 0, 1, 2, 3
LEVELS = {"PATIENT": PATIENT, "STUDY": STUDY, "SERIES": SERIES, "IMAGE": IMAGE}
_LEVEL_NAMES = {rank: name for name, rank in LEVELS.items()}


class QueryError(Exception):
    """A C-FIND, C-MOVE or C-GET identifier the index cannot answer.

    ``status`` is the failure status to send (:data:`IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS`
    or :data:`UNABLE_TO_PROCESS`); ``comment`` fits Error Comment (0000,0902), an LO of at
    most 64 characters (PS3.7 C.4.1.1.4 / Annex C); ``offending_element`` is the tag of the
    key at fault, for Offending Element (0000,0901), when there is one.
    """

    def __init__(self, status: int, comment: str, offending_element: int | None = None) -> None:
        super().__init__(f"0x{status:04X}: {comment}")
        self.status = status
        self.comment = comment[:64]
        self.offending_element = offending_element


class IndexingError(Exception):
    """A file that cannot be indexed: not DICOM, unreadable, or without its UIDs."""


@dataclass(frozen=True)
class InstanceRecord:
    """One indexed instance: what a C-GET or C-MOVE needs to send it.

    ``replaced_path`` is set by :meth:`Index.add` only: the file a re-sent instance's row
    pointed to before, when that is another file, which the caller should now delete.
    """

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str = ""
    file_size: int = 0
    replaced_path: Path | None = None


@dataclass(frozen=True)
class ReconcileReport:
    """What :meth:`Index.reconcile` changed.

    ``superseded`` counts files deleted because another file of the same SOP Instance UID
    was received later; ``failed`` lists the ``*.dcm`` files that could not be indexed, with
    the reason (they are left in place).
    """

    parts_deleted: int = 0
    indexed: int = 0
    reindexed: int = 0
    dropped: int = 0
    superseded: int = 0
    failed: tuple[tuple[Path, str], ...] = ()


@dataclass(frozen=True)
class _Attribute:
    keyword: str
    vr: str
    level: int
    column: str
    kind: str  # see matching.StoredKind

    @property
    def tag(self) -> BaseTag:
        return Tag(self.keyword)

    @property
    def stored(self) -> StoredKind:
        key = f"{self.column}_key" if self.kind in ("pn", "tm") else None
        return StoredKind(self.column, self.kind, key)


def _attr(keyword: str, vr: str, level: int, kind: str = "text") -> _Attribute:
    # "SOPInstanceUID" -> "sop_instance_uid", "PatientID" -> "patient_id"
    column = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", keyword).lower()
    return _Attribute(keyword, vr, level, column, kind)


#: The attributes kept per instance: the unique, required and common optional keys of
#: PS3.4 Tables C.6-1 to C.6-4 (Patient Root) and C.6-5 to C.6-8 (Study Root).
ATTRIBUTES: tuple[_Attribute, ...] = (
    _attr("PatientName", "PN", PATIENT, "pn"),
    _attr("PatientID", "LO", PATIENT),
    _attr("IssuerOfPatientID", "LO", PATIENT),
    _attr("PatientBirthDate", "DA", PATIENT, "da"),
    _attr("PatientSex", "CS", PATIENT),
    _attr("StudyInstanceUID", "UI", STUDY),
    _attr("StudyDate", "DA", STUDY, "da"),
    _attr("StudyTime", "TM", STUDY, "tm"),
    _attr("AccessionNumber", "SH", STUDY),
    _attr("StudyID", "SH", STUDY),
    _attr("StudyDescription", "LO", STUDY),
    _attr("ReferringPhysicianName", "PN", STUDY, "pn"),
    _attr("SeriesInstanceUID", "UI", SERIES),
    _attr("Modality", "CS", SERIES),
    _attr("SeriesNumber", "IS", SERIES, "int"),
    _attr("SeriesDescription", "LO", SERIES),
    _attr("SeriesDate", "DA", SERIES, "da"),
    _attr("SeriesTime", "TM", SERIES, "tm"),
    _attr("BodyPartExamined", "CS", SERIES),
    _attr("SOPInstanceUID", "UI", IMAGE),
    _attr("SOPClassUID", "UI", IMAGE),
    _attr("InstanceNumber", "IS", IMAGE, "int"),
    _attr("ContentDate", "DA", IMAGE, "da"),
    _attr("ContentTime", "TM", IMAGE, "tm"),
    _attr("Rows", "US", IMAGE, "int"),
    _attr("Columns", "US", IMAGE, "int"),
    _attr("NumberOfFrames", "IS", IMAGE, "int"),
)
_BY_TAG = {a.tag: a for a in ATTRIBUTES}
_BY_KEYWORD = {a.keyword: a for a in ATTRIBUTES}

#: Attributes computed from the instances rather than stored: keyword -> (VR, level).
_COMPUTED: dict[str, tuple[str, int]] = {
    "NumberOfPatientRelatedStudies": ("IS", PATIENT),
    "NumberOfPatientRelatedSeries": ("IS", PATIENT),
    "NumberOfPatientRelatedInstances": ("IS", PATIENT),
    "ModalitiesInStudy": ("CS", STUDY),
    "SOPClassesInStudy": ("UI", STUDY),
    "NumberOfStudyRelatedSeries": ("IS", STUDY),
    "NumberOfStudyRelatedInstances": ("IS", STUDY),
    "InstanceAvailability": ("CS", STUDY),
    "NumberOfSeriesRelatedInstances": ("IS", SERIES),
    "AvailableTransferSyntaxUID": ("UI", IMAGE),
}
_COMPUTED_BY_TAG = {Tag(k): k for k in _COMPUTED}

_UNIQUE = {PATIENT: "PatientID", STUDY: "StudyInstanceUID", SERIES: "SeriesInstanceUID"}
_UNIQUE[IMAGE] = "SOPInstanceUID"
_GROUP_BY = {
    PATIENT: ("patient_id", "issuer_of_patient_id"),
    STUDY: ("study_instance_uid",),
    SERIES: ("series_instance_uid",),
    IMAGE: ("sop_instance_uid",),
}
_ORDER_BY = {
    PATIENT: "patient_id, issuer_of_patient_id",
    STUDY: "study_date, study_time_key, study_instance_uid",
    SERIES: "study_date, study_time_key, study_instance_uid, series_number, series_instance_uid",
    IMAGE: "study_date, study_time_key, study_instance_uid, series_number, series_instance_uid,"
    " instance_number, sop_instance_uid",
}
_QUERY_RETRIEVE_LEVEL = Tag("QueryRetrieveLevel")
# Never matched (PS3.4 C.2.2.2), or the caller's to fill in.
_NOT_KEYS = {Tag("SpecificCharacterSet"), _QUERY_RETRIEVE_LEVEL, Tag("RetrieveAETitle")}

_FILE_COLUMNS = (
    "sop_instance_uid",
    "path",
    "transfer_syntax_uid",
    "file_size",
    "file_mtime_ns",
    "received_at",
    "specific_character_set",
)


def _columns() -> list[str]:
    columns = []
    for a in ATTRIBUTES:
        columns.append(a.column)
        if a.stored.key_column:
            columns.append(a.stored.key_column)
    return columns


_ATTRIBUTE_COLUMNS = _columns()


def _schema() -> list[str]:
    not_null = {"sop_instance_uid", "study_instance_uid", "series_instance_uid", "sop_class_uid"}
    defaults = {"patient_id", "issuer_of_patient_id"}  # grouped on: '' rather than NULL
    definitions = [
        "id INTEGER PRIMARY KEY AUTOINCREMENT",
        "path TEXT NOT NULL UNIQUE",
        "transfer_syntax_uid TEXT NOT NULL",
        "file_size INTEGER NOT NULL",
        "file_mtime_ns INTEGER NOT NULL",
        "received_at TEXT NOT NULL",
        "specific_character_set TEXT",
    ]
    kinds = {a.column: a.kind for a in ATTRIBUTES}
    for column in _ATTRIBUTE_COLUMNS:
        sql_type = "INTEGER" if kinds.get(column) == "int" else "TEXT"
        if column == "sop_instance_uid":
            definitions.append(f"{column} TEXT NOT NULL UNIQUE")
        elif column in not_null:
            definitions.append(f"{column} {sql_type} NOT NULL")
        elif column in defaults:
            definitions.append(f"{column} {sql_type} NOT NULL DEFAULT ''")
        else:
            definitions.append(f"{column} {sql_type}")
    return [
        "CREATE TABLE instances (" + ", ".join(definitions) + ")",
        "CREATE INDEX instances_patient ON instances (patient_id, issuer_of_patient_id)",
        "CREATE INDEX instances_study ON instances (study_instance_uid)",
        "CREATE INDEX instances_series ON instances (series_instance_uid)",
        "CREATE INDEX instances_study_date ON instances (study_date)",
        "CREATE INDEX instances_accession ON instances (accession_number)",
        "CREATE INDEX instances_patient_name ON instances (patient_name_key)",
    ]


# The tags dcmread needs to parse (Specific Character Set is always read too).
_READ_TAGS = [a.tag for a in ATTRIBUTES]


def _parse_model(model: str) -> bool:
    """True for Patient Root, False for Study Root.

    Takes ``"patient"`` / ``"study"`` (or ``"P"`` / ``"S"``, or a FIND, MOVE or GET SOP
    Class UID of either model, PS3.4 C.6.1.3 and C.6.2.3).
    """
    value = model.strip().lower()
    if value in ("patient", "p") or value.startswith("1.2.840.10008.5.1.4.1.2.1."):
        return True
    if value in ("study", "s") or value.startswith("1.2.840.10008.5.1.4.1.2.2."):
        return False
    raise ValueError(f"unknown Query/Retrieve information model {model!r}")


def _decode(identifier: Dataset) -> dict[BaseTag, DataElement]:
    """The identifier's elements, decoded; a value pydicom cannot convert (an IS of "abc")
    is a QueryError rather than an exception from deep inside the matching."""
    elements: dict[BaseTag, DataElement] = {}
    for tag in list(identifier.keys()):
        try:
            elements[tag] = identifier[tag]
        except Exception as exc:
            raise QueryError(UNABLE_TO_PROCESS, f"cannot decode the value of {tag}", tag) from exc
    return elements


def _level(identifier: dict[BaseTag, DataElement], patient_root: bool) -> int:
    element = identifier.get(_QUERY_RETRIEVE_LEVEL)
    value = "" if element is None or element.value is None else str(element.value)
    if not value.strip():
        raise QueryError(
            IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            "Query/Retrieve Level (0008,0052) is missing",
            _QUERY_RETRIEVE_LEVEL,
        )
    name = value.strip().upper()
    if name not in LEVELS:
        raise QueryError(
            IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            f"unknown Query/Retrieve Level {name[:16]!r}",
            _QUERY_RETRIEVE_LEVEL,
        )
    if name == "PATIENT" and not patient_root:
        # PS3.4 C.6.2.1: the Study Root model has no PATIENT level.
        raise QueryError(
            IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            "no PATIENT level in the Study Root model",
            _QUERY_RETRIEVE_LEVEL,
        )
    return LEVELS[name]


def _element_values(element: DataElement) -> list[str]:
    """The element's values as text, [] when it has none (or is binary)."""
    value = element.value
    if value is None or value == "" or isinstance(value, bytes | DicomSequence):
        return []
    items = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    return [str(v) for v in items if v is not None and not isinstance(v, bytes)]


def _condition(identifier_element: DataElement, vr: str) -> Condition | None:
    try:
        return parse_condition(vr, _element_values(identifier_element))
    except MatchError as exc:
        raise QueryError(UNABLE_TO_PROCESS, str(exc), identifier_element.tag) from None


@dataclass
class _Query:
    elements: dict[BaseTag, DataElement]
    level: int
    patient_root: bool
    where: list[str]
    params: list[object]
    computed: dict[str, Condition]


class Index:
    """The instances stored under ``data_dir``, for C-FIND, C-GET and C-MOVE.

    Creates ``data_dir`` and ``data_dir/index.sqlite`` when they do not exist. A database
    written by another schema version is emptied: it is a cache, and :meth:`reconcile`
    rebuilds it from the files.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / INDEX_NAME
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.create_function("dimse_wildcard", 3, wildcard_match, deterministic=True)
        self._create_schema()

    def _create_schema(self) -> None:
        with self._lock, self._transaction():
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
            exists = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'instances'"
            ).fetchone()
            if exists and version == SCHEMA_VERSION:
                return
            self._conn.execute("DROP TABLE IF EXISTS instances")
            for statement in _schema():
                self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------

    def add(self, path: str | os.PathLike[str], dataset: Dataset | None = None) -> InstanceRecord:
        """Indexes the DICOM file ``path`` (under ``data_dir``), replacing any earlier row
        of the same SOP Instance UID, and any row of another instance at the same path.

        ``dataset`` is the file's data set when the caller has it already (the storage
        writer); otherwise the file is read, up to the pixel data. Raises
        :class:`IndexingError` when the file is not DICOM or lacks SOP Instance UID,
        Study Instance UID or Series Instance UID (or a SOP Class UID, or the transfer
        syntax of its File Meta Information), which C-GET and C-MOVE need to send it on.
        """
        file = Path(path).absolute()
        relative = self._relative(file)
        try:
            stat = file.stat()
        except OSError as exc:
            raise IndexingError(f"{file}: {exc.strerror or exc}") from exc
        if dataset is None:
            dataset = _read(file)
        row = _row(file, dataset)
        row.update(
            path=relative,
            file_size=stat.st_size,
            file_mtime_ns=stat.st_mtime_ns,
            received_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        )
        names = list(row)
        marks = ", ".join("?" * len(names))
        with self._lock, self._transaction():
            old = self._conn.execute(
                "SELECT path FROM instances WHERE sop_instance_uid = ?", (row["sop_instance_uid"],)
            ).fetchone()
            # OR REPLACE: the UNIQUE sop_instance_uid and path make one statement replace
            # both an earlier copy of this instance and another instance once at this path.
            self._conn.execute(
                f"INSERT OR REPLACE INTO instances ({', '.join(names)}) VALUES ({marks})",
                [row[n] for n in names],
            )
        replaced = self.data_dir / old[0] if old and old[0] != relative else None
        return InstanceRecord(
            path=self.data_dir / relative,
            sop_class_uid=row["sop_class_uid"],
            sop_instance_uid=row["sop_instance_uid"],
            transfer_syntax_uid=row["transfer_syntax_uid"],
            study_instance_uid=row["study_instance_uid"],
            series_instance_uid=row["series_instance_uid"],
            patient_id=row["patient_id"],
            file_size=stat.st_size,
            replaced_path=replaced,
        )

    def remove(self, sop_instance_uid: str) -> None:
        """Forgets an instance (its file is the caller's to delete)."""
        with self._lock, self._transaction():
            self._conn.execute(
                "DELETE FROM instances WHERE sop_instance_uid = ?", (sop_instance_uid,)
            )

    def _relative(self, file: Path) -> str:
        resolved = file.resolve()
        try:
            return resolved.relative_to(self.data_dir).as_posix()
        except ValueError:
            raise IndexingError(
                f"{file} is not under the data directory {self.data_dir}"
            ) from None

    def count(self) -> int:
        """The number of instances indexed."""
        with self._lock:
            (n,) = self._conn.execute("SELECT COUNT(*) FROM instances").fetchone()
        return int(n)

    # -- start-up -----------------------------------------------------------------------

    def reconcile(self) -> ReconcileReport:
        """Makes the index and the files under ``data_dir`` agree, after a crash or a kill
        at any moment. Run it at start-up, before storage begins (it deletes ``*.part``).

        - deletes the storage writer's temporary ``*.part`` files, which were never renamed
          into place, so never announced as stored;
        - drops the rows whose file is gone, and re-reads the files whose size or
          modification time changed since they were indexed (overwritten in place);
        - indexes the ``*.dcm`` files without a row. Such a file may be a second copy of an
          indexed instance (the process died between storing a re-sent instance and
          deleting the copy it replaced): the copy written last is kept, the other deleted.
        """
        parts = 0
        failed: list[tuple[Path, str]] = []
        on_disk: dict[str, tuple[Path, int, int]] = {}
        for root, _dirs, names in os.walk(self.data_dir):
            for name in names:
                file = Path(root, name)
                if name.endswith(TEMPORARY_SUFFIX):
                    try:
                        file.unlink()
                        parts += 1
                    except OSError as exc:
                        failed.append((file, f"cannot delete: {exc.strerror or exc}"))
                elif name.lower().endswith(".dcm"):
                    try:
                        stat = file.stat()
                    except OSError:
                        continue  # gone since the listing
                    relative = file.relative_to(self.data_dir).as_posix()
                    on_disk[relative] = (file, stat.st_size, stat.st_mtime_ns)

        with self._lock:
            rows = self._conn.execute(
                "SELECT path, file_size, file_mtime_ns FROM instances"
            ).fetchall()
        indexed = {path: (size, mtime) for path, size, mtime in rows}
        gone = [path for path in indexed if path not in on_disk]
        with self._lock, self._transaction():
            self._conn.executemany("DELETE FROM instances WHERE path = ?", [(p,) for p in gone])

        reindexed = 0
        for relative, (size, mtime) in indexed.items():
            if relative in on_disk and on_disk[relative][1:] != (size, mtime):
                try:
                    self.add(on_disk[relative][0])
                    reindexed += 1
                except IndexingError as exc:
                    failed.append((on_disk[relative][0], str(exc)))
                    with self._lock, self._transaction():
                        self._conn.execute("DELETE FROM instances WHERE path = ?", (relative,))

        added = superseded = 0
        for relative, (file, _size, mtime) in sorted(on_disk.items()):
            if relative in indexed:
                continue
            try:
                dataset = _read(file)
                uid = _required_uid(dataset, "SOPInstanceUID", file)
                with self._lock:
                    existing = self._conn.execute(
                        "SELECT path, file_mtime_ns FROM instances WHERE sop_instance_uid = ?",
                        (uid,),
                    ).fetchone()
                if existing and (self.data_dir / existing[0]).exists() and existing[1] >= mtime:
                    file.unlink()  # an older copy of an instance indexed since
                    superseded += 1
                    continue
                record = self.add(file, dataset)
                added += 1
                if record.replaced_path is not None and record.replaced_path.exists():
                    record.replaced_path.unlink()
                    superseded += 1
            except IndexingError as exc:
                failed.append((file, str(exc)))
            except OSError as exc:
                failed.append((file, f"cannot delete: {exc.strerror or exc}"))
        return ReconcileReport(
            parts_deleted=parts,
            indexed=added,
            reindexed=reindexed,
            dropped=len(gone),
            superseded=superseded,
            failed=tuple(failed),
        )

    # -- querying -----------------------------------------------------------------------

    def find(
        self, identifier: Dataset, model: str, *, combine_datetime: bool = False
    ) -> Iterator[Dataset]:
        """The C-FIND response identifiers for ``identifier`` (PS3.4 C.4.1.3.1).

        ``model`` is ``"patient"`` (Patient Root) or ``"study"`` (Study Root). Raises
        :class:`QueryError` here, before the first response, for an identifier the index
        cannot answer. Matching follows PS3.4 C.2.2.2 as :mod:`dimse.qr.matching` says.
        """
        query = self._query(identifier, model, combine_datetime=combine_datetime)
        level = query.level
        requested = _requested(query.elements, level)
        needed = set(query.computed) | {k for _, k in requested if k in _COMPUTED}
        where = " AND ".join(query.where) or "1"
        columns = ", ".join(["transfer_syntax_uid", *_ATTRIBUTE_COLUMNS])
        group = ", ".join(_GROUP_BY[level])
        with self._lock:
            # Bare columns beside MAX(id) come from the row holding the maximum (SQLite's
            # documented min/max rule): the most recently received matching instance.
            rows = self._conn.execute(
                f"SELECT {columns}, MAX(id) FROM instances WHERE {where} "
                f"GROUP BY {group} ORDER BY {_ORDER_BY[level]}",
                query.params,
            ).fetchall()
            stats = self._statistics(needed, where, query.params) if rows else {}
        names = ["transfer_syntax_uid", *_ATTRIBUTE_COLUMNS]
        records = [dict(zip(names, row, strict=False)) for row in rows]
        return _responses(records, stats, query, requested)

    def instances(self, identifier: Dataset, model: str) -> list[InstanceRecord]:
        """The instances a C-GET or C-MOVE of ``identifier`` sends (PS3.4 C.4.2, C.4.3).

        The unique key of the retrieve level must be given (PS3.4 C.4.2.2.1, C.4.3.2.1): a
        UID or list of UIDs, or one Patient ID, never universal or wild-carded, so that a
        careless identifier cannot send the whole archive. Other keys at or above the level
        filter further; computed ones (the counts) are ignored. Ordered by study, series
        and instance number.
        """
        query = self._query(identifier, model, combine_datetime=False)
        unique = _UNIQUE[query.level]
        element = query.elements.get(Tag(unique))
        values = [] if element is None else _element_values(element)
        cleaned = [v.strip(" \0") for v in values if v.strip(" \0")]
        if not cleaned or any(set(v) == {"*"} for v in cleaned):
            raise QueryError(
                IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                f"a retrieve needs {unique} at the {_LEVEL_NAMES[query.level]} level",
                Tag(unique),
            )
        if unique == "PatientID" and (len(cleaned) > 1 or any(c in "*?" for c in cleaned[0])):
            raise QueryError(
                IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                "a retrieve needs a single Patient ID, without wild cards",
                Tag(unique),
            )
        where = " AND ".join(query.where) or "1"
        with self._lock:
            rows = self._conn.execute(
                "SELECT path, sop_class_uid, sop_instance_uid, transfer_syntax_uid, "
                "study_instance_uid, series_instance_uid, patient_id, file_size "
                f"FROM instances WHERE {where} ORDER BY {_ORDER_BY[IMAGE]}",
                query.params,
            ).fetchall()
        return [
            InstanceRecord(self.data_dir / r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
            for r in rows
        ]

    def _query(self, identifier: Dataset, model: str, *, combine_datetime: bool) -> _Query:
        patient_root = _parse_model(model)
        elements = _decode(identifier)
        level = _level(elements, patient_root)
        where: list[str] = []
        params: list[object] = []
        computed: dict[str, Condition] = {}
        combined = _combined_datetime(elements) if combine_datetime else None
        for element in elements.values():
            attribute = _BY_TAG.get(element.tag)
            if attribute is not None:
                if attribute.level > level:
                    continue  # below the query level: ignored (lenient, see the docstring)
                if combined is not None and attribute.keyword in ("StudyDate", "StudyTime"):
                    continue
                condition = _condition(element, attribute.vr)
                if condition is not None:
                    fragment, values = condition.sql(attribute.stored)
                    where.append(fragment)
                    params.extend(values)
            elif element.tag in _COMPUTED_BY_TAG:
                keyword = _COMPUTED_BY_TAG[element.tag]
                vr, keyword_level = _COMPUTED[keyword]
                if keyword_level <= level:
                    condition = _condition(element, vr)
                    if condition is not None:
                        computed[keyword] = condition
        if combined is not None:
            fragment, values = combined
            where.append(fragment)
            params.extend(values)
        return _Query(elements, level, patient_root, where, params, computed)

    def _statistics(
        self, needed: set[str], where: str, params: list[object]
    ) -> dict[tuple[int, tuple[object, ...]], dict[str, Any]]:
        """The computed attributes in ``needed``, for the patients, studies and series of
        the rows matching ``where``, keyed by (level, group key)."""
        stats: dict[tuple[int, tuple[object, ...]], dict[str, Any]] = {}

        def run(level: int, aggregates: dict[str, str]) -> None:
            group = ", ".join(_GROUP_BY[level])
            sql = (
                f"SELECT {group}, {', '.join(aggregates.values())} FROM instances "
                f"WHERE ({group}) IN (SELECT {group} FROM instances WHERE {where}) "
                f"GROUP BY {group}"
            )
            width = len(_GROUP_BY[level])
            for row in self._conn.execute(sql, params):
                values = dict(zip(aggregates, row[width:], strict=True))
                stats[(level, tuple(row[:width]))] = values

        if needed & {k for k, (_, lv) in _COMPUTED.items() if lv == PATIENT}:
            run(
                PATIENT,
                {
                    "NumberOfPatientRelatedStudies": "COUNT(DISTINCT study_instance_uid)",
                    "NumberOfPatientRelatedSeries": "COUNT(DISTINCT series_instance_uid)",
                    "NumberOfPatientRelatedInstances": "COUNT(*)",
                },
            )
        if needed & {k for k, (_, lv) in _COMPUTED.items() if lv == STUDY}:
            run(
                STUDY,
                {
                    "NumberOfStudyRelatedSeries": "COUNT(DISTINCT series_instance_uid)",
                    "NumberOfStudyRelatedInstances": "COUNT(*)",
                    "ModalitiesInStudy": "GROUP_CONCAT(DISTINCT modality)",
                    "SOPClassesInStudy": "GROUP_CONCAT(DISTINCT sop_class_uid)",
                },
            )
        if "NumberOfSeriesRelatedInstances" in needed:
            run(SERIES, {"NumberOfSeriesRelatedInstances": "COUNT(*)"})
        return stats


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on an exception.

    IMMEDIATE takes the write lock up front, so another process on the same database waits
    (busy_timeout) at the start rather than failing halfway.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


# -- reading files ---------------------------------------------------------------------


def _read(file: Path) -> Dataset:
    try:
        return pydicom.dcmread(file, stop_before_pixels=True, specific_tags=_READ_TAGS)
    except Exception as exc:  # pydicom raises many kinds for files that are not DICOM
        raise IndexingError(f"{file}: not a readable DICOM file ({exc})") from exc


def _required_uid(dataset: Dataset, keyword: str, file: Path) -> str:
    value = _text(dataset, keyword, "UI")
    if value is None and keyword in ("SOPInstanceUID", "SOPClassUID"):
        # PS3.10 7.1: the File Meta Information repeats them.
        meta = getattr(dataset, "file_meta", None)
        meta_keyword = "MediaStorage" + keyword
        value = _text(meta, meta_keyword, "UI") if meta is not None else None
    if value is None:
        raise IndexingError(f"{file}: no {keyword} ({Tag(keyword)})")
    return value


def _text(dataset: Dataset, keyword: str, vr: str) -> str | None:
    tag = tag_for_keyword(keyword)
    if tag is None or tag not in dataset:
        return None
    try:
        element = dataset[tag]
    except Exception as exc:
        # One undecodable optional value (an IS of "abc") should not keep the instance
        # out of the index; a required UID that fails this way is reported as missing.
        LOGGER.warning("cannot decode %s (%s): %s; indexed without it", keyword, tag, exc)
        return None
    values = _element_values(element)
    joined = normalize(vr, "\\".join(values))
    return joined or None


def _row(file: Path, dataset: Dataset) -> dict[str, Any]:
    """The index row of ``dataset`` (read from ``file``), without the file columns."""
    row: dict[str, Any] = {}
    try:
        uids = {
            k: _required_uid(dataset, k, file)
            for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID")
        }
        for attribute in ATTRIBUTES:
            text = uids.get(attribute.keyword) or _text(dataset, attribute.keyword, attribute.vr)
            key = attribute.stored.key_column or f"{attribute.column}_key"
            if attribute.kind == "pn":
                row[attribute.column] = text
                row[key] = pn_key(text) if text else None
            elif attribute.kind == "tm":
                bounds = tm_bounds(text) if text else None
                row[attribute.column] = text
                row[key] = bounds[0] if bounds else None
            elif attribute.kind == "da":
                row[attribute.column] = da_value(text) if text else None
            elif attribute.kind == "int":
                row[attribute.column] = _integer(text)
            else:
                row[attribute.column] = text
        row["patient_id"] = row["patient_id"] or ""
        row["issuer_of_patient_id"] = row["issuer_of_patient_id"] or ""
        row["specific_character_set"] = _text(dataset, "SpecificCharacterSet", "CS")
        row["transfer_syntax_uid"] = _transfer_syntax(dataset, file)
    except IndexingError:
        raise
    except Exception as exc:  # a value pydicom cannot convert
        raise IndexingError(f"{file}: cannot read its attributes ({exc})") from exc
    return row


def _integer(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text.split("\\")[0].strip(" "))
    except ValueError:
        return None


def _transfer_syntax(dataset: Dataset, file: Path) -> str:
    meta = getattr(dataset, "file_meta", None)
    value = _text(meta, "TransferSyntaxUID", "UI") if meta is not None else None
    if value is None:
        try:
            value = _text(read_file_meta_info(file), "TransferSyntaxUID", "UI")
        except Exception as exc:
            raise IndexingError(f"{file}: no File Meta Information ({exc})") from exc
    if value is None:
        raise IndexingError(f"{file}: no Transfer Syntax UID in its File Meta Information")
    return value


# -- answering -------------------------------------------------------------------------


def _requested(
    identifier: dict[BaseTag, DataElement], level: int
) -> list[tuple[DataElement, str | None]]:
    """The identifier's keys to answer, with their keyword when the index knows them;
    those below the query level are left out."""
    keys: list[tuple[DataElement, str | None]] = []
    for element in identifier.values():
        if element.tag in _NOT_KEYS or element.tag.group in (0x0000, 0x0002):
            continue
        if element.tag in _BY_TAG:
            attribute = _BY_TAG[element.tag]
            if attribute.level <= level:
                keys.append((element, attribute.keyword))
        elif element.tag in _COMPUTED_BY_TAG:
            keyword = _COMPUTED_BY_TAG[element.tag]
            if _COMPUTED[keyword][1] <= level:
                keys.append((element, keyword))
        else:
            keys.append((element, None))
    return keys


def _computed_values(
    record: dict[str, Any], stats: dict[tuple[int, tuple[object, ...]], dict[str, Any]]
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "InstanceAvailability": "ONLINE",
        "AvailableTransferSyntaxUID": record["transfer_syntax_uid"],
    }
    for level in (PATIENT, STUDY, SERIES):
        key = tuple(record[c] for c in _GROUP_BY[level])
        values.update(stats.get((level, key), {}))
    for keyword in ("ModalitiesInStudy", "SOPClassesInStudy"):
        if keyword in values:
            values[keyword] = sorted(values[keyword].split(",")) if values[keyword] else []
    return values


def _responses(
    records: list[dict[str, Any]],
    stats: dict[tuple[int, tuple[object, ...]], dict[str, Any]],
    query: _Query,
    requested: list[tuple[DataElement, str | None]],
) -> Iterator[Dataset]:
    level = query.level
    # PS3.4 C.4.1.2.2 / C.4.1.3.2: the unique keys of the levels above, and the query
    # level's own (which a following C-MOVE or C-GET needs).
    uniques = [_UNIQUE[lv] for lv in range(PATIENT if query.patient_root else STUDY, level + 1)]
    for record in records:
        computed = _computed_values(record, stats)
        if not all(
            _test(condition, computed.get(keyword))
            for keyword, condition in query.computed.items()
        ):
            continue
        yield _response(record, computed, level, requested, uniques)


def _test(condition: Condition, value: Any) -> bool:
    if isinstance(value, list):
        return condition.test_any(value)
    return condition.test(value)


def _response(
    record: dict[str, Any],
    computed: dict[str, Any],
    level: int,
    requested: Iterable[tuple[DataElement, str | None]],
    uniques: Sequence[str],
) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = _LEVEL_NAMES[level]
    non_ascii = False
    keys: dict[str, BaseTag] = {}
    for element, keyword in requested:
        if keyword is not None:
            keys[keyword] = element.tag
    for keyword in uniques:
        keys.setdefault(keyword, Tag(keyword))
    for element, keyword in requested:
        if keyword is None:
            # Not kept by the index: returned empty (a sequence as an empty sequence).
            ds.add(DataElement(element.tag, element.VR, [] if element.VR == "SQ" else None))
    for keyword, tag in keys.items():
        if keyword in _BY_KEYWORD:
            attribute = _BY_KEYWORD[keyword]
            value: Any = record[attribute.column]
            vr = attribute.vr
        else:
            vr = _COMPUTED[keyword][0]
            value = computed.get(keyword)
        if value == "" or value == []:
            value = None
        if isinstance(value, str):
            non_ascii = non_ascii or not value.isascii()
            if "\\" in value:
                value = value.split("\\")
        ds.add_new(tag, vr, value)
    if non_ascii:
        # PS3.5 6.1.2.5.3 / Annex C.12.1.1.2 of PS3.3: UTF-8 carries every stored value.
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def _combined_datetime(
    identifier: dict[BaseTag, DataElement],
) -> tuple[str, list[object]] | None:
    """Combined StudyDate + StudyTime range matching (PS3.4 C.2.2.2.5.4): when both keys are
    ranges of the same form, the range from date1+time1 to date2+time2, as SQL over the
    stored date and time (an instance without a time counts as at midnight); else None."""
    date_element = identifier.get(Tag("StudyDate"))
    time_element = identifier.get(Tag("StudyTime"))
    if date_element is None or time_element is None:
        return None
    dates, times = _element_values(date_element), _element_values(time_element)
    if len(dates) != 1 or len(times) != 1 or "-" not in dates[0] or "-" not in times[0]:
        return None
    date1, _, date2 = (p.strip() for p in dates[0].partition("-"))
    time1, _, time2 = (p.strip() for p in times[0].partition("-"))
    if bool(date1) != bool(time1) or bool(date2) != bool(time2):
        return None  # not the same form
    low = dt_bounds(date1 + time1) if date1 else None
    high = dt_bounds(date2 + time2) if date2 else None
    if (date1 and low is None) or (date2 and high is None) or (low is None and high is None):
        raise QueryError(
            UNABLE_TO_PROCESS, "bad combined StudyDate/StudyTime range", Tag("StudyDate")
        )
    expression = "(study_date || COALESCE(study_time_key, '000000.000000'))"
    parts, params = [], []
    if low is not None:
        parts.append(f"{expression} >= ?")
        params.append(low[0])
    if high is not None:
        parts.append(f"{expression} <= ?")
        params.append(high[1])
    return "(" + " AND ".join(parts) + ")", list(params)
