"""``--workers N``: several SCP processes on one port (SO_REUSEPORT), the kernel spreading
associations over them."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import sop
from peers import free_port

DIMSE = str(Path(sys.executable).parent / "dimse")
LOOPBACK = "127.0.0.1"


def write_files(folder: Path, n: int) -> None:
    folder.mkdir()
    study = generate_uid()
    for i in range(n):
        ds = Dataset()
        ds.SOPClassUID = sop.CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientID = "W1"
        ds.PatientName = "WORKERS^TEST"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"{i}.dcm", enforce_file_format=True)


def start(args: list[str], log: Path, listening: int) -> subprocess.Popen[bytes]:
    with log.open("w") as err:
        proc = subprocess.Popen([DIMSE, *args], stderr=err)
    deadline = time.monotonic() + 30
    while log.read_text().count("listening on") < listening:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise


def test_storescp_workers_share_the_port(tmp_path):
    port = free_port()
    write_files(tmp_path / "in", 40)
    log = tmp_path / "scp.log"
    out = tmp_path / "out"
    scp = start(
        ["storescp", str(port), "--bind", LOOPBACK, "-od", str(out), "--workers", "2", "-v"],
        log,
        listening=2,
    )
    try:
        # 20 associations: the chance that the kernel gives them all to one worker is 2^-19.
        sent = subprocess.run(
            [
                *(DIMSE, "storescu", "-q", "--associations", "20", "--max-ops", "1"),
                *(LOOPBACK, str(port), str(tmp_path / "in")),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        code = stop(scp)
    assert code == 0, log.read_text()
    assert len(list(out.iterdir())) == 40
    workers = set(re.findall(r"\[worker (\d+)\] stored", log.read_text()))
    assert len(workers) == 2, log.read_text()


def test_qrscp_workers_share_one_index(tmp_path):
    port = free_port()
    write_files(tmp_path / "in", 30)
    log = tmp_path / "qr.log"
    data = tmp_path / "data"
    qr = start(
        [
            *("qrscp", "--port", str(port), "--bind", LOOPBACK),
            *("--data-dir", str(data), "--workers", "2"),
        ],
        log,
        listening=2,
    )
    try:
        sent = subprocess.run(
            [
                DIMSE,
                "storescu",
                "-q",
                "--associations",
                "10",
                LOOPBACK,
                str(port),
                *[str(tmp_path / "in")],
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        found = subprocess.run(
            [
                *(DIMSE, "findscu", LOOPBACK, str(port), "--json"),
                *("-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=W1"),
                *("-k", "NumberOfStudyRelatedInstances"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert found.returncode == 0, found.stderr
    finally:
        code = stop(qr)
    assert code == 0, log.read_text()
    (match,) = [json.loads(line) for line in found.stdout.splitlines()]
    assert match["00201208"]["Value"] == [30]
    # Reconciled once, by the first process, before the workers started.
    assert log.read_text().count("start-up check") == 1


def test_workers_need_a_fixed_port(tmp_path):
    for app in (["storescp", "0", "-od", str(tmp_path)], ["qrscp", "--port", "0"]):
        done = subprocess.run(
            [DIMSE, *app, "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=tmp_path,
        )
        assert done.returncode == 2
        assert "--workers needs a fixed port" in done.stderr
