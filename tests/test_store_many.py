"""Several C-STOREs outstanding on one association (asynchronous operations window,
PS3.7 D.3.3.3): ``Association.send_c_store_many``."""

from __future__ import annotations

import threading

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import AE, evt, sop
from dimse.exceptions import InvalidFile
from dimse.pdu_primitives import AsynchronousOperationsWindowNegotiation

LOOPBACK = "127.0.0.1"


def ct(n: int = 0) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop.CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = f"P{n}"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


@pytest.fixture
def server():
    """A storage SCP granting the requestor a window of up to 8 (EVT_ASYNC_OPS)."""
    received: list[str] = []
    lock = threading.Lock()

    def on_store(event):
        with lock:
            received.append(str(event.request.AffectedSOPInstanceUID))
        # Odd patients get a warning, so that statuses are matched to their requests.
        return 0xB000 if int(event.dataset.PatientID[1:]) % 2 else 0x0000

    ae = AE("STORESCP")
    ae.add_supported_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
    srv = ae.start_server(
        (LOOPBACK, 0),
        block=False,
        evt_handlers=[
            (evt.EVT_C_STORE, on_store),
            (evt.EVT_ASYNC_OPS, lambda event: (min(event.nr_invoked, 8), 1)),
        ],
    )
    yield srv.server_address[1], received
    srv.shutdown()


class CountingLink:
    """Wraps the association's link to see how many requests are outstanding."""

    def __init__(self, core):
        self.core = core
        self.outstanding = 0
        self.most = 0

    def send(self, *args):
        self.outstanding += 1
        self.most = max(self.most, self.outstanding)
        return self.core.send(*args)

    def receive(self, *args):
        event = self.core.receive(*args)
        self.outstanding -= 1
        return event

    def __getattr__(self, name):
        return getattr(self.core, name)


def associate(port: int, window: int | None):
    ae = AE("STORESCU")
    ae.add_requested_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
    ext = [AsynchronousOperationsWindowNegotiation(window, 1)] if window else []
    return ae.associate(LOOPBACK, port, ae_title="STORESCP", ext_neg=ext)


@pytest.mark.parametrize(
    ("proposed", "asked", "expected"), [(20, None, 8), (4, None, 4), (20, 3, 3), (None, 16, 1)]
)
def test_window_is_negotiated_and_never_exceeded(server, proposed, asked, expected):
    port, received = server
    assoc = associate(port, proposed)
    try:
        assert assoc.async_window == (min(proposed, 8) if proposed else 1)
        link = CountingLink(assoc._core)
        assoc._core = link
        datasets = [ct(n) for n in range(40)]
        results = list(assoc.send_c_store_many(datasets, window=asked))
        assoc._core = link.core
    finally:
        assoc.release()
    assert link.most == expected
    assert link.outstanding == 0
    assert len(results) == 40
    by_uid = {str(ds.SOPInstanceUID): int(status.Status) for ds, status in results}
    for n, ds in enumerate(datasets):
        assert by_uid[str(ds.SOPInstanceUID)] == (0xB000 if n % 2 else 0)
    assert sorted(received) == sorted(by_uid)


def test_items_that_cannot_be_sent_are_reported_and_skipped(server, tmp_path):
    port, received = server
    bad = tmp_path / "not-dicom.dcm"
    bad.write_text("hello")
    good = ct(2)
    assoc = associate(port, 4)
    try:
        results = list(assoc.send_c_store_many([bad, good, tmp_path / "missing.dcm"]))
    finally:
        assoc.release()
    assert [r[0] for r in results if not isinstance(r[1], Exception)] == [good]
    errors = [r for r in results if isinstance(r[1], Exception)]
    assert len(errors) == 2
    assert isinstance(errors[0][1], InvalidFile)
    assert received == [str(good.SOPInstanceUID)]


def test_leaving_early_collects_the_outstanding_responses(server):
    port, _ = server
    assoc = associate(port, 8)
    try:
        stores = assoc.send_c_store_many([ct(n) for n in range(30)])
        first = next(stores)
        stores.close()
        # The association is still in step: a plain C-STORE gets its own response.
        assert int(assoc.send_c_store(ct(0)).Status) == 0
    finally:
        assoc.release()
    assert int(first[1].Status) in (0, 0xB000)
    assert assoc.is_released


def test_window_must_be_positive(server):
    port, _ = server
    assoc = associate(port, None)
    try:
        with pytest.raises(ValueError, match="at least 1"):
            assoc.send_c_store_many([ct()], window=0)
    finally:
        assoc.release()


@pytest.mark.parametrize(("proposed", "expected"), [(None, 1), (3, 3), (16, 6)])
def test_scp_performs_up_to_the_window_at_once(proposed, expected):
    """The SCP runs as many requests of one association at once as the requestor may
    invoke (granted: at most 6 here), never more, and answers each by its Message ID."""
    lock = threading.Lock()
    now = {"running": 0, "most": 0}

    def on_store(event):
        with lock:
            now["running"] += 1
            now["most"] = max(now["most"], now["running"])
        threading.Event().wait(0.15)
        with lock:
            now["running"] -= 1
        return 0xB000 if int(event.dataset.PatientID[1:]) % 2 else 0x0000

    ae = AE("STORESCP")
    ae.handler_threads = 8
    ae.add_supported_context(sop.CTImageStorage, [ExplicitVRLittleEndian])
    srv = ae.start_server(
        (LOOPBACK, 0),
        block=False,
        evt_handlers=[
            (evt.EVT_C_STORE, on_store),
            (evt.EVT_ASYNC_OPS, lambda event: (min(event.nr_invoked, 6), 1)),
        ],
    )
    try:
        assoc = associate(srv.server_address[1], proposed)
        try:
            datasets = [ct(n) for n in range(12)]
            results = list(assoc.send_c_store_many(datasets))
        finally:
            assoc.release()
    finally:
        srv.shutdown()
    assert now["most"] == expected
    by_uid = {str(ds.SOPInstanceUID): int(status.Status) for ds, status in results}
    assert by_uid == {
        str(ds.SOPInstanceUID): (0xB000 if n % 2 else 0) for n, ds in enumerate(datasets)
    }
