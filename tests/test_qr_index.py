"""The Query/Retrieve index (dimse.qr): storing, reconciling, and the C-FIND matching rules
of PS3.4 C.2.2.2 at each level of both information models, on small files written here."""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
import time
import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dimse import dsutils
from dimse.qr import Index, IndexingError, InstanceRecord, QueryError, ReconcileReport
from dimse.qr.matching import MatchError, dt_bounds, parse_condition, pn_key, tm_bounds

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SR = "1.2.840.10008.5.1.4.1.1.88.11"
US = "1.2.840.10008.5.1.4.1.1.6.1"

PATIENTS = {
    "PID1": {"PatientName": "Doe^John", "PatientBirthDate": "19700101", "PatientSex": "M"},
    "PID2": {
        "PatientName": "Müller^Hans",
        "PatientBirthDate": "19800505",
        "PatientSex": "F",
        "SpecificCharacterSet": "ISO_IR 192",
    },
    "PID3": {
        "PatientName": "Ørsted^Hans",
        "PatientBirthDate": "19550202",
        "PatientSex": "M",
        "SpecificCharacterSet": "ISO_IR 100",
    },
    "PID4": {"PatientName": "DOE^JANE"},
}
# study UID -> patient, study attributes, [(series UID, series attributes, [(SOP UID, n)])]
STUDIES = {
    "1.2.3.1": (
        "PID1",
        {
            "StudyDate": "20200115",
            "StudyTime": "101500",
            "AccessionNumber": "ACC1",
            "StudyID": "S1",
            "StudyDescription": "CT Chest",
            "ReferringPhysicianName": "Smith^Anna",
        },
        [
            (
                "1.2.3.1.1",
                {"Modality": "CT", "SeriesNumber": "1", "SeriesDescription": "Axial"},
                # written out of order: the index orders by Instance Number
                [("1.2.3.1.1.3", 3), ("1.2.3.1.1.1", 1), ("1.2.3.1.1.2", 2)],
            ),
            ("1.2.3.1.2", {"Modality": "SR", "SeriesNumber": "2"}, [("1.2.3.1.2.1", 1)]),
        ],
    ),
    "1.2.3.2": (
        "PID1",
        {
            "StudyDate": "20210301",
            "StudyTime": "0930",
            "AccessionNumber": "ACC2",
            "StudyDescription": "MR Brain",
            "ReferringPhysicianName": "Jones^Bob",
        },
        [
            (
                "1.2.3.2.1",
                {"Modality": "MR", "SeriesNumber": "1"},
                [("1.2.3.2.1.1", 1), ("1.2.3.2.1.2", 2)],
            )
        ],
    ),
    "1.2.3.3": (
        "PID2",
        {
            "StudyDate": "20200115",
            "StudyTime": "2300",
            "AccessionNumber": "ACC3",
            "StudyDescription": "CT Abdomen",
            "ReferringPhysicianName": "smith^anna",
        },
        [
            (
                "1.2.3.3.1",
                {"Modality": "CT", "SeriesNumber": "1"},
                [("1.2.3.3.1.1", 1), ("1.2.3.3.1.2", 2)],
            )
        ],
    ),
    "1.2.3.4": (
        "PID3",
        {"StudyDate": "20191231", "StudyTime": "14", "StudyDescription": "US Neck"},
        [("1.2.3.4.1", {"Modality": "US", "SeriesNumber": "1"}, [("1.2.3.4.1.1", 1)])],
    ),
    "1.2.3.5": (
        "PID4",
        {"StudyDate": "20220202", "StudyTime": "235959.5", "StudyDescription": "ct chest"},
        [("1.2.3.5.1", {"Modality": "CT", "SeriesNumber": "7"}, [("1.2.3.5.1.1", 1)])],
    ),
}
SOP_CLASSES = {"CT": CT, "MR": MR, "SR": SR, "US": US}
ALL_STUDIES = set(STUDIES)
ALL_SERIES = {s[0] for _, _, series in STUDIES.values() for s in series}
ALL_SOPS = {i[0] for _, _, series in STUDIES.values() for s in series for i in s[2]}


def write_file(path: Path, ts: str = ExplicitVRLittleEndian, **attributes) -> Path:
    """Writes a small DICOM file (no pixel data) with the File Meta Information."""
    ds = Dataset()
    charset = attributes.pop("SpecificCharacterSet", None)
    if charset:
        ds.SpecificCharacterSet = charset
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = attributes.get("SOPClassUID", CT)
    ds.file_meta.MediaStorageSOPInstanceUID = attributes.get("SOPInstanceUID", "1.2.999")
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def instance_attributes(study_uid: str, series_uid: str, sop_uid: str, number: int) -> dict:
    patient_id, study, series_list = STUDIES[study_uid]
    series = next(s[1] for s in series_list if s[0] == series_uid)
    attrs = {"PatientID": patient_id, **PATIENTS[patient_id], **study, **series}
    attrs.update(
        StudyInstanceUID=study_uid,
        SeriesInstanceUID=series_uid,
        SOPInstanceUID=sop_uid,
        SOPClassUID=SOP_CLASSES[series["Modality"]],
        InstanceNumber=str(number),
        ContentDate=study["StudyDate"],
    )
    if series["Modality"] in ("CT", "MR"):
        attrs["Rows"] = attrs["Columns"] = 512 if series["Modality"] == "CT" else 256
    if series_uid == "1.2.3.1.1":
        attrs["BodyPartExamined"] = "CHEST"
    return attrs


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """The module's archive, indexed once: 4 patients, 5 studies, 6 series, 10 instances."""
    data_dir = tmp_path_factory.mktemp("archive")
    idx = Index(data_dir)
    for study_uid, (_, _, series_list) in STUDIES.items():
        for series_uid, _, sops in series_list:
            for sop_uid, number in sops:
                attrs = instance_attributes(study_uid, series_uid, sop_uid, number)
                path = data_dir / study_uid / series_uid / f"{sop_uid}.dcm"
                idx.add(write_file(path, **attrs))
    yield idx
    idx.close()


