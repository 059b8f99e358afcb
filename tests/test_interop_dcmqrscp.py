"""Our query/retrieve SCUs against DCMTK's dcmqrscp (an image archive) on loopback.

The archive is loaded with a small tree generated with pydicom (2 patients, 3 studies,
5 series, 10 instances) and registered with ``dcmqridx``; dcmqrscp runs on a free port in
its own process group (it forks a child per association), all killed at teardown. (Its
single-process mode, ``-s``, is not used: DCMTK 3.6.7's dcmqrscp -s crashes with SIGSEGV
after the first association is released, whichever SCU it was.) Our C-FIND, C-GET and
C-MOVE SCUs must get exactly the matches and instances the archive holds, with the
counters DCMTK sends. A missing DCMTK fails these tests (``dcmtk_tool`` asserts), never
skips them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import dimse
from dimse import build_role, evt, sop
from peers import (
    LOOPBACK,
    PEER_TIMEOUT,
    PROCESS_TIMEOUT,
    dcmtk_env,
    dcmtk_tool,
    free_port,
    our_ae,
    run_dcmtk,
    wait_for_port,
)

CT = sop.CTImageStorage
MR = sop.MRImageStorage
QR_AET = "QRSCP"
SCU_AET = "OURSCU"
DEST_AET = "OURDEST"

P_FIND = sop.PatientRootQueryRetrieveInformationModelFind
S_FIND = sop.StudyRootQueryRetrieveInformationModelFind
P_GET = sop.PatientRootQueryRetrieveInformationModelGet
S_GET = sop.StudyRootQueryRetrieveInformationModelGet
P_MOVE = sop.PatientRootQueryRetrieveInformationModelMove
S_MOVE = sop.StudyRootQueryRetrieveInformationModelMove

#: The archive's tree: patient (name, ID) -> studies -> series (modality, instance count).
TREE = {
    ("DOE^JOHN", "P1"): [
        [("CT", 2), ("MR", 1)],
        [("CT", 3)],
    ],
    ("SMITH^JANE", "P2"): [
        [("MR", 2), ("CT", 2)],
    ],
}


@dataclass
class Archive:
    """What was loaded into dcmqrscp, and where it listens."""

    port: int
    instances: list[Dataset]
    proc: subprocess.Popen[bytes]
    log: Path
    #: (SOP Instance UID, Move Originator AE Title) of what our move destination got.
    moved: list[tuple[str, str]] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def select(self, **keys: str) -> list[Dataset]:
        return [ds for ds in self.instances if all(ds.get(k) == v for k, v in keys.items())]

    def uids(self, keyword: str, **keys: str) -> set[str]:
        return {str(ds.get(keyword)) for ds in self.select(**keys)}


def make_instances() -> list[Dataset]:
    instances = []
    for (name, patient_id), studies in TREE.items():
        for s, series_list in enumerate(studies):
            study_uid = generate_uid()
            for n, (modality, count) in enumerate(series_list):
                series_uid = generate_uid()
                for i in range(count):
                    ds = Dataset()
                    ds.SOPClassUID = CT if modality == "CT" else MR
                    ds.SOPInstanceUID = generate_uid()
                    ds.PatientName = name
                    ds.PatientID = patient_id
                    ds.PatientBirthDate = "19700101" if patient_id == "P1" else "19800202"
                    ds.PatientSex = "M" if patient_id == "P1" else "F"
                    ds.StudyInstanceUID = study_uid
                    ds.StudyID = f"{patient_id}S{s + 1}"
                    ds.StudyDate = f"2024010{s + 1}"
                    ds.StudyTime = "120000"
                    ds.AccessionNumber = f"A{patient_id}{s + 1}"
                    ds.SeriesInstanceUID = series_uid
                    ds.SeriesNumber = n + 1
                    ds.Modality = modality
                    ds.InstanceNumber = i + 1
                    ds.Rows = ds.Columns = 4
                    ds.BitsAllocated = ds.BitsStored = 16
                    ds.HighBit = 15
                    ds.PixelRepresentation = 0
                    ds.SamplesPerPixel = 1
                    ds.PhotometricInterpretation = "MONOCHROME2"
                    ds.PixelData = bytes(range(32))
                    ds.file_meta = FileMetaDataset()
                    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
                    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                    instances.append(ds)
    return instances


def write_config(path: Path, storage: Path, dest_port: int) -> None:
    """A dcmqrscp configuration (format: DCMTK's dcmqrcnf.txt / etc/dcmtk/dcmqrscp.cfg).

    HostTable: symbolic name = (AE title, host, port); AETable: AE title, storage area,
    access, (max studies, max bytes per study), peers allowed (ANY: every host table entry
    and unknown peers). dcmqrscp never connects to our SCU: its port is a placeholder."""
    path.write_text(
        f"""\
NetworkTCPPort  = 104
MaxPDUSize      = 16384
MaxAssociations = 4

HostTable BEGIN
ourscu  = ({SCU_AET}, {LOOPBACK}, {free_port()})
ourdest = ({DEST_AET}, {LOOPBACK}, {dest_port})
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
{QR_AET}  {storage}  RW  (20, 64mb)  ANY
AETable END
"""
    )


def start_dcmqrscp(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    timeouts = ["-ta", str(PEER_TIMEOUT), "-td", str(PEER_TIMEOUT)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [dcmtk_tool("dcmqrscp"), "-v", "-c", str(config), *timeouts, str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dcmtk_env(),
            start_new_session=True,  # its own process group: its forked children with it
        )
    try:
        wait_for_port(port, proc)  # bounded: at most ~10 s
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kills dcmqrscp and the children it forked (one per association): its process group,
    whose ID is its own PID (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=PROCESS_TIMEOUT)


def new_archive(base: Path, instances: list[Dataset], finalizers: list) -> Archive:
    """Writes the instances under ``base``, indexes them with dcmqridx, starts our move
    destination and dcmqrscp; the finalizers stop both."""
    storage = base / "storage"
    files = base / "files"
    storage.mkdir()
    files.mkdir()
    paths = []
    for ds in instances:
        path = files / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(str(path))
    if paths:
        indexed = run_dcmtk("dcmqridx", str(storage), *paths)
        assert indexed.returncode == 0, indexed.stdout
    else:
        # An empty archive: dcmqridx creates index.dat with no file to register.
        indexed = run_dcmtk("dcmqridx", str(storage))
        assert indexed.returncode == 0, indexed.stdout

    moved: list[tuple[str, str]] = []

    def on_store(event):
        moved.append(
            (
                str(event.dataset.SOPInstanceUID),
                str(event.request.get("MoveOriginatorApplicationEntityTitle", "")),
            )
        )
        return 0x0000

    dest = our_ae(DEST_AET)
    dest.add_supported_context(CT)
    dest.add_supported_context(MR)
    server = dest.start_server(
        (LOOPBACK, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    finalizers.append(server.shutdown)

    config = base / "dcmqrscp.cfg"
    write_config(config, storage, server.server_address[1])
    port = free_port()
    log = base / "dcmqrscp.log"
    proc = start_dcmqrscp(config, port, log)
    finalizers.append(lambda: stop(proc))
    return Archive(port, instances, proc, log, moved)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    finalizers: list = []
    try:
        yield new_archive(tmp_path_factory.mktemp("qr"), make_instances(), finalizers)
    finally:
        for fin in reversed(finalizers):
            fin()


@pytest.fixture
def fresh_archive(tmp_path):
    finalizers: list = []
    try:
        yield new_archive(tmp_path, [], finalizers)
    finally:
        for fin in reversed(finalizers):
            fin()


def scu(*contexts: str) -> dimse.AE:
    ae = our_ae(SCU_AET)
    for uid in contexts:
        ae.add_requested_context(uid)
    return ae


def identifier(level: str, **keys: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def find(archive: Archive, model: str, query: Dataset) -> list[tuple[Dataset, Dataset | None]]:
    with scu(model).associate(LOOPBACK, archive.port, ae_title=QR_AET) as assoc:
        return list(assoc.send_c_find(query, model))


def check_find(responses, archive: Archive) -> list[Dataset]:
    """The pending responses' identifiers, after checking the statuses (all Pending, the
    final one Success without an identifier)."""
    *pending, (final, final_identifier) = responses
    assert final.Status == 0x0000, (final, archive.output()[-3000:])
    assert final_identifier is None
    assert all(s.Status in (0xFF00, 0xFF01) for s, _ in pending)
    assert all(i is not None for _, i in pending)
    return [i for _, i in pending]


# -- the peer is DCMTK's ---------------------------------------------------------------------


def test_dcmqrscp_is_dcmtks_and_running(archive):
    assert dcmtk_tool("dcmqrscp") == "/usr/bin/dcmqrscp"
    assert archive.proc.poll() is None
    listing = run_dcmtk("dcmqridx", "-p", str(archive.log.parent / "storage"))
    assert listing.returncode == 0, listing.stdout
    assert listing.stdout.count("STUDY DESCRIPTOR") == 3  # 3 studies registered


# -- C-FIND ---------------------------------------------------------------------------------

FIND_CASES = [
    # (model, level, query keys, the archive selection that must match, returned key)
    ("P", "PATIENT", {"PatientName": "*", "PatientID": ""}, {}, "PatientID"),
    ("P", "PATIENT", {"PatientName": "DOE*", "PatientID": ""}, {"PatientID": "P1"}, "PatientID"),
    (
        "P",
        "PATIENT",
        {"PatientName": "?MITH^JA?E", "PatientID": ""},
        {"PatientID": "P2"},
        "PatientID",
    ),
    ("P", "PATIENT", {"PatientID": "P*", "PatientSex": "F"}, {"PatientID": "P2"}, "PatientID"),
    (
        "P",
        "STUDY",
        {"PatientID": "P1", "StudyInstanceUID": ""},
        {"PatientID": "P1"},
        "StudyInstanceUID",
    ),
    ("S", "STUDY", {"PatientName": "*", "StudyInstanceUID": ""}, {}, "StudyInstanceUID"),
    (
        "S",
        "STUDY",
        {"PatientName": "S*", "StudyInstanceUID": ""},
        {"PatientID": "P2"},
        "StudyInstanceUID",
    ),
    (
        "S",
        "STUDY",
        {"StudyDate": "20240102-", "StudyInstanceUID": ""},
        {"StudyDate": "20240102"},
        "StudyInstanceUID",
    ),
    (
        "S",
        "STUDY",
        {"AccessionNumber": "A?12", "StudyInstanceUID": ""},
        {"StudyID": "P1S2"},
        "StudyInstanceUID",
    ),
]


@pytest.mark.parametrize(("model", "level", "keys", "selection", "returned"), FIND_CASES)
def test_find(archive, model, level, keys, selection, returned):
    uid = {"P": P_FIND, "S": S_FIND}[model]
    found = check_find(find(archive, uid, identifier(level, **keys)), archive)
    values = [str(i.get(returned)) for i in found]
    assert len(values) == len(set(values)), values  # one response per match
    expected = archive.uids(returned, **selection)
    assert set(values) == expected
    for i in found:
        assert i.QueryRetrieveLevel == level
        # The keys we asked for come back, with values that match the query.
        for keyword in keys:
            assert keyword in i, (keyword, i)


def test_find_return_keys_carry_the_archive_values(archive):
    found = check_find(
        find(
            archive,
            P_FIND,
            identifier("PATIENT", PatientName="DOE^JOHN", PatientID="", PatientBirthDate=""),
        ),
        archive,
    )
    ((match,),) = [found]
    assert (match.PatientName, match.PatientID, match.PatientBirthDate) == (
        "DOE^JOHN",
        "P1",
        "19700101",
    )
    assert match.RetrieveAETitle == QR_AET


def test_find_series_and_image_levels(archive):
    study = archive.select(PatientID="P2")[0].StudyInstanceUID
    series = check_find(
        find(
            archive,
            S_FIND,
            identifier("SERIES", StudyInstanceUID=study, SeriesInstanceUID="", Modality=""),
        ),
        archive,
    )
    got = {(str(i.SeriesInstanceUID), i.Modality) for i in series}
    assert got == {
        (str(ds.SeriesInstanceUID), ds.Modality) for ds in archive.select(StudyInstanceUID=study)
    }
    assert len(got) == 2

    mr = next(s for s in series if s.Modality == "MR").SeriesInstanceUID
    images = check_find(
        find(
            archive,
            S_FIND,
            identifier(
                "IMAGE",
                StudyInstanceUID=study,
                SeriesInstanceUID=mr,
                SOPInstanceUID="",
                InstanceNumber="",
            ),
        ),
        archive,
    )
    assert {(str(i.SOPInstanceUID), int(i.InstanceNumber)) for i in images} == {
        (str(ds.SOPInstanceUID), int(ds.InstanceNumber))
        for ds in archive.select(SeriesInstanceUID=mr)
    }

    # Patient root, down to the images of a patient's study.
    p1_study = archive.select(PatientID="P1", StudyID="P1S2")[0]
    p_images = check_find(
        find(
            archive,
            P_FIND,
            identifier(
                "IMAGE",
                PatientID="P1",
                StudyInstanceUID=p1_study.StudyInstanceUID,
                SeriesInstanceUID=p1_study.SeriesInstanceUID,
                SOPInstanceUID="",
            ),
        ),
        archive,
    )
    assert {str(i.SOPInstanceUID) for i in p_images} == archive.uids(
        "SOPInstanceUID", SeriesInstanceUID=p1_study.SeriesInstanceUID
    )
    assert len(p_images) == 3


def test_find_no_match(archive):
    responses = find(archive, S_FIND, identifier("STUDY", PatientName="NOBODY*"))
    assert check_find(responses, archive) == []
    assert len(responses) == 1


def test_find_several_on_one_association_then_echo(archive):
    ae = scu(P_FIND, S_FIND, sop.Verification)
    with ae.associate(LOOPBACK, archive.port, ae_title=QR_AET) as assoc:
        counts = []
        for model, level in ((P_FIND, "PATIENT"), (S_FIND, "STUDY"), (P_FIND, "PATIENT")):
            q = identifier(level, PatientName="*", PatientID="")
            counts.append(len(check_find(list(assoc.send_c_find(q, model)), archive)))
        assert assoc.send_c_echo().Status == 0x0000
    assert counts == [2, 3, 2]
    assert assoc.is_released


def test_find_cancel_by_stopping_early(archive):
    ae = scu(S_FIND, sop.Verification)
    with ae.associate(LOOPBACK, archive.port, ae_title=QR_AET) as assoc:
        responses = assoc.send_c_find(identifier("STUDY", StudyInstanceUID=""), S_FIND)
        status, first = next(responses)
        assert status.Status in (0xFF00, 0xFF01)
        assert first is not None
        responses.close()  # C-CANCEL-RQ; reads on to the final response
        assert assoc.send_c_echo().Status == 0x0000
    assert archive.proc.poll() is None


# -- C-GET ----------------------------------------------------------------------------------


def get(archive: Archive, model: str, query: Dataset, on_store=None):
    """C-GET with SCP role selection for CT and MR; returns (responses, received)."""
    received: list[Dataset] = []

    def store(event):
        received.append(event.dataset)
        return on_store(event) if on_store else 0x0000

    ae = scu(model, CT, MR)
    ext_neg = [build_role(CT, scp_role=True), build_role(MR, scp_role=True)]
    with ae.associate(
        LOOPBACK,
        archive.port,
        ae_title=QR_AET,
        ext_neg=ext_neg,
        evt_handlers=[(evt.EVT_C_STORE, store)],
    ) as assoc:
        roles = {pc.abstract_syntax: pc.scp_role for pc in assoc.accepted_contexts}
        assert roles[CT] is True, assoc.accepted_contexts  # dcmqrscp accepted our SCP role
        assert roles[MR] is True
        responses = list(assoc.send_c_get(query, model))
    return responses, received


def check_counts(final: Dataset, completed: int, failed: int = 0, warning: int = 0) -> None:
    """The final C-GET/C-MOVE response's sub-operation counters (PS3.7 9.1.3)."""
    assert final.NumberOfCompletedSuboperations == completed
    assert final.NumberOfFailedSuboperations == failed
    assert final.NumberOfWarningSuboperations == warning
    assert final.get("NumberOfRemainingSuboperations", 0) == 0


