"""The README's main job, as written: ``dimse qrscp`` on its defaults (port 11112,
./dimse-data), then the README's ``dimse storescu`` and ``dimse findscu`` lines against it.

The commands are read from README.md, so the README cannot drift from what works."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import sop

ROOT = Path(__file__).resolve().parent.parent
DIMSE = Path(sys.executable).parent / "dimse"


def readme_commands() -> list[str]:
    """The ``dimse ...`` lines of the README's sh blocks, in order."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if "dimse " in line]


def write_folder(folder: Path) -> list[Dataset]:
    datasets = []
    for n in range(3):
        ds = Dataset()
        ds.SOPClassUID = sop.CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientName = f"README^{n}"
        ds.PatientID = f"R{n}"
        ds.StudyDate = "20240102"
        ds.Modality = "CT"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        sub = folder / f"series{n}"
        sub.mkdir(parents=True)
        ds.save_as(sub / f"{n}.dcm", enforce_file_format=True)
        datasets.append(ds)
    return datasets


def test_readme_main_job(tmp_path):
    assert DIMSE.exists(), f"{DIMSE} is missing: install the package (pip install .)"
    commands = readme_commands()
    first = next(c for c in commands if "dimse qrscp" in c)
    assert first.endswith("&& dimse qrscp"), first
    storescu = next(c for c in commands if c.startswith("dimse storescu"))
    findscu = next(c for c in commands if c.startswith("dimse findscu"))
    folder = tmp_path / "folder"
    datasets = write_folder(folder)
    log = tmp_path / "qrscp.log"
    with log.open("w") as err:
        # The README's command, with the installed script; in a fresh working folder.
        qrscp = subprocess.Popen([str(DIMSE), "qrscp"], cwd=tmp_path, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in log.read_text():
            assert qrscp.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert ":11112" in log.read_text()
        assert (tmp_path / "dimse-data").is_dir()

        def run(command: str, *extra: str) -> subprocess.CompletedProcess[str]:
            argv = shlex.split(command.replace("path/to/dicom/folder", str(folder)))
            assert argv[0] == "dimse"
            return subprocess.run(
                [str(DIMSE), *argv[1:], *extra],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        sent = run(storescu)
        assert sent.returncode == 0, sent.stderr
        found = run(findscu, "--json")
        assert found.returncode == 0, found.stderr
        matches = [json.loads(line) for line in found.stdout.splitlines()]
        names = sorted(m["00100010"]["Value"][0]["Alphabetic"] for m in matches)
        assert names == sorted(str(ds.PatientName) for ds in datasets)
        assert {m["00080061"]["Value"][0] for m in matches} == {"CT"}
    finally:
        qrscp.send_signal(signal.SIGTERM)
        try:
            qrscp.wait(timeout=20)
        except subprocess.TimeoutExpired:
            qrscp.kill()
            qrscp.wait(timeout=10)
    assert qrscp.returncode == 0, log.read_text()