def query(level: str | None, **keys) -> Dataset:
    """A C-FIND/C-MOVE identifier. pydicom's warnings about values that are invalid for
    the VR are silenced: deliberately invalid keys are what some tests send."""
    ds = Dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if level is not None:
            ds.QueryRetrieveLevel = level
        for keyword, value in keys.items():
            setattr(ds, keyword, value)
    return ds


def raw_identifier(level: str, tag: int, value: bytes) -> Dataset:
    """An identifier decoded from implicit VR bytes, as received, with one raw element
    (after QueryRetrieveLevel in tag order) that no Python value could produce."""
    data = dsutils.encode(query(level), ImplicitVRLittleEndian)
    data += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value
    return dsutils.decode(data, ImplicitVRLittleEndian)


UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}


def found(idx: Index, model: str, level: str, **keys) -> set[str]:
    return {str(ds[UNIQUE[level]].value) for ds in idx.find(query(level, **keys), model)}


# -- the matching rules, at each level and in both models --------------------------------

FIND_CASES = [
    # PATIENT level (Patient Root only)
    ("patient", "PATIENT", {}, {"PID1", "PID2", "PID3", "PID4"}),
    ("patient", "PATIENT", {"PatientID": "PID1"}, {"PID1"}),
    ("patient", "PATIENT", {"PatientID": " PID1 "}, {"PID1"}),  # padding is insignificant
    ("patient", "PATIENT", {"PatientID": "pid1"}, set()),  # LO is case-sensitive
    ("patient", "PATIENT", {"PatientID": ""}, {"PID1", "PID2", "PID3", "PID4"}),  # universal
    ("patient", "PATIENT", {"PatientID": "PID*"}, {"PID1", "PID2", "PID3", "PID4"}),
    ("patient", "PATIENT", {"PatientID": "PID?"}, {"PID1", "PID2", "PID3", "PID4"}),
    ("patient", "PATIENT", {"PatientID": "PID??"}, set()),
    ("patient", "PATIENT", {"PatientName": "doe^john"}, {"PID1"}),  # PN: case-insensitive
    ("patient", "PATIENT", {"PatientName": "Doe^John^^"}, {"PID1"}),  # empty components
    ("patient", "PATIENT", {"PatientName": "Doe"}, set()),  # single value: the whole name
    ("patient", "PATIENT", {"PatientName": "DOE*"}, {"PID1", "PID4"}),
    ("patient", "PATIENT", {"PatientName": "Doe^*"}, {"PID1", "PID4"}),
    ("patient", "PATIENT", {"PatientName": "*hans"}, {"PID2", "PID3"}),
    ("patient", "PATIENT", {"PatientName": "müller^hans"}, {"PID2"}),  # non-ASCII case
    ("patient", "PATIENT", {"PatientName": "M?LLER*"}, {"PID2"}),
    ("patient", "PATIENT", {"PatientName": "Ørsted^Hans"}, {"PID3"}),  # from ISO_IR 100
    ("patient", "PATIENT", {"PatientName": "*"}, {"PID1", "PID2", "PID3", "PID4"}),
    ("patient", "PATIENT", {"PatientName": "Doe^John\\DOE^JANE"}, {"PID1", "PID4"}),
    ("patient", "PATIENT", {"PatientSex": "F"}, {"PID2"}),
    ("patient", "PATIENT", {"PatientBirthDate": "19700101-19801231"}, {"PID1", "PID2"}),
    ("patient", "PATIENT", {"PatientBirthDate": "-19600101"}, {"PID3"}),
    ("patient", "PATIENT", {"PatientBirthDate": "19700101"}, {"PID1"}),
    # keys below the level are ignored (lenient)
    ("patient", "PATIENT", {"StudyDate": "20220202"}, {"PID1", "PID2", "PID3", "PID4"}),
    # STUDY level
    ("study", "STUDY", {}, ALL_STUDIES),
    ("study", "STUDY", {"StudyInstanceUID": "1.2.3.1"}, {"1.2.3.1"}),
    ("study", "STUDY", {"StudyInstanceUID": "1.2.3.1\\1.2.3.3"}, {"1.2.3.1", "1.2.3.3"}),
    ("study", "STUDY", {"StudyInstanceUID": "1.2.3.*"}, set()),  # no wild cards in UI
    ("study", "STUDY", {"StudyInstanceUID": "1.2.3.1 "}, {"1.2.3.1"}),
    ("study", "STUDY", {"StudyDate": "20200115"}, {"1.2.3.1", "1.2.3.3"}),
    ("study", "STUDY", {"StudyDate": "20200101-20201231"}, {"1.2.3.1", "1.2.3.3"}),
    ("study", "STUDY", {"StudyDate": "20210101-"}, {"1.2.3.2", "1.2.3.5"}),
    ("study", "STUDY", {"StudyDate": "-20191231"}, {"1.2.3.4"}),
    ("study", "STUDY", {"StudyDate": "20210101-20200101"}, set()),  # empty range
    ("study", "STUDY", {"StudyDate": "*"}, ALL_STUDIES),
    ("study", "STUDY", {"StudyTime": "1000-1100"}, {"1.2.3.1"}),
    ("study", "STUDY", {"StudyTime": "-10"}, {"1.2.3.1", "1.2.3.2"}),  # "10": the whole hour
    ("study", "STUDY", {"StudyTime": "-0959"}, {"1.2.3.2"}),
    ("study", "STUDY", {"StudyTime": "14-"}, {"1.2.3.3", "1.2.3.4", "1.2.3.5"}),
    ("study", "STUDY", {"StudyTime": "2359-"}, {"1.2.3.5"}),
    ("study", "STUDY", {"StudyTime": "14"}, {"1.2.3.4"}),
    ("study", "STUDY", {"StudyTime": "140000"}, {"1.2.3.4"}),  # the same instant as "14"
    ("study", "STUDY", {"StudyTime": "093000.000"}, {"1.2.3.2"}),
    ("study", "STUDY", {"StudyTime": "235959.5"}, {"1.2.3.5"}),
    ("study", "STUDY", {"StudyTime": "235959"}, set()),
    ("study", "STUDY", {"StudyDescription": "CT Chest"}, {"1.2.3.1"}),  # case-sensitive
    ("study", "STUDY", {"StudyDescription": "ct*"}, {"1.2.3.5"}),
    ("study", "STUDY", {"StudyDescription": "CT*"}, {"1.2.3.1", "1.2.3.3"}),
    ("study", "STUDY", {"StudyDescription": "*Ch?st"}, {"1.2.3.1"}),
    ("study", "STUDY", {"AccessionNumber": "ACC?"}, {"1.2.3.1", "1.2.3.2", "1.2.3.3"}),
    ("study", "STUDY", {"AccessionNumber": "ACC2"}, {"1.2.3.2"}),
    ("study", "STUDY", {"StudyID": "S1"}, {"1.2.3.1"}),
    ("study", "STUDY", {"ReferringPhysicianName": "SMITH^ANNA"}, {"1.2.3.1", "1.2.3.3"}),
    ("study", "STUDY", {"ModalitiesInStudy": "MR"}, {"1.2.3.2"}),
    ("study", "STUDY", {"ModalitiesInStudy": "SR"}, {"1.2.3.1"}),
    ("study", "STUDY", {"ModalitiesInStudy": "CT"}, {"1.2.3.1", "1.2.3.3", "1.2.3.5"}),
    ("study", "STUDY", {"ModalitiesInStudy": "C?"}, {"1.2.3.1", "1.2.3.3", "1.2.3.5"}),
    ("study", "STUDY", {"ModalitiesInStudy": "CT\\US"}, ALL_STUDIES - {"1.2.3.2"}),
    ("study", "STUDY", {"ModalitiesInStudy": "*"}, ALL_STUDIES),
    ("study", "STUDY", {"ModalitiesInStudy": "XA"}, set()),
    ("study", "STUDY", {"NumberOfStudyRelatedInstances": "4"}, {"1.2.3.1"}),
    ("study", "STUDY", {"NumberOfStudyRelatedSeries": "2"}, {"1.2.3.1"}),
    ("study", "STUDY", {"SOPClassesInStudy": SR}, {"1.2.3.1"}),
    ("study", "STUDY", {"PatientName": "müller*"}, {"1.2.3.3"}),  # patient keys in Study Root
    ("study", "STUDY", {"PatientID": "PID1"}, {"1.2.3.1", "1.2.3.2"}),
    ("study", "STUDY", {"Modality": "MR"}, ALL_STUDIES),  # series key at STUDY: ignored
    ("patient", "STUDY", {"PatientID": "PID1"}, {"1.2.3.1", "1.2.3.2"}),
    ("patient", "STUDY", {}, ALL_STUDIES),  # no PatientID: relational, lenient
    ("patient", "STUDY", {"PatientID": "PID2", "StudyDate": "20200115"}, {"1.2.3.3"}),
    # SERIES level
    ("study", "SERIES", {"StudyInstanceUID": "1.2.3.1"}, {"1.2.3.1.1", "1.2.3.1.2"}),
    ("study", "SERIES", {"Modality": "CT"}, {"1.2.3.1.1", "1.2.3.3.1", "1.2.3.5.1"}),
    ("study", "SERIES", {"Modality": "ct"}, set()),
    (
        "study",
        "SERIES",
        {"Modality": "CT\\MR"},
        {"1.2.3.1.1", "1.2.3.2.1", "1.2.3.3.1", "1.2.3.5.1"},
    ),
    ("study", "SERIES", {"SeriesNumber": "2"}, {"1.2.3.1.2"}),
    ("study", "SERIES", {"SeriesNumber": "07"}, {"1.2.3.5.1"}),  # IS compares as a number
    ("study", "SERIES", {"SeriesInstanceUID": "1.2.3.2.1\\1.2.3.4.1"}, {"1.2.3.2.1", "1.2.3.4.1"}),
    ("study", "SERIES", {"SeriesDescription": "Ax*"}, {"1.2.3.1.1"}),
    ("study", "SERIES", {"BodyPartExamined": "CHEST"}, {"1.2.3.1.1"}),
    ("study", "SERIES", {"StudyDate": "20200115", "Modality": "CT"}, {"1.2.3.1.1", "1.2.3.3.1"}),
    ("study", "SERIES", {"NumberOfSeriesRelatedInstances": "2"}, {"1.2.3.2.1", "1.2.3.3.1"}),
    ("study", "SERIES", {"SOPInstanceUID": "1.2.3.1.1.1"}, ALL_SERIES),  # below: ignored
    ("patient", "SERIES", {"PatientID": "PID1", "Modality": "MR"}, {"1.2.3.2.1"}),
    ("patient", "SERIES", {"PatientName": "*Hans", "Modality": "US"}, {"1.2.3.4.1"}),
    # IMAGE level
    (
        "study",
        "IMAGE",
        {"SeriesInstanceUID": "1.2.3.1.1"},
        {"1.2.3.1.1.1", "1.2.3.1.1.2", "1.2.3.1.1.3"},
    ),
    (
        "study",
        "IMAGE",
        {"SOPInstanceUID": "1.2.3.1.1.1\\1.2.3.3.1.2"},
        {"1.2.3.1.1.1", "1.2.3.3.1.2"},
    ),
    ("study", "IMAGE", {"InstanceNumber": "2"}, {"1.2.3.1.1.2", "1.2.3.2.1.2", "1.2.3.3.1.2"}),
    ("study", "IMAGE", {"SOPClassUID": SR}, {"1.2.3.1.2.1"}),
    ("study", "IMAGE", {"Rows": 256}, {"1.2.3.2.1.1", "1.2.3.2.1.2"}),
    (
        "study",
        "IMAGE",
        {"ContentDate": "20210301-"},
        {"1.2.3.2.1.1", "1.2.3.2.1.2", "1.2.3.5.1.1"},
    ),
    ("study", "IMAGE", {"AvailableTransferSyntaxUID": ImplicitVRLittleEndian}, set()),
    ("study", "IMAGE", {"SOPInstanceUID": ""}, ALL_SOPS),
    ("patient", "IMAGE", {"PatientID": "PID2"}, {"1.2.3.3.1.1", "1.2.3.3.1.2"}),
    ("patient", "IMAGE", {"PatientID": "PID1", "Modality": "SR"}, {"1.2.3.1.2.1"}),
]