@pytest.mark.parametrize(
    ("model", "level", "selection"),
    [
        (S_GET, "STUDY", {"StudyID": "P1S1"}),
        (S_GET, "SERIES", {"StudyID": "P2S1", "Modality": "CT"}),
        (P_GET, "PATIENT", {"PatientID": "P1"}),
        (P_GET, "IMAGE", {"PatientID": "P2", "Modality": "MR", "InstanceNumber": 2}),
    ],
    ids=["study-root-study", "study-root-series", "patient-root-patient", "patient-root-image"],
)
def test_get_receives_every_instance(archive, model, level, selection):
    wanted = archive.select(**selection)
    one = wanted[0]
    keys = {
        "PATIENT": {"PatientID": one.PatientID},
        "STUDY": {"StudyInstanceUID": one.StudyInstanceUID},
        "SERIES": {
            "StudyInstanceUID": one.StudyInstanceUID,
            "SeriesInstanceUID": one.SeriesInstanceUID,
        },
        "IMAGE": {
            "PatientID": one.PatientID,
            "StudyInstanceUID": one.StudyInstanceUID,
            "SeriesInstanceUID": one.SeriesInstanceUID,
            "SOPInstanceUID": one.SOPInstanceUID,
        },
    }[level]
    if model == S_GET:
        keys.pop("PatientID", None)
    responses, received = get(archive, model, identifier(level, **keys))
    *pending, (final, final_identifier) = responses
    assert final.Status == 0x0000, (final, archive.output()[-3000:])
    check_counts(final, completed=len(wanted))
    assert final_identifier is None
    assert all(s.Status == 0xFF00 for s, _ in pending)
    # Each pending response counts one more sub-operation done: remaining n-1 ... 0.
    assert [int(s.NumberOfRemainingSuboperations) for s, _ in pending] == list(
        range(len(wanted) - 1, -1, -1)
    )
    assert [int(s.NumberOfCompletedSuboperations) for s, _ in pending] == list(
        range(1, len(wanted) + 1)
    )
    by_uid = {str(ds.SOPInstanceUID): ds for ds in received}
    assert len(by_uid) == len(received) == len(wanted)
    assert set(by_uid) == {str(ds.SOPInstanceUID) for ds in wanted}
    for ds in wanted:
        got = by_uid[str(ds.SOPInstanceUID)]
        assert (got.SOPClassUID, got.PatientID, got.SeriesInstanceUID) == (
            ds.SOPClassUID,
            ds.PatientID,
            ds.SeriesInstanceUID,
        )
        assert got.PixelData == ds.PixelData


