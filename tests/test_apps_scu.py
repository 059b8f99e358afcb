"""The ``dimse`` console script's SCU apps, run as a user runs them (a subprocess), against
our own SCPs started here and against DCMTK's storescp and dcmqrscp on loopback.

Every subprocess is bounded (``TIMEOUT``). DCMTK's tools come from /usr/bin through
``peers``: a missing tool fails these tests, never skips them; so does a missing
``dimse`` console script (``test_console_script_is_installed``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

import dimse
from dimse import AE, _core, evt, sop
from dimse.apps import build_parser
from peers import (
    LOOPBACK,
    PEER_TIMEOUT,
    PROCESS_TIMEOUT,
    DcmtkServer,
    dcmtk_env,
    dcmtk_tool,
    free_port,
    run_dcmtk,
    wait_for_port,
)

#: Seconds one app run may take.
TIMEOUT = 60

DIMSE = shutil.which("dimse") or str(Path(sys.executable).parent / "dimse")

#: Timeouts passed to every app run, so that nothing waits for long.
FAST = ["-to", "10", "-ta", "10", "-td", "10", "-tn", "10"]

CT = sop.CTImageStorage
MR = sop.MRImageStorage
QR_AET = "QRSCP"
S_FIND = sop.StudyRootQueryRetrieveInformationModelFind
P_FIND = sop.PatientRootQueryRetrieveInformationModelFind


# -- running the apps ------------------------------------------------------------------------


def dimse_command() -> list[str]:
    """The installed console script; its absence fails the test."""
    assert Path(DIMSE).is_file(), f"the dimse console script is missing ({DIMSE}): reinstall"
    return [DIMSE]


def run_app(*args: str | int | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*dimse_command(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def check(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert proc.returncode == code, output(proc)
    assert "Traceback" not in proc.stderr, output(proc)


def error_line(proc: subprocess.CompletedProcess[str], app: str) -> str:
    """The one line a failing app prints last: ``dimse <app>: <reason>``."""
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"dimse {app}: "), output(proc)
    return last


# -- data ------------------------------------------------------------------------------------


def make_instance(sop_class: str = CT, ts: str = ExplicitVRLittleEndian, **keys: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = keys.pop("PatientName", "DOE^JOHN")
    ds.PatientID = keys.pop("PatientID", "P1")
    ds.StudyInstanceUID = keys.pop("StudyInstanceUID", generate_uid())
    ds.SeriesInstanceUID = keys.pop("SeriesInstanceUID", generate_uid())
    ds.Modality = "CT" if sop_class == CT else "MR"
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    if ts == RLELossless:
        # Encapsulated pixel data (not a valid RLE stream: nobody decodes it here).
        ds.PixelData = encapsulate([bytes(range(64))])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.PixelData = bytes(range(16))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def dataset_bytes(path: Path) -> bytes:
    """A DICOM file's data set as encoded (the bytes after its File Meta Information)."""
    offset = _core.read_file_meta(path)["data_offset"]
    return path.read_bytes()[offset:]


def by_instance_uid(folder: Path) -> dict[str, Path]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            with contextlib.suppress(ValueError):
                found[_core.read_file_meta(path)["media_storage_sop_instance_uid"]] = path
    return found


# -- our SCPs --------------------------------------------------------------------------------