@pytest.mark.parametrize(
    ("model", "level", "keys", "expected"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}-{case[2]}") for case in FIND_CASES],
)
def test_find_matching(index, model, level, keys, expected):
    assert found(index, model, level, **keys) == expected


def test_combined_date_time_range(index):
    # 2020-01-15 10:00 to 2021-03-01 09:30 as one range (C.2.2.2.5.4) finds three studies;
    # as two separate ranges the time range 10:00-09:30 is empty.
    keys = {"StudyDate": "20200115-20210301", "StudyTime": "1000-0930"}
    ids = query("STUDY", **keys)
    combined = {ds.StudyInstanceUID for ds in index.find(ids, "study", combine_datetime=True)}
    assert combined == {"1.2.3.1", "1.2.3.2", "1.2.3.3"}
    assert found(index, "study", "STUDY", **keys) == set()
    late = query("STUDY", StudyDate="20200115-", StudyTime="2200-")
    assert {ds.StudyInstanceUID for ds in index.find(late, "study", combine_datetime=True)} == {
        "1.2.3.2",
        "1.2.3.3",
        "1.2.3.5",
    }


# -- responses -------------------------------------------------------------------------


def test_study_response_has_the_requested_keys_and_values(index):
    ids = query(
        "STUDY",
        StudyInstanceUID="1.2.3.1",
        PatientName="",
        PatientID="",
        StudyDate="",
        StudyTime="",
        AccessionNumber="",
        ModalitiesInStudy="",
        NumberOfStudyRelatedSeries="",
        NumberOfStudyRelatedInstances="",
        NumberOfPatientRelatedStudies="",
        SOPClassesInStudy="",
        InstanceAvailability="",
        PatientAge="",  # not kept by the index: returned empty
        ReferencedStudySequence=[],  # sequences: returned empty
        RetrieveAETitle="",  # left to the caller
        SeriesDescription="",  # below the level: left out
    )
    (ds,) = index.find(ids, "study")
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.StudyInstanceUID == "1.2.3.1"
    assert ds.PatientName == "Doe^John"
    assert ds.PatientID == "PID1"
    assert ds.StudyDate == "20200115"
    assert ds.StudyTime == "101500"
    assert ds.AccessionNumber == "ACC1"
    assert list(ds.ModalitiesInStudy) == ["CT", "SR"]
    assert ds.NumberOfStudyRelatedSeries == 2
    assert ds.NumberOfStudyRelatedInstances == 4
    assert ds.NumberOfPatientRelatedStudies == 2
    assert sorted(ds.SOPClassesInStudy) == sorted([CT, SR])
    assert ds.InstanceAvailability == "ONLINE"
    assert "PatientAge" in ds
    assert ds.PatientAge in (None, "")
    assert "ReferencedStudySequence" in ds
    assert len(ds.ReferencedStudySequence) == 0
    assert "RetrieveAETitle" not in ds
    assert "SeriesDescription" not in ds
    assert "SpecificCharacterSet" not in ds  # all ASCII
    # Nothing else: only the requested keys, the level and the unique keys.
    expected = {
        "QueryRetrieveLevel",
        "StudyInstanceUID",
        "PatientName",
        "PatientID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "NumberOfPatientRelatedStudies",
        "SOPClassesInStudy",
        "InstanceAvailability",
        "PatientAge",
        "ReferencedStudySequence",
    }
    assert {e.keyword for e in ds} == expected


