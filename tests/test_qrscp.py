"""``dimse qrscp`` end to end, through its console script, against DCMTK's tools and ours.

An archive is loaded at test time with a small tree generated with pydicom (3 patients,
4 studies, 6 series, 10 instances, CT and MR, one RLE Lossless instance when pydicom can
encode it) by DCMTK's storescu, then queried and retrieved with DCMTK's findscu, getscu and
movescu (to DCMTK storescp destinations, one named in a TOML configuration file and one on
the command line) and with our findscu, getscu and movescu. Other qrscp processes check our
storescu, a SIGKILL in the middle of storage followed by a restart, a full disk (a file size
limit), configuration errors and a data set that is not DICOM.

What is stored or retrieved must be byte-identical, after the File Meta Information, to
what was sent; the index (DATA/index.sqlite, read here with a read-only connection or after
qrscp stopped) and the files under DATA/files must agree exactly. A missing script or DCMTK
tool fails these tests, never skips them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

from dimse import _core, sop
from dimse.qr import Index
from dimse.storage import FileStorage
from peers import DcmtkServer, dcmtk_env, dcmtk_tool, free_port, our_ae

DIMSE = str(Path(sys.executable).parent / "dimse")

LOOPBACK = "127.0.0.1"
CT = sop.CTImageStorage
MR = sop.MRImageStorage

#: Seconds any one subprocess may run.
PROCESS_TIMEOUT = 60.0
#: Seconds qrscp has to say it listens, and to stop after SIGTERM.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
#: DCMTK's and our apps' own network timeouts (seconds), below PROCESS_TIMEOUT.
NET = "20"
DCMTK_TIMEOUTS = ("-to", NET, "-ta", NET, "-td", NET)
DIMSE_TIMEOUTS = ("-to", NET, "-ta", NET, "-td", NET, "-tn", NET)

ARCHIVE_AET = "ARCHIVE"
LISTENING = re.compile(r"qrscp listening on ([0-9.]+):(\d+)")

#: The archive's tree: patients (name, ID, birth date, sex) -> studies (date, series) ->
#: series (modality, instance count, RLE compressed).
TREE = [
    (
        ("DOE^JOHN", "P1", "19700101", "M"),
        [
            ("20240101", [("CT", 3, False), ("CT", 1, True)]),
            ("20240215", [("MR", 2, False)]),
        ],
    ),
    (("SMITH^JANE", "P2", "19800202", "F"), [("20231120", [("CT", 2, False), ("MR", 1, False)])]),
    (("DOE^JANE", "P3", "19900303", "F"), [("20240301", [("MR", 1, False)])]),
]


def test_console_script_exists():
    assert Path(DIMSE).is_file(), f"{DIMSE} is missing: the console script is not installed"
    assert os.access(DIMSE, os.X_OK), f"{DIMSE} is not executable"


# -- data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One generated instance and the file it was written to."""

    path: Path
    sop_instance_uid: str
    sop_class_uid: str
    patient_id: str
    study_uid: str
    study_date: str
    series_uid: str
    modality: str
    transfer_syntax: str


def image(sop_class: str, pixel_bytes: int = 128, seed: int = 0) -> Dataset:
    """A small image with uncompressed pixel data (16-bit when ``pixel_bytes`` allows a
    square of it, else 8-bit rows of 256)."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "PX"
    ds.Modality = "CT" if sop_class == CT else "MR"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelRepresentation = 0
    if pixel_bytes == 128:
        ds.Rows = ds.Columns = 8
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
    else:
        ds.Columns = 256
        ds.Rows = pixel_bytes // 256
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
    pattern = bytes((i * 7 + seed) % 256 for i in range(256))
    ds.PixelData = (pattern * (pixel_bytes // 256 + 1))[:pixel_bytes]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_tree(root: Path) -> list[Instance]:
    """The TREE as files in nested folders under ``root`` (patient/study/series)."""
    instances = []
    seed = itertools.count()
    for (name, patient_id, birth, sex), studies in TREE:
        for s, (date, series_list) in enumerate(studies):
            study_uid = generate_uid()
            for n, (modality, count, compressed) in enumerate(series_list):
                series_uid = generate_uid()
                for i in range(count):
                    ds = image(CT if modality == "CT" else MR, seed=next(seed))
                    ds.PatientName = name
                    ds.PatientID = patient_id
                    ds.PatientBirthDate = birth
                    ds.PatientSex = sex
                    ds.StudyInstanceUID = study_uid
                    ds.StudyDate = date
                    ds.StudyTime = "101500"
                    ds.StudyID = f"{patient_id}-{s + 1}"
                    ds.AccessionNumber = f"ACC{patient_id}{s + 1}"
                    ds.SeriesInstanceUID = series_uid
                    ds.SeriesNumber = n + 1
                    ds.Modality = modality
                    ds.InstanceNumber = i + 1
                    if compressed:
                        try:
                            ds.compress(RLELossless)
                        except (RuntimeError, ValueError, ImportError, NotImplementedError):
                            continue  # pydicom cannot encode RLE here: leave this file out
                    path = save(ds, root / patient_id / f"study{s + 1}" / f"{n + 1}-{i + 1}.dcm")
                    instances.append(
                        Instance(
                            path=path,
                            sop_instance_uid=ds.SOPInstanceUID,
                            sop_class_uid=ds.SOPClassUID,
                            patient_id=patient_id,
                            study_uid=study_uid,
                            study_date=date,
                            series_uid=series_uid,
                            modality=modality,
                            transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
                        )
                    )
    return instances


def body(path: Path) -> bytes:
    """A DICOM file's data set: the bytes after its File Meta Information."""
    return path.read_bytes()[_core.read_file_meta(path)["data_offset"] :]


