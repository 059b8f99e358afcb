"""C-STORE of files: write two small CT files, send them by path, save them on the SCP.

The SCU passes file paths to ``send_c_store``: the bytes after the File Meta Information
go out as they are when the file's transfer syntax was accepted. The SCP writes each
instance with ``event.encoded_dataset()`` (preamble + File Meta Information + the data set
bytes as received), without decoding it.

Run: python examples/store_files.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import AE, evt, sop
from dimse.evt import Event


def make_ct(patient: str) -> Dataset:
    """A tiny CT image (4x4 pixels) ready to be saved as a DICOM file."""
    ds = Dataset()
    ds.SOPClassUID = sop.CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = patient
    ds.PatientID = patient.split("^")[0]
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(4 * 4 * 2)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def on_store(event: Event, out_dir: Path) -> int:
    """EVT_C_STORE handler (``out_dir`` comes from the binding's extra arguments)."""
    assert event.request is not None  # always set for a C-STORE request
    uid = event.request.AffectedSOPInstanceUID
    path = out_dir / f"{uid}.dcm"
    path.write_bytes(event.encoded_dataset())
    print(f"SCP: saved {path.name} ({event.context.transfer_syntax[0]})")
    return 0x0000


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        src_dir = Path(tmp, "sent")
        out_dir = Path(tmp, "received")
        src_dir.mkdir()
        out_dir.mkdir()
        paths = []
        for name in ("DOE^JANE", "ROE^RICHARD"):
            ds = make_ct(name)
            path = src_dir / f"{ds.PatientID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)

        scp = AE("STORESCP")
        scp.add_supported_context(sop.CTImageStorage)
        server = scp.start_server(
            ("127.0.0.1", 0),
            block=False,
            evt_handlers=[(evt.EVT_C_STORE, on_store, [out_dir])],
        )
        assert server is not None
        try:
            scu = AE("STORESCU")
            scu.acse_timeout = scu.dimse_timeout = 10
            scu.add_requested_context(sop.CTImageStorage, ExplicitVRLittleEndian)
            port = server.server_address[1]
            with scu.associate("127.0.0.1", port, ae_title="STORESCP") as assoc:
                for path in paths:
                    status = assoc.send_c_store(path)
                    print(f"SCU: sent {path.name}: status 0x{status.Status:04X}")
        finally:
            server.shutdown()

        for path in sorted(out_dir.iterdir()):
            ds = dcmread(path)
            print(f"check: {path.name} holds {ds.PatientName}")
        print(f"received {len(list(out_dir.iterdir()))} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