def test_response_carries_the_unique_keys_of_the_levels_above(index):
    (ds,) = index.find(query("SERIES", SeriesInstanceUID="1.2.3.2.1", Modality=""), "patient")
    assert ds.PatientID == "PID1"
    assert ds.StudyInstanceUID == "1.2.3.2"
    assert ds.SeriesInstanceUID == "1.2.3.2.1"
    assert ds.Modality == "MR"
    assert ds.QueryRetrieveLevel == "SERIES"
    # Study Root has no patient level: no PatientID unless asked for.
    (ds,) = index.find(query("SERIES", SeriesInstanceUID="1.2.3.2.1"), "study")
    assert "PatientID" not in ds
    assert ds.StudyInstanceUID == "1.2.3.2"


def test_image_response(index):
    ids = query(
        "IMAGE",
        SOPInstanceUID="1.2.3.1.1.2",
        SOPClassUID="",
        InstanceNumber="",
        Rows=None,
        NumberOfSeriesRelatedInstances="",
        AvailableTransferSyntaxUID="",
    )
    (ds,) = index.find(ids, "study")
    assert ds.SOPClassUID == CT
    assert ds.InstanceNumber == 2
    assert ds.Rows == 512
    assert ds.NumberOfSeriesRelatedInstances == 3
    assert ds.AvailableTransferSyntaxUID == ExplicitVRLittleEndian
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID) == ("1.2.3.1", "1.2.3.1.1")


