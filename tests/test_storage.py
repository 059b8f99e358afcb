"""Native storage (``start_server(storage=FileStorage(...))``): C-STORE data sets written to
files in Rust, with the guarantees the module promises: complete-or-absent files, failure
statuses on write errors, names that never leave the folder."""

from __future__ import annotations

import contextlib
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dimse import AE, Association, _core, evt, sop
from dimse.exceptions import InvalidArgument, StorageFailed
from dimse.storage import FileStorage, StoredInstance
from peers import dcmtk_env, dcmtk_tool, free_port

LOOPBACK = "127.0.0.1"


def ct(pixels: int = 64, study: str | None = None) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop.CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "P1"
    ds.Modality = "CT"
    ds.BitsAllocated = 8
    ds.PixelData = bytes(range(256)) * (pixels // 256) + bytes(pixels % 256)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


@pytest.fixture
def storage_server():
    servers = []

    def start(storage: FileStorage, evt_handlers=None):
        ae = AE("STORESCP")
        ae.add_supported_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
        server = ae.start_server(
            (LOOPBACK, 0), block=False, storage=storage, evt_handlers=evt_handlers
        )
        servers.append(server)
        return server, server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def send(port: int, *datasets: Dataset) -> list[int]:
    ae = AE("STORESCU")
    ae.add_requested_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
    with ae.associate(LOOPBACK, port, ae_title="STORESCP") as assoc:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_files_hold_meta_and_the_dataset_as_sent(storage_server, tmp_path):
    seen: list[StoredInstance] = []
    _server, port = storage_server(FileStorage(tmp_path, on_stored=seen.append))
    ds = ct(1000)
    assert send(port, ds) == [0]
    (path,) = files(tmp_path)
    assert path == tmp_path / f"{ds.SOPInstanceUID}.dcm"
    back = dcmread(path)
    assert back.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert back.file_meta.SourceApplicationEntityTitle == "STORESCU"
    assert back.PixelData == ds.PixelData
    assert seen[0].path == path
    assert seen[0].calling_ae_title == "STORESCU"
    assert seen[0].assoc.requestor.ae_title == "STORESCU"
    # The data set bytes in the file are those on the wire: header offset + size = file.
    header = _core.read_file_meta(path)
    assert path.stat().st_size == header["data_offset"] + seen[0].size


def test_study_layout_and_replacement(storage_server, tmp_path):
    _server, port = storage_server(FileStorage(tmp_path, layout="study"))
    study = generate_uid()
    a, b = ct(study=study), ct(study=study)
    assert send(port, a, b, a) == [0, 0, 0]
    got = files(tmp_path)
    assert len(got) == 2, got
    assert {p.relative_to(tmp_path).parts[0] for p in got} == {study}
    assert tmp_path / study / a.SeriesInstanceUID / f"{a.SOPInstanceUID}.dcm" in got


def test_on_stored_decides_the_status(storage_server, tmp_path):
    answers = iter([0xB000, (0xA900, "not for us"), None])

    def on_stored(instance):
        return next(answers)

    _server, port = storage_server(FileStorage(tmp_path, on_stored=on_stored))
    assert send(port, ct(), ct(), ct()) == [0xB000, 0xA900, 0]


def test_on_stored_raising_is_a_failure_status(storage_server, tmp_path):
    def on_stored(instance):
        raise RuntimeError("index is down")

    _server, port = storage_server(FileStorage(tmp_path, on_stored=on_stored))
    assert send(port, ct()) == [0xC211]


def test_discard_writes_nothing(storage_server, tmp_path):
    _server, port = storage_server(FileStorage(tmp_path / "none", discard=True))
    assert send(port, ct(), ct()) == [0, 0]
    assert not (tmp_path / "none").exists()


def test_evt_c_store_handler_and_storage_exclude_each_other(storage_server, tmp_path):
    with pytest.raises(InvalidArgument, match="on_stored"):
        storage_server(FileStorage(tmp_path), evt_handlers=[(evt.EVT_C_STORE, lambda e: 0)])
    server, port = storage_server(FileStorage(tmp_path))
    with pytest.raises(InvalidArgument, match="on_stored"):
        server.bind(evt.EVT_C_STORE, lambda e: 0)
    assert evt.EVT_C_STORE not in {e for e in [evt.EVT_C_STORE] if server.get_handlers(e)}
    assert send(port, ct()) == [0]


def store_command(instance_uid: str) -> bytes:
    """A C-STORE-RQ command set (PS3.7 9.3.1.1) encoded by hand: the encoder refuses a
    bad UID, a peer need not."""

    def element(elem: int, value: bytes) -> bytes:
        if len(value) % 2:
            value += b"\0"
        return struct.pack("<HHI", 0, elem, len(value)) + value

    def us(v: int) -> bytes:
        return struct.pack("<H", v)

    body = b"".join(
        [
            element(0x0002, sop.CTImageStorage.encode()),
            element(0x0100, us(0x0001)),
            element(0x0110, us(7)),
            element(0x0700, us(0)),
            element(0x0800, us(0x0000)),
            element(0x1000, instance_uid.encode()),
        ]
    )
    return element(0x0000, struct.pack("<I", len(body))) + body


def raw_store(port: int, instance_uid: str, dataset: bytes) -> dict:
    """A C-STORE-RQ built by hand, so that its UID can be anything a peer may send."""
    ae = AE("STORESCU")
    ae.add_requested_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
    with ae.associate(LOOPBACK, port, ae_title="STORESCP") as assoc:
        (pc,) = assoc.accepted_contexts
        command = store_command(instance_uid)
        reply = assoc._core.request(pc.context_id, command, dataset, 10.0)
        return _core.decode_command_set(reply[2])


@pytest.mark.parametrize(
    ("uid", "status"),
    [
        ("../../../tmp/evil", 0xC210),  # not digits and dots: refused
        ("1..2", 0),  # digits and dots, but not a UID: stored under a digest
        ("1.2.", 0),
        ("..", 0),
    ],
)
def test_hostile_instance_uid_never_leaves_the_folder(storage_server, tmp_path, uid, status):
    out = tmp_path / "out"
    _server, port = storage_server(FileStorage(out))
    rsp = raw_store(port, uid, b"\x08\x00\x60\x00CS\x02\x00CT")
    assert rsp["Status"] == status
    if status:
        assert "ErrorComment" in rsp
        assert not out.exists() or files(out) == []
    else:
        (path,) = files(out)
        assert path.parent == out
        assert path.name.startswith("x")
    assert files(tmp_path) == files(out)


def test_odd_length_dataset_is_refused(storage_server, tmp_path):
    _server, port = storage_server(FileStorage(tmp_path))
    rsp = raw_store(port, "1.2.3", b"\x08\x00\x60\x00CS\x02\x00CT" + b"\x00")
    assert rsp["Status"] == 0xC210
    assert "odd length" in rsp["ErrorComment"]
    assert files(tmp_path) == []


def test_write_helper(tmp_path):
    storage = FileStorage(tmp_path, layout="flat")
    path = storage.write(sop.CTImageStorage, "1.2.3", ImplicitVRLittleEndian, b"", "ME")
    assert path == tmp_path / "1.2.3.dcm"
    assert dcmread(path).file_meta.SourceApplicationEntityTitle == "ME"
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(StorageFailed, match="cannot create folder"):
        FileStorage(blocker / "sub").write(sop.CTImageStorage, "1.2", ImplicitVRLittleEndian, b"")
    with pytest.raises(InvalidArgument, match="digits and dots"):
        storage.write(sop.CTImageStorage, "../x", ImplicitVRLittleEndian, b"")
    with pytest.raises(ValueError, match="layout"):
        FileStorage(tmp_path, layout="tree")  # type: ignore[arg-type]


# A file-size limit on the server's process: a write past it fails (EFBIG; Python ignores
# SIGXFSZ), as on a full disk. Run in a child so that the limit binds only the server.
_LIMITED_SERVER = """
import resource, sys, time
from pydicom.uid import ExplicitVRLittleEndian
from dimse import AE, sop
from dimse.storage import FileStorage
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
ae = AE("STORESCP")
ae.add_supported_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
server = ae.start_server(("127.0.0.1", 0), block=False, storage=FileStorage(sys.argv[1]))
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
"""


@contextlib.contextmanager
def child_server(script: str, out: Path) -> Iterator[Association]:
    """A storage SCP run by `script` in a child process (it prints its port and serves
    until its stdin closes), and an association with it; the child must exit cleanly."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        ae = AE("STORESCU")
        ae.add_requested_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
        with ae.associate(LOOPBACK, port, ae_title="STORESCP") as assoc:
            yield assoc
    finally:
        for pipe in (proc.stdin, proc.stdout):
            if pipe:
                pipe.close()
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_a_failed_write_is_out_of_resources_and_leaves_no_file(tmp_path):
    out = tmp_path / "out"
    small, big = ct(1000), ct(200_000)
    with child_server(_LIMITED_SERVER, out) as assoc:
        rsp = assoc.send_c_store(big)
        assert int(rsp.Status) == 0xA700
        assert "cannot write" in str(rsp.ErrorComment)
        assert int(assoc.send_c_store(small).Status) == 0
    assert [p.name for p in files(out)] == [f"{small.SOPInstanceUID}.dcm"]
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 64 * 1024


def test_storescp_app_with_dcmtk_storescu(tmp_path):
    """DCMTK's storescu -> ``dimse storescp``: the data sets arrive byte-identical."""
    sources = []
    for _ in range(3):
        ds = ct(5000)
        path = tmp_path / f"{ds.SOPInstanceUID}.src"
        ds.save_as(path, enforce_file_format=True)
        sources.append(path)
    out = tmp_path / "received"
    port = free_port()
    scp = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dimse"),
            "storescp",
            str(port),
            "--bind",
            LOOPBACK,
            "-od",
            str(out),
            "--layout",
            "study",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert scp.stderr is not None
        assert "listening" in scp.stderr.readline()
        sent = subprocess.run(
            [dcmtk_tool("storescu"), "-aec", "STORESCP", LOOPBACK, str(port)]
            + [str(s) for s in sources],
            env=dcmtk_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
    finally:
        scp.terminate()
        scp.wait(timeout=20)
        if scp.stderr:
            scp.stderr.close()
    assert scp.returncode == 0
    received = files(out)
    assert len(received) == 3
    for src in sources:
        a = _core.read_file_meta(src)
        (dst,) = [p for p in received if p.name == f"{a['media_storage_sop_instance_uid']}.dcm"]
        b = _core.read_file_meta(dst)
        assert src.read_bytes()[a["data_offset"] :] == dst.read_bytes()[b["data_offset"] :]
        assert b["source_application_entity_title"] == "STORESCU"
    assert not [p for p in out.rglob("*.part")]


def test_a_python_handler_gets_large_data_sets_spooled_to_a_file(tmp_path):
    """Above ``AE.stream_threshold`` a data set for a Python EVT_C_STORE handler is
    written to a file as it arrives (``event.dataset_path``), never held whole; the file
    goes away after the handler unless the handler moved it."""
    seen: list[tuple] = []

    def on_store(event):
        path = event.dataset_path
        exists = path is not None and path.exists()
        seen.append((path, exists, event.dataset.PatientID, len(event.encoded_dataset())))
        if event.dataset.PatientID == "KEEP":
            path.rename(tmp_path / "kept.dcm")
        return 0

    ae = AE("STORESCP")
    ae.stream_threshold = 64 * 1024
    ae.add_supported_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
    server = ae.start_server(
        (LOOPBACK, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        small, big, keep = ct(1000), ct(300_000), ct(300_000)
        keep.PatientID = "KEEP"
        assert send(server.server_address[1], small, big, keep) == [0, 0, 0]
    finally:
        server.shutdown()
    (p0, _, _, _), (p1, e1, id1, n1), (_, e2, id2, _) = seen
    assert p0 is None  # small: in memory, as before
    assert e1
    assert e2
    assert (id1, id2) == ("P1", "KEEP")
    assert n1 > 300_000  # the whole file: meta + data set
    assert not p1.exists()  # removed after the handler
    assert not p1.parent.exists()
    kept = dcmread(tmp_path / "kept.dcm")
    assert kept.PixelData == keep.PixelData


# Permission denied: the folder is not writable by the server's process. Root may write
# anywhere, so as root the child drops to nobody once its imports are done (the storage
# path runs in Rust and imports nothing later).
_UNPRIVILEGED_SERVER = """
import os, sys
from pydicom.uid import ExplicitVRLittleEndian
from dimse import AE, sop
from dimse.storage import FileStorage
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)
ae = AE("STORESCP")
ae.add_supported_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
server = ae.start_server(("127.0.0.1", 0), block=False, storage=FileStorage(sys.argv[1]))
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
"""


def test_permission_denied_is_out_of_resources_and_leaves_no_file():
    # Outside pytest's tmp_path, whose parents only root may enter.
    top = Path(tempfile.mkdtemp(prefix="dimse-perm-"))
    top.chmod(0o755)
    out = top / "out"
    out.mkdir()
    # Not writable by anyone but root (who is no longer root in the child).
    out.chmod(0o555)
    try:
        with child_server(_UNPRIVILEGED_SERVER, out) as assoc:
            rsp = assoc.send_c_store(ct(1000))
            assert int(rsp.Status) == 0xA700
            assert "ermission denied" in str(rsp.ErrorComment), rsp.ErrorComment
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)
        shutil.rmtree(top)
