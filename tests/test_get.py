"""C-GET in both roles: sub-operations as C-STOREs on the same association, counters,
failures, cancel; against ours and pynetdicom."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import dimse
from dimse import AE, build_role, evt, sop

GET = sop.StudyRootQueryRetrieveInformationModelGet
CT = sop.CTImageStorage


def instance(i: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = f"DOE^{i}"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


@pytest.fixture
def get_server():
    servers = []

    def start(handler):
        ae = AE("GETSCP")
        ae.add_supported_context(GET)
        ae.add_supported_context(CT, scp_role=True, scu_role=True)
        server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_GET, handler)]
        )
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def query() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = "1.2.3"
    return ds


def getscu(store_handler) -> tuple[AE, dict]:
    ae = AE("GETSCU")
    ae.acse_timeout = ae.dimse_timeout = 10
    ae.add_requested_context(GET)
    ae.add_requested_context(CT)
    kwargs = {
        "ext_neg": [build_role(CT, scp_role=True)],
        "evt_handlers": [(evt.EVT_C_STORE, store_handler)],
    }
    return ae, kwargs


def test_get_delivers_every_instance(get_server):
    instances = [instance(i) for i in range(5)]

    def handler(event):
        assert event.identifier.StudyInstanceUID == "1.2.3"
        yield len(instances)
        for ds in instances:
            yield 0xFF00, ds

    port = get_server(handler)
    received = []
    ae, kwargs = getscu(lambda e: received.append(e.dataset.SOPInstanceUID) or 0)
    with ae.associate("127.0.0.1", port, **kwargs) as assoc:
        responses = list(assoc.send_c_get(query(), "S"))
    statuses = [s.Status for s, _ in responses]
    assert statuses == [0xFF00] * 5 + [0x0000]
    assert [s.NumberOfRemainingSuboperations for s, _ in responses[:-1]] == [4, 3, 2, 1, 0]
    assert responses[-1][0].NumberOfCompletedSuboperations == 5
    assert received == [ds.SOPInstanceUID for ds in instances]


def test_get_sub_operation_failures(get_server):
    instances = [instance(i) for i in range(3)]

    def handler(event):
        yield 3
        for ds in instances:
            yield 0xFF00, ds

    port = get_server(handler)
    calls = []

    def store(event):
        calls.append(event.dataset.PatientName)
        return 0xA700 if len(calls) == 2 else 0x0000

    ae, kwargs = getscu(store)
    with ae.associate("127.0.0.1", port, **kwargs) as assoc:
        responses = list(assoc.send_c_get(query(), "S"))
    final, identifier = responses[-1]
    assert final.Status == 0xB000
    assert final.NumberOfCompletedSuboperations == 2
    assert final.NumberOfFailedSuboperations == 1
    assert identifier.FailedSOPInstanceUIDList == instances[1].SOPInstanceUID


def test_get_without_role_selection_fails_the_sub_operations(get_server):
    def handler(event):
        yield 1
        yield 0xFF00, instance(0)

    port = get_server(handler)
    ae = AE("GETSCU")
    ae.add_requested_context(GET)
    ae.add_requested_context(CT)
    with ae.associate("127.0.0.1", port) as assoc:
        responses = list(assoc.send_c_get(query(), "S"))
    assert responses[-1][0].Status == 0xB000
    assert responses[-1][0].NumberOfFailedSuboperations == 1


def test_pynetdicom_getscu_against_ours(get_server):
    from pynetdicom import AE as PynetdicomAE
    from pynetdicom import build_role as pn_build_role
    from pynetdicom import evt as pevt

    instances = [instance(i) for i in range(3)]

    def handler(event):
        yield 3
        for ds in instances:
            yield 0xFF00, ds

    port = get_server(handler)
    got = []

    def on_store(event):
        got.append(event.dataset.SOPInstanceUID)
        return 0x0000

    ae = PynetdicomAE("PYSCU")
    ae.add_requested_context(GET)
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    assoc = ae.associate(
        "127.0.0.1",
        port,
        ae_title="GETSCP",
        ext_neg=[pn_build_role(CT, scp_role=True)],
        evt_handlers=[(pevt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    try:
        statuses = [s.Status for s, _ in assoc.send_c_get(query(), GET)]
    finally:
        assoc.release()
    assert statuses[-1] == 0
    assert got == [ds.SOPInstanceUID for ds in instances]


def test_our_getscu_against_pynetdicom():
    from pynetdicom import AE as PynetdicomAE
    from pynetdicom import evt as pevt

    instances = [instance(i) for i in range(3)]

    def handle(event):
        yield 3
        for ds in instances:
            yield 0xFF00, ds

    scp = PynetdicomAE("PYSCP")
    scp.add_supported_context(GET)
    scp.add_supported_context(CT, ExplicitVRLittleEndian, scu_role=True, scp_role=True)
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(pevt.EVT_C_GET, handle)]
    )
    try:
        received = []
        ae, kwargs = getscu(lambda e: received.append(e.dataset.SOPInstanceUID) or 0)
        with ae.associate("127.0.0.1", server.server_address[1], ae_title="PYSCP", **kwargs) as a:
            statuses = [s.Status for s, _ in a.send_c_get(query(), "S")]
        assert statuses[-1] == 0
        assert received == [ds.SOPInstanceUID for ds in instances]
    finally:
        scp.shutdown()


def test_dcmtk_getscu_against_ours(get_server, tmp_path):
    import os
    import subprocess

    instances = [instance(i) for i in range(3)]

    def handler(event):
        yield len(instances)
        for ds in instances:
            yield 0xFF00, ds

    port = get_server(handler)
    getscu = "/usr/bin/getscu"
    assert os.path.exists(getscu), "DCMTK's getscu is missing: apt-get install dcmtk"
    out = subprocess.run(
        [
            getscu,
            "-v",
            "-S",
            "-aec",
            "GETSCP",
            "-od",
            str(tmp_path),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID=1.2.3",
            "127.0.0.1",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    from pydicom import dcmread

    written = sorted(str(dcmread(p).SOPInstanceUID) for p in tmp_path.iterdir())
    assert written == sorted(ds.SOPInstanceUID for ds in instances)


def test_get_cancel(get_server):
    """C-CANCEL during a C-GET: the SCP stops its sub-operations and ends with 0xFE00 and
    the counters so far; the association goes on (a second C-GET completes)."""
    instances = [instance(i) for i in range(40)]
    seen_cancel = []

    def handler(event):
        yield len(instances)
        for ds in instances:
            seen_cancel.append(event.is_cancelled)
            yield 0xFF00, ds

    port = get_server(handler)
    ae, kwargs = getscu(lambda e: 0)
    with ae.associate("127.0.0.1", port, **kwargs) as assoc:
        responses = []
        for status, identifier in assoc.send_c_get(query(), "S", msg_id=7):
            responses.append((status, identifier))
            if len(responses) == 2:
                assoc.send_c_cancel(7, query_model="S")
        final = responses[-1][0]
        assert final.Status == 0xFE00
        done = final.NumberOfCompletedSuboperations
        assert 2 <= done < len(instances)
        assert final.NumberOfRemainingSuboperations == len(instances) - done
        # Stopping early sends the C-CANCEL itself; the association is still usable.
        for _ in assoc.send_c_get(query(), "S"):
            break
        assert assoc.is_established
    assert any(seen_cancel), "the handler never saw event.is_cancelled turn True"


def test_get_sends_files_by_path_as_they_are(get_server, tmp_path):
    """A handler may yield file paths: their data sets go out without being decoded, and
    a path that cannot be read fails its sub-operation (listed by its UID when known)."""
    instances = [instance(i) for i in range(3)]
    paths = []
    for ds in instances:
        path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    missing = tmp_path / "gone.dcm"

    def handler(event):
        yield 4
        for path in [*paths, missing]:
            yield 0xFF00, path

    port = get_server(handler)
    received = []

    def store(event):
        received.append((event.encoded_dataset(include_meta=False), event.file_meta))
        return 0

    ae, kwargs = getscu(store)
    with ae.associate("127.0.0.1", port, ae_title="GETSCP", **kwargs) as assoc:
        responses = list(assoc.send_c_get(query(), "S"))
    final = responses[-1][0]
    assert final.NumberOfCompletedSuboperations == 3
    assert final.NumberOfFailedSuboperations == 1
    for path, (data, meta) in zip(paths, received, strict=True):
        offset = dimse._core.read_file_meta(path)["data_offset"]
        assert data == path.read_bytes()[offset:]
        # The source of a C-GET's instance is the peer (the acceptor), not us.
        assert meta.SourceApplicationEntityTitle == "GETSCP"
