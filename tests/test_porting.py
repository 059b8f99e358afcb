"""Porting check: typical pynetdicom scripts (tests/porting/) run unchanged with pynetdicom,
then with only their import lines rewritten to dimse, against the same peers.

The peers are DCMTK's tools (by absolute path: pynetdicom's console scripts shadow them)
and a DCMTK dcmqrscp archive; a missing peer fails the test. Each script is a
subprocess with bounded waits; servers are stopped with SIGINT (Ctrl-C), as a user would.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from peers import (
    LOOPBACK,
    PEER_TIMEOUT,
    PROCESS_TIMEOUT,
    DcmtkServer,
    free_port,
    run_dcmtk,
    wait_for_port,
)

PORTING = Path(__file__).resolve().parent / "porting"
FLAVOURS = ["pynetdicom", "dimse"]
DCMTK_TIMEOUTS = ("-to", PEER_TIMEOUT, "-ta", PEER_TIMEOUT, "-td", PEER_TIMEOUT)
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"

#: The only change made to port a script: its imports (pynetdicom module -> dimse module).
IMPORT_REWRITES = [
    ("from pynetdicom.sop_class import", "from dimse.sop import"),
    ("from pynetdicom.presentation import", "from dimse.presentation import"),
    ("from pynetdicom import", "from dimse import"),
]

#: Runs a script with pynetdicom made unimportable, so that a ported script cannot lean
#: on it by accident.
WITHOUT_PYNETDICOM = (
    "import runpy, sys; sys.modules['pynetdicom'] = None; "
    "path = sys.argv.pop(1); sys.argv[0] = path; runpy.run_path(path, run_name='__main__')"
)


def ported(name: str, tmp_path: Path) -> Path:
    """``tests/porting/name`` with its import lines rewritten from pynetdicom to dimse."""
    source = (PORTING / name).read_text()
    for old, new in IMPORT_REWRITES:
        source = source.replace(old, new)
    code = [line for line in source.splitlines() if not line.lstrip().startswith(('"', "#"))]
    imports = [line for line in code if re.match(r"\s*(from|import)\s", line)]
    assert imports
    assert not any("pynetdicom" in line for line in imports), imports
    out = tmp_path / f"dimse_{name}"
    out.write_text(source)
    return out


def command(name: str, flavour: str, tmp_path: Path, *args: object) -> list[str]:
    """The command line running the porting script ``name`` with ``flavour``."""
    assert flavour in FLAVOURS
    if flavour == "pynetdicom":
        original = (PORTING / name).read_text()
        assert re.search(r"^from pynetdicom import .*\bAE\b", original, re.M), name
        return [sys.executable, str(PORTING / name), *map(str, args)]
    path = ported(name, tmp_path)
    return [sys.executable, "-c", WITHOUT_PYNETDICOM, str(path), *map(str, args)]


def run_script(name: str, flavour: str, tmp_path: Path, *args: object) -> str:
    """Runs a client script to completion; asserts exit 0; returns its output."""
    proc = subprocess.run(
        command(name, flavour, tmp_path, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"{name} ({flavour}) exited {proc.returncode}:\n{proc.stdout}"
    return proc.stdout


class ScriptServer:
    """A server script in a subprocess, stopped with SIGINT (Ctrl-C)."""

    def __init__(self, name: str, flavour: str, tmp_path: Path, *args: object) -> None:
        self.port = free_port()
        self.log = tmp_path / f"{flavour}_{name}.log"
        self.name = f"{name} ({flavour})"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                command(name, flavour, tmp_path, self.port, *args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port, self.proc)
        except AssertionError as e:
            self.kill()
            raise AssertionError(f"{self.name} did not start: {e}\n{self.output()}") from None
        except BaseException:
            self.kill()
            raise

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self) -> int:
        """Ctrl-C: the server should stop and the script exit on its own."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=PROCESS_TIMEOUT)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=PROCESS_TIMEOUT)

    def assert_clean_exit(self) -> None:
        code = self.interrupt()
        output = self.output()
        assert code == 0, f"{self.name} exited {code} on Ctrl-C:\n{output}"
        assert "server stopped" in output, output


@pytest.fixture
def script_servers():
    servers: list[ScriptServer] = []
    yield servers
    for server in servers:
        server.kill()


def ct_file(folder: Path, patient_id: str, name: str, sop_class: str = CT) -> Path:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Modality = "CT" if sop_class == CT else "MR"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(32)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def instances(tmp_path):
    """Three instances of patient P1 (two CT, one MR) and one CT of patient P2."""
    folder = tmp_path / "instances"
    folder.mkdir()
    return {
        "P1": [
            ct_file(folder, "P1", "DOE^JANE"),
            ct_file(folder, "P1", "DOE^JANE"),
            ct_file(folder, "P1", "DOE^JANE", MR),
        ],
        "P2": [ct_file(folder, "P2", "ROE^RICHARD")],
        "folder": folder,
    }