def sop_uid_of(path: Path) -> str:
    return str(_core.read_file_meta(path)["media_storage_sop_instance_uid"])


def received(directory: Path, skip: frozenset[str] | set[str] = frozenset()) -> dict[str, Path]:
    """The DICOM files a retrieve wrote to ``directory`` (any name), by SOP Instance UID;
    ``skip``: names to leave out (files that were there before)."""
    found: dict[str, Path] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name not in skip:
            uid = sop_uid_of(path)
            assert uid not in found, f"{uid} received twice: {found[uid]}, {path}"
            found[uid] = path
    return found


def assert_identical(got: dict[str, Path], expected: list[Instance]) -> None:
    """``got`` holds exactly the ``expected`` instances, each data set byte for byte."""
    assert sorted(got) == sorted(i.sop_instance_uid for i in expected)
    for instance in expected:
        path = got[instance.sop_instance_uid]
        assert body(path) == body(instance.path), f"{path} differs from {instance.path}"
        meta = _core.read_file_meta(path)
        assert meta["transfer_syntax_uid"] == instance.transfer_syntax, path


def index_rows(data_dir: Path) -> dict[str, Path]:
    """The index's rows (SOP Instance UID -> file), read with a read-only connection."""
    uri = (data_dir / "index.sqlite").as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = conn.execute("SELECT sop_instance_uid, path FROM instances").fetchall()
    by_uid = {uid: data_dir / path for uid, path in rows}
    assert len(by_uid) == len(rows), "two rows for one SOP Instance UID"
    return by_uid


def stored_files(data_dir: Path) -> dict[str, Path]:
    """The ``*.dcm`` files under DATA/files, by the SOP Instance UID of their meta."""
    files: dict[str, Path] = {}
    for path in sorted((data_dir / "files").rglob("*.dcm")):
        uid = sop_uid_of(path)
        assert uid not in files, f"two files for {uid}: {files[uid]}, {path}"
        files[uid] = path
    return files


def assert_consistent(data_dir: Path) -> dict[str, Path]:
    """No temporary file is left, every file has its row and every row its file; returns
    the files by SOP Instance UID."""
    parts = sorted(str(p) for p in data_dir.rglob("*.part"))
    assert parts == [], f"temporary files left behind: {parts}"
    parts = sorted(str(p) for p in data_dir.rglob(".*.part*"))
    assert parts == [], f"temporary files left behind: {parts}"
    files = stored_files(data_dir)
    rows = index_rows(data_dir)
    assert {u: str(p) for u, p in rows.items()} == {u: str(p) for u, p in files.items()}, (
        "the index and the files disagree"
    )
    return files