def test_get_sub_operation_failure_is_counted(archive):
    wanted = archive.select(StudyID="P1S2")
    assert len(wanted) == 3
    refused = str(wanted[1].SOPInstanceUID)

    def on_store(event):
        return 0xA700 if str(event.dataset.SOPInstanceUID) == refused else 0x0000

    query = identifier("STUDY", StudyInstanceUID=wanted[0].StudyInstanceUID)
    responses, received = get(archive, S_GET, query, on_store)
    final, final_identifier = responses[-1]
    # PS3.4 C.4.3.1.3.1: sub-operations done, one or more failed -> B000 (warning).
    assert final.Status == 0xB000, (final, archive.output()[-3000:])
    check_counts(final, completed=2, failed=1)
    assert len(received) == 3
    assert final_identifier is not None
    assert final_identifier.FailedSOPInstanceUIDList == refused


def test_get_without_storage_role_fails_cleanly(archive):
    # No SCP role selection: the Storage contexts are ours as SCU only, so dcmqrscp has no
    # context to send the instances on (PS3.4 C.4.3: the C-GET SCU must take the Storage
    # SCP role). It fails every sub-operation and refuses: A702 (Refused: Out of resources,
    # unable to perform sub-operations), listing every instance as failed.
    ae = scu(S_GET, CT, MR)
    wanted = archive.select(StudyID="P1S2")
    query = identifier("STUDY", StudyInstanceUID=wanted[0].StudyInstanceUID)
    with ae.associate(LOOPBACK, archive.port, ae_title=QR_AET) as assoc:
        responses = list(assoc.send_c_get(query, S_GET))
        assert assoc.is_established  # the association goes on
    final, final_identifier = responses[-1]
    assert final.Status == 0xA702, hex(final.Status)
    check_counts(final, completed=0, failed=3)
    assert sorted(final_identifier.FailedSOPInstanceUIDList) == sorted(
        str(ds.SOPInstanceUID) for ds in wanted
    )
    assert archive.proc.poll() is None