def test_patient_level_counts(index):
    ids = query(
        "PATIENT",
        PatientID="",
        NumberOfPatientRelatedStudies="",
        NumberOfPatientRelatedSeries="",
        NumberOfPatientRelatedInstances="",
    )
    counts = {
        ds.PatientID: (
            ds.NumberOfPatientRelatedStudies,
            ds.NumberOfPatientRelatedSeries,
            ds.NumberOfPatientRelatedInstances,
        )
        for ds in index.find(ids, "patient")
    }
    assert counts == {"PID1": (2, 3, 6), "PID2": (1, 1, 2), "PID3": (1, 1, 1), "PID4": (1, 1, 1)}


def test_counts_only_count_what_is_stored_not_what_matched(index):
    # The Modality filter is at SERIES level; the study counts still cover the whole study.
    ids = query("SERIES", Modality="SR", NumberOfStudyRelatedInstances="")
    (ds,) = index.find(ids, "study")
    assert ds.SeriesInstanceUID == "1.2.3.1.2"
    assert ds.NumberOfStudyRelatedInstances == 4


def test_study_results_are_ordered_by_date_and_time(index):
    order = [ds.StudyInstanceUID for ds in index.find(query("STUDY"), "study")]
    assert order == ["1.2.3.4", "1.2.3.1", "1.2.3.3", "1.2.3.2", "1.2.3.5"]


@pytest.mark.parametrize(
    ("name", "charset_in_file"),
    [("Müller^Hans", "ISO_IR 192"), ("Ørsted^Hans", "ISO_IR 100")],
)
def test_non_ascii_values_are_sent_in_utf8(index, name, charset_in_file):
    (ds,) = index.find(query("PATIENT", PatientName=name), "patient")
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.PatientName == name
    # It survives encoding and decoding, as the SCP would send it.
    data = dsutils.encode(ds, ExplicitVRLittleEndian)
    assert name.encode("utf-8") in data
    assert dsutils.decode(data, ExplicitVRLittleEndian).PatientName == name


def test_query_in_latin1_matches_utf8_stored_name(index):
    # The query arrives encoded in ISO_IR 100; pydicom decodes it, so matching is on text.
    ids = query("PATIENT", SpecificCharacterSet="ISO_IR 100", PatientName="MÜLLER*")
    raw = dsutils.decode(dsutils.encode(ids, ImplicitVRLittleEndian), ImplicitVRLittleEndian)
    assert [ds.PatientID for ds in index.find(raw, "patient")] == ["PID2"]


# -- bad identifiers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "ids", "status", "offending"),
    [
        ("study", query(None, PatientID="PID1"), 0xA900, 0x00080052),
        ("study", query("", PatientID="PID1"), 0xA900, 0x00080052),
        ("study", query("FOO"), 0xA900, 0x00080052),
        ("study", query("PATIENT"), 0xA900, 0x00080052),  # no PATIENT level in Study Root
        ("study", query("STUDY", StudyDate="2020"), 0xC000, 0x00080020),
        ("study", query("STUDY", StudyDate="20200101-2020"), 0xC000, 0x00080020),
        ("study", query("STUDY", StudyDate="2021*"), 0xC000, 0x00080020),
        ("study", query("STUDY", StudyTime="25"), 0xC000, 0x00080030),
        ("study", query("STUDY", StudyTime="10:5"), 0xC000, 0x00080030),
        # as it arrives from the network: a value pydicom cannot even convert
        ("study", raw_identifier("SERIES", 0x00200011, b"abc "), 0xC000, 0x00200011),
        ("patient", query("PATIENT", PatientBirthDate="-"), 0xC000, 0x00100030),
    ],
)
def test_bad_identifier_raises_query_error(index, model, ids, status, offending):
    # Raised by the call itself, before the first response is asked for.
    with pytest.raises(QueryError) as info:
        index.find(ids, model)
    assert info.value.status == status
    assert info.value.offending_element == offending
    assert 0 < len(info.value.comment) <= 64  # it fits Error Comment (LO)


def test_unknown_model_is_a_programming_error(index):
    with pytest.raises(ValueError, match="information model"):
        index.find(query("STUDY"), "worklist")


def test_model_may_be_given_as_a_sop_class_uid(index):
    ids = query("PATIENT", PatientID="PID3")
    patient_root_find = "1.2.840.10008.5.1.4.1.2.1.1"
    assert [ds.PatientID for ds in index.find(ids, patient_root_find)] == ["PID3"]
    with pytest.raises(QueryError):
        index.find(ids, "1.2.840.10008.5.1.4.1.2.2.1")  # Study Root FIND: no PATIENT level


# -- retrieve ----------------------------------------------------------------------------


def uids(records: list[InstanceRecord]) -> list[str]:
    return [r.sop_instance_uid for r in records]


def test_instances_of_a_study_in_order(index):
    records = index.instances(query("STUDY", StudyInstanceUID="1.2.3.1"), "study")
    assert uids(records) == ["1.2.3.1.1.1", "1.2.3.1.1.2", "1.2.3.1.1.3", "1.2.3.1.2.1"]
    first = records[0]
    assert first.path.is_absolute()
    assert first.path.is_file()
    assert first.path == index.data_dir / "1.2.3.1" / "1.2.3.1.1" / "1.2.3.1.1.1.dcm"
    assert (first.sop_class_uid, first.transfer_syntax_uid) == (CT, ExplicitVRLittleEndian)
    assert (first.study_instance_uid, first.series_instance_uid) == ("1.2.3.1", "1.2.3.1.1")
    assert first.patient_id == "PID1"
    assert first.file_size == first.path.stat().st_size
    assert records[3].sop_class_uid == SR


