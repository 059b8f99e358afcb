"""Interoperability with DCMTK (Debian's ``dcmtk``): echoscu against our SCP, our SCU
against storescp. Every peer really runs on loopback; a missing tool fails the test."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

import dimse
from dimse import evt, sop
from dimse.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from peers import LOOPBACK, DcmtkServer, dcmtk_tool, echoscu, our_ae, run_dcmtk

SUCCESS = "Received Echo Response (Success)"


@pytest.fixture
def serve(request):
    """Starts one of our servers on 127.0.0.1 (a free port); shut down at teardown."""

    def start(ae: dimse.AE, handlers=None) -> int:
        server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)
        request.addfinalizer(server.shutdown)
        return server.server_address[1]

    return start


@pytest.fixture
def storescp(request, tmp_path):
    """Starts DCMTK's storescp (debug output to a log file); killed at teardown."""
    count = 0

    def start(*args: str) -> DcmtkServer:
        nonlocal count
        count += 1
        out = tmp_path / f"storescp{count}"
        out.mkdir()
        server = DcmtkServer("storescp", ["-d", "-od", str(out), *args], out / "log.txt")
        request.addfinalizer(server.stop)
        return server

    return start


def verification_scp(**kwargs) -> dimse.AE:
    ae = our_ae("OURSCP", **kwargs)
    ae.add_supported_context(sop.Verification)
    return ae


def last_dump(log: str, pdu: str) -> str:
    """The last ``BEGIN <pdu>`` ... ``END <pdu>`` block of a DCMTK debug log (storescp also
    logs an empty A-ASSOCIATE-RQ for the connection that checked it was listening)."""
    start = log.rindex(f"BEGIN {pdu}")
    return log[start : log.index(f"END {pdu}", start)]


def test_dcmtk_tools_are_dcmtks():
    # pynetdicom installs console scripts with the same names: ours must be DCMTK's.
    for tool in ("echoscu", "storescp"):
        assert dcmtk_tool(tool) == f"/usr/bin/{tool}"
        version = run_dcmtk(tool, "--version")
        assert version.returncode == 0
        assert f"$dcmtk: {tool} v3." in version.stdout


# -- DCMTK echoscu -> our SCP ---------------------------------------------------------------


def test_echoscu_verbose(serve):
    port = serve(verification_scp())
    proc = echoscu(port, "-v", "-aec", "OURSCP")
    assert proc.returncode == 0, proc.stdout
    assert "Association Accepted" in proc.stdout
    assert SUCCESS in proc.stdout
    assert "Releasing Association" in proc.stdout


def test_echoscu_debug_sees_our_association_parameters(serve):
    port = serve(verification_scp())
    proc = echoscu(port, "-d", "-aet", "DCMTKSCU", "-aec", "OURSCP")
    assert proc.returncode == 0, proc.stdout
    out = proc.stdout
    ac = last_dump(out, "A-ASSOCIATE-AC")
    assert f"Their Implementation Class UID:    {dimse.IMPLEMENTATION_CLASS_UID}" in ac
    assert f"Their Implementation Version Name: {dimse.IMPLEMENTATION_VERSION_NAME}" in ac
    assert re.search(r"Responding Application Name: +OURSCP\b", ac)
    assert re.search(r"Their Max PDU Receive Size: +16382\b", ac)
    assert re.search(r"Context ID: +1 \(Accepted\)", ac)
    assert "Accepted Transfer Syntax: =LittleEndianImplicit" in ac
    assert SUCCESS in out


@pytest.mark.parametrize(
    ("their_pdu", "our_pdu"),
    [
        (4096, 4096),
        (16384, 4096),
        (131072, 4096),
        (4096, 131072),
        (131072, 131072),
        (16384, 0),
    ],
)
def test_echoscu_max_pdu(serve, their_pdu, our_pdu):
    seen = []

    def on_echo(event):
        seen.append((event.assoc.requestor.ae_title, event.assoc.requestor.maximum_length))
        return 0x0000

    port = serve(verification_scp(maximum_pdu_size=our_pdu), [(evt.EVT_C_ECHO, on_echo)])
    proc = echoscu(port, "-d", "--max-pdu", their_pdu)
    assert proc.returncode == 0, proc.stdout
    assert re.search(rf"Our Max PDU Receive Size: +{their_pdu}\b", proc.stdout)
    assert re.search(rf"Their Max PDU Receive Size: +{our_pdu}\b", proc.stdout)
    assert SUCCESS in proc.stdout
    assert seen == [("ECHOSCU", their_pdu)]


