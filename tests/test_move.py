"""C-MOVE in both roles: the SCP stores the matches at a third AE; against ours,
pynetdicom and DCMTK's storescp as the destination."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import AE, evt, sop

MOVE = sop.StudyRootQueryRetrieveInformationModelMove
CT = sop.CTImageStorage


def instance(i: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = f"DOE^{i}"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def query() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = "1.2.3"
    return ds


@pytest.fixture
def destination():
    received = []
    ae = AE("DEST")
    ae.add_supported_context(CT)

    def store(event):
        received.append(
            (event.dataset.SOPInstanceUID, event.request.MoveOriginatorApplicationEntityTitle)
        )
        return 0x0000

    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, store)]
    )
    yield server.server_address[1], received
    server.shutdown()


@pytest.fixture
def move_server(destination):
    dest_port, _ = destination
    servers = []

    def start(instances):
        def handler(event):
            if event.move_destination != "DEST":
                yield None, None
                return
            yield "127.0.0.1", dest_port
            yield len(instances)
            for ds in instances:
                yield 0xFF00, ds

        ae = AE("MOVESCP")
        ae.add_supported_context(MOVE)
        ae.add_supported_context(CT)
        server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_MOVE, handler)]
        )
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def movescu() -> AE:
    ae = AE("MOVESCU")
    ae.acse_timeout = ae.dimse_timeout = 10
    ae.add_requested_context(MOVE)
    return ae


def test_move_to_a_third_ae(move_server, destination):
    _, received = destination
    instances = [instance(i) for i in range(4)]
    port = move_server(instances)
    with movescu().associate("127.0.0.1", port) as assoc:
        responses = list(assoc.send_c_move(query(), "DEST", "S"))
    assert [s.Status for s, _ in responses] == [0xFF00] * 4 + [0]
    assert responses[-1][0].NumberOfCompletedSuboperations == 4
    assert received == [(ds.SOPInstanceUID, "MOVESCU") for ds in instances]


def test_unknown_destination(move_server):
    port = move_server([instance(0)])
    with movescu().associate("127.0.0.1", port) as assoc:
        ((status, _),) = list(assoc.send_c_move(query(), "NOWHERE", "S"))
    assert status.Status == 0xA801


def test_pynetdicom_movescu_against_ours(move_server, destination):
    from pynetdicom import AE as PynetdicomAE

    _, received = destination
    instances = [instance(i) for i in range(2)]
    port = move_server(instances)
    ae = PynetdicomAE("PYSCU")
    ae.add_requested_context(MOVE)
    assoc = ae.associate("127.0.0.1", port, ae_title="MOVESCP")
    assert assoc.is_established
    try:
        statuses = [s.Status for s, _ in assoc.send_c_move(query(), "DEST", MOVE)]
    finally:
        assoc.release()
    assert statuses[-1] == 0
    assert [uid for uid, _ in received] == [ds.SOPInstanceUID for ds in instances]


def test_our_movescu_against_pynetdicom(destination):
    from pynetdicom import AE as PynetdicomAE
    from pynetdicom import evt as pevt

    dest_port, received = destination
    instances = [instance(i) for i in range(3)]

    def handle(event):
        yield "127.0.0.1", dest_port
        yield len(instances)
        for ds in instances:
            yield 0xFF00, ds

    scp = PynetdicomAE("PYSCP")
    scp.add_supported_context(MOVE)
    scp.add_requested_context(CT, ExplicitVRLittleEndian)
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(pevt.EVT_C_MOVE, handle)]
    )
    try:
        with movescu().associate("127.0.0.1", server.server_address[1], ae_title="PYSCP") as a:
            statuses = [s.Status for s, _ in a.send_c_move(query(), "DEST", "S")]
        assert statuses[-1] == 0
        assert [uid for uid, _ in received] == [ds.SOPInstanceUID for ds in instances]
    finally:
        scp.shutdown()


def test_dcmtk_movescu_against_ours(move_server, destination):
    import os
    import subprocess

    _, received = destination
    instances = [instance(i) for i in range(3)]
    port = move_server(instances)
    movescu = "/usr/bin/movescu"
    assert os.path.exists(movescu), "DCMTK's movescu is missing: apt-get install dcmtk"
    out = subprocess.run(
        [
            movescu,
            "-v",
            "-S",
            "-aec",
            "MOVESCP",
            "-aem",
            "DEST",
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
    assert [uid for uid, _ in received] == [ds.SOPInstanceUID for ds in instances]


def test_move_cancel(move_server, destination):
    _, received = destination
    instances = [instance(i) for i in range(40)]
    port = move_server(instances)
    with movescu().associate("127.0.0.1", port) as assoc:
        responses = []
        for status, _ in assoc.send_c_move(query(), "DEST", "S", msg_id=9):
            responses.append(status)
            if len(responses) == 2:
                assoc.send_c_cancel(9, query_model="S")
        final = responses[-1]
        assert final.Status == 0xFE00
        done = final.NumberOfCompletedSuboperations
        assert 2 <= done < len(instances)
        assert final.NumberOfRemainingSuboperations == len(instances) - done
        assert len(received) == done
        # Stopping early cancels too, and the association goes on.
        for _ in assoc.send_c_move(query(), "DEST", "S"):
            break
        assert assoc.is_established
