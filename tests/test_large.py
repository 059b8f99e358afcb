"""A 200 MB data set end to end: sent from a file path (streamed from disk, the sender's
memory stays bounded), received whole by the SCP, bytes unchanged. The receiver holds the
data set in memory (a handler gets it as bytes); spooling to disk is the next step.

Sender and receiver each run in a process of their own so that each one's peak RSS
(``ru_maxrss``) can be read apart from the other's and from the test process's.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import dsutils, sop

SIZE = 200 * 1024 * 1024
CHUNK = 4 * 1024 * 1024

SCP = textwrap.dedent(
    """
    import hashlib, json, resource, sys
    from dimse import AE, evt, sop

    received = []

    def on_store(event):
        data = event.encoded_dataset(include_meta=False)
        received.append((len(data), hashlib.sha256(data).hexdigest()))
        return 0x0000

    ae = AE("BIGSCP")
    ae.maximum_pdu_size = int(sys.argv[1])
    ae.add_supported_context(sop.SecondaryCaptureImageStorage, "1.2.840.10008.1.2.1")
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])
    print(server.server_address[1], flush=True)
    sys.stdin.readline()  # the test says when to stop
    server.shutdown()
    print(json.dumps({"received": received,
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    """
)

SCU = textwrap.dedent(
    """
    import json, resource, sys, time
    from dimse import AE, sop

    ae = AE("BIGSCU")
    ae.dimse_timeout = ae.network_timeout = 60
    ae.add_requested_context(sop.SecondaryCaptureImageStorage, "1.2.840.10008.1.2.1")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with ae.associate("127.0.0.1", int(sys.argv[1]), max_pdu=int(sys.argv[3])) as assoc:
        status = assoc.send_c_store(sys.argv[2]).Status
    print(json.dumps({"status": status, "seconds": time.monotonic() - start,
                      "before_kb": before,
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    """
)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> tuple[Path, int, str]:
    """A Secondary Capture file whose data set is 200 MB (mostly Pixel Data), written a
    chunk at a time; returns its path, data set length and the data set's SHA-256."""
    path = tmp_path_factory.mktemp("large") / "big.dcm"
    ds = Dataset()
    ds.SOPClassUID = sop.SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "LARGE^DATASET"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    head = dsutils.encode(ds, ExplicitVRLittleEndian)
    # Pixel Data (7FE0,0010), OW, explicit VR little endian (PS3.5 7.1.2).
    pixel_len = SIZE - len(head) - 12
    element = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_len)
    digest = hashlib.sha256(head + element)
    block = bytes(range(256)) * (CHUNK // 256)
    with path.open("wb") as f:
        f.write(dsutils.encode_file_meta(meta) + head + element)
        left = pixel_len
        while left:
            piece = block[: min(left, CHUNK)]
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
    return path, SIZE, digest.hexdigest()


@pytest.mark.parametrize("max_pdu", [16384, 1048576])
def test_200_mb_from_a_file_path(big_file, max_pdu):
    path, size, digest = big_file
    scp = subprocess.Popen(
        [sys.executable, "-c", SCP, str(max_pdu)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert scp.stdout is not None
        port = int(scp.stdout.readline())
        scu = subprocess.run(
            [sys.executable, "-c", SCU, str(port), str(path), str(max_pdu)],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )
        sent = json.loads(scu.stdout)
        out, _ = scp.communicate("stop\n", timeout=30)
        got = json.loads(out.splitlines()[-1])
    finally:
        if scp.poll() is None:
            scp.kill()
            scp.wait(timeout=10)
    assert sent["status"] == 0
    assert got["received"] == [[size, digest]]
    mib = 1024
    # The sender streams: its peak grows by a few 1 MiB chunks, not by the 200 MB.
    grown = (sent["maxrss_kb"] - sent["before_kb"]) / mib
    assert grown < 48, f"the sender's peak RSS grew by {grown:.0f} MiB sending 200 MiB"
    # The receiver holds the received PDUs, then the data set joined in Rust, then the
    # handler's bytes object: at the peak two of these at once (2.2x to 3.1x the data set
    # measured, depending on how reads fell into buffers), never the whole chain.
    assert got["maxrss_kb"] / mib < 3.5 * size / 2**20 + 64, got
    print(
        f"max PDU {max_pdu}: {size / 2**20 / sent['seconds']:.0f} MiB/s, sender peak "
        f"{sent['maxrss_kb'] / mib:.0f} MiB, receiver peak {got['maxrss_kb'] / mib:.0f} MiB"
    )
