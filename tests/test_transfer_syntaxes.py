"""Transfer syntaxes end to end: files compressed by DCMTK (RLE, JPEG, JPEG-LS) and
converted between the uncompressed syntaxes, sent by our SCU and DCMTK's storescu, received
by our SCP and DCMTK's storescp; the data set bytes must arrive untouched. Plus C-STOREs
whose data set is 0 bytes or 1 byte long (hand-built requests).

Every DCMTK tool runs by absolute path (``peers.dcmtk_tool``); a missing one fails.
"""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

import dimse
from dimse import _core, evt, sop
from peers import LOOPBACK, PEER_TIMEOUT, DcmtkServer, our_ae, run_dcmtk

SC = sop.SecondaryCaptureImageStorage

#: transfer syntax -> the DCMTK command (tool, options) that makes it from the source file.
CONVERSIONS: dict[str, tuple[str, ...]] = {
    ExplicitVRLittleEndian: (),  # the pydicom-written source itself
    ImplicitVRLittleEndian: ("dcmconv", "+ti"),
    ExplicitVRBigEndian: ("dcmconv", "+tb"),
    DeflatedExplicitVRLittleEndian: ("dcmconv", "+td"),
    RLELossless: ("dcmcrle",),
    JPEGBaseline8Bit: ("dcmcjpeg", "+eb"),
    JPEGLossless: ("dcmcjpeg", "+el"),
    JPEGLosslessSV1: ("dcmcjpeg", "+e1"),
    JPEGLSLossless: ("dcmcjpls", "+el"),
}
UNCOMPRESSED = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
]
COMPRESSED = [RLELossless, JPEGBaseline8Bit, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless]
ALL = UNCOMPRESSED + COMPRESSED
#: Readable test ids.
IDS = {
    ExplicitVRLittleEndian: "explicit-le",
    ImplicitVRLittleEndian: "implicit-le",
    ExplicitVRBigEndian: "explicit-be",
    DeflatedExplicitVRLittleEndian: "deflated",
    RLELossless: "rle",
    JPEGBaseline8Bit: "jpeg-baseline",
    JPEGLossless: "jpeg-lossless-p14",
    JPEGLosslessSV1: "jpeg-lossless-sv1",
    JPEGLSLossless: "jpeg-ls-lossless",
}


def each(syntaxes: list[str]):
    return pytest.mark.parametrize("ts", syntaxes, ids=[IDS[ts] for ts in syntaxes])


def source_image() -> Dataset:
    """An 8-bit monochrome Secondary Capture image (every codec above takes 8 bits)."""
    ds = Dataset()
    ds.SOPClassUID = SC
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "SYNTAX^TEST"
    ds.PatientID = "TS1"
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.Rows = 32
    ds.Columns = 48
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes((x * 5 + y * 3) % 256 for y in range(32) for x in range(48))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def split_file(raw: bytes) -> tuple[bytes, bytes]:
    """(File Meta Information, data set) of a DICOM file, parsed here by hand (PS3.10 7.1:
    128-byte preamble, "DICM", then group 0002 whose length (0002,0000) UL comes first),
    independently of dimse's own file meta reader."""
    assert raw[128:132] == b"DICM"
    group, element, vr, length = struct.unpack("<HH2sH", raw[132:140])
    assert (group, element, vr, length) == (2, 0, b"UL", 4)
    (group_length,) = struct.unpack("<I", raw[140:144])
    end = 144 + group_length
    return raw[:end], raw[end:]


def dataset_bytes(path: Path) -> bytes:
    return split_file(path.read_bytes())[1]


def even(data: bytes) -> bytes:
    """PS3.5 A.5: "If the Deflate algorithm produces an odd number of bytes then a single
    trailing NULL byte shall be added after the last byte of the deflated bit stream"."""
    return data + b"\x00" if len(data) % 2 else data


def wire_bytes(path: Path, ts: str) -> bytes:
    """The data set bytes a C-STORE of the file must carry: the file's, as they are, except
    that a deflated data set of odd length gets its trailing NULL (PS3.5 A.5; DCMTK's
    dcmconv writes deflated files without it, DCMTK's storescu adds it when sending). The
    other syntaxes' data sets are even by construction (PS3.5 7.1: even value lengths)."""
    data = dataset_bytes(path)
    return even(data) if ts == DeflatedExplicitVRLittleEndian else data