# -- C-MOVE ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "level", "selection"),
    [
        (S_MOVE, "STUDY", {"StudyID": "P2S1"}),
        (P_MOVE, "PATIENT", {"PatientID": "P1"}),
        (S_MOVE, "SERIES", {"StudyID": "P1S1", "Modality": "CT"}),
    ],
    ids=["study-root-study", "patient-root-patient", "study-root-series"],
)
def test_move_to_our_storage_scp(archive, model, level, selection):
    wanted = archive.select(**selection)
    one = wanted[0]
    keys = {
        "PATIENT": {"PatientID": one.PatientID},
        "STUDY": {"StudyInstanceUID": one.StudyInstanceUID},
        "SERIES": {
            "StudyInstanceUID": one.StudyInstanceUID,
            "SeriesInstanceUID": one.SeriesInstanceUID,
        },
    }[level]
    archive.moved.clear()
    with scu(model).associate(LOOPBACK, archive.port, ae_title=QR_AET) as assoc:
        responses = list(assoc.send_c_move(identifier(level, **keys), DEST_AET, model))
    *pending, (final, _) = responses
    assert final.Status == 0x0000, (final, archive.output()[-3000:])
    check_counts(final, completed=len(wanted))
    assert [(s.Status, s.NumberOfRemainingSuboperations) for s, _ in pending] == [
        (0xFF00, n) for n in range(len(wanted) - 1, -1, -1)
    ]
    # Our destination received every instance, each C-STORE naming us as the originator.
    assert sorted(archive.moved) == sorted((str(ds.SOPInstanceUID), SCU_AET) for ds in wanted)