@pytest.mark.parametrize(
    ("model", "level", "keys", "expected"),
    [
        (
            "patient",
            "PATIENT",
            {"PatientID": "PID1"},
            [
                "1.2.3.1.1.1",
                "1.2.3.1.1.2",
                "1.2.3.1.1.3",
                "1.2.3.1.2.1",
                "1.2.3.2.1.1",
                "1.2.3.2.1.2",
            ],
        ),
        (
            "patient",
            "STUDY",
            {"PatientID": "PID2", "StudyInstanceUID": "1.2.3.3"},
            ["1.2.3.3.1.1", "1.2.3.3.1.2"],
        ),
        ("patient", "STUDY", {"PatientID": "PID1", "StudyInstanceUID": "1.2.3.3"}, []),
        (
            "study",
            "SERIES",
            {"SeriesInstanceUID": "1.2.3.4.1\\1.2.3.1.2"},
            ["1.2.3.4.1.1", "1.2.3.1.2.1"],
        ),
        (
            "study",
            "IMAGE",
            {"SOPInstanceUID": "1.2.3.5.1.1\\1.2.3.2.1.2"},
            ["1.2.3.2.1.2", "1.2.3.5.1.1"],
        ),
        # other keys at or above the level filter further
        (
            "study",
            "STUDY",
            {"StudyInstanceUID": "1.2.3.1\\1.2.3.2", "StudyDate": "20210301"},
            ["1.2.3.2.1.1", "1.2.3.2.1.2"],
        ),
        ("study", "STUDY", {"StudyInstanceUID": "1.2.3.9"}, []),
    ],
)
def test_instances_to_retrieve(index, model, level, keys, expected):
    assert uids(index.instances(query(level, **keys), model)) == expected


@pytest.mark.parametrize(
    ("model", "ids"),
    [
        ("study", query("STUDY")),  # no unique key: would send everything
        ("study", query("STUDY", StudyInstanceUID="")),
        ("study", query("SERIES", StudyInstanceUID="1.2.3.1")),
        ("patient", query("PATIENT", PatientID="PID*")),
        ("patient", query("PATIENT", PatientID="*")),
        ("study", query("PATIENT", PatientID="PID1")),
        ("study", query(None, StudyInstanceUID="1.2.3.1")),
    ],
)
def test_bad_retrieve_identifier(index, model, ids):
    with pytest.raises(QueryError) as info:
        index.instances(ids, model)
    assert info.value.status == 0xA900


# -- matching functions directly -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10", ("100000.000000", "105959.999999")),
        ("1030", ("103000.000000", "103059.999999")),
        ("103015", ("103015.000000", "103015.999999")),
        ("103015.5", ("103015.500000", "103015.599999")),
        ("10:30:15", ("103015.000000", "103015.999999")),  # ACR-NEMA form
        ("24", None),
        ("1060", None),
        ("10a", None),
        ("103015.1234567", None),
    ],
)
def test_tm_bounds(value, expected):
    assert tm_bounds(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020", ("20200101000000.000000", "20201231235959.999999")),
        ("20200315", ("20200315000000.000000", "20200315235959.999999")),
        ("20200315101112.25+0100", ("20200315101112.250000", "20200315101112.259999")),
        ("202003151", None),
        ("", None),
    ],
)
def test_dt_bounds(value, expected):
    assert dt_bounds(value) == expected


@pytest.mark.parametrize(
    ("vr", "key", "stored", "matches"),
    [
        ("DT", "20200101-20200102", "20200102235959", True),  # the whole day of the upper bound
        ("DT", "20200101-20200102", "20200103", False),
        ("DT", "2020-", "20191231235959", False),
        ("DT", "-2020", "20201231", True),
        ("DT", "20200101120000-0500", "20200101120000", True),  # a single value with an offset
        ("DT", "20200101120000-0500-", "20200101130000", True),  # a range from it
        ("DA", "20200101", "2020.01.01", True),  # ACR-NEMA dates are read too
        ("TM", "1000-1000", "100000", True),
        ("TM", "1000-1000", "100059.9", True),
        ("TM", "1000-1000", "100100", False),
        ("PN", "yamada^tarou", "Yamada^Tarou=山田^太郎=やまだ^たろう", True),  # first group
        ("PN", "YAMADA*", "Yamada^Tarou=山田^太郎", True),
        ("PN", "Doe^John", "Doe^Johnny", False),
        ("PN", "DOE^*", "Doe", True),  # the empty given name may be left out (PS3.5 6.2.1)
        ("PN", "DOE^*", "Doering", False),
        ("LO", "a.b*", "axb", False),  # regex characters are literal
        ("LO", "A[1]*", "A[1]x", True),
        ("LO", "A?", "AB", True),
        ("LO", "A?", "ABC", False),
        ("SH", "X*Y", "X\nY", True),  # "*" spans any character
        ("CS", "CT", " CT ", True),
        ("LT", " lead", "lead", False),  # leading spaces are significant in LT
        ("UI", "1.2\\1.3", "1.3\0", True),
        ("IS", "+5", "5", True),
        ("US", "512", 512, True),
        ("LO", "x", None, False),
    ],
)
def test_conditions(vr, key, stored, matches):
    condition = parse_condition(vr, key.split("\\"))
    assert condition is not None
    assert condition.test(stored) is matches


@pytest.mark.parametrize("value", ["", " ", "*", "**"])
def test_universal_values(value):
    assert parse_condition("LO", [value]) is None
    assert parse_condition("DA", [value]) is None


@pytest.mark.parametrize(
    ("vr", "key"),
    [("DA", "20201301x"), ("TM", "1-2-3"), ("DT", "abc"), ("IS", "1.5"), ("DA", "-")],
)
def test_uninterpretable_values(vr, key):
    with pytest.raises(MatchError):
        parse_condition(vr, [key])


def test_pn_key():
    assert pn_key("Doe^John^^^") == pn_key("DOE^JOHN") == "doe^john"
    assert pn_key(" Doe ^ John ==") == "doe^john"
    assert pn_key("Yamada^Tarou=山田^太郎") == "yamada^tarou=山田^太郎"


# -- storing, replacing, reconciling ---------------------------------------------------------