def uids(paths) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}


@pytest.fixture
def archive(tmp_path, instances):
    """DCMTK's dcmqrscp (one process per association) holding ``instances``; its port."""
    db = tmp_path / "qrdb"
    db.mkdir()
    config = tmp_path / "dcmqrscp.cfg"
    config.write_text(
        "NetworkTCPPort = 104\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
        "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nQRSCP {db} RW (100, 64mb) ANY\nAETable END\n"
    )
    server = DcmtkServer("dcmqrscp", ["-v", "-c", str(config)], tmp_path / "dcmqrscp.log")
    try:
        files = [str(p) for p in [*instances["P1"], *instances["P2"]]]
        stored = run_dcmtk(
            "storescu", *DCMTK_TIMEOUTS, "-aec", "QRSCP", LOOPBACK, server.port, *files
        )
        assert stored.returncode == 0, stored.stdout + server.output()
        yield server.port
    finally:
        server.stop()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_storage_scp(flavour, tmp_path, instances, script_servers):
    out = tmp_path / f"{flavour}_received"
    server = ScriptServer("storescp.py", flavour, tmp_path, out, "--ae-title", "PORTSCP")
    script_servers.append(server)

    echo = run_dcmtk("echoscu", *DCMTK_TIMEOUTS, "-aec", "PORTSCP", LOOPBACK, server.port)
    assert echo.returncode == 0, echo.stdout + server.output()
    files = [str(p) for p in [*instances["P1"], *instances["P2"]]]
    store = run_dcmtk(
        "storescu",
        *DCMTK_TIMEOUTS,
        "-aet",
        "DCMTKSCU",
        "-aec",
        "PORTSCP",
        LOOPBACK,
        server.port,
        *files,
    )
    assert store.returncode == 0, store.stdout + server.output()

    server.assert_clean_exit()
    output = server.output()
    assert "echo from ECHOSCU" in output
    assert output.count("from DCMTKSCU") == 4, output
    saved = sorted(out.iterdir())
    assert uids(saved) == uids(files)
    for path in saved:
        ds = dcmread(path)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert path.name == f"{ds.SOPInstanceUID}.dcm"
        assert ds.PixelData == bytes(32)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_find_scu(flavour, tmp_path, archive):
    output = run_script(
        "findscu.py", flavour, tmp_path, LOOPBACK, archive, "DOE*", "--called-aet", "QRSCP"
    )
    assert "match: DOE^JANE (P1)" in output, output
    assert "ROE" not in output, output
    assert "C-FIND final status: 0x0000, 1 matches" in output, output


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_get_scu(flavour, tmp_path, archive, instances):
    out = tmp_path / f"{flavour}_got"
    output = run_script(
        "getscu.py", flavour, tmp_path, LOOPBACK, archive, "P1", out, "--called-aet", "QRSCP"
    )
    assert "C-GET final status: 0x0000, completed 3, failed 0" in output, output
    assert output.count("received ") == 3, output
    assert uids(out.iterdir()) == uids(instances["P1"])


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_move_scp(flavour, tmp_path, instances, script_servers):
    dest_dir = tmp_path / f"{flavour}_dest"
    dest_dir.mkdir()
    destination = DcmtkServer(
        "storescp",
        [*map(str, DCMTK_TIMEOUTS[2:]), "-aet", "DEST", "-od", str(dest_dir)],
        tmp_path / "storescp.log",
    )
    try:
        server = ScriptServer(
            "movescp.py",
            flavour,
            tmp_path,
            instances["folder"],
            "--dest",
            f"DEST={LOOPBACK}:{destination.port}",
        )
        script_servers.append(server)
        move = run_dcmtk(
            "movescu",
            *DCMTK_TIMEOUTS,
            "-P",
            "-aec",
            "MOVESCP",
            "-aem",
            "DEST",
            "-k",
            "QueryRetrieveLevel=PATIENT",
            "-k",
            "PatientID=P1",
            LOOPBACK,
            server.port,
        )
        assert move.returncode == 0, move.stdout + server.output()
        unknown = run_dcmtk(
            "movescu",
            *DCMTK_TIMEOUTS,
            "-P",
            "-aec",
            "MOVESCP",
            "-aem",
            "NOWHERE",
            "-k",
            "QueryRetrieveLevel=PATIENT",
            "-k",
            "PatientID=P1",
            LOOPBACK,
            server.port,
        )
        server.assert_clean_exit()
    finally:
        destination.stop()
    output = server.output()
    assert "moving 3 instances to DEST" in output, output
    assert "unknown move destination NOWHERE" in output, output
    assert "MoveDestinationUnknown" in unknown.stdout, unknown.stdout
    assert uids(dest_dir.iterdir()) == uids(instances["P1"]), move.stdout + destination.output()