@pytest.fixture
def serve():
    """Starts one of our servers on a free loopback port; every one is shut down after
    the test."""
    servers = []

    def start(ae: AE, handlers=None) -> int:
        server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def our_scp(title: str = "OURSCP", *contexts: str) -> AE:
    ae = AE(title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = PEER_TIMEOUT
    for uid in contexts:
        ae.add_supported_context(uid)
    return ae


# -- the script and its help -----------------------------------------------------------------


def test_console_script_is_installed():
    assert Path(DIMSE).is_file(), (
        f"the dimse console script is missing ({DIMSE}): reinstall the package"
    )
    proc = subprocess.run(
        [DIMSE, "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    check(proc, 0)
    assert proc.stdout.strip() == f"dimse {dimse.__version__}"


def test_no_app_prints_help_and_exits_2():
    proc = run_app()
    check(proc, 2)
    assert "usage: dimse" in proc.stderr
    for app in ("echoscu", "storescu", "findscu", "getscu", "movescu", "selftest"):
        assert app in proc.stderr


def test_main_help_lists_apps_in_order_and_exit_codes():
    proc = run_app("--help")
    check(proc, 0)
    apps = ["echoscu", "storescu", "storescp", "findscu", "getscu", "movescu", "qrscp"]
    positions = [proc.stdout.index(f"    {app} ") for app in [*apps, "selftest"]]
    assert positions == sorted(positions), proc.stdout
    for line in ("0  success", "1  the operation ran", "2  usage error", "3  no association"):
        assert line in proc.stdout


def _app_parsers():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if a.choices and isinstance(a.choices, dict)]
    return subparsers.choices


@pytest.mark.parametrize(
    "app", ["echoscu", "storescu", "storescp", "findscu", "getscu", "movescu", "qrscp", "selftest"]
)
def test_app_help_mentions_every_option(app):
    proc = run_app(app, "--help")
    check(proc, 0)
    text = proc.stdout
    for action in _app_parsers()[app]._actions:
        for option in action.option_strings:
            assert option in text, f"{option} missing from dimse {app} --help"
        if not action.option_strings and action.help != "==SUPPRESS==":
            assert (action.metavar or action.dest) in text
        assert action.help, f"{app}: {action.option_strings or action.dest} has no help"
    assert "exit codes:" in text


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["echoscu", LOOPBACK, "104", "--bogus"], "--bogus"),
        (["echoscu", LOOPBACK, "104", "--repea", "2"], "--repea"),  # no abbreviations
        (["echoscu", LOOPBACK, "104", "-pdu", "5"], "-pdu/--max-pdu"),
        (["echoscu", LOOPBACK, "104", "-td", "soon"], "-td/--dimse-timeout"),
        (["echoscu", LOOPBACK, "104", "-aet", "A" * 17], "-aet/--aetitle"),
        (["echoscu", LOOPBACK, "70000"], "PORT"),
        (["storescu", LOOPBACK, "104"], "PATH"),
        (["storescu", LOOPBACK, "104", "x.dcm", "--associations", "0"], "--associations"),
        (["findscu", LOOPBACK, "104", "-P", "-S"], "-S/--study"),
        (["findscu", LOOPBACK, "104", "-k", "NoSuchKeyword=1"], "NoSuchKeyword"),
        (["findscu", LOOPBACK, "104", "-k", "QueryRetrieveLevel=STUDY", "-k", "Rows=x"], "Rows"),
        (["findscu", LOOPBACK, "104", "-k", "(0009,0010)=X"], "(0009,0010)"),
        (["findscu", LOOPBACK, "104", "-k", "PatientName=DOE"], "QueryRetrieveLevel"),
        (["getscu", LOOPBACK, "104", "-k", "AccessionNumber=" + "9" * 17], "AccessionNumber"),
        (["movescu", LOOPBACK, "104", "-aem", "BAD\\AE"], "-aem/--move-destination"),
        (["findscu", LOOPBACK, "104", "no-such-query.json"], "no-such-query.json"),
    ],
)
def test_usage_errors_exit_2_naming_the_problem(args, named):
    proc = run_app(*args)
    check(proc, 2)
    assert named in proc.stderr.strip().splitlines()[-1], output(proc)


# -- echoscu ---------------------------------------------------------------------------------