def dcmtk_profile(path: Path, ts: str) -> Path:
    """A DCMTK association negotiation profile ("Test") for storescu/storescp ``-xf``:
    Secondary Capture in ``ts`` only, Verification uncompressed (format: DCMTK's
    etc/dcmtk/storescu.cfg)."""
    path.write_text(
        f"""\
[[TransferSyntaxes]]
[Wanted]
TransferSyntax1 = {ts}
[Plain]
TransferSyntax1 = {ExplicitVRLittleEndian}
TransferSyntax2 = {ImplicitVRLittleEndian}

[[PresentationContexts]]
[Contexts]
PresentationContext1 = {SC}\\Wanted
PresentationContext2 = {sop.Verification}\\Plain

[[Profiles]]
[Test]
PresentationContexts = Contexts
"""
    )
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The source image in every transfer syntax, made by DCMTK's converters.

    The source is chosen so that DCMTK's deflated file holds an odd-length deflated stream
    (dcmconv does not pad it, see ``wire_bytes``): the case that needs care, every run
    (the parity otherwise depends on the random UIDs)."""
    base = tmp_path_factory.mktemp("syntaxes")
    src = base / "source.dcm"
    deflated = base / f"{IDS[DeflatedExplicitVRLittleEndian]}.dcm"
    for attempt in range(50):
        image = source_image()
        image.PatientID = f"TS{attempt}"
        image.save_as(src, enforce_file_format=True)
        done = run_dcmtk("dcmconv", "+td", str(src), str(deflated))
        assert done.returncode == 0, done.stdout
        if len(dataset_bytes(deflated)) % 2:
            break
    else:
        raise AssertionError("dcmconv +td made no odd-length deflated data set in 50 tries")
    out: dict[str, Path] = {ExplicitVRLittleEndian: src, DeflatedExplicitVRLittleEndian: deflated}
    for ts, command in CONVERSIONS.items():
        if ts not in out:
            tool, *options = command
            path = base / f"{IDS[ts]}.dcm"
            done = run_dcmtk(tool, *options, str(src), str(path))
            assert done.returncode == 0, f"{tool} {options}: {done.stdout}"
            out[ts] = path
    for ts, path in out.items():
        # The converters really made what we test with.
        assert dcmread(path).file_meta.TransferSyntaxUID == ts, path
    return out


@pytest.fixture
def our_scp(request):
    """Starts our Storage SCP for SC images in the given transfer syntaxes only; returns
    (port, received) with received a list of (context transfer syntax, data set bytes,
    the file our SCP would write)."""

    def start(transfer_syntaxes: list[str]):
        received: list[tuple[str, bytes, bytes]] = []

        def on_store(event):
            received.append(
                (
                    event.context.transfer_syntax[0],
                    event.encoded_dataset(include_meta=False),
                    event.encoded_dataset(),
                )
            )
            return 0x0000

        ae = our_ae("OURSCP")
        ae.add_supported_context(SC, transfer_syntaxes)
        ae.add_supported_context(sop.Verification)
        server = ae.start_server(
            (LOOPBACK, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
        )
        request.addfinalizer(server.shutdown)
        return server.server_address[1], received

    return start


def scu(transfer_syntaxes: list[str]) -> dimse.AE:
    ae = our_ae("OURSCU")
    ae.add_requested_context(SC, transfer_syntaxes)
    ae.add_requested_context(sop.Verification)
    return ae


# -- our SCU -> our SCP --------------------------------------------------------------------


@each(ALL)
def test_our_scu_to_our_scp_sends_the_file_data_set_as_is(files, our_scp, ts):
    path = files[ts]
    port, received = our_scp([ts])
    with scu([ts]).associate(LOOPBACK, port, ae_title="OURSCP") as assoc:
        (accepted,) = [pc for pc in assoc.accepted_contexts if pc.abstract_syntax == SC]
        assert accepted.transfer_syntax == [ts]
        assert assoc.send_c_store(path).Status == 0x0000
    ((context_ts, data, written),) = received
    assert context_ts == ts
    expected = wire_bytes(path, ts)
    # Byte for byte, never re-encoded (a deflated stream padded to even length).
    assert data == expected, (
        f"{len(data)} bytes sent, {len(expected)} expected; "
        f"the file holds {len(dataset_bytes(path))}"
    )
    # The file our SCP writes from it is the same instance in the same syntax.
    ours = dcmread(BytesIO(written))
    theirs = dcmread(path)
    assert ours.file_meta.TransferSyntaxUID == ts
    assert ours.SOPInstanceUID == theirs.SOPInstanceUID
    assert ours.PixelData == theirs.PixelData
    assert split_file(written)[1] == data


def test_our_scp_picks_the_files_syntax_among_several(files, our_scp):
    # The SCP supports every syntax; the SCU proposes one context per syntax: each file
    # goes on the context of its own syntax, untouched. (The deflated file is left out: its
    # odd-length stream has its own test above.)
    syntaxes = [ts for ts in ALL if ts != DeflatedExplicitVRLittleEndian]
    port, received = our_scp(syntaxes)
    ae = our_ae("OURSCU")
    for ts in syntaxes:
        ae.add_requested_context(SC, [ts])
    with ae.associate(LOOPBACK, port, ae_title="OURSCP") as assoc:
        accepted = {pc.transfer_syntax[0] for pc in assoc.accepted_contexts}
        assert accepted == set(syntaxes)
        for ts in syntaxes:
            assert assoc.send_c_store(files[ts]).Status == 0x0000
    assert [(ts, data) for ts, data, _ in received] == [
        (ts, dataset_bytes(files[ts])) for ts in syntaxes
    ]


def store_or_show_log(assoc: dimse.Association, what, peer: DcmtkServer) -> Dataset:
    """send_c_store; an abort by DCMTK fails the test with the reason from its log."""
    try:
        return assoc.send_c_store(what)
    except dimse.AssociationAborted as e:
        errors = [line for line in peer.output().splitlines() if line.startswith(("E:", "F:"))]
        pytest.fail(f"{e}; storescp says: {errors}")


# -- our SCU -> DCMTK storescp ----------------------------------------------------------------


@each(ALL)
def test_our_scu_to_dcmtk_storescp(files, our_scp, tmp_path, request, ts):
    path = files[ts]
    out = tmp_path / "storescp"
    out.mkdir()
    # -xf: accept SC in this syntax only (storescp's +xa, "accept all supported transfer
    # syntaxes", leaves JPEG Lossless process 14 out); +B: write the data set exactly as
    # received (so the written file's data set is the bytes on the wire).
    profile = dcmtk_profile(tmp_path / "profile.cfg", ts)
    peer = DcmtkServer(
        "storescp",
        ["-d", "-xf", str(profile), "Test", "+B", "-od", str(out)],
        tmp_path / "log.txt",
    )
    request.addfinalizer(peer.stop)
    with scu([ts]).associate(LOOPBACK, peer.port, ae_title="STORESCP") as assoc:
        (accepted,) = [pc for pc in assoc.accepted_contexts if pc.abstract_syntax == SC]
        assert accepted.transfer_syntax == [ts]
        status = store_or_show_log(assoc, path, peer)
    assert status.Status == 0x0000, peer.output()[-3000:]
    (written,) = list(out.iterdir())
    assert dataset_bytes(written) == wire_bytes(path, ts)
    theirs = dcmread(written)
    assert theirs.file_meta.TransferSyntaxUID == ts
    assert theirs.file_meta.SourceApplicationEntityTitle == "OURSCU"

    # The file our SCP writes for the same C-STORE has the same data set as DCMTK's.
    port, received = our_scp([ts])
    with scu([ts]).associate(LOOPBACK, port, ae_title="OURSCP") as assoc:
        assert assoc.send_c_store(path).Status == 0x0000
    ((_, _, ours),) = received
    assert split_file(ours)[1] == dataset_bytes(written)
    ours_ds = dcmread(BytesIO(ours))
    for keyword in (
        "TransferSyntaxUID",
        "MediaStorageSOPClassUID",
        "MediaStorageSOPInstanceUID",
    ):
        assert ours_ds.file_meta[keyword].value == theirs.file_meta[keyword].value, keyword
    assert peer.is_running()


# -- DCMTK storescu -> our SCP ----------------------------------------------------------------


@each(ALL)
def test_dcmtk_storescu_to_our_scp(files, our_scp, tmp_path, ts):
    path = files[ts]
    port, received = our_scp([ts])  # our SCP accepts this syntax only
    timeouts = ("-to", PEER_TIMEOUT, "-ta", PEER_TIMEOUT, "-td", PEER_TIMEOUT)
    # -xf: propose SC in the file's own syntax (storescu proposes only uncompressed syntaxes
    # by default, and has no option for JPEG Lossless process 14).
    profile = dcmtk_profile(tmp_path / "profile.cfg", ts)
    proc = run_dcmtk(
        "storescu",
        "-v",
        "-xf",
        str(profile),
        "Test",
        *timeouts,
        "-aec",
        "OURSCP",
        LOOPBACK,
        port,
        str(path),
    )
    assert proc.returncode == 0, proc.stdout
    assert "Received Store Response (Success)" in proc.stdout, proc.stdout
    ((context_ts, data, _),) = received
    assert context_ts == ts
    assert data == wire_bytes(path, ts)


# -- Deflated Explicit VR Little Endian: the odd-length deflated stream ---------------------


def odd_deflating_image() -> tuple[Dataset, bytes]:
    """An image whose Explicit VR Little Endian encoding deflates (zlib, raw RFC 1951
    stream) to an odd number of bytes, with that encoding."""
    for i in range(200):
        ds = source_image()
        ds.PatientID = f"DEFLATE{i}"
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = False
        write_dataset(fp, ds)
        raw = fp.getvalue()
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        if len(compressor.compress(raw) + compressor.flush()) % 2:
            return ds, raw
    raise AssertionError("no odd-length deflated stream in 200 tries")


def inflate(data: bytes) -> bytes:
    """Inflates a deflated data set, checking that at most one NULL pad byte follows the
    end of the stream."""
    inflater = zlib.decompressobj(wbits=-zlib.MAX_WBITS)
    raw = inflater.decompress(data)
    assert inflater.eof
    assert inflater.unused_data in (b"", b"\x00")
    return raw


def test_deflated_dataset_is_sent_even(our_scp):
    # A pydicom Dataset sent on a Deflated context is deflated by us: an odd-length
    # stream must get its trailing NULL (PS3.5 A.5).
    ds, raw = odd_deflating_image()
    port, received = our_scp([DeflatedExplicitVRLittleEndian])
    with scu([DeflatedExplicitVRLittleEndian]).associate(
        LOOPBACK, port, ae_title="OURSCP"
    ) as assoc:
        assert assoc.send_c_store(ds).Status == 0x0000
    ((context_ts, data, _),) = received
    assert context_ts == DeflatedExplicitVRLittleEndian
    assert inflate(data) == raw
    assert len(data) % 2 == 0, f"the deflated data set is {len(data)} bytes long (odd)"


def test_deflated_dataset_to_dcmtk_storescp(tmp_path, request):
    # DCMTK refuses an odd-length P-DATA fragment ("DIMSE: Odd Fragment Length") and aborts.
    ds, raw = odd_deflating_image()
    out = tmp_path / "storescp"
    out.mkdir()
    profile = dcmtk_profile(tmp_path / "profile.cfg", DeflatedExplicitVRLittleEndian)
    peer = DcmtkServer(
        "storescp",
        ["-d", "-xf", str(profile), "Test", "+B", "-od", str(out)],
        tmp_path / "log.txt",
    )
    request.addfinalizer(peer.stop)
    with scu([DeflatedExplicitVRLittleEndian]).associate(
        LOOPBACK, peer.port, ae_title="STORESCP"
    ) as assoc:
        status = store_or_show_log(assoc, ds, peer)
    assert status.Status == 0x0000, peer.output()[-2000:]
    (written,) = list(out.iterdir())
    assert inflate(dataset_bytes(written)) == raw


# -- a compressed file the peer cannot take -----------------------------------------------------


@each(COMPRESSED)
def test_compressed_file_when_only_uncompressed_accepted(files, our_scp, ts):
    port, received = our_scp([ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    # We propose the file's syntax and an uncompressed one; the SCP accepts the latter.
    with scu([ts, ExplicitVRLittleEndian]).associate(LOOPBACK, port, ae_title="OURSCP") as assoc:
        (accepted,) = [pc for pc in assoc.accepted_contexts if pc.abstract_syntax == SC]
        assert accepted.transfer_syntax == [ExplicitVRLittleEndian]
        with pytest.raises(dimse.NoAcceptedContext) as info:
            assoc.send_c_store(files[ts])
        message = str(info.value)
        assert ts in message  # names the file's syntax...
        assert ExplicitVRLittleEndian in message  # ...what was accepted...
        assert "decompress" in message  # ...and what to do
        # Nothing was sent; the association goes on and carries an uncompressed file.
        assert received == []
        assert assoc.send_c_store(files[ExplicitVRLittleEndian]).Status == 0x0000
        assert assoc.send_c_echo().Status == 0x0000
    assert len(received) == 1


def test_compressed_dataset_object_when_only_uncompressed_accepted(files, our_scp):
    # The same refusal for a pydicom Dataset read from the compressed file.
    port, received = our_scp([ExplicitVRLittleEndian])
    ds = dcmread(files[RLELossless])
    with scu([ExplicitVRLittleEndian]).associate(LOOPBACK, port, ae_title="OURSCP") as assoc:
        with pytest.raises(dimse.NoAcceptedContext, match=RLELossless):
            assoc.send_c_store(ds)
        assert assoc.send_c_echo().Status == 0x0000
    assert received == []


# -- C-STOREs with a 0-byte and a 1-byte data set -----------------------------------------
#
# PS3.5 7.1: a data element is an 8-byte (implicit VR, or explicit VR with a 2-byte length)
# or 12-byte header and a value whose length is even (PS3.5 7.1.1: Value Length "shall be
# an even number"), so an encoded data set is a sequence of even-length pieces: 0 bytes (no
# element) is a valid encoding, an odd length never is. The DIMSE message itself is well
# formed in both cases (PS3.7 9.3.1.1: a C-STORE-RQ with Command Data Set Type "present",
# then the data set as P-DATA fragments).


def raw_store(port: int, data: bytes) -> tuple:
    """Sends one C-STORE-RQ whose data set is ``data`` exactly, on the lowest level the
    package has (the core association: command and data set bytes as given, fragmented
    into P-DATA-TF PDUs); returns the core's event: ("message", context ID, command, data)
    for a response, or how the association ended."""
    ae = our_ae("RAWSCU")
    ae.add_requested_context(SC, [ExplicitVRLittleEndian])
    assoc = ae.associate(LOOPBACK, port, ae_title="OURSCP")
    assert assoc.is_established, assoc.error
    (pc,) = assoc.accepted_contexts
    command = _core.encode_message(
        {
            "type": "C-STORE-RQ",
            "affected_sop_class_uid": SC,
            "message_id": 77,
            "priority": "Low",
            "affected_sop_instance_uid": "1.2.826.0.1.3680043.2.1143.77",
        },
        has_dataset=True,
    )
    # On the wire, the data set is one PDV with exactly these bytes (PS3.8 E.2: message
    # control header 0x02, data set and last fragment).
    last = _core.fragment(pc.context_id, command, data, 16384)[-1]
    assert struct.unpack(">I", last[6:10])[0] == 2 + len(data)
    assert last[10:12] == bytes([pc.context_id, 0x02])
    assert last[12:] == data
    core = assoc._require()
    try:
        # Bounded: a DimseTimeout (the test fails) if no response comes.
        event = core.request(pc.context_id, command, data, PEER_TIMEOUT)
    except dimse.AssociationAborted as e:
        return ("aborted", str(e))
    if event[0] == "message":
        assoc.release()
    else:
        assoc.abort()
    return event


@pytest.fixture
def odd_scp():
    """Our SCP with a typical handler: it records the bytes and the decoded data set, and
    answers A900 (Data Set does not match SOP Class, PS3.4 B.2.3) when the data set has no
    SOP Instance UID."""
    calls: list[tuple[bytes, Dataset | Exception]] = []

    def on_store(event):
        raw = event.encoded_dataset(include_meta=False)
        try:
            ds = event.dataset
        except Exception as e:
            calls.append((raw, e))
            raise
        calls.append((raw, ds))
        if "SOPInstanceUID" not in ds:
            status = Dataset()
            status.Status = 0xA900
            status.ErrorComment = "no SOP Instance UID in the data set"
            return status
        return 0x0000

    ae = our_ae("OURSCP")
    ae.add_supported_context(SC, [ExplicitVRLittleEndian])
    ae.add_supported_context(sop.Verification)
    server = ae.start_server(
        (LOOPBACK, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    yield server.server_address[1], calls
    server.shutdown()


def still_serving(port: int) -> None:
    """The server goes on: a new association stores a normal instance and echoes."""
    ae = scu([ExplicitVRLittleEndian])
    with ae.associate(LOOPBACK, port, ae_title="OURSCP") as assoc:
        assert assoc.send_c_store(source_image()).Status == 0x0000
        assert assoc.send_c_echo().Status == 0x0000


def test_zero_byte_data_set(odd_scp):
    # Observed: the SCP hands the empty data set to the handler (0 bytes, decoded as an
    # empty Dataset) and answers with the handler's status, here A900 with its
    # ErrorComment. Correct: 0 bytes is a valid (even, empty) encoding and the message is
    # well formed; whether an empty instance is acceptable is the Storage SCP's decision
    # (PS3.4 B.2.3: A900 / Cxxx), not the DIMSE layer's.
    port, calls = odd_scp
    event = raw_store(port, b"")
    assert event[0] == "message", event
    response = _core.decode_command_set(event[2])
    assert response["MessageIDBeingRespondedTo"] == 77
    assert response["Status"] == 0xA900
    assert response["ErrorComment"] == "no SOP Instance UID in the data set"
    ((raw, ds),) = calls
    assert raw == b""
    assert isinstance(ds, Dataset)
    assert len(ds) == 0
    still_serving(port)


ODD = [
    b"\x00",
    # A valid data set (Patient's Name, explicit VR LE) and one stray byte: 17 bytes.
    struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 8) + b"DOE^JOHN" + b"\x00",
]


@pytest.mark.parametrize("data", ODD, ids=["one-byte", "valid-plus-one-byte"])
def test_odd_length_data_set_gets_an_answer(odd_scp, data):
    # Whatever the SCP makes of it, the request gets a clear outcome: a response on the same
    # association, or an A-ABORT (as DCMTK does: "DIMSE: Odd Fragment Length"); no hang (the
    # wait is bounded), no crash, and the server goes on serving.
    port, calls = odd_scp
    event = raw_store(port, data)
    assert event[0] in ("message", "aborted"), event
    if event[0] == "message":
        response = _core.decode_command_set(event[2])
        assert response["MessageIDBeingRespondedTo"] == 77
    assert all(raw == data for raw, _ in calls)  # the bytes as received, if handed over
    still_serving(port)


@pytest.mark.parametrize("data", ODD, ids=["one-byte", "valid-plus-one-byte"])
def test_odd_length_data_set_is_not_decoded_as_valid(odd_scp, data):
    # An odd-length data set cannot be a valid encoding (PS3.5 7.1, above). Decoding it must
    # not silently drop the stray byte and hand the handler a Dataset as if nothing were
    # wrong. Acceptable: the SCP refuses it before the handler (a failure status, e.g.
    # C000-CFFF "Cannot understand", with an ErrorComment; or an A-ABORT, as DCMTK does),
    # or ``event.dataset`` raises, so that the handler fails and the SCP answers C211 with
    # an ErrorComment.
    port, calls = odd_scp
    event = raw_store(port, data)
    decoded = [
        f"a Dataset of {len(ds)} element(s) {ds!r}" for _, ds in calls if isinstance(ds, Dataset)
    ]
    assert decoded == [], (
        f"an odd-length data set ({len(data)} bytes) was decoded without error as "
        f"{decoded}; the SCP answered {event!r}"
    )
    if event[0] == "message":
        response = _core.decode_command_set(event[2])
        assert response["Status"] & 0xF000 in (0xA000, 0xC000), hex(response["Status"])
        assert response.get("ErrorComment")
    else:
        assert event[0] == "aborted", event
    still_serving(port)
