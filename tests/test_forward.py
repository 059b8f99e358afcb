"""Forwarding in Rust (``start_server(forward=Forward(...))``): a router SCP passing each
instance on, as received, to a destination, and returning the destination's status."""

from __future__ import annotations

import threading
import time

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dimse import AE, _core, evt, sop
from dimse.exceptions import InvalidArgument
from dimse.forward import Forward
from dimse.storage import FileStorage
from peers import free_port

LOOPBACK = "127.0.0.1"
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def ct(n: int = 0) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop.CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = f"P{n}"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


class Servers:
    def __init__(self) -> None:
        self.running: list = []

    def destination(self, port: int = 0, handler=None, storage=None):
        """A destination SCP recording each association it sees."""
        ae = AE("DEST")
        ae.add_supported_context(sop.CTImageStorage, SYNTAXES)
        ae.add_supported_context(sop.MRImageStorage, SYNTAXES)
        opened: list[int] = []
        handlers = [(evt.EVT_CONN_OPEN, lambda e: opened.append(1))]
        if handler is not None:
            handlers.append((evt.EVT_C_STORE, handler))
        server = ae.start_server(
            (LOOPBACK, port), block=False, evt_handlers=handlers, storage=storage
        )
        self.running.append(server)
        return server, opened

    def router(self, forward: Forward):
        ae = AE("ROUTER")
        ae.add_supported_context(sop.CTImageStorage, SYNTAXES)
        ae.add_supported_context(sop.MRImageStorage, SYNTAXES)
        server = ae.start_server((LOOPBACK, 0), block=False, forward=forward)
        self.running.append(server)
        return server.server_address[1]


@pytest.fixture
def servers():
    s = Servers()
    yield s
    for server in s.running:
        server.shutdown()


def send(port: int, datasets: list[Dataset], ts: str = ExplicitVRLittleEndian) -> list[Dataset]:
    ae = AE("MODALITY")
    ae.add_requested_context(sop.CTImageStorage, [ts])
    with ae.associate(LOOPBACK, port, ae_title="ROUTER") as assoc:
        return [assoc.send_c_store(ds) for ds in datasets]


def test_instances_arrive_as_sent_over_one_pooled_association(servers, tmp_path):
    dest, opened = servers.destination(storage=FileStorage(tmp_path / "dest"))
    port = servers.router(Forward(LOOPBACK, dest.server_address[1], "DEST"))
    datasets = [ct(n) for n in range(5)]
    for ts in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        statuses = send(port, datasets, ts)
        assert [int(s.Status) for s in statuses] == [0] * 5
    # One association per (SOP Class, transfer syntax), reused for every instance.
    assert len(opened) == 2
    files = sorted((tmp_path / "dest").iterdir())
    assert len(files) == 5
    for path in files:
        meta = _core.read_file_meta(path)
        # The instance went on untouched: the last copy came in Implicit VR LE.
        assert meta["transfer_syntax_uid"] == ImplicitVRLittleEndian
        assert meta["source_application_entity_title"] == "ROUTER"


def test_the_destination_status_comes_back(servers):
    answers = iter([0xB000, 0xA700, 0x0000])

    def on_store(event):
        return next(answers)

    dest, _ = servers.destination(handler=on_store)
    port = servers.router(Forward(LOOPBACK, dest.server_address[1], "DEST"))
    assert [int(s.Status) for s in send(port, [ct(), ct(), ct()])] == [0xB000, 0xA700, 0]


def test_a_destination_away_is_a_failure_without_a_spool(servers):
    port = servers.router(Forward(LOOPBACK, free_port(), "DEST"))
    (status,) = send(port, [ct()])
    assert int(status.Status) == 0xA700
    assert "cannot associate" in str(status.ErrorComment)


def test_the_spool_keeps_and_delivers_later(servers, tmp_path):
    dest_port = free_port()
    spool = tmp_path / "spool"
    port = servers.router(Forward(LOOPBACK, dest_port, "DEST", spool=spool, retry_interval=0.5))
    datasets = [ct(n) for n in range(3)]
    # The destination is away: the router keeps the instances and says success.
    assert [int(s.Status) for s in send(port, datasets)] == [0, 0, 0]
    assert len(list(spool.glob("*.dcm"))) == 3
    received: list[str] = []
    lock = threading.Lock()

    def on_store(event):
        with lock:
            received.append(str(event.request.AffectedSOPInstanceUID))
        return 0

    servers.destination(port=dest_port, handler=on_store)
    deadline = time.monotonic() + 15
    while len(received) < 3 or list(spool.glob("*.dcm")):
        assert time.monotonic() < deadline, (received, list(spool.iterdir()))
        time.sleep(0.1)
    assert sorted(received) == sorted(str(ds.SOPInstanceUID) for ds in datasets)


def test_idle_associations_are_released(servers):
    released: list[int] = []
    dest, opened = servers.destination(handler=lambda e: 0)
    dest.bind(evt.EVT_RELEASED, lambda e: released.append(1))
    port = servers.router(Forward(LOOPBACK, dest.server_address[1], "DEST", idle_timeout=0.3))
    send(port, [ct()])
    deadline = time.monotonic() + 10
    while not released:
        assert time.monotonic() < deadline, "the idle association was not released"
        time.sleep(0.05)
    # The next instance opens a new association.
    send(port, [ct()])
    assert len(opened) == 2


def test_a_closed_idle_association_is_replaced(servers):
    dest, _ = servers.destination(handler=lambda e: 0)
    dest_port = dest.server_address[1]
    port = servers.router(Forward(LOOPBACK, dest_port, "DEST"))
    assert int(send(port, [ct()])[0].Status) == 0
    # The destination restarts: the router's idle association is dead.
    dest.shutdown()
    _, opened2 = servers.destination(port=dest_port, handler=lambda e: 0)
    assert int(send(port, [ct()])[0].Status) == 0
    assert len(opened2) == 1


def test_forward_excludes_storage_and_store_handlers(servers, tmp_path):
    ae = AE("ROUTER")
    ae.add_supported_context(sop.CTImageStorage)
    forward = Forward(LOOPBACK, 104, "DEST")
    with pytest.raises(InvalidArgument, match="not both"):
        ae.start_server((LOOPBACK, 0), block=False, forward=forward, storage=FileStorage(tmp_path))
    with pytest.raises(InvalidArgument, match="forwards"):
        ae.start_server(
            (LOOPBACK, 0),
            block=False,
            forward=forward,
            evt_handlers=[(evt.EVT_C_STORE, lambda e: 0)],
        )
    with pytest.raises(ValueError, match="port"):
        Forward(LOOPBACK, 0, "DEST")