def test_echoscu(serve):
    echoes = []
    port = serve(
        our_scp("ECHOSCP", sop.Verification),
        [(evt.EVT_C_ECHO, lambda event: echoes.append(event.message_id) or 0x0000)],
    )
    proc = run_app("echoscu", *FAST, "-aec", "ECHOSCP", LOOPBACK, port)
    check(proc, 0)
    assert proc.stdout == ""  # quiet on success
    assert proc.stderr == ""
    assert echoes == [1]

    proc = run_app("echoscu", "-v", "--repeat", "3", "-aet", "ME", LOOPBACK, port)
    check(proc, 0)
    assert [line for line in proc.stderr.splitlines() if line.startswith("C-ECHO ")] == [
        f"C-ECHO {n}: 0x0000 (Success)" for n in (1, 2, 3)
    ]
    assert "association released" in proc.stderr
    assert echoes == [1, 1, 2, 3]


def test_echoscu_abort(serve):
    ended = []
    port = serve(
        our_scp("ECHOSCP", sop.Verification),
        [
            (evt.EVT_ABORTED, lambda event: ended.append("aborted")),
            (evt.EVT_RELEASED, lambda event: ended.append("released")),
        ],
    )
    check(run_app("echoscu", "--abort", LOOPBACK, port), 0)
    check(run_app("echoscu", LOOPBACK, port), 0)
    assert ended == ["aborted", "released"]


def test_echoscu_failure_status_exits_1(serve):
    port = serve(our_scp("ECHOSCP", sop.Verification), [(evt.EVT_C_ECHO, lambda event: 0x0110)])
    proc = run_app("echoscu", "--repeat", "2", LOOPBACK, port)
    check(proc, 1)
    assert "2 of 2 C-ECHO failed" in error_line(proc, "echoscu")
    assert "0x0110" in proc.stderr


def test_echoscu_connection_refused_exits_3():
    proc = run_app("echoscu", *FAST, LOOPBACK, free_port())
    check(proc, 3)
    assert "refused" in error_line(proc, "echoscu").lower()
    assert len(proc.stderr.strip().splitlines()) == 1


def test_echoscu_rejected_exits_3(serve):
    ae = our_scp("ECHOSCP", sop.Verification)
    ae.require_called_aet = True
    port = serve(ae)
    proc = run_app("echoscu", *FAST, "-aec", "SOMEONE", LOOPBACK, port)
    check(proc, 3)
    assert "rejected" in error_line(proc, "echoscu")
    assert "called AE title not recognized" in proc.stderr


def test_debug_shows_a_traceback_and_the_library_log():
    proc = run_app("echoscu", "-d", *FAST, LOOPBACK, free_port())
    assert proc.returncode == 3, output(proc)
    assert "Traceback" in proc.stderr
    assert "I: dimse.ae: association to" in proc.stderr  # the library's log
    assert proc.stderr.strip().splitlines()[-1].startswith("dimse echoscu: ")


