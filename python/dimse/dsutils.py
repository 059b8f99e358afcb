"""Encoding and decoding data sets with pydicom, in a given transfer syntax."""

from __future__ import annotations

import zlib
from io import BytesIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

__all__ = ["UNCOMPRESSED", "decode", "encode", "encode_file_meta"]

#: The transfer syntaxes pydicom can convert between without touching pixel data.
UNCOMPRESSED = frozenset(
    {
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
    }
)


def encode(ds: Dataset, transfer_syntax: str) -> bytes:
    """Encodes ``ds`` (without File Meta Information) in ``transfer_syntax``."""
    ts = UID(transfer_syntax)
    fp = DicomBytesIO()
    fp.is_little_endian = ts != ExplicitVRBigEndian
    fp.is_implicit_VR = ts == ImplicitVRLittleEndian
    write_dataset(fp, ds)
    data = fp.getvalue()
    if ts == DeflatedExplicitVRLittleEndian:
        # PS3.5 A.5: the data set is deflated (RFC 1951, no zlib header).
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
        if len(data) % 2:
            data += b"\0"  # PS3.5 A.5: one trailing NUL makes the length even
    return data


def decode(data: bytes, transfer_syntax: str) -> Dataset:
    """Decodes data set bytes encoded in ``transfer_syntax``."""
    ts = UID(transfer_syntax)
    if ts == DeflatedExplicitVRLittleEndian:
        data = zlib.decompress(data, -zlib.MAX_WBITS)
    implicit = ts == ImplicitVRLittleEndian
    little = ts != ExplicitVRBigEndian
    return read_dataset(BytesIO(data), implicit, little)


def encode_file_meta(meta: FileMetaDataset) -> bytes:
    """The 128-byte preamble, ``DICM`` and the File Meta Information (PS3.10 7.1)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    return fp.getvalue()