# -- processes -----------------------------------------------------------------------------


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    """Runs a command to completion (bounded); stdout and stderr are kept apart."""
    return subprocess.run(
        [str(c) for c in command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dcmtk_env(),
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


def dcmtk(tool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """A DCMTK tool (by absolute path), stderr merged into stdout."""
    return subprocess.run(
        [dcmtk_tool(tool), *(str(a) for a in args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dcmtk_env(),
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


def dimse_app(app: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(DIMSE, app, *DIMSE_TIMEOUTS, *args)


_LOGS = itertools.count(1)


@dataclass
class QrScp:
    """A running ``dimse qrscp`` process; its stdout and stderr go to files."""

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    stderr_log: Path

    def stderr(self) -> str:
        return self.stderr_log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Sends ``sig`` (SIGTERM: a graceful stop) and waits; kills it if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        return self.proc.returncode


def start_qrscp(
    logs: Path,
    *args: str | Path,
    data_dir: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> QrScp:
    """Starts ``dimse qrscp --port 0 --bind 127.0.0.1 -v [--data-dir DIR] ARGS`` and waits
    (bounded) for its "listening" line on stderr, which gives the port the system picked.
    ``data_dir`` None: the data folder comes from a --config in ARGS (``logs/../data``)."""
    assert Path(DIMSE).is_file(), f"{DIMSE} is missing"
    n = next(_LOGS)
    out_log, err_log = logs / f"qrscp{n}.out", logs / f"qrscp{n}.err"
    command = [DIMSE, "qrscp", "--port", "0", "--bind", LOOPBACK, "-v"]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    command += [str(a) for a in args]
    with out_log.open("wb") as out, err_log.open("wb") as err:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=preexec_fn,
        )
    server = QrScp(proc, 0, data_dir or logs / "data", err_log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            match = LISTENING.search(server.stderr())
            if match:
                assert match[1] == LOOPBACK, server.stderr()
                server.port = int(match[2])
                return server
            if proc.poll() is not None:
                raise AssertionError(
                    f"qrscp exited with {proc.returncode} before listening:\n{server.stderr()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"qrscp did not say it listens within {START_TIMEOUT} s:\n{server.stderr()}"
                )
            time.sleep(0.02)
    except BaseException:
        server.stop(signal.SIGKILL)
        raise


@pytest.fixture
def qrscp(tmp_path: Path) -> Iterator[Callable[..., QrScp]]:
    """Starts qrscp processes (``start_qrscp`` arguments); all are stopped at teardown."""
    servers: list[QrScp] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(*args: str | Path, **kwargs) -> QrScp:
        server = start_qrscp(logs, *args, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- the archive ---------------------------------------------------------------------------


@dataclass
class Archive:
    """A qrscp loaded by DCMTK's storescu, with its C-MOVE destinations."""

    server: QrScp
    instances: list[Instance]
    load: subprocess.CompletedProcess[str]
    #: DCMTK storescp destinations by AE title: (server, output folder).
    destinations: dict[str, tuple[DcmtkServer, Path]] = field(default_factory=dict)
    #: Where our movescu's storage SCP listens (qrscp knows it as OURMOVE).
    our_move_port: int = 0

    @property
    def port(self) -> int:
        return self.server.port

    def select(self, **keys: str) -> list[Instance]:
        return [i for i in self.instances if all(getattr(i, k) == v for k, v in keys.items())]

    def studies(self, patient_id: str) -> list[str]:
        return list(dict.fromkeys(i.study_uid for i in self.select(patient_id=patient_id)))

    def series(self, study_uid: str) -> list[str]:
        return list(dict.fromkeys(i.series_uid for i in self.select(study_uid=study_uid)))


def start_storescp(base: Path, ae_title: str) -> tuple[DcmtkServer, Path]:
    """DCMTK's storescp writing what it receives bit for bit (+B). It accepts RLE Lossless
    (first) and the uncompressed transfer syntaxes except Deflated (+xr): with +xa it would
    prefer Deflated, and a mover proposing it (a legitimate choice) would then convert."""
    out = base / ae_title.lower()
    out.mkdir()
    args = ["-aet", ae_title, "+B", "+xr", "-ta", NET, "-td", NET, "-od", str(out)]
    return DcmtkServer("storescp", args, base / f"{ae_title.lower()}.log"), out


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    base = tmp_path_factory.mktemp("archive")
    instances = make_tree(base / "source")
    stoppers: list[Callable[[], object]] = []
    try:
        store1 = start_storescp(base, "STORESCP")
        stoppers.append(store1[0].stop)
        store2 = start_storescp(base, "STORE2")
        stoppers.append(store2[0].stop)
        our_move_port = free_port()
        config = base / "qrscp.toml"
        # The data folder is relative to the configuration file: base/data.
        config.write_text(
            f"""\
ae_title = "{ARCHIVE_AET}"
data_dir = "data"
max_associations = 8
layout = "study"

[destinations]
STORESCP = {{ host = "{LOOPBACK}", port = {store1[0].port} }}
"""
        )
        server = start_qrscp(
            base,
            "--config",
            config,
            "--move-destination",
            f"STORE2={LOOPBACK}:{store2[0].port}",
            "--move-destination",
            f"OURMOVE={LOOPBACK}:{our_move_port}",
        )
        stoppers.append(server.stop)
        assert server.data_dir == base / "data"
        load = dcmtk(
            "storescu",
            "-v",
            "-R",  # only the contexts the files need
            "-xr",  # RLE Lossless too, in its own context
            *DCMTK_TIMEOUTS,
            "-aec",
            ARCHIVE_AET,
            LOOPBACK,
            server.port,
            *[i.path for i in instances],
        )
        assert load.returncode == 0, f"loading the archive failed:\n{load.stdout}"
        yield Archive(
            server,
            instances,
            load,
            {"STORESCP": store1, "STORE2": store2},
            our_move_port,
        )
    finally:
        for stop in reversed(stoppers):
            stop()


# -- 1. DCMTK storescu -----------------------------------------------------------------------


def test_dcmtk_storescu_stores_and_indexes_every_file(archive):
    successes = archive.load.stdout.count("Received Store Response (Success)")
    assert successes == len(archive.instances), archive.load.stdout
    data = archive.server.data_dir
    assert (data / "index.sqlite").is_file()
    files = assert_consistent(data)
    assert_identical(files, archive.instances)
    for instance in archive.instances:
        # The study layout: files/<Study UID>/<Series UID>/<SOP Instance UID>.dcm
        expected = f"{instance.study_uid}/{instance.series_uid}/{instance.sop_instance_uid}.dcm"
        assert files[instance.sop_instance_uid] == data / "files" / expected
        meta = dcmread(files[instance.sop_instance_uid], stop_before_pixels=True).file_meta
        assert meta.SourceApplicationEntityTitle == "STORESCU"


# -- 2. DCMTK findscu ------------------------------------------------------------------------

_FINDS = itertools.count(1)


def dcmtk_find(archive: Archive, tmp_path: Path, model: str, *keys: str) -> list[Dataset]:
    """DCMTK findscu (-P or -S) with -k keys; its responses, extracted to files (-X)."""
    out = tmp_path / f"find{next(_FINDS)}"
    out.mkdir()
    args = [f"-{model}", "-v", "-X", "-od", str(out), *DCMTK_TIMEOUTS, "-aec", ARCHIVE_AET]
    for key in keys:
        args += ["-k", key]
    proc = dcmtk("findscu", *args, LOOPBACK, archive.port)
    assert proc.returncode == 0, proc.stdout
    assert "Received Final Find Response (Success)" in proc.stdout, proc.stdout
    responses = [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]
    for ds in responses:
        assert ds.RetrieveAETitle == ARCHIVE_AET
    return responses


def values(responses: list[Dataset], keyword: str) -> list[str]:
    return sorted(str(ds.get(keyword, "")) for ds in responses)


def test_dcmtk_findscu_patient_root(archive, tmp_path):
    # PATIENT level, wildcard on the name; the computed count comes back.
    patients = dcmtk_find(
        archive,
        tmp_path,
        "P",
        "QueryRetrieveLevel=PATIENT",
        "PatientName=DOE*",
        "PatientID",
        "PatientBirthDate",
        "NumberOfPatientRelatedStudies",
    )
    assert values(patients, "PatientID") == ["P1", "P3"]
    by_id = {ds.PatientID: ds for ds in patients}
    assert str(by_id["P1"].PatientName) == "DOE^JOHN"
    assert by_id["P3"].PatientBirthDate == "19900303"
    assert int(by_id["P1"].NumberOfPatientRelatedStudies) == 2
    assert int(by_id["P3"].NumberOfPatientRelatedStudies) == 1
    assert all(ds.QueryRetrieveLevel == "PATIENT" for ds in patients)

    # STUDY level under one patient.
    studies = dcmtk_find(
        archive,
        tmp_path,
        "P",
        "QueryRetrieveLevel=STUDY",
        "PatientID=P1",
        "StudyInstanceUID",
        "StudyDate",
        "ModalitiesInStudy",
    )
    assert values(studies, "StudyInstanceUID") == sorted(archive.studies("P1"))
    first = archive.studies("P1")[0]
    by_uid = {ds.StudyInstanceUID: ds for ds in studies}
    assert by_uid[first].StudyDate == "20240101"
    assert by_uid[first].ModalitiesInStudy == "CT"

    # SERIES level under one study of that patient.
    mr_study = archive.studies("P1")[1]
    series = dcmtk_find(
        archive,
        tmp_path,
        "P",
        "QueryRetrieveLevel=SERIES",
        "PatientID=P1",
        f"StudyInstanceUID={mr_study}",
        "SeriesInstanceUID",
        "Modality",
    )
    assert values(series, "SeriesInstanceUID") == archive.series(mr_study)
    assert values(series, "Modality") == ["MR"]
    assert values(series, "PatientID") == ["P1"]

    # IMAGE level down one series of another patient.
    study = archive.studies("P2")[0]
    mr_series = archive.series(study)[1]
    images = dcmtk_find(
        archive,
        tmp_path,
        "P",
        "QueryRetrieveLevel=IMAGE",
        "PatientID=P2",
        f"StudyInstanceUID={study}",
        f"SeriesInstanceUID={mr_series}",
        "SOPInstanceUID",
        "SOPClassUID",
    )
    expected = archive.select(series_uid=mr_series)
    assert values(images, "SOPInstanceUID") == sorted(i.sop_instance_uid for i in expected)
    assert values(images, "SOPClassUID") == [MR]


def test_dcmtk_findscu_study_root(archive, tmp_path):
    # STUDY level, a date range: the study of 2023 is left out.
    studies = dcmtk_find(
        archive,
        tmp_path,
        "S",
        "QueryRetrieveLevel=STUDY",
        "StudyDate=20240101-20240301",
        "StudyInstanceUID",
        "PatientID",
        "NumberOfStudyRelatedInstances",
    )
    in_range = {i.study_uid for i in archive.instances if "20240101" <= i.study_date}
    assert values(studies, "StudyInstanceUID") == sorted(in_range)
    for ds in studies:
        count = len(archive.select(study_uid=ds.StudyInstanceUID))
        assert int(ds.NumberOfStudyRelatedInstances) == count

    # A wildcard on the patient's name at the STUDY level.
    smith = dcmtk_find(
        archive, tmp_path, "S", "QueryRetrieveLevel=STUDY", "PatientName=SMI*", "StudyInstanceUID"
    )
    assert values(smith, "StudyInstanceUID") == archive.studies("P2")

    # SERIES level of one study.
    study = archive.studies("P1")[0]
    series = dcmtk_find(
        archive,
        tmp_path,
        "S",
        "QueryRetrieveLevel=SERIES",
        f"StudyInstanceUID={study}",
        "SeriesInstanceUID",
        "Modality",
        "NumberOfSeriesRelatedInstances",
    )
    assert values(series, "SeriesInstanceUID") == sorted(archive.series(study))
    for ds in series:
        assert ds.Modality == "CT"
        assert int(ds.NumberOfSeriesRelatedInstances) == len(
            archive.select(series_uid=ds.SeriesInstanceUID)
        )

    # IMAGE level with a list of UIDs (two of the three of a series, and an unknown one).
    first_series = archive.series(study)[0]
    chosen = [i.sop_instance_uid for i in archive.select(series_uid=first_series)][:2]
    images = dcmtk_find(
        archive,
        tmp_path,
        "S",
        "QueryRetrieveLevel=IMAGE",
        f"StudyInstanceUID={study}",
        f"SeriesInstanceUID={first_series}",
        "SOPInstanceUID=" + "\\".join([*chosen, "1.2.3.999999"]),
        "InstanceNumber",
    )
    assert values(images, "SOPInstanceUID") == sorted(chosen)
    assert values(images, "InstanceNumber") == ["1", "2"]


A900 = "Error: DataSetDoesNotMatchSOPClass"
C000 = "Failed: UnableToProcess"


@pytest.mark.parametrize(
    ("model", "keys", "status"),
    [
        ("S", ["QueryRetrieveLevel=PATIENT", "PatientID"], A900),
        ("S", ["PatientID=P1", "StudyInstanceUID"], A900),
        ("P", ["QueryRetrieveLevel=WARD", "PatientID"], A900),
        ("S", ["QueryRetrieveLevel=STUDY", "StudyDate=2024X", "StudyInstanceUID"], C000),
    ],
    ids=["patient-level-in-study-root", "no-level", "unknown-level", "malformed-date"],
)
def test_dcmtk_findscu_bad_identifier_fails(archive, tmp_path, model, keys, status):
    out = tmp_path / "find"
    out.mkdir()
    args = [f"-{model}", "-v", "-X", "-od", str(out), *DCMTK_TIMEOUTS, "-aec", ARCHIVE_AET]
    for key in keys:
        args += ["-k", key]
    proc = dcmtk("findscu", *args, LOOPBACK, archive.port)
    assert f"Received Final Find Response ({status})" in proc.stdout, proc.stdout
    assert list(out.iterdir()) == []
    assert archive.server.proc.poll() is None


# -- 3. DCMTK getscu -------------------------------------------------------------------------


def dcmtk_get(archive: Archive, out: Path, model: str, *keys: str, extra=()) -> dict[str, Path]:
    out.mkdir()
    args = [f"-{model}", "-v", "+B", *extra, "-od", str(out), *DCMTK_TIMEOUTS]
    for key in keys:
        args += ["-k", key]
    proc = dcmtk("getscu", *args, "-aec", ARCHIVE_AET, LOOPBACK, archive.port)
    assert proc.returncode == 0, proc.stdout
    assert "Received C-GET Response (Success)" in proc.stdout, proc.stdout
    assert "Number of Failed Suboperations    : 0" in proc.stdout, proc.stdout
    return received(out)


def test_dcmtk_getscu_retrieves_identical_files(archive, tmp_path):
    # A SERIES (Study Root).
    study = archive.studies("P1")[0]
    series = archive.series(study)[0]
    got = dcmtk_get(
        archive,
        tmp_path / "series",
        "S",
        "QueryRetrieveLevel=SERIES",
        f"StudyInstanceUID={study}",
        f"SeriesInstanceUID={series}",
    )
    assert_identical(got, archive.select(series_uid=series))

    # A PATIENT (Patient Root): CT and MR.
    got = dcmtk_get(
        archive, tmp_path / "patient", "P", "QueryRetrieveLevel=PATIENT", "PatientID=P2"
    )
    assert_identical(got, archive.select(patient_id="P2"))

    # The RLE Lossless instance, which getscu accepts compressed with +xr.
    for instance in archive.select(transfer_syntax=RLELossless):
        got = dcmtk_get(
            archive,
            tmp_path / "rle",
            "S",
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={instance.study_uid}",
            f"SeriesInstanceUID={instance.series_uid}",
            f"SOPInstanceUID={instance.sop_instance_uid}",
            extra=["+xr"],
        )
        assert_identical(got, [instance])

    # No Study Instance UID to retrieve: refused, nothing sent.
    out = tmp_path / "refused"
    out.mkdir()
    proc = dcmtk(
        "getscu",
        "-S",
        "-v",
        "-od",
        out,
        *DCMTK_TIMEOUTS,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "StudyInstanceUID",
        "-aec",
        ARCHIVE_AET,
        LOOPBACK,
        archive.port,
    )
    assert f"Received C-GET Response ({A900})" in proc.stdout, proc.stdout
    assert list(out.iterdir()) == []


# -- 4. DCMTK movescu ------------------------------------------------------------------------


def dcmtk_move(archive: Archive, model: str, destination: str, *keys: str):
    args = [f"-{model}", "-v", *DCMTK_TIMEOUTS, "-aet", "MOVESCU", "-aem", destination]
    for key in keys:
        args += ["-k", key]
    return dcmtk("movescu", *args, "-aec", ARCHIVE_AET, LOOPBACK, archive.port)


def move_to_storescp(
    archive: Archive, model: str, destination: str, *keys: str
) -> dict[str, Path]:
    """A DCMTK C-MOVE to one of the DCMTK storescp destinations; what it received."""
    storescp, out = archive.destinations[destination]
    before = {p.name for p in out.iterdir()}
    proc = dcmtk_move(archive, model, destination, *keys)
    assert proc.returncode == 0, proc.stdout
    assert "Received Final Move Response (Success)" in proc.stdout, proc.stdout
    assert storescp.is_running(), storescp.output()
    return received(out, skip=before)


def test_dcmtk_movescu_to_destination_of_the_config_file(archive):
    study = archive.studies("P1")[1]  # the MR study
    got = move_to_storescp(
        archive, "S", "STORESCP", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}"
    )
    assert_identical(got, archive.select(study_uid=study))


def test_dcmtk_movescu_to_destination_of_the_command_line(archive):
    got = move_to_storescp(archive, "P", "STORE2", "QueryRetrieveLevel=PATIENT", "PatientID=P2")
    assert_identical(got, archive.select(patient_id="P2"))


def test_dcmtk_movescu_unknown_destination_is_a801(archive):
    study = archive.studies("P3")[0]
    proc = dcmtk_move(
        archive, "S", "NOWHERE", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}"
    )
    assert proc.returncode != 0, proc.stdout
    assert "Received Final Move Response (Refused: MoveDestinationUnknown)" in proc.stdout, (
        proc.stdout
    )
    assert archive.server.proc.poll() is None


def test_dcmtk_movescu_study_mixing_compressed_and_uncompressed_of_one_sop_class(archive):
    """The first study holds CT instances in Explicit VR Little Endian and one in RLE
    Lossless: the mover must propose contexts that carry both (the destination accepts one
    transfer syntax per context), so that every instance arrives as it is stored."""
    study = archive.studies("P1")[0]
    expected = archive.select(study_uid=study)
    assert {i.sop_class_uid for i in expected} == {CT}
    got = move_to_storescp(
        archive, "S", "STORESCP", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}"
    )
    assert_identical(got, expected)


# -- 5. our apps ------------------------------------------------------------------------------


def test_dimse_storescu_recursive_into_a_flat_layout(qrscp, tmp_path):
    instances = make_tree(tmp_path / "source")
    server = qrscp("--layout", "flat", "--fsync", "-aet", "FLATQR", data_dir=tmp_path / "data")
    proc = dimse_app(
        "storescu", "-r", "-aec", "FLATQR", LOOPBACK, server.port, tmp_path / "source"
    )
    assert proc.returncode == 0, proc.stderr
    files = assert_consistent(server.data_dir)
    assert_identical(files, instances)
    for instance in instances:
        path = files[instance.sop_instance_uid]
        assert path == server.data_dir / "files" / f"{instance.sop_instance_uid}.dcm"
    assert server.stop() == 0, server.stderr()
    assert "qrscp shutting down" in server.stderr()


def dimse_find(archive: Archive, *args: str) -> list[Dataset]:
    proc = dimse_app("findscu", "--json", "-aec", ARCHIVE_AET, *args, LOOPBACK, archive.port)
    assert proc.returncode == 0, proc.stderr
    return [Dataset.from_json(line) for line in proc.stdout.splitlines() if line.strip()]


def test_dimse_findscu_json(archive):
    studies = dimse_find(
        archive,
        "-P",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "PatientID=P1",
        "-k",
        "StudyInstanceUID",
        "-k",
        "StudyDate",
    )
    assert values(studies, "StudyInstanceUID") == sorted(archive.studies("P1"))
    assert values(studies, "StudyDate") == ["20240101", "20240215"]
    assert all(ds.RetrieveAETitle == ARCHIVE_AET for ds in studies)

    series = dimse_find(
        archive,
        "-S",
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={archive.studies('P2')[0]}",
        "-k",
        "Modality=MR",
        "-k",
        "SeriesInstanceUID",
    )
    mr = {i.series_uid for i in archive.select(patient_id="P2", modality="MR")}
    assert values(series, "SeriesInstanceUID") == sorted(mr)

    mr_images = [i for i in archive.instances if i.sop_class_uid == MR]
    chosen = [mr_images[0].sop_instance_uid, mr_images[-1].sop_instance_uid]
    images = dimse_find(
        archive,
        "-S",
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        "SOPInstanceUID=" + "\\".join(chosen),
        "-k",
        "SOPClassUID",
    )
    assert values(images, "SOPInstanceUID") == sorted(chosen)

    # A PATIENT level in the Study Root model: a failure status, exit code 1.
    proc = dimse_app(
        "findscu",
        "--json",
        "-S",
        "-aec",
        ARCHIVE_AET,
        "-k",
        "QueryRetrieveLevel=PATIENT",
        "-k",
        "PatientID",
        LOOPBACK,
        archive.port,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "0xA900" in proc.stderr, proc.stderr


def test_dimse_getscu(archive, tmp_path):
    study = archive.studies("P1")[1]
    out = tmp_path / "study"
    proc = dimse_app(
        "getscu",
        "-S",
        "-od",
        out,
        "-aec",
        ARCHIVE_AET,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        LOOPBACK,
        archive.port,
    )
    assert proc.returncode == 0, proc.stderr
    assert_identical(received(out), archive.select(study_uid=study))

    out = tmp_path / "patient"
    proc = dimse_app(
        "getscu",
        "-P",
        "-od",
        out,
        "-aec",
        ARCHIVE_AET,
        "-k",
        "QueryRetrieveLevel=PATIENT",
        "-k",
        "PatientID=P3",
        LOOPBACK,
        archive.port,
    )
    assert proc.returncode == 0, proc.stderr
    assert_identical(received(out), archive.select(patient_id="P3"))


def test_dimse_movescu_with_its_storage_scp(archive, tmp_path):
    study = archive.studies("P2")[0]
    out = tmp_path / "moved"
    proc = dimse_app(
        "movescu",
        "-S",
        "-aet",
        "OURMOVE",
        "--store-port",
        str(archive.our_move_port),
        "--store-host",
        LOOPBACK,
        "-od",
        out,
        "-aec",
        ARCHIVE_AET,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        LOOPBACK,
        archive.port,
    )
    assert proc.returncode == 0, proc.stderr
    assert_identical(received(out), archive.select(study_uid=study))


# -- 6. restart safety -----------------------------------------------------------------------


@dataclass
class Sent:
    """What the senders of the restart test saw, filled in from their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: SOP Instance UID -> source file, for each C-STORE answered 0x0000.
    acked: dict[str, Path] = field(default_factory=dict)
    #: (file name, status) for each C-STORE answered with another status.
    refused: list[tuple[str, int]] = field(default_factory=list)
    #: How each sender ended other than by sending all its files.
    errors: list[str] = field(default_factory=list)


def store_all(port: int, called: str, paths: list[Path], sent: Sent) -> None:
    """Sends ``paths`` one by one on one association, recording every answer. Runs in a
    thread: every exception is kept (the association dies with qrscp)."""
    try:
        ae = our_ae("RESTARTSCU")
        ae.add_requested_context(CT, [ExplicitVRLittleEndian])
        assoc = ae.associate(LOOPBACK, port, ae_title=called)
        if not assoc.is_established:
            with sent.lock:
                sent.errors.append(f"no association: {assoc.error}")
            return
        try:
            for path in paths:
                status = assoc.send_c_store(path).get("Status")
                with sent.lock:
                    if status == 0x0000:
                        sent.acked[sop_uid_of(path)] = path
                    elif status is not None:
                        sent.refused.append((path.name, int(status)))
                    else:
                        sent.errors.append(f"{path.name}: no response")
                        return
        finally:
            with contextlib.suppress(Exception):
                assoc.abort()
    except Exception as e:
        with sent.lock:
            sent.errors.append(repr(e))


def test_sigkill_mid_storage_then_restart_is_consistent(qrscp, tmp_path):
    rng = random.Random(20241125)
    total = 200
    sources: dict[str, Path] = {}
    for n in range(total):
        ds = image(CT, pixel_bytes=16 * 1024, seed=n)
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.1.{n % 4 + 1}"
        sources[ds.SOPInstanceUID] = save(ds, tmp_path / "source" / f"{n:03}.dcm")
    paths = list(sources.values())
    data = tmp_path / "data"
    server = qrscp(data_dir=data)

    sent = Sent()
    threads = [
        threading.Thread(
            target=store_all, args=(server.port, "QRSCP", paths[k::2], sent), daemon=True
        )
        for k in range(2)
    ]
    for t in threads:
        t.start()
    kill_after = rng.randint(20, total - 60)
    deadline = time.monotonic() + 30
    while (
        len(sent.acked) < kill_after
        and time.monotonic() < deadline
        and any(t.is_alive() for t in threads)
    ):
        time.sleep(0.0005)
    try:
        assert len(sent.acked) >= kill_after, f"only {len(sent.acked)} stored: {sent.errors}"
        time.sleep(rng.uniform(0, 0.005))
    finally:
        server.stop(signal.SIGKILL)
        for t in threads:
            t.join(timeout=PROCESS_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a sender still runs after the kill"
    with sent.lock:
        acknowledged = dict(sent.acked)
        assert sent.refused == [], f"refused before the kill: {sent.refused}"
        assert sent.errors, "the senders saw nothing of the kill"
        assert not any(e.startswith("no association") for e in sent.errors), sent.errors
    assert len(acknowledged) < total, "qrscp was killed after the run, not in the middle"

    restarted = qrscp(data_dir=data)
    startup = restarted.stderr()
    assert "start-up check:" in startup, startup
    assert restarted.stop() == 0, restarted.stderr()

    files = assert_consistent(data)
    missing = sorted(set(acknowledged) - set(files))
    assert missing == [], f"acknowledged before the kill, gone after the restart: {missing}"
    for uid, path in files.items():
        assert uid in sources, path
        assert body(path) == body(sources[uid]), f"{path} is not intact"
    with Index(data) as index:
        assert index.count() == len(files)


# -- 7. disk full ---------------------------------------------------------------------------

FILE_SIZE_LIMIT = 2 * 1024 * 1024


def limit_file_size() -> None:
    """In the child before exec: no file may grow past FILE_SIZE_LIMIT (writes then fail
    with EFBIG: Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_disk_full_refuses_with_a700_and_stays_consistent(qrscp, tmp_path):
    plan = ["small", "large", "small", "small", "large", "small", "small"]
    sources: list[tuple[str, str, Path]] = []
    for n, size in enumerate(plan):
        ds = image(CT, pixel_bytes=10 * 1024 if size == "small" else 4 * 1024 * 1024, seed=n)
        sources.append((size, ds.SOPInstanceUID, save(ds, tmp_path / "source" / f"{n}.dcm")))
    data = tmp_path / "data"
    server = qrscp(data_dir=data, preexec_fn=limit_file_size)

    ae = our_ae("FULLSCU")
    ae.add_requested_context(CT, [ExplicitVRLittleEndian])
    statuses = {}
    with ae.associate(LOOPBACK, server.port, ae_title="QRSCP") as assoc:
        assert assoc.is_established
        for size, uid, path in sources:
            statuses[uid] = (size, int(assoc.send_c_store(path).Status))
    assert server.proc.poll() is None, server.stderr()
    wrong = {uid: s for uid, s in statuses.items() if s[1] != (0 if s[0] == "small" else 0xA700)}
    assert wrong == {}, f"small files want 0x0000, large ones 0xA700: {wrong}"

    assert server.stop() == 0, server.stderr()
    files = assert_consistent(data)
    smalls = {uid: path for size, uid, path in sources if size == "small"}
    assert sorted(files) == sorted(smalls)
    for uid, path in smalls.items():
        assert body(files[uid]) == body(path)


# -- 8. configuration errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "args", "named"),
    [
        ('ae_title = "QR"\ncolour = "blue"\n', [], "colour"),
        ('[destinations]\nSTORESCP = { host = "127.0.0.1" }\n', [], "STORESCP"),
        ('[destinations]\nSTORESCP = { host = "127.0.0.1", port = 70000 }\n', [], "STORESCP"),
        ('[destinations]\nSTORESCP = "127.0.0.1:104"\n', [], "STORESCP"),
        ('destinations = ["STORESCP"]\n', [], "destinations"),
        ('ae_title = "QRSCP\n', [], "TOML"),
        ("port = [1, 2\n", [], "TOML"),
        ('layout = "tree"\n', [], "layout"),
        ('fsync = "yes"\n', [], "fsync"),
        ("max_associations = 0\n", [], "max_associations"),
        ('ae_title = "A\\\\B"\n', [], "ae_title"),
        (None, [], "cannot read"),
        ("", ["--move-destination", "STORESCP"], "STORESCP"),
        ("", ["--move-destination", "STORESCP=127.0.0.1:0"], "STORESCP"),
    ],
    ids=[
        "unknown-key",
        "destination-without-port",
        "destination-port-out-of-range",
        "destination-not-a-table",
        "destinations-not-a-table",
        "unterminated-string",
        "unterminated-array",
        "bad-layout",
        "fsync-not-a-boolean",
        "max-associations-zero",
        "ae-title-with-backslash",
        "missing-file",
        "move-destination-without-address",
        "move-destination-port-zero",
    ],
)
def test_configuration_errors_exit_2_with_one_line(tmp_path, config, args, named):
    path = tmp_path / "qrscp.toml"
    if config is not None:
        path.write_text(config)
    data = tmp_path / "data"
    proc = run(
        DIMSE,
        "qrscp",
        "--config",
        path,
        "--port",
        "0",
        "--bind",
        LOOPBACK,
        "--data-dir",
        data,
        *args,
    )
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dimse qrscp: "), lines[0]
    assert named in lines[0], lines[0]
    assert "listening" not in proc.stderr
    assert proc.stdout == ""


def test_command_line_wins_over_the_configuration_file(qrscp, tmp_path):
    """-aet given on the command line wins even when it is the default title."""
    config = tmp_path / "qrscp.toml"
    config.write_text('ae_title = "FROMCONFIG"\nlayout = "flat"\n')
    server = qrscp("--config", config, "-aet", "QRSCP", data_dir=tmp_path / "data")
    out = tmp_path / "find"
    out.mkdir()
    ds = image(CT)
    save(ds, tmp_path / "one.dcm")
    stored = dimse_app("storescu", "-aec", "QRSCP", LOOPBACK, server.port, tmp_path / "one.dcm")
    assert stored.returncode == 0, stored.stderr
    # layout comes from the configuration file (not given on the command line) ...
    assert (server.data_dir / "files" / f"{ds.SOPInstanceUID}.dcm").is_file()
    # ... the AE title from the command line.
    proc = dimse_app(
        "findscu",
        "--json",
        "-aec",
        "QRSCP",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={ds.StudyInstanceUID}",
        LOOPBACK,
        server.port,
    )
    assert proc.returncode == 0, proc.stderr
    (match,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert match["00080054"]["Value"] == ["QRSCP"], match


# -- 9. a data set that is not DICOM -------------------------------------------------------------


def test_garbage_data_set_is_refused_and_leaves_nothing(qrscp, tmp_path):
    garbage_uid = generate_uid()
    garbage = FileStorage(tmp_path / "garbage").write(
        CT, garbage_uid, ExplicitVRLittleEndian, b"this is not a DICOM data set at all!" * 8
    )
    good = image(CT)
    good_path = save(good, tmp_path / "good.dcm")
    data = tmp_path / "data"
    server = qrscp(data_dir=data)
    ae = our_ae("GARBAGESCU")
    ae.add_requested_context(CT, [ExplicitVRLittleEndian])
    with ae.associate(LOOPBACK, server.port, ae_title="QRSCP") as assoc:
        assert assoc.is_established
        bad_status = int(assoc.send_c_store(garbage).Status)
        good_status = int(assoc.send_c_store(good_path).Status)
    assert _core.status_category(bad_status, "C-STORE") == "Failure", hex(bad_status)
    assert good_status == 0x0000
    assert server.proc.poll() is None, server.stderr()
    assert server.stop(signal.SIGINT) == 0, server.stderr()  # Ctrl-C stops it too
    assert "qrscp shutting down" in server.stderr()
    files = assert_consistent(data)
    assert sorted(files) == [good.SOPInstanceUID]
    assert body(files[good.SOPInstanceUID]) == body(good_path)