def test_python_m_dimse_is_the_console_script(serve):
    port = serve(our_scp("ECHOSCP", sop.Verification))
    proc = subprocess.run(
        [sys.executable, "-m", "dimse", "echoscu", LOOPBACK, str(port)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    check(proc, 0)
    proc = subprocess.run(
        [sys.executable, "-m", "dimse", "selftest", "--echoes", "20"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    check(proc, 0)
    assert "20 C-ECHO in" in proc.stdout
    assert "association released: True" in proc.stdout


# -- storescu --------------------------------------------------------------------------------


@pytest.fixture
def storescp(tmp_path):
    """DCMTK's storescp accepting every transfer syntax it knows, writing what it receives
    bit for bit (+B) to a folder; killed at teardown."""
    out = tmp_path / "received"
    out.mkdir()
    server = DcmtkServer("storescp", ["-v", "+xa", "+B", "-od", str(out)], tmp_path / "log")
    yield server, out
    server.stop()


def test_storescu_folder_recursive_to_dcmtk(storescp, tmp_path):
    server, received = storescp
    folder = tmp_path / "send"
    good = [
        save(make_instance(CT, ExplicitVRLittleEndian), folder / "ct1.dcm"),
        save(make_instance(CT, ExplicitVRLittleEndian), folder / "a" / "ct2.dcm"),
        save(make_instance(MR, RLELossless), folder / "a" / "b" / "mr1.dcm"),
        save(make_instance(MR, RLELossless), folder / "mr2"),  # any name will do
    ]
    text = folder / "notes.txt"
    text.write_text("not DICOM\n")
    truncated = folder / "a" / "truncated.dcm"
    truncated.write_bytes(good[0].read_bytes()[:200])  # cut inside its File Meta
    dangling = folder / "a" / "b" / "gone.dcm"
    dangling.symlink_to(tmp_path / "nowhere.dcm")

    proc = run_app("storescu", *FAST, "-r", "-aec", "STORESCP", LOOPBACK, server.port, folder)
    check(proc, 1)
    stderr = proc.stderr
    for bad, reason in (
        (text, "not a DICOM file"),
        (truncated, "truncated"),
        (dangling, "No such file"),
    ):
        (line,) = [line for line in stderr.splitlines() if line.startswith(f"skipped {bad}:")]
        assert reason in line, stderr
        assert f"failure: {bad}: skipped:" in stderr
    assert "sent 4 of 7 files: 4 success, 0 warning, 3 failure;" in stderr
    assert "images/s" in stderr
    assert "MB/s" in stderr
    assert error_line(proc, "storescu") == "dimse storescu: 3 of 7 files failed"

    # What storescp wrote is what the files hold, byte for byte, in their own syntaxes.
    stored = by_instance_uid(received)
    assert len(stored) == 4, server.output()
    for path in good:
        meta = _core.read_file_meta(path)
        copy = stored[meta["media_storage_sop_instance_uid"]]
        assert _core.read_file_meta(copy)["transfer_syntax_uid"] == meta["transfer_syntax_uid"]
        assert dataset_bytes(copy) == dataset_bytes(path)


def test_storescu_folder_without_recurse_and_single_files(serve, tmp_path):
    received = []

    def on_store(event):
        received.append(
            (str(event.request.AffectedSOPInstanceUID), event.context.transfer_syntax[0])
        )
        return 0x0000

    ae = our_scp("STORESCP")
    ae.add_supported_context(CT, [ImplicitVRLittleEndian])  # only this one: a conversion
    port = serve(ae, [(evt.EVT_C_STORE, on_store)])
    top = save(make_instance(CT), tmp_path / "in" / "top.dcm")
    save(make_instance(CT), tmp_path / "in" / "sub" / "deep.dcm")
    single = save(make_instance(CT, ImplicitVRLittleEndian), tmp_path / "single.dcm")

    proc = run_app("storescu", LOOPBACK, port, tmp_path / "in", single)
    check(proc, 0)
    assert "1 subfolder(s) left out (use -r" in proc.stderr
    assert "sent 2 of 2 files: 2 success, 0 warning, 0 failure;" in proc.stderr
    uids = [_core.read_file_meta(p)["media_storage_sop_instance_uid"] for p in (top, single)]
    assert received == [(uid, ImplicitVRLittleEndian) for uid in uids]


def test_storescu_parallel_associations(serve, tmp_path):
    received: dict[str, bytes] = {}
    requestors = set()
    lock = threading.Lock()

    def on_store(event):
        with lock:
            received[str(event.request.AffectedSOPInstanceUID)] = event.data
            requestors.add(event.assoc.requestor.port)
        return 0x0000

    ae = our_scp("STORESCP", CT, MR)
    port = serve(ae, [(evt.EVT_C_STORE, on_store)])
    files = [
        save(make_instance(CT if n % 2 else MR), tmp_path / "in" / f"{n:02}.dcm")
        for n in range(12)
    ]
    proc = run_app("storescu", "--associations", "3", "-v", LOOPBACK, port, tmp_path / "in")
    check(proc, 0)
    assert "sent 12 of 12 files: 12 success, 0 warning, 0 failure;" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("sent ")]) == 13
    assert len(requestors) == 3  # three associations (three requestor ports)
    for path in files:
        uid = _core.read_file_meta(path)["media_storage_sop_instance_uid"]
        assert received[uid] == dataset_bytes(path)


def test_storescu_associations_beyond_the_peers_limit(serve, tmp_path):
    # The SCP takes one association at a time: the others are rejected, and the files
    # all go over the one that was accepted.
    received = []
    ae = our_scp("STORESCP", CT)
    ae.maximum_associations = 1

    def on_store(event):
        threading.Event().wait(0.05)  # keep the first association busy
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    port = serve(ae, [(evt.EVT_C_STORE, on_store)])
    files = [save(make_instance(), tmp_path / f"{n}.dcm") for n in range(6)]
    proc = run_app("storescu", "--associations", "3", LOOPBACK, port, *files)
    check(proc, 0)
    assert len(received) == 6
    assert "note: one association failed: association rejected" in proc.stderr


def test_storescu_reports_failure_statuses(serve, tmp_path):
    files = [save(make_instance(), tmp_path / f"{n}.dcm") for n in range(3)]
    refused = _core.read_file_meta(files[1])["media_storage_sop_instance_uid"]

    def on_store(event):
        return 0xA700 if event.request.AffectedSOPInstanceUID == refused else 0x0000

    port = serve(our_scp("STORESCP", CT), [(evt.EVT_C_STORE, on_store)])
    proc = run_app("storescu", "-q", LOOPBACK, port, *files)
    check(proc, 1)
    assert proc.stderr == "dimse storescu: 1 of 3 files failed\n"
    proc = run_app("storescu", LOOPBACK, port, *files)
    check(proc, 1)
    assert f"failure: {files[1]}: 0xA700 (Refused: Out of Resources)" in proc.stderr


def test_storescu_more_than_128_contexts_splits_associations(serve, tmp_path):
    # 130 SOP Classes (made up), one file each: 130 contexts, so two associations.
    classes = [f"1.2.826.0.1.3680043.8.498.77.{n}" for n in range(130)]
    requestors = set()
    received = []

    def on_store(event):
        requestors.add(event.assoc.requestor.port)
        received.append(str(event.request.AffectedSOPClassUID))
        return 0x0000

    port = serve(our_scp("STORESCP", *classes), [(evt.EVT_C_STORE, on_store)])
    for n, uid in enumerate(classes):
        save(make_instance(uid), tmp_path / "in" / f"{n:03}.dcm")
    proc = run_app("storescu", LOOPBACK, port, tmp_path / "in")
    check(proc, 0)
    assert "130 presentation contexts needed" in proc.stderr
    assert "over 2 associations" in proc.stderr
    assert sorted(received) == sorted(classes)
    assert len(requestors) == 2


def test_storescu_sop_class_not_accepted(serve, tmp_path):
    port = serve(our_scp("STORESCP", CT), [(evt.EVT_C_STORE, lambda event: 0x0000)])
    ct = save(make_instance(CT), tmp_path / "ct.dcm")
    mr = save(make_instance(MR), tmp_path / "mr.dcm")
    proc = run_app("storescu", LOOPBACK, port, ct, mr)
    check(proc, 1)
    assert "sent 1 of 2 files: 1 success, 0 warning, 1 failure;" in proc.stderr
    assert (
        f"failure: {mr}: the peer accepted no presentation context for MR Image Storage"
        in proc.stderr
    )


def test_storescu_no_association_exits_3(tmp_path):
    path = save(make_instance(), tmp_path / "ct.dcm")
    proc = run_app("storescu", *FAST, LOOPBACK, free_port(), path)
    check(proc, 3)
    assert "refused" in error_line(proc, "storescu").lower()
    assert "1 files not sent" in proc.stderr


def test_storescu_needs_a_dicom_file(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    proc = run_app("storescu", LOOPBACK, free_port(), tmp_path)
    check(proc, 1)
    assert error_line(proc, "storescu") == "dimse storescu: no DICOM file to send (1 skipped)"


# -- findscu against our SCP -----------------------------------------------------------------

PATIENTS = [("DOE^JOHN", "P1", "19700101"), ("DOE^JANE", "P2", "19800202"), ("ROE^R", "P3", "")]


@pytest.fixture
def find_scp(serve):
    """Our C-FIND SCP over PATIENTS: matches PatientName (trailing *) and returns the keys
    asked for; records the identifiers it got."""
    queries: list[Dataset] = []

    def on_find(event):
        query = event.identifier
        queries.append(query)
        pattern = str(query.get("PatientName", "") or "*")
        for name, patient_id, birth in PATIENTS:
            if not name.startswith(pattern.rstrip("*")):
                continue
            if event.is_cancelled:
                return
            match = Dataset()
            match.QueryRetrieveLevel = query.QueryRetrieveLevel
            match.PatientName = name
            if "PatientID" in query:
                match.PatientID = patient_id
            if "PatientBirthDate" in query:
                match.PatientBirthDate = birth
            yield 0xFF00, match

    port = serve(our_scp("FINDSCP", S_FIND, P_FIND), [(evt.EVT_C_FIND, on_find)])
    return port, queries


def test_findscu_keys_and_text_output(find_scp):
    port, queries = find_scp
    proc = run_app(
        "findscu",
        *FAST,
        "-aec",
        "FINDSCP",
        "-P",
        "-k",
        "QueryRetrieveLevel=PATIENT",
        "-k",
        "PatientName=DOE*",
        "-k",
        "PatientID",
        "-k",
        "(0010,0030)",
        LOOPBACK,
        port,
    )
    check(proc, 0)
    (query,) = queries
    assert query.PatientName == "DOE*"
    assert query.PatientID == ""
    assert query.PatientBirthDate == ""
    assert proc.stdout.count("# match ") == 2
    assert "(0010,0010) PN PatientName" in proc.stdout
    assert "DOE^JANE" in proc.stdout
    assert "19800202" in proc.stdout
    assert "2 match(es), final status 0x0000 (Matching is complete" in proc.stderr


def test_findscu_json_and_query_file(find_scp, tmp_path):
    port, queries = find_scp
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientName = "ROE*"
    query.PatientID = ""
    query_file = tmp_path / "query.json"
    query_file.write_text(query.to_json())
    # -k overrides the file's keys, in keyword and tag form.
    proc = run_app("findscu", "--json", LOOPBACK, port, query_file, "-k", "0010,0010=DOE^J*")
    check(proc, 0)
    matches = [Dataset.from_json(line) for line in proc.stdout.splitlines()]
    assert [(m.PatientName, m.PatientID) for m in matches] == [
        ("DOE^JOHN", "P1"),
        ("DOE^JANE", "P2"),
    ]
    assert queries[-1].PatientName == "DOE^J*"

    dicom_file = tmp_path / "query.dcm"
    query.save_as(dicom_file, implicit_vr=True, little_endian=True)
    proc = run_app("findscu", "-q", "--json", LOOPBACK, port, dicom_file)
    check(proc, 0)
    assert [json.loads(line)["00100010"]["Value"] for line in proc.stdout.splitlines()] == [
        [{"Alphabetic": "ROE^R"}]
    ]
    assert proc.stderr == ""


def test_findscu_sequence_keys(find_scp):
    port, queries = find_scp
    proc = run_app(
        "findscu",
        LOOPBACK,
        port,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "ReferencedStudySequence[0].ReferencedSOPClassUID=1.2.3",
        "-k",
        "ProcedureCodeSequence",
        "-k",
        "ModalitiesInStudy=CT\\MR",
    )
    check(proc, 0)
    query = queries[-1]
    assert query.ReferencedStudySequence[0].ReferencedSOPClassUID == "1.2.3"
    assert len(query.ProcedureCodeSequence) == 0
    assert list(query.ModalitiesInStudy) == ["CT", "MR"]


def test_findscu_cancel(serve):
    cancelled = []

    def on_find(event):
        for n in range(50):
            if event.is_cancelled:
                cancelled.append(n)
                return
            match = Dataset()
            match.PatientID = f"P{n}"
            yield 0xFF00, match
            threading.Event().wait(0.02)

    port = serve(our_scp("FINDSCP", S_FIND), [(evt.EVT_C_FIND, on_find)])
    proc = run_app(
        "findscu", "--json", "--cancel", "2", "-k", "QueryRetrieveLevel=STUDY", LOOPBACK, port
    )
    check(proc, 0)
    assert "final status 0xFE00 (Matching terminated due to Cancel" in proc.stderr
    assert 2 <= len(proc.stdout.splitlines()) < 50
    assert cancelled


def test_findscu_model_not_accepted_exits_3(serve):
    port = serve(our_scp("FINDSCP", S_FIND))  # Study Root only
    proc = run_app("findscu", "-P", "-k", "QueryRetrieveLevel=PATIENT", LOOPBACK, port)
    check(proc, 3)
    assert "accepted no presentation context for Patient Root" in error_line(proc, "findscu")


def test_findscu_failure_status_exits_1(serve):
    def on_find(event):
        yield 0xC000, None

    port = serve(our_scp("FINDSCP", S_FIND), [(evt.EVT_C_FIND, on_find)])
    proc = run_app("findscu", "-k", "QueryRetrieveLevel=STUDY", LOOPBACK, port)
    check(proc, 1)
    assert "0xC000" in error_line(proc, "findscu")


# -- against DCMTK's dcmqrscp ----------------------------------------------------------------

MOVE_AET = "MOVESCU"
COMPLETE = "0x0000 (Sub-operations Complete - No Failures)"


def archive_instances() -> list[Dataset]:
    out = []
    for name, patient_id, studies in (("DOE^JOHN", "P1", 2), ("SMITH^JANE", "P2", 1)):
        for s in range(studies):
            study = generate_uid()
            for n in range(2):
                out.append(
                    make_instance(
                        CT if n == 0 else MR,
                        PatientName=name,
                        PatientID=patient_id,
                        StudyInstanceUID=study,
                        StudyID=f"{patient_id}S{s + 1}",
                        StudyDate=f"2024010{s + 1}",
                        AccessionNumber=f"A{patient_id}{s + 1}",
                        InstanceNumber=str(n + 1),
                    )
                )
    return out


class Archive:
    def __init__(self, base: Path) -> None:
        self.instances = archive_instances()
        self.files: dict[str, Path] = {}
        storage = base / "storage"
        storage.mkdir()
        for ds in self.instances:
            uid = str(ds.SOPInstanceUID)
            self.files[uid] = save(ds, base / "files" / f"{uid}.dcm")
        indexed = run_dcmtk("dcmqridx", str(storage), *map(str, self.files.values()))
        assert indexed.returncode == 0, indexed.stdout
        #: Where our movescu's storage SCP listens (dcmqrscp's configuration says so).
        self.store_port = free_port()
        config = base / "dcmqrscp.cfg"
        config.write_text(
            textwrap.dedent(
                f"""\
                NetworkTCPPort  = 104
                MaxPDUSize      = 16384
                MaxAssociations = 4

                HostTable BEGIN
                movescu = ({MOVE_AET}, {LOOPBACK}, {self.store_port})
                HostTable END

                VendorTable BEGIN
                VendorTable END

                AETable BEGIN
                {QR_AET}  {storage}  RW  (20, 64mb)  ANY
                AETable END
                """
            )
        )
        self.port = free_port()
        self.log = base / "dcmqrscp.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    dcmtk_tool("dcmqrscp"),
                    "-v",
                    "-c",
                    str(config),
                    "-ta",
                    str(PEER_TIMEOUT),
                    "-td",
                    str(PEER_TIMEOUT),
                    str(self.port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dcmtk_env(),
                start_new_session=True,  # its forked children in its process group
            )
        try:
            wait_for_port(self.port, self.proc)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=PROCESS_TIMEOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def select(self, **keys: str) -> list[Dataset]:
        return [ds for ds in self.instances if all(ds.get(k) == v for k, v in keys.items())]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    archive = Archive(tmp_path_factory.mktemp("qr"))
    try:
        yield archive
    finally:
        archive.stop()


def qr(app: str, archive: Archive, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_app(app, *FAST, "-aec", QR_AET, LOOPBACK, archive.port, *args)


def test_findscu_against_dcmqrscp(archive):
    proc = qr(
        "findscu",
        archive,
        "--json",
        "-S",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "PatientName=DOE*",
        "-k",
        "StudyInstanceUID",
        "-k",
        "StudyDate",
    )
    check(proc, 0)
    matches = [Dataset.from_json(line) for line in proc.stdout.splitlines()]
    assert {str(m.StudyInstanceUID) for m in matches} == {
        str(ds.StudyInstanceUID) for ds in archive.select(PatientID="P1")
    }, archive.output()
    assert sorted(m.StudyDate for m in matches) == ["20240101", "20240102"]

    proc = qr(
        "findscu",
        archive,
        "-P",
        "-k",
        "QueryRetrieveLevel=PATIENT",
        "-k",
        "PatientID",
        "-k",
        "PatientName",
    )
    check(proc, 0)
    assert proc.stdout.count("# match ") == 2
    assert "SMITH^JANE" in proc.stdout


def test_getscu_against_dcmqrscp(archive, tmp_path):
    wanted = archive.select(PatientID="P1")
    out = tmp_path / "got"
    proc = qr(
        "getscu",
        archive,
        "-P",
        "-k",
        "QueryRetrieveLevel=PATIENT",
        "-k",
        "PatientID=P1",
        "-od",
        out,
    )
    check(proc, 0)
    summary = f"C-GET final status {COMPLETE}: {len(wanted)} completed, 0 failed, 0 warning"
    assert summary in proc.stderr, archive.output()
    written = by_instance_uid(out)
    assert set(written) == {str(ds.SOPInstanceUID) for ds in wanted}
    for uid, path in written.items():
        meta = _core.read_file_meta(path)
        assert meta["source_application_entity_title"] == QR_AET
        # dcmqrscp sends its files' data sets as they are: ours arrive identical.
        assert dataset_bytes(path) == dataset_bytes(archive.files[uid])
        assert dcmread(path).PatientID == "P1"


def test_getscu_nothing_matches(archive, tmp_path):
    proc = qr(
        "getscu",
        archive,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "StudyInstanceUID=1.2.3.4",
        "-od",
        tmp_path,
    )
    check(proc, 0)
    assert "0 completed" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_getscu_output_directory_not_creatable(tmp_path):
    (tmp_path / "file").write_text("")
    proc = run_app(
        "getscu",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-od",
        tmp_path / "file" / "sub",
        LOOPBACK,
        free_port(),
    )
    check(proc, 1)
    assert "cannot create" in error_line(proc, "getscu")


def test_movescu_with_store_port_against_dcmqrscp(archive, tmp_path):
    study = archive.select(PatientID="P2")[0].StudyInstanceUID
    wanted = archive.select(StudyInstanceUID=study)
    out = tmp_path / "moved"
    proc = qr(
        "movescu",
        archive,
        "-aet",
        MOVE_AET,
        "--store-port",
        str(archive.store_port),
        "--store-host",
        LOOPBACK,
        "-od",
        out,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
    )
    check(proc, 0)
    summary = f"C-MOVE final status {COMPLETE}: {len(wanted)} completed, 0 failed, 0 warning"
    assert summary in proc.stderr, archive.output()
    assert f"{len(wanted)} instance(s) received" in proc.stderr
    written = by_instance_uid(out)
    assert set(written) == {str(ds.SOPInstanceUID) for ds in wanted}
    for uid, path in written.items():
        assert dataset_bytes(path) == dataset_bytes(archive.files[uid])


def test_movescu_unknown_destination_exits_1(archive):
    proc = qr(
        "movescu",
        archive,
        "-aem",
        "NOWHERE",
        "-P",
        "-k",
        "QueryRetrieveLevel=PATIENT",
        "-k",
        "PatientID=P1",
    )
    check(proc, 1)
    assert "0xA801" in error_line(proc, "movescu")