def attrs(sop: str = "9.1", study: str = "9", series: str = "9.1", **more) -> dict:
    base = {
        "PatientID": "P9",
        "PatientName": "Test^Nine",
        "StudyInstanceUID": study,
        "SeriesInstanceUID": series,
        "SOPInstanceUID": sop,
        "SOPClassUID": CT,
        "Modality": "CT",
        "StudyDescription": "first",
    }
    base.update(more)
    return base


def descriptions(idx: Index) -> list[str]:
    return [ds.StudyDescription for ds in idx.find(query("STUDY", StudyDescription=""), "study")]


def test_add_returns_a_record_with_a_relative_row(tmp_path):
    with Index(tmp_path) as idx:
        record = idx.add(write_file(tmp_path / "a" / "x.dcm", **attrs()))
        assert record.path == tmp_path.resolve() / "a" / "x.dcm"
        assert record.replaced_path is None
        assert (record.sop_instance_uid, record.study_instance_uid) == ("9.1", "9")
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        assert conn.execute("SELECT path FROM instances").fetchall() == [("a/x.dcm",)]


def test_add_uses_a_given_dataset_and_the_file_meta(tmp_path):
    with Index(tmp_path) as idx:
        path = write_file(tmp_path / "x.dcm", ts=ImplicitVRLittleEndian, **attrs())
        given = query(None, **attrs(StudyDescription="from the caller"))  # no file_meta
        record = idx.add(path, given)
        assert record.transfer_syntax_uid == ImplicitVRLittleEndian  # read from the file
        assert descriptions(idx) == ["from the caller"]


def test_resent_instance_replaces_its_row(tmp_path):
    with Index(tmp_path) as idx:
        first = write_file(tmp_path / "first.dcm", **attrs())
        idx.add(first)
        second = write_file(tmp_path / "second.dcm", **attrs(StudyDescription="second"))
        record = idx.add(second)
        assert record.replaced_path == first.resolve()  # the caller deletes it
        assert idx.count() == 1
        assert descriptions(idx) == ["second"]
        (only,) = idx.instances(query("STUDY", StudyInstanceUID="9"), "study")
        assert only.path == second.resolve()
        # The same file again: nothing to delete.
        assert idx.add(second).replaced_path is None
        assert idx.count() == 1


def test_another_instance_at_the_same_path_replaces_the_row(tmp_path):
    with Index(tmp_path) as idx:
        path = tmp_path / "x.dcm"
        idx.add(write_file(path, **attrs(sop="9.1")))
        idx.add(write_file(path, **attrs(sop="9.2")))
        assert idx.count() == 1
        assert uids(idx.instances(query("STUDY", StudyInstanceUID="9"), "study")) == ["9.2"]


def test_remove(tmp_path):
    with Index(tmp_path) as idx:
        idx.add(write_file(tmp_path / "1.dcm", **attrs(sop="9.1")))
        idx.add(write_file(tmp_path / "2.dcm", **attrs(sop="9.2")))
        idx.remove("9.1")
        idx.remove("9.404")  # unknown: nothing happens
        assert idx.count() == 1
        assert found(idx, "study", "IMAGE", SOPInstanceUID="") == {"9.2"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not DICOM", "not a readable DICOM file"),
        (b"", "not a readable DICOM file"),
        ("StudyInstanceUID", "no StudyInstanceUID"),
        ("SeriesInstanceUID", "no SeriesInstanceUID"),
    ],
)
def test_unindexable_file_raises_indexing_error(tmp_path, content, message):
    path = tmp_path / "bad.dcm"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        values = attrs()
        del values[content]
        write_file(path, **values)
    with Index(tmp_path) as idx:
        with pytest.raises(IndexingError, match=message):
            idx.add(path)
        assert idx.count() == 0


def test_sop_instance_uid_is_required(tmp_path):
    values = attrs()
    del values["SOPInstanceUID"]
    path = tmp_path / "bad.dcm"
    write_file(path, **values)
    # write_file put a MediaStorageSOPInstanceUID in the meta; a file without either fails.
    with Index(tmp_path) as idx:
        assert idx.add(path).sop_instance_uid == "1.2.999"
        bare = query(None, **values)
        bare.file_meta = FileMetaDataset()
        bare.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        with pytest.raises(IndexingError, match="no SOPInstanceUID"):
            idx.add(path, bare)


def test_undecodable_optional_value_is_left_out(tmp_path, caplog):
    path = write_file(tmp_path / "x.dcm", **attrs(InstanceNumber="7"))
    data = path.read_bytes()
    element = b"\x20\x00\x13\x00IS\x02\x007 "  # (0020,0013) IS "7 ", explicit VR
    assert data.count(element) == 1
    path.write_bytes(data.replace(element, element[:-2] + b"ab"))
    with Index(tmp_path) as idx:
        assert idx.add(path).sop_instance_uid == "9.1"
        (ds,) = idx.find(query("IMAGE", SOPInstanceUID="9.1", InstanceNumber=""), "study")
        assert ds.InstanceNumber is None
    assert "InstanceNumber" in caplog.text


def test_patient_without_id_and_name_with_component_groups(tmp_path):
    values = attrs(PatientName="Yamada^Tarou=山田^太郎=やまだ^たろう")
    del values["PatientID"]  # Type 2: may be absent or empty
    write_file(tmp_path / "x.dcm", SpecificCharacterSet="ISO_IR 192", **values)
    with Index(tmp_path) as idx:
        assert idx.add(tmp_path / "x.dcm").patient_id == ""
        ids = query("PATIENT", PatientName="YAMADA^TAROU", NumberOfPatientRelatedInstances="")
        (ds,) = idx.find(ids, "patient")  # the alphabetic group alone finds the name
        assert ds.PatientID in ("", None)
        assert ds.PatientName == "Yamada^Tarou=山田^太郎=やまだ^たろう"
        assert ds.NumberOfPatientRelatedInstances == 1
        assert list(idx.find(query("PATIENT", PatientName="Yamada"), "patient")) == []


