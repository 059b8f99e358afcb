"""C-FIND in both roles: matches streamed as pending responses, cancel, errors; against
ours, pynetdicom and DCMTK's findscu."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from pydicom.dataset import Dataset

import dimse
from dimse import AE, evt, sop

STUDY_FIND = sop.StudyRootQueryRetrieveInformationModelFind


def query(**values) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for k, v in values.items():
        setattr(ds, k, v)
    return ds


def study(i: int) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = f"DOE^{i}"
    ds.StudyInstanceUID = f"1.2.3.{i}"
    return ds


@pytest.fixture
def find_server():
    servers = []

    def start(handler):
        ae = AE("FINDSCP")
        ae.add_supported_context(STUDY_FIND)
        ae.add_supported_context(sop.Verification)
        server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, handler)]
        )
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def scu() -> AE:
    ae = AE("FINDSCU")
    ae.acse_timeout = ae.dimse_timeout = 10
    ae.add_requested_context(STUDY_FIND)
    ae.add_requested_context(sop.Verification)
    return ae


def test_matches_are_streamed(find_server):
    seen = []

    def handler(event):
        seen.append(event.identifier.PatientName)
        for i in range(25):
            yield 0xFF00, study(i)

    port = find_server(handler)
    with scu().associate("127.0.0.1", port) as assoc:
        results = list(assoc.send_c_find(query(PatientName="DOE*"), "S"))
        assert [s.Status for s, _ in results] == [0xFF00] * 25 + [0x0000]
        assert [i.PatientName for _, i in results[:-1]] == [f"DOE^{i}" for i in range(25)]
        assert results[-1][1] is None
        assert assoc.send_c_echo().Status == 0
    assert seen == ["DOE*"]


def test_cancel_by_stopping_early(find_server):
    cancelled = threading.Event()

    def handler(event):
        try:
            for i in range(10_000):
                if event.is_cancelled:
                    return
                yield 0xFF00, study(i)
        finally:
            # Closed by the SCP once it saw the C-CANCEL-RQ; the flag is visible here.
            if event.is_cancelled:
                cancelled.set()

    port = find_server(handler)
    with scu().associate("127.0.0.1", port) as assoc:
        responses = assoc.send_c_find(query(), STUDY_FIND)
        first = [next(responses) for _ in range(3)]
        assert all(s.Status == 0xFF00 for s, _ in first)
        responses.close()  # sends C-CANCEL-RQ, reads up to the final response
        assert assoc.send_c_echo().Status == 0  # the association goes on
    assert cancelled.wait(5)


def test_handler_errors(find_server):
    def handler(event):
        yield 0xFF00, study(1)
        raise RuntimeError("index corrupt")

    port = find_server(handler)
    with scu().associate("127.0.0.1", port) as assoc:
        statuses = list(assoc.send_c_find(query(), "S"))
    assert statuses[0][0].Status == 0xFF00
    assert statuses[-1][0].Status == 0xC311
    assert "index corrupt" in statuses[-1][0].ErrorComment


def test_failure_status_ends_the_find(find_server):
    def handler(event):
        yield 0xA700, None

    port = find_server(handler)
    with scu().associate("127.0.0.1", port) as assoc:
        ((status, identifier),) = list(assoc.send_c_find(query(), "S"))
    assert status.Status == 0xA700
    assert identifier is None


def test_no_context_for_the_model():
    ae = AE("FINDSCU")
    ae.add_requested_context(sop.Verification)
    scp = AE("FINDSCP")
    scp.add_supported_context(sop.Verification)
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        with ae.associate("127.0.0.1", server.server_address[1]) as assoc:
            with pytest.raises(dimse.NoAcceptedContext, match=STUDY_FIND):
                assoc.send_c_find(query(), "S")
    finally:
        server.shutdown()


def test_pynetdicom_findscu_against_ours(find_server):
    from pynetdicom import AE as PynetdicomAE

    def handler(event):
        for i in range(5):
            yield 0xFF00, study(i)

    port = find_server(handler)
    ae = PynetdicomAE("PYSCU")
    ae.add_requested_context(STUDY_FIND)
    assoc = ae.associate("127.0.0.1", port, ae_title="FINDSCP")
    assert assoc.is_established
    try:
        out = list(assoc.send_c_find(query(), STUDY_FIND))
    finally:
        assoc.release()
    assert [s.Status for s, _ in out] == [0xFF00] * 5 + [0]
    assert out[2][1].PatientName == "DOE^2"


def test_our_findscu_against_pynetdicom():
    from pynetdicom import AE as PynetdicomAE
    from pynetdicom import evt as pevt

    def handle(event):
        for i in range(4):
            yield 0xFF00, study(i)

    ae = PynetdicomAE("PYSCP")
    ae.add_supported_context(STUDY_FIND)
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(pevt.EVT_C_FIND, handle)]
    )
    try:
        port = server.server_address[1]
        with scu().associate("127.0.0.1", port, ae_title="PYSCP") as assoc:
            out = list(assoc.send_c_find(query(), "S"))
        assert [s.Status for s, _ in out] == [0xFF00] * 4 + [0]
        assert out[3][1].StudyInstanceUID == "1.2.3.3"
    finally:
        ae.shutdown()


def test_dcmtk_findscu_against_ours(find_server):
    def handler(event):
        for i in range(3):
            yield 0xFF00, study(i)

    port = find_server(handler)
    findscu = "/usr/bin/findscu"
    assert os.path.exists(findscu), "DCMTK's findscu is missing: apt-get install dcmtk"
    out = subprocess.run(
        [
            findscu,
            "-v",
            "-S",
            "-aec",
            "FINDSCP",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientName=DOE*",
            "127.0.0.1",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert text.count("Find Response: 1") >= 1 or text.count("Pending") >= 3
    assert "DOE^2" in text
