"""Runs every script of examples/ as a user would and checks what it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: Lines (exact, after stripping) each example must print, in this order.
EXPECTED: dict[str, list[str]] = {
    "echo.py": [
        "SCP: C-ECHO from ECHOSCU, message 1",
        "SCU: C-ECHO status 0x0000",
        "SCP: C-ECHO from ECHOSCU, message 3",
        "SCU: C-ECHO status 0x0000",
        "SCU: association released",
        "SCP: stopped",
    ],
    "store_files.py": [
        "SCU: sent DOE.dcm: status 0x0000",
        "SCU: sent ROE.dcm: status 0x0000",
        "received 2 files",
    ],
    "find.py": [
        "SCP: C-FIND for PatientName='DOE^*'",
        "SCU: match DOE^JANE CT HEAD",
        "SCU: match DOE^JOHN CT CHEST",
        "SCU: match DOE^JOHN CT ABDOMEN",
        "SCU: final status 0x0000, 3 matches",
        "SCU: first of all studies: DOE^JANE",
        "SCU: stopping after status 0xFF00",
        "SCU: after the cancel, ROE^* gives 1 match(es)",
    ],
    "get.py": [
        "SCP: C-GET of study 1.2.826.0.1.3680043.2.1125.10: 3 instances",
        "SCU: received instance 1",
        "SCU: received instance 2",
        "SCU: received instance 3",
        "SCU: final status 0x0000, 3 completed, 0 failed",
        "received 3 instances",
    ],
    "move.py": [
        "SCP: C-MOVE to 'STOREDEST' requested by MOVESCU",
        "DEST: stored instance 1 (move originator MOVESCU)",
        "DEST: stored instance 3 (move originator MOVESCU)",
        "SCU: final status 0x0000, 3 completed",
        "SCU: move to an unknown AE: status 0xA801",
        "destination received 3 instances",
    ],
    "n_services.py": [
        "SCU: N-CREATE status 0x0000",
        "SCU: N-SET status 0x0000",
        "SCU: N-GET status 0x0000",
        "SCU: DOE^JANE: COMPLETED",
        "SCU: N-GET of an unknown instance: status 0x0112",
    ],
}


def test_every_example_is_checked():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example(name, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, output
    assert "Traceback" not in proc.stderr, output
    lines = [line.strip() for line in proc.stdout.splitlines()]
    position = 0
    for expected in EXPECTED[name]:
        assert expected in lines[position:], f"{expected!r} missing (in order)\n{output}"
        position = lines.index(expected, position) + 1
    assert list(tmp_path.iterdir()) == [], "an example left files in its working directory"