def test_echoscu_repeat(serve):
    port = serve(verification_scp())
    proc = echoscu(port, "-v", "--repeat", 5)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.count(SUCCESS) == 5
    assert re.findall(r"Sending Echo Request \(MsgID (\d+)\)", proc.stdout) == list("12345")
    assert proc.stdout.count("Requesting Association") == 1


def test_echoscu_abort_then_server_still_serves(serve):
    port = serve(verification_scp())
    aborted = echoscu(port, "-v", "--abort", "--repeat", 2)
    assert aborted.returncode == 0, aborted.stdout
    assert aborted.stdout.count(SUCCESS) == 2
    assert "Aborting Association" in aborted.stdout
    after = echoscu(port, "-v")
    assert after.returncode == 0, after.stdout
    assert SUCCESS in after.stdout


def test_echoscu_many_contexts_and_transfer_syntaxes(serve):
    port = serve(verification_scp())
    proc = echoscu(port, "-v", "--propose-pc", 128, "--propose-ts", 38)
    assert proc.returncode == 0, proc.stdout
    assert SUCCESS in proc.stdout


def test_echoscu_wrong_called_aet_rejected(serve):
    ae = verification_scp()
    ae.require_called_aet = True
    port = serve(ae)
    proc = echoscu(port, "-v", "-aec", "NOTOURS")
    assert proc.returncode != 0, proc.stdout
    assert "Association Rejected" in proc.stdout
    assert "Result: Rejected Permanent, Source: Service User" in proc.stdout
    assert "Reason: Called AE Title Not Recognized" in proc.stdout
    assert SUCCESS not in proc.stdout
    good = echoscu(port, "-v", "-aec", "OURSCP")
    assert good.returncode == 0, good.stdout
    assert SUCCESS in good.stdout


def test_echoscu_unknown_calling_aet_rejected(serve):
    ae = verification_scp()
    ae.require_calling_aet = ["OTHER"]
    port = serve(ae)
    proc = echoscu(port, "-v", "-aet", "ECHOSCU")
    assert proc.returncode != 0, proc.stdout
    assert "Reason: Calling AE Title Not Recognized" in proc.stdout
    good = echoscu(port, "-v", "-aet", "OTHER")
    assert good.returncode == 0, good.stdout
    assert SUCCESS in good.stdout


def test_echoscu_sees_warning_status_from_our_handler(serve):
    requests = []

    def on_echo(event):
        requests.append((event.message_id, event.request.AffectedSOPClassUID))
        return 0x0001  # a Warning status (PS3.7 C.1.3)

    port = serve(verification_scp(), [(evt.EVT_C_ECHO, on_echo)])
    proc = echoscu(port, "-d", "--repeat", 2)
    assert proc.returncode == 0, proc.stdout
    assert SUCCESS not in proc.stdout
    assert proc.stdout.count("Received Echo Response (Unknown Status: 0x1)") == 2
    assert requests == [(1, sop.Verification), (2, sop.Verification)]


def test_echoscu_concurrent_associations(serve):
    port = serve(verification_scp())
    with ThreadPoolExecutor(max_workers=6) as pool:
        procs = list(pool.map(lambda _: echoscu(port, "-v", "--repeat", 3), range(6)))
    for proc in procs:
        assert proc.returncode == 0, proc.stdout
        assert proc.stdout.count(SUCCESS) == 3


# -- our SCU -> DCMTK storescp --------------------------------------------------------------


