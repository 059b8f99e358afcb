"""A 2 GB data set goes SCU -> SCP -> file with the SCP's memory bounded: the sender reads
the file as it sends (1 MiB chunks), ``dimse storescp`` writes the data set to its file as
it arrives (above ``AE.stream_threshold``) and reads the socket no faster than the disk
takes it. The SCP's peak resident memory must stay under 100 MB."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import AE, _core, sop
from peers import free_port

DIMSE = str(Path(sys.executable).parent / "dimse")
LOOPBACK = "127.0.0.1"
SIZE = 2 * 1000**3  # bytes of pixel data: 2 GB
RSS_LIMIT_KB = 100 * 1024
CHUNK = 1 << 20


def explicit(tag: int, vr: bytes, value: bytes) -> bytes:
    """One Explicit VR Little Endian element with a 2-byte length (PS3.5 7.1.2)."""
    if len(value) % 2:
        value += b"\0"
    return (
        (tag >> 16).to_bytes(2, "little")
        + (tag & 0xFFFF).to_bytes(2, "little")
        + vr
        + len(value).to_bytes(2, "little")
        + value
    )


def write_huge(path: Path) -> tuple[str, str]:
    """A DICOM file whose Pixel Data is SIZE bytes, written a chunk at a time (never held
    in memory); returns its SOP Instance UID and the sha256 of its data set."""
    uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop.MultiFrameGrayscaleByteSecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    header = io.BytesIO()
    header.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(header, meta, enforce_standard=True)
    dataset = b"".join(
        [
            explicit(0x00080016, b"UI", str(meta.MediaStorageSOPClassUID).encode()),
            explicit(0x00080018, b"UI", uid.encode()),
            explicit(0x0020000D, b"UI", generate_uid().encode()),
            explicit(0x0020000E, b"UI", generate_uid().encode()),
            # (7FE0,0010) OB with a 4-byte length (PS3.5 7.1.2).
            b"\xe0\x7f\x10\x00OB\0\0" + SIZE.to_bytes(4, "little"),
        ]
    )
    digest = hashlib.sha256(dataset)
    block = os.urandom(CHUNK)
    with path.open("wb") as f:
        f.write(header.getvalue())
        f.write(dataset)
        for n in range(SIZE // CHUNK):
            # Each chunk differs (its index), so a chunk out of place changes the digest.
            chunk = n.to_bytes(8, "little") + block[8:]
            f.write(chunk)
            digest.update(chunk)
        rest = block[: SIZE % CHUNK]
        f.write(rest)
        digest.update(rest)
    return uid, digest.hexdigest()


def data_digest(path: Path) -> str:
    offset = _core.read_file_meta(path)["data_offset"]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        f.seek(offset)
        while chunk := f.read(8 * CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_two_gigabytes_through_a_bounded_scp(tmp_path):
    source = tmp_path / "huge.dcm"
    uid, expected = write_huge(source)
    out = tmp_path / "out"
    port = free_port()
    log = tmp_path / "scp.log"
    with log.open("w") as err:
        scp = subprocess.Popen(
            [DIMSE, "storescp", str(port), "--bind", LOOPBACK, "-od", str(out)], stderr=err
        )
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in log.read_text():
            assert scp.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        ae = AE("HUGESCU")
        ae.dimse_timeout = 300
        ae.add_requested_context(
            sop.MultiFrameGrayscaleByteSecondaryCaptureImageStorage, ExplicitVRLittleEndian
        )
        with ae.associate(LOOPBACK, port, ae_title="STORESCP") as assoc:
            status = assoc.send_c_store(source)
        assert int(status.Status) == 0x0000
        peak = status_kb(scp.pid, "VmHWM")
    finally:
        scp.send_signal(signal.SIGTERM)
        scp.wait(timeout=30)
    source.unlink()
    received = out / f"{uid}.dcm"
    assert [p.name for p in out.iterdir()] == [received.name], "no temporary file left"
    assert data_digest(received) == expected
    print(f"storescp peak RSS {peak / 1024:.1f} MiB for a {SIZE / 1e9:.0f} GB data set")
    assert peak < RSS_LIMIT_KB, f"storescp peaked at {peak / 1024:.1f} MiB"
