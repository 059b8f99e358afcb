"""C-STORE in both roles: ours against ours, DCMTK and pynetdicom."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

import dimse
from dimse import AE, evt, sop

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def ct(rows: int = 16, ts: str = ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop.CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "P1"
    ds.Modality = "CT"
    ds.Rows = ds.Columns = rows
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(256)) * (rows * rows * 2 // 256) or b"\0\0"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


@pytest.fixture
def store_server():
    servers = []

    def start(handler=None, transfer_syntaxes=None, **settings):
        ae = AE("STORESCP")
        for name, value in settings.items():
            setattr(ae, name, value)
        ae.add_supported_context(sop.CTImageStorage, transfer_syntaxes)
        ae.add_supported_context(sop.Verification)
        handlers = [(evt.EVT_C_STORE, handler)] if handler else []
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def scu(transfer_syntaxes=None) -> AE:
    ae = AE("STORESCU")
    ae.acse_timeout = ae.dimse_timeout = 10
    ae.add_requested_context(sop.CTImageStorage, transfer_syntaxes)
    return ae


@pytest.mark.parametrize(
    "ts", [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian]
)
def test_store_dataset_in_each_uncompressed_syntax(store_server, ts):
    received = []

    def handler(event):
        received.append(
            (
                event.context.transfer_syntax[0],
                event.dataset.SOPInstanceUID,
                event.dataset.PixelData,
                event.request.AffectedSOPInstanceUID,
                event.file_meta.TransferSyntaxUID,
            )
        )
        return 0x0000

    port = store_server(handler, transfer_syntaxes=[ts])
    ds = ct()
    with scu().associate("127.0.0.1", port) as assoc:
        status = assoc.send_c_store(ds)
    assert status.Status == 0
    ((got_ts, uid, pixels, req_uid, meta_ts),) = received
    assert got_ts == ts == meta_ts
    assert uid == req_uid == ds.SOPInstanceUID
    assert pixels == ds.PixelData


def test_store_file_sends_bytes_as_they_are(store_server, tmp_path):
    files = []

    def handler(event):
        path = tmp_path / f"{event.request.AffectedSOPInstanceUID}.dcm"
        path.write_bytes(event.encoded_dataset())
        files.append(path)
        return 0x0000

    port = store_server(handler)
    ds = ct()
    src = tmp_path / "src.dcm"
    ds.save_as(src, enforce_file_format=True)
    with scu([ExplicitVRLittleEndian]).associate("127.0.0.1", port) as assoc:
        assert assoc.send_c_store(str(src)).Status == 0
        assert assoc.send_c_store(src).Status == 0  # a PathLike too
    (first, _) = files
    written = dcmread(first)
    assert written.SOPInstanceUID == ds.SOPInstanceUID
    assert written.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert written.file_meta.ImplementationClassUID == dimse.IMPLEMENTATION_CLASS_UID
    assert written.file_meta.SourceApplicationEntityTitle == "STORESCU"
    assert written.PixelData == ds.PixelData
    # The data set bytes went through untouched: the file's data set equals the source's.
    src_raw = src.read_bytes()
    assert first.read_bytes().endswith(src_raw[len(src_raw) - len(ds.PixelData) - 200 :])


def test_store_file_converted_between_uncompressed_syntaxes(store_server, tmp_path):
    seen = []
    port = store_server(
        lambda e: seen.append(e.dataset.PatientName) or 0, [ImplicitVRLittleEndian]
    )
    src = tmp_path / "explicit.dcm"
    ct().save_as(src, enforce_file_format=True)
    with scu([ImplicitVRLittleEndian]).associate("127.0.0.1", port) as assoc:
        assert assoc.send_c_store(src).Status == 0
    assert seen == ["DOE^JOHN"]


def test_compressed_file_without_its_syntax_is_refused(store_server, tmp_path):
    port = store_server(lambda e: 0)
    ds = ct()
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([bytes(64)])  # the bytes need not be real RLE here
    ds["PixelData"].VR = "OB"
    src = tmp_path / "rle.dcm"
    ds.save_as(src, enforce_file_format=True)
    with scu([ExplicitVRLittleEndian]).associate("127.0.0.1", port) as assoc:
        with pytest.raises(dimse.NoAcceptedContext, match=RLELossless):
            assoc.send_c_store(src)


def test_handler_statuses_and_errors(store_server):
    calls = []

    def handler(event):
        calls.append(event.message_id)
        if len(calls) == 1:
            return 0xB000
        if len(calls) == 2:
            status = Dataset()
            status.Status = 0xA700
            status.ErrorComment = "disk full"
            return status
        raise OSError("no space")

    port = store_server(handler)
    with scu().associate("127.0.0.1", port) as assoc:
        assert assoc.send_c_store(ct()).Status == 0xB000
        full = assoc.send_c_store(ct())
        assert full.Status == 0xA700
        assert full.ErrorComment == "disk full"
        raised = assoc.send_c_store(ct())
        assert raised.Status == 0xC211
        assert "no space" in raised.ErrorComment
        assert raised.AffectedSOPInstanceUID
    assert calls == [1, 2, 3]


def test_no_handler_bound(store_server):
    port = store_server()
    with scu().associate("127.0.0.1", port) as assoc:
        status = assoc.send_c_store(ct())
    assert status.Status == 0xC211
    assert "EVT_C_STORE" in status.ErrorComment


def test_large_dataset_with_small_pdus(store_server):
    sizes = []
    port = store_server(lambda e: sizes.append(len(e.encoded_dataset(include_meta=False))) or 0)
    ds = ct(rows=512)  # 512 KiB of pixel data, in 4 KiB PDUs
    ae = scu()
    ae.maximum_pdu_size = 4096
    with ae.associate("127.0.0.1", port) as assoc:
        assert assoc.send_c_store(ds).Status == 0
    assert sizes[0] > 512 * 512 * 2


def dcmtk(tool: str) -> str:
    path = f"/usr/bin/{tool}"
    assert os.path.exists(path), f"DCMTK's {tool} is missing: apt-get install dcmtk"
    return path


def test_dcmtk_storescu_to_our_scp(store_server, tmp_path):
    received = []
    port = store_server(lambda e: received.append(e.dataset.SOPInstanceUID) or 0)
    paths = []
    for i in range(3):
        ds = ct()
        p = tmp_path / f"{i}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append((p, ds.SOPInstanceUID))
    out = subprocess.run(
        [
            dcmtk("storescu"),
            "-v",
            "-aec",
            "STORESCP",
            "127.0.0.1",
            str(port),
            *[str(p) for p, _ in paths],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=DCMTK_ENV,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert received == [uid for _, uid in paths]


def test_our_scu_to_dcmtk_storescp(tmp_path):
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outdir = tmp_path / "out"
    outdir.mkdir()
    proc = subprocess.Popen(
        [dcmtk("storescp"), "-od", str(outdir), "-uf", str(port)],
        env=DCMTK_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ds = ct()
        deadline = time.monotonic() + 10
        while True:
            assoc = scu().associate("127.0.0.1", port, ae_title="STORESCP")
            if assoc.is_established or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        with assoc:
            assert assoc.send_c_store(ds).Status == 0
        (written,) = list(outdir.iterdir())
        back = dcmread(written)
        assert back.SOPInstanceUID == ds.SOPInstanceUID
        assert back.PixelData == ds.PixelData
    finally:
        proc.kill()
        proc.wait()


def test_pynetdicom_scu_to_our_scp(store_server):
    from pynetdicom import AE as PynetdicomAE

    got = []
    port = store_server(lambda e: got.append(e.dataset.SOPInstanceUID) or 0)
    ae = PynetdicomAE("PYSCU")
    ae.add_requested_context(sop.CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP")
    assert assoc.is_established
    ds = ct()
    status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status == 0
    assert got == [ds.SOPInstanceUID]


def test_our_scu_to_pynetdicom_scp():
    from pynetdicom import AE as PynetdicomAE
    from pynetdicom import evt as pevt

    got = []
    done = threading.Event()

    def handle(event):
        got.append((event.dataset.SOPInstanceUID, event.dataset.PixelData))
        done.set()
        return 0x0000

    ae = PynetdicomAE("PYSCP")
    ae.add_supported_context(sop.CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(pevt.EVT_C_STORE, handle)]
    )
    try:
        ds = ct()
        with scu().associate("127.0.0.1", server.server_address[1], ae_title="PYSCP") as assoc:
            assert assoc.send_c_store(ds).Status == 0
        assert got == [(ds.SOPInstanceUID, ds.PixelData)]
    finally:
        ae.shutdown()