@pytest.mark.parametrize(
    ("their_pdu", "our_pdu"),
    [(None, 16382), (8192, 16382), (4096, 4096), (131072, 131072), (8192, 0)],
)
def test_echo_to_storescp(storescp, their_pdu, our_pdu):
    peer = storescp(*(["--max-pdu", str(their_pdu)] if their_pdu else []))
    ae = our_ae("OURSCU", maximum_pdu_size=our_pdu)
    ae.add_requested_context(sop.Verification)
    assoc = ae.associate(LOOPBACK, peer.port, ae_title="STORESCP")
    assert assoc.is_established, assoc.error
    assert assoc.acceptor.maximum_length == (their_pdu or 16384)
    assert assoc.acceptor.implementation_version_name.startswith("OFFIS_DCMTK")
    status = assoc.send_c_echo()
    assert status.Status == 0x0000
    assoc.release()
    assert assoc.is_released
    assert not assoc.is_aborted
    assert peer.is_running()
    log = peer.output()
    rq = last_dump(log, "A-ASSOCIATE-RQ")
    assert f"Their Implementation Version Name: {dimse.IMPLEMENTATION_VERSION_NAME}" in rq
    assert re.search(r"Calling Application Name: +OURSCU\b", rq)
    assert re.search(rf"Their Max PDU Receive Size: +{our_pdu}\b", rq)
    assert "Received Echo Request" in log
    assert "Association Release" in log


def test_many_echoes_to_storescp_as_context_manager(storescp):
    peer = storescp()
    ae = our_ae("OURSCU")
    ae.add_requested_context(sop.Verification)
    with ae.associate(LOOPBACK, peer.port, ae_title="STORESCP") as assoc:
        statuses = [assoc.send_c_echo().Status for _ in range(20)]
    assert statuses == [0] * 20
    assert assoc.is_released
    log = peer.output()
    assert log.count("Message Type                  : C-ECHO RQ") == 20
    assert re.search(r"Message ID +: 20\b", log)


def test_storescp_parses_our_extended_negotiation(storescp):
    peer = storescp()
    ct = sop.CTImageStorage
    ae = our_ae("OURSCU")
    ae.add_requested_context(sop.Verification)
    ae.add_requested_context(ct)
    ext_neg = [
        UserIdentityNegotiation(2, b"alice", b"secret", True),
        AsynchronousOperationsWindowNegotiation(3, 2),
        SOPClassExtendedNegotiation(ct, b"\x01\x00"),
        dimse.build_role(ct, scu_role=True, scp_role=True),
    ]
    with ae.associate(LOOPBACK, peer.port, ae_title="STORESCP", ext_neg=ext_neg) as assoc:
        # DCMTK does not answer user identity nor accept the SCP role: defaults apply.
        assert assoc.negotiated["user_identity_response"] is None
        roles = {pc.abstract_syntax: (pc.scu_role, pc.scp_role) for pc in assoc.accepted_contexts}
        assert roles == {sop.Verification: (True, False), ct: (True, False)}
        assert assoc.send_c_echo().Status == 0x0000
    log = peer.output()
    rq = last_dump(log, "A-ASSOCIATE-RQ")
    assert "Authentication mode 2: Username/Password" in rq
    assert "Username: [alice]" in rq
    assert "Password: [secret]" in rq
    assert "Positive Response requested: Yes" in rq
    assert "=CTImageStorage (1.2.840.10008.5.1.4.1.1.2)\nD:     [0x01, 0x00]" in rq
    assert "Proposed SCP/SCU Role: SCP/SCU" in rq
    assert "Received Echo Request" in log


def test_storescp_refuses(storescp):
    peer = storescp("--refuse")
    ae = our_ae("OURSCU")
    ae.add_requested_context(sop.Verification)
    assoc = ae.associate(LOOPBACK, peer.port, ae_title="STORESCP")
    assert assoc.is_rejected
    assert not assoc.is_established
    assert (assoc.result, assoc.result_source, assoc.diagnostic) == (1, 1, 1)
    with pytest.raises(dimse.AssociationRejected) as info:
        with ae.associate(LOOPBACK, peer.port, ae_title="STORESCP"):
            pass
    assert (info.value.result, info.value.source, info.value.reason) == (1, 1, 1)
    assert peer.is_running()
    assert "Refusing Association (forced via command line)" in peer.output()