def test_file_outside_data_dir_or_missing(tmp_path):
    data_dir = tmp_path / "data"
    outside = write_file(tmp_path / "outside.dcm", **attrs())
    with Index(data_dir) as idx:
        with pytest.raises(IndexingError, match="not under the data directory"):
            idx.add(outside)
        with pytest.raises(IndexingError):
            idx.add(data_dir / "missing.dcm")


def test_reconcile_after_a_crash(tmp_path):
    with Index(tmp_path) as idx:
        kept = idx.add(write_file(tmp_path / "s" / "kept.dcm", **attrs(sop="9.1")))
        deleted = idx.add(write_file(tmp_path / "s" / "deleted.dcm", **attrs(sop="9.2")))
        changed = idx.add(write_file(tmp_path / "s" / "changed.dcm", **attrs(sop="9.3")))
    # What a crash leaves behind: a file stored but not indexed, temporary files, a file
    # deleted but still indexed, a file overwritten in place.
    unindexed = write_file(tmp_path / "t" / "new.dcm", **attrs(sop="9.4", study="8"))
    (tmp_path / "s" / "x.dcm.part").write_bytes(b"half a file")
    (tmp_path / "t" / "deep").mkdir()
    (tmp_path / "t" / "deep" / "y.part").write_bytes(b"")
    (tmp_path / "junk.dcm").write_bytes(b"junk")
    deleted.path.unlink()
    write_file(changed.path, **attrs(sop="9.3", StudyDescription="rewritten in place"))
    os.utime(changed.path, ns=(time.time_ns(), time.time_ns() + 10**9))

    with Index(tmp_path) as idx:
        report = idx.reconcile()
        assert report == ReconcileReport(
            parts_deleted=2,
            indexed=1,
            reindexed=1,
            dropped=1,
            superseded=0,
            failed=report.failed,
        )
        assert [path for path, _ in report.failed] == [tmp_path.resolve() / "junk.dcm"]
        assert "not a readable DICOM file" in report.failed[0][1]
        assert (tmp_path / "junk.dcm").exists()  # left for a human
        assert not list(tmp_path.rglob("*.part"))
        assert idx.count() == 3
        assert found(idx, "study", "IMAGE", SOPInstanceUID="") == {"9.1", "9.3", "9.4"}
        assert "rewritten in place" in descriptions(idx)
        assert kept.path.exists()
        assert unindexed.exists()
        # A second run has nothing left to do.
        again = idx.reconcile()
        assert (again.parts_deleted, again.indexed, again.reindexed, again.dropped) == (0, 0, 0, 0)


def test_reconcile_keeps_the_later_copy_of_a_resent_instance(tmp_path):
    now = time.time_ns()
    with Index(tmp_path) as idx:
        old = idx.add(write_file(tmp_path / "old.dcm", **attrs(StudyDescription="old")))
        os.utime(old.path, ns=(now, now - 10**9))
        idx.add(old.path)  # indexed with that time
    # Killed after storing the re-sent copy, before indexing it.
    new = write_file(tmp_path / "new.dcm", **attrs(StudyDescription="new"))
    os.utime(new, ns=(now, now))
    with Index(tmp_path) as idx:
        report = idx.reconcile()
        assert (report.indexed, report.superseded) == (1, 1)
        assert not old.path.exists()
        assert new.exists()
        assert descriptions(idx) == ["new"]


def test_reconcile_deletes_a_stale_copy_left_after_replacing(tmp_path):
    now = time.time_ns()
    stale = write_file(tmp_path / "stale.dcm", **attrs(StudyDescription="stale"))
    os.utime(stale, ns=(now, now - 10**9))
    current = write_file(tmp_path / "current.dcm", **attrs(StudyDescription="current"))
    os.utime(current, ns=(now, now))
    with Index(tmp_path) as idx:
        idx.add(current)  # indexed; the process died before deleting the stale copy
        report = idx.reconcile()
        assert (report.indexed, report.superseded) == (0, 1)
        assert not stale.exists()
        assert current.exists()
        assert descriptions(idx) == ["current"]


def test_index_persists_in_wal_mode(tmp_path):
    with Index(tmp_path) as idx:
        idx.add(write_file(tmp_path / "x.dcm", **attrs()))
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with Index(tmp_path) as idx:
        assert idx.count() == 1


def test_other_schema_version_is_rebuilt_from_the_files(tmp_path):
    with Index(tmp_path) as idx:
        idx.add(write_file(tmp_path / "x.dcm", **attrs()))
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with Index(tmp_path) as idx:
        assert idx.count() == 0
        assert idx.reconcile().indexed == 1
        assert idx.count() == 1


def test_concurrent_adds_and_queries(tmp_path):
    threads, per_thread = 8, 8
    paths = {
        (t, i): write_file(
            tmp_path / f"t{t}" / f"{i}.dcm", **attrs(sop=f"7.{t}.{i}", study=f"7.{t}")
        )
        for t in range(threads)
        for i in range(per_thread)
    }
    errors: list[BaseException] = []
    with Index(tmp_path) as idx:
        barrier = threading.Barrier(threads + 1)

        def writer(t: int) -> None:
            try:
                barrier.wait()
                for i in range(per_thread):
                    idx.add(paths[(t, i)])
            except BaseException as exc:
                errors.append(exc)

        def reader() -> None:
            try:
                barrier.wait()
                for _ in range(20):
                    list(idx.find(query("STUDY", NumberOfStudyRelatedInstances=""), "study"))
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
        workers.append(threading.Thread(target=reader))
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=30)
        assert errors == []
        assert idx.count() == threads * per_thread
        counts = {
            ds.StudyInstanceUID: ds.NumberOfStudyRelatedInstances
            for ds in idx.find(query("STUDY", NumberOfStudyRelatedInstances=""), "study")
        }
        assert counts == {f"7.{t}": per_thread for t in range(threads)}