def test_move_to_unknown_destination(archive):
    archive.moved.clear()
    one = archive.instances[0]
    with scu(S_MOVE).associate(LOOPBACK, archive.port, ae_title=QR_AET) as assoc:
        responses = list(
            assoc.send_c_move(
                identifier("STUDY", StudyInstanceUID=one.StudyInstanceUID), "NOWHERE", S_MOVE
            )
        )
    ((final, _),) = responses
    # PS3.4 C.4.2.1.4.1: Refused: Move Destination unknown.
    assert final.Status == 0xA801, hex(final.Status)
    assert archive.moved == []


def test_move_nothing_matches(archive):
    archive.moved.clear()
    with scu(S_MOVE).associate(LOOPBACK, archive.port, ae_title=QR_AET) as assoc:
        responses = list(
            assoc.send_c_move(identifier("STUDY", StudyInstanceUID="1.2.3.999"), DEST_AET, S_MOVE)
        )
    final, _ = responses[-1]
    assert final.Status == 0x0000, hex(final.Status)
    assert final.get("NumberOfCompletedSuboperations", 0) == 0
    assert archive.moved == []


# -- C-STORE into dcmqrscp, then query and retrieve it back ---------------------------------


def test_store_into_dcmqrscp_then_find_and_get(fresh_archive):
    instances = [ds for ds in make_instances() if ds.PatientID == "P2"]
    assert len(instances) == 4
    ae = scu(CT, MR, S_FIND)
    with ae.associate(LOOPBACK, fresh_archive.port, ae_title=QR_AET) as assoc:
        statuses = [assoc.send_c_store(ds).Status for ds in instances]
    assert statuses == [0x0000] * 4, fresh_archive.output()[-3000:]

    found = check_find(
        find(
            fresh_archive,
            S_FIND,
            identifier(
                "IMAGE",
                StudyInstanceUID=instances[0].StudyInstanceUID,
                SeriesInstanceUID="",
                SOPInstanceUID="",
            ),
        ),
        fresh_archive,
    )
    assert {str(i.SOPInstanceUID) for i in found} == {str(ds.SOPInstanceUID) for ds in instances}

    fresh_archive.instances = instances
    responses, received = get(
        fresh_archive, S_GET, identifier("STUDY", StudyInstanceUID=instances[0].StudyInstanceUID)
    )
    assert responses[-1][0].Status == 0x0000
    check_counts(responses[-1][0], completed=4)
    assert sorted(str(ds.SOPInstanceUID) for ds in received) == sorted(
        str(ds.SOPInstanceUID) for ds in instances
    )
    # What dcmqrscp stored is the instance we sent.
    stored = [
        dcmread(p)
        for p in (fresh_archive.log.parent / "storage").iterdir()
        if p.name != "index.dat"
    ]
    assert sorted(str(ds.SOPInstanceUID) for ds in stored) == sorted(
        str(ds.SOPInstanceUID) for ds in instances
    )


def test_concurrent_finds(archive):
    # Two associations at once: dcmqrscp serves each in a forked child; both finish.
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            responses = find(archive, S_FIND, identifier("STUDY", StudyInstanceUID=""))
            results.append(len(check_find(responses, archive)))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=PROCESS_TIMEOUT)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert results == [3, 3]
    assert time.monotonic() - started < PROCESS_TIMEOUT
