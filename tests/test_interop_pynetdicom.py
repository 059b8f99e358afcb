"""Interoperability with pynetdicom (a test dependency), both ways, on loopback: pynetdicom's
AE as SCU against our SCP, and our SCU against pynetdicom's SCP."""

from __future__ import annotations

import time

import pynetdicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom import build_role as pynetdicom_build_role
from pynetdicom import evt as pevt
from pynetdicom import pdu_primitives as pprim
from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, Verification

import dimse
from dimse import evt, sop
from dimse.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from peers import LOOPBACK, PEER_TIMEOUT, our_ae


@pytest.fixture
def serve(request):
    """Starts one of our servers on 127.0.0.1 (a free port); shut down at teardown."""

    def start(ae: dimse.AE, handlers=None) -> int:
        server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)
        request.addfinalizer(server.shutdown)
        return server.server_address[1]

    return start


@pytest.fixture
def pynetdicom_scp(request):
    """Starts a pynetdicom SCP on 127.0.0.1 (by default Verification, CT with both roles,
    MR with default roles; or ``supported``: (abstract syntax, transfer syntaxes or None)
    pairs); returns (pynetdicom AE, port); shut down at teardown."""

    def start(handlers=None, maximum_pdu_size: int = 16382, supported=None):
        ae = pynetdicom.AE(ae_title="PYNETSCP")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = PEER_TIMEOUT
        ae.maximum_pdu_size = maximum_pdu_size
        if supported is None:
            ae.add_supported_context(Verification)
            ae.add_supported_context(CTImageStorage, scu_role=True, scp_role=True)
            ae.add_supported_context(MRImageStorage)
        for abstract_syntax, transfer_syntaxes in supported or []:
            ae.add_supported_context(abstract_syntax, transfer_syntaxes)
        server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers or [])
        request.addfinalizer(lambda: stop_pynetdicom(ae))
        return ae, server.server_address[1]

    return start


def stop_pynetdicom(ae: pynetdicom.AE) -> None:
    """Shuts a pynetdicom server down once its associations have ended.

    After it rejects or aborts, pynetdicom waits in Sta13 for the requestor to close the
    connection; ``ae.shutdown()`` in that state aborts again and pynetdicom's reactor thread
    raises InvalidEventError (Evt15 in Sta13). So wait (bounded) for the close first: an
    association still open after that means we did not close the connection."""
    deadline = time.monotonic() + 5.0
    while ae.active_associations and time.monotonic() < deadline:
        time.sleep(0.01)
    left = [
        (a.requestor.ae_title, a.dul.state_machine.current_state) for a in ae.active_associations
    ]
    ae.shutdown()
    assert not left, f"associations still open on the pynetdicom SCP after 5 s: {left}"


def pynetdicom_scu(max_pdu: int = 16382) -> pynetdicom.AE:
    ae = pynetdicom.AE(ae_title="PYNETSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = PEER_TIMEOUT
    ae.maximum_pdu_size = max_pdu
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    return ae


def our_scp(**kwargs) -> dimse.AE:
    ae = our_ae("OURSCP", **kwargs)
    ae.add_supported_context(sop.Verification)
    return ae


def our_scu(**kwargs) -> dimse.AE:
    ae = our_ae("OURSCU", **kwargs)
    ae.add_requested_context(sop.Verification)
    ae.add_requested_context(sop.CTImageStorage)
    ae.add_requested_context(sop.MRImageStorage)
    return ae


def record_pdu(event, sink: list) -> None:
    """EVT_PDU_RECV handler: keeps the PDUs a pynetdicom requestor received. It runs in
    pynetdicom's DUL thread before the PDU is acted on; on an A-ASSOCIATE-RJ it pauses a
    moment (see ``pynetdicom_rejected``)."""
    sink.append(event.pdu)
    if isinstance(event.pdu, A_ASSOCIATE_RJ):
        time.sleep(0.05)


def pynetdicom_rejected(scu: pynetdicom.AE, port: int, **kwargs) -> tuple[int, int, int]:
    """Requests an association that our SCP must reject; returns the (result, source,
    reason) pynetdicom reports on its Association (``assoc.acceptor.primitive``), checked
    against the A-ASSOCIATE-RJ PDU it received.

    pynetdicom 3.0.4 has a race in its requestor: if the A-ASSOCIATE-RJ arrives before its
    ACSE thread has checked that the socket connected, its DUL thread closes the socket
    (action AE-4) first and the ACSE thread reports "Aborting Association" instead of the
    rejection (1-3 % of tries against a fast acceptor). ``record_pdu`` delays AE-4 to
    avoid it; should it still happen, the request is retried (bounded)."""
    for _ in range(10):
        received: list = []
        handlers = [(pevt.EVT_PDU_RECV, record_pdu, [received])]
        assoc = scu.associate(LOOPBACK, port, evt_handlers=handlers, **kwargs)
        assert not assoc.is_established
        rj = [pdu for pdu in received if isinstance(pdu, A_ASSOCIATE_RJ)]
        assert len(rj) == 1, f"expected one A-ASSOCIATE-RJ, received {received}"
        sent = (rj[0].result, rj[0].source, rj[0].reason_diagnostic)
        if assoc.is_rejected:
            primitive = assoc.acceptor.primitive
            reported = (primitive.result, primitive.result_source, primitive.diagnostic)
            assert reported == sent
            return reported
        assert assoc.is_aborted  # pynetdicom's race (above): try again
    raise AssertionError("pynetdicom reported an abort instead of the rejection 10 times")


def pynetdicom_user_identity(kind: int, primary: bytes, secondary: bytes | None, positive: bool):
    item = pprim.UserIdentityNegotiation()
    item.user_identity_type = kind
    item.primary_field = primary
    if secondary is not None:
        item.secondary_field = secondary
    item.positive_response_requested = positive
    return item


# -- pynetdicom SCU -> our SCP --------------------------------------------------------------


def test_pynetdicom_echo(serve):
    port = serve(our_scp())
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP")
    assert assoc.is_established
    assert assoc.acceptor.implementation_class_uid == dimse.IMPLEMENTATION_CLASS_UID
    assert assoc.acceptor.implementation_version_name == dimse.IMPLEMENTATION_VERSION_NAME
    assert assoc.acceptor.ae_title == "OURSCP"
    for _ in range(3):
        status = assoc.send_c_echo()
        assert status.Status == 0x0000
    assoc.release()
    assert assoc.is_released
    assert not assoc.is_aborted


def test_pynetdicom_sees_warning_status(serve):
    port = serve(our_scp(), [(evt.EVT_C_ECHO, lambda event: 0x0001)])
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0001
    assoc.release()
    assert assoc.is_released


@pytest.mark.parametrize(
    ("their_pdu", "our_pdu"),
    [(4096, 4096), (16382, 4096), (131072, 16382), (4096, 131072), (0, 0), (65536, 0)],
)
def test_pynetdicom_max_pdu(serve, their_pdu, our_pdu):
    seen = []

    def on_echo(event):
        seen.append(event.assoc.requestor.maximum_length)
        return 0x0000

    port = serve(our_scp(maximum_pdu_size=our_pdu), [(evt.EVT_C_ECHO, on_echo)])
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP", max_pdu=their_pdu)
    assert assoc.is_established
    assert assoc.acceptor.maximum_length == our_pdu
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert assoc.is_released
    assert seen == [their_pdu]


def test_pynetdicom_rejected_called_aet(serve):
    ae = our_scp()
    ae.require_called_aet = True
    port = serve(ae)
    scu = pynetdicom_scu()
    assert pynetdicom_rejected(scu, port, ae_title="NOTOURS") == (1, 1, 7)
    good = scu.associate(LOOPBACK, port, ae_title="OURSCP")
    assert good.is_established
    good.release()


def test_pynetdicom_rejected_calling_aet(serve):
    ae = our_scp()
    ae.require_calling_aet = ["OTHER"]
    port = serve(ae)
    scu = pynetdicom_scu()
    assert pynetdicom_rejected(scu, port, ae_title="OURSCP") == (1, 1, 3)
    scu.ae_title = "OTHER"
    good = scu.associate(LOOPBACK, port, ae_title="OURSCP")
    assert good.is_established
    good.release()


@pytest.mark.parametrize("kind", [3, 4, 5])
def test_pynetdicom_user_identity_positive_response(serve, kind):
    seen = []

    def on_user_id(event):
        seen.append((event.user_id_type, event.primary_field, event.secondary_field))
        return True, b"server-token"

    port = serve(our_scp(), [(evt.EVT_USER_ID, on_user_id)])
    item = pynetdicom_user_identity(kind, b"credential", None, positive=True)
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP", ext_neg=[item])
    assert assoc.is_established
    assert assoc.acceptor.user_identity is not None
    assert assoc.acceptor.user_identity.server_response == b"server-token"
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert seen == [(kind, b"credential", b"")]


def test_pynetdicom_user_identity_no_response_requested(serve):
    seen = []

    def on_user_id(event):
        seen.append((event.user_id_type, event.primary_field, event.secondary_field))
        return True, b"server-token"

    port = serve(our_scp(), [(evt.EVT_USER_ID, on_user_id)])
    item = pynetdicom_user_identity(2, b"alice", b"secret", positive=False)
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP", ext_neg=[item])
    assert assoc.is_established
    assert assoc.acceptor.user_identity is None
    assoc.release()
    assert seen == [(2, b"alice", b"secret")]


def test_pynetdicom_user_identity_refused(serve):
    port = serve(our_scp(), [(evt.EVT_USER_ID, lambda event: (False, None))])
    item = pynetdicom_user_identity(2, b"mallory", b"guess", positive=True)
    result, source, _reason = pynetdicom_rejected(
        pynetdicom_scu(), port, ae_title="OURSCP", ext_neg=[item]
    )
    assert result in (1, 2)
    assert source in (1, 2)


@pytest.mark.parametrize("scp_role_supported", [True, False])
def test_pynetdicom_role_selection(serve, scp_role_supported):
    ae = our_scp()
    ae.add_supported_context(sop.CTImageStorage, scp_role=scp_role_supported)
    port = serve(ae)
    role = pynetdicom_build_role(CTImageStorage, scu_role=True, scp_role=True)
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP", ext_neg=[role])
    assert assoc.is_established
    roles = {cx.abstract_syntax: (cx.as_scu, cx.as_scp) for cx in assoc.accepted_contexts}
    assert roles == {Verification: (True, False), CTImageStorage: (True, scp_role_supported)}
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_pynetdicom_role_selection_scp_only(serve):
    ae = our_scp()
    ae.add_supported_context(sop.CTImageStorage, scu_role=False, scp_role=True)
    port = serve(ae)
    role = pynetdicom_build_role(CTImageStorage, scu_role=False, scp_role=True)
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP", ext_neg=[role])
    assert assoc.is_established
    roles = {cx.abstract_syntax: (cx.as_scu, cx.as_scp) for cx in assoc.accepted_contexts}
    assert roles[CTImageStorage] == (False, True)
    assoc.release()


def test_pynetdicom_sop_class_extended(serve):
    seen = []

    def on_extended(event):
        seen.append(dict(event.app_info))
        return {uid: b"\x01" + info for uid, info in event.app_info.items()}

    ae = our_scp()
    ae.add_supported_context(sop.CTImageStorage)
    port = serve(ae, [(evt.EVT_SOP_EXTENDED, on_extended)])
    item = pprim.SOPClassExtendedNegotiation()
    item.sop_class_uid = CTImageStorage
    item.service_class_application_information = b"\x02\x03"
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP", ext_neg=[item])
    assert assoc.is_established
    assert assoc.acceptor.sop_class_extended == {CTImageStorage: b"\x01\x02\x03"}
    assoc.release()
    assert seen == [{CTImageStorage: b"\x02\x03"}]


def test_pynetdicom_async_ops(serve):
    seen = []

    def on_async_ops(event):
        seen.append((event.nr_invoked, event.nr_performed))
        return 2, 3

    port = serve(our_scp(), [(evt.EVT_ASYNC_OPS, on_async_ops)])
    item = pprim.AsynchronousOperationsWindowNegotiation()
    item.maximum_number_operations_invoked = 5
    item.maximum_number_operations_performed = 4
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP", ext_neg=[item])
    assert assoc.is_established
    assert assoc.acceptor.asynchronous_operations == (2, 3)
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert seen == [(5, 4)]


def test_pynetdicom_all_extended_negotiation_at_once(serve):
    ae = our_scp()
    ae.add_supported_context(sop.CTImageStorage, scp_role=True)
    handlers = [
        (evt.EVT_USER_ID, lambda event: (True, b"jwt-ok")),
        (evt.EVT_SOP_EXTENDED, lambda event: dict(event.app_info)),
        (evt.EVT_ASYNC_OPS, lambda event: (1, 1)),
    ]
    port = serve(ae, handlers)
    extended = pprim.SOPClassExtendedNegotiation()
    extended.sop_class_uid = CTImageStorage
    extended.service_class_application_information = b"\x01"
    async_ops = pprim.AsynchronousOperationsWindowNegotiation()
    ext_neg = [
        pynetdicom_user_identity(5, b"header.payload.signature", None, positive=True),
        pynetdicom_build_role(CTImageStorage, scu_role=True, scp_role=True),
        extended,
        async_ops,
    ]
    assoc = pynetdicom_scu().associate(LOOPBACK, port, ae_title="OURSCP", ext_neg=ext_neg)
    assert assoc.is_established
    assert assoc.acceptor.user_identity.server_response == b"jwt-ok"
    assert assoc.acceptor.sop_class_extended == {CTImageStorage: b"\x01"}
    assert assoc.acceptor.asynchronous_operations == (1, 1)
    roles = {cx.abstract_syntax: (cx.as_scu, cx.as_scp) for cx in assoc.accepted_contexts}
    assert roles[CTImageStorage] == (True, True)
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_pynetdicom_presentation_context_results(serve):
    ae = our_scp()
    ae.add_supported_context(sop.CTImageStorage, ImplicitVRLittleEndian)
    port = serve(ae)
    scu = pynetdicom.AE(ae_title="PYNETSCU")
    scu.acse_timeout = scu.dimse_timeout = scu.network_timeout = PEER_TIMEOUT
    scu.add_requested_context(Verification, [JPEGBaseline8Bit, ExplicitVRLittleEndian])
    scu.add_requested_context(CTImageStorage, [JPEGBaseline8Bit])
    scu.add_requested_context(MRImageStorage)
    scu.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = scu.associate(LOOPBACK, port, ae_title="OURSCP")
    assert assoc.is_established
    accepted = [(cx.context_id, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts]
    assert accepted == [(1, ExplicitVRLittleEndian), (7, ImplicitVRLittleEndian)]
    # 0x03: abstract syntax not supported, 0x04: transfer syntaxes not supported
    assert [(cx.context_id, cx.result) for cx in assoc.rejected_contexts] == [(3, 4), (5, 3)]
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_pynetdicom_local_limit_exceeded(serve):
    ae = our_scp()
    ae.maximum_associations = 1
    port = serve(ae)
    scu = pynetdicom_scu()
    first = scu.associate(LOOPBACK, port, ae_title="OURSCP")
    assert first.is_established
    # rejected-transient, service-provider (presentation), local-limit-exceeded
    assert pynetdicom_rejected(scu, port, ae_title="OURSCP") == (2, 3, 2)
    assert first.send_c_echo().Status == 0x0000
    first.release()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:  # the slot frees when the connection has closed
        again = scu.associate(LOOPBACK, port, ae_title="OURSCP")
        if again.is_established:
            break
        time.sleep(0.02)
    assert again.is_established
    again.release()


def test_pynetdicom_abort_then_server_still_serves(serve):
    port = serve(our_scp())
    scu = pynetdicom_scu()
    assoc = scu.associate(LOOPBACK, port, ae_title="OURSCP")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.abort()
    assert assoc.is_aborted
    # An abort right after the A-ASSOCIATE-AC, before any request.
    quick = scu.associate(LOOPBACK, port, ae_title="OURSCP")
    assert quick.is_established
    quick.abort()
    for _ in range(2):
        again = scu.associate(LOOPBACK, port, ae_title="OURSCP")
        assert again.is_established
        assert again.send_c_echo().Status == 0x0000
        again.release()
        assert again.is_released


# -- our SCU -> pynetdicom SCP --------------------------------------------------------------


def test_echo_to_pynetdicom(pynetdicom_scp):
    _, port = pynetdicom_scp()
    assoc = our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP")
    assert assoc.is_established, assoc.error
    assert assoc.acceptor.implementation_version_name.startswith("PYNETDICOM")
    assert assoc.acceptor.implementation_class_uid == pynetdicom.PYNETDICOM_IMPLEMENTATION_UID
    for _ in range(3):
        assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert assoc.is_released
    assert not assoc.is_aborted


def test_pynetdicom_handler_status_and_request(pynetdicom_scp):
    seen = []

    def on_echo(event):
        seen.append((event.request.MessageID, event.assoc.requestor.ae_title))
        return 0x0001

    _, port = pynetdicom_scp([(pevt.EVT_C_ECHO, on_echo)])
    with our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP") as assoc:
        assert assoc.send_c_echo().Status == 0x0001
        assert assoc.send_c_echo(msg_id=77).Status == 0x0001
    assert assoc.is_released
    assert seen == [(1, "OURSCU"), (77, "OURSCU")]


@pytest.mark.parametrize(
    ("their_pdu", "our_pdu"),
    [(4096, 4096), (8192, 16382), (131072, 4096), (16382, 131072), (0, 0)],
)
def test_max_pdu_with_pynetdicom(pynetdicom_scp, their_pdu, our_pdu):
    seen = []

    def on_echo(event):
        seen.append(event.assoc.requestor.maximum_length)
        return 0x0000

    _, port = pynetdicom_scp([(pevt.EVT_C_ECHO, on_echo)], maximum_pdu_size=their_pdu)
    with our_scu(maximum_pdu_size=our_pdu).associate(LOOPBACK, port, ae_title="PYNETSCP") as assoc:
        assert assoc.acceptor.maximum_length == their_pdu
        assert assoc.send_c_echo().Status == 0x0000
    assert seen == [our_pdu]


def test_user_identity_with_pynetdicom(pynetdicom_scp):
    seen = []

    def on_user_id(event):
        seen.append((event.user_id_type, event.primary_field, event.secondary_field))
        return True, b"server-token"

    _, port = pynetdicom_scp([(pevt.EVT_USER_ID, on_user_id)])
    item = UserIdentityNegotiation(5, b"header.payload.signature", b"", True)
    with our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP", ext_neg=[item]) as assoc:
        assert assoc.negotiated["user_identity_response"] == b"server-token"
        assert assoc.send_c_echo().Status == 0x0000
    assert seen == [(5, b"header.payload.signature", b"")]


def test_user_identity_username_and_passcode_with_pynetdicom(pynetdicom_scp):
    seen = []

    def on_user_id(event):
        seen.append((event.user_id_type, event.primary_field, event.secondary_field))
        return True, None

    _, port = pynetdicom_scp([(pevt.EVT_USER_ID, on_user_id)])
    item = UserIdentityNegotiation(2, b"alice", b"secret", False)
    with our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP", ext_neg=[item]) as assoc:
        assert assoc.negotiated["user_identity_response"] is None
        assert assoc.send_c_echo().Status == 0x0000
    assert seen == [(2, b"alice", b"secret")]


def test_user_identity_refused_by_pynetdicom(pynetdicom_scp):
    _, port = pynetdicom_scp([(pevt.EVT_USER_ID, lambda event: (False, None))])
    item = UserIdentityNegotiation(2, b"mallory", b"guess", True)
    scu = our_scu()
    assoc = scu.associate(LOOPBACK, port, ae_title="PYNETSCP", ext_neg=[item])
    assert assoc.is_rejected
    assert not assoc.is_established
    # pynetdicom answers a refused identity with rejected-transient, ACSE, no reason.
    assert (assoc.result, assoc.result_source, assoc.diagnostic) == (2, 2, 1)
    with pytest.raises(dimse.AssociationRejected):
        with scu.associate(LOOPBACK, port, ae_title="PYNETSCP", ext_neg=[item]):
            pass


def test_role_selection_with_pynetdicom(pynetdicom_scp):
    _, port = pynetdicom_scp()
    ext_neg = [
        dimse.build_role(sop.CTImageStorage, scu_role=True, scp_role=True),
        dimse.build_role(sop.MRImageStorage, scu_role=True, scp_role=True),
    ]
    with our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP", ext_neg=ext_neg) as assoc:
        roles = {pc.abstract_syntax: (pc.scu_role, pc.scp_role) for pc in assoc.accepted_contexts}
        # pynetdicom supports CT in both roles; MR with default roles (we may only be SCU).
        assert roles == {
            sop.Verification: (True, False),
            sop.CTImageStorage: (True, True),
            sop.MRImageStorage: (True, False),
        }
        assert assoc.send_c_echo().Status == 0x0000


def test_sop_class_extended_with_pynetdicom(pynetdicom_scp):
    seen = []

    def on_extended(event):
        seen.append(dict(event.app_info))
        return {uid: info[::-1] for uid, info in event.app_info.items()}

    _, port = pynetdicom_scp([(pevt.EVT_SOP_EXTENDED, on_extended)])
    ext_neg = [
        SOPClassExtendedNegotiation(sop.CTImageStorage, b"\x01\x02"),
        SOPClassExtendedNegotiation(sop.MRImageStorage, b"\x03"),
    ]
    with our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP", ext_neg=ext_neg) as assoc:
        answers = {i["sop_class_uid"]: i["info"] for i in assoc.negotiated["extended"]}
        assert answers == {sop.CTImageStorage: b"\x02\x01", sop.MRImageStorage: b"\x03"}
        assert assoc.send_c_echo().Status == 0x0000
    assert seen == [{CTImageStorage: b"\x01\x02", MRImageStorage: b"\x03"}]


def test_async_ops_with_pynetdicom(pynetdicom_scp):
    seen = []

    def on_async_ops(event):
        seen.append((event.nr_invoked, event.nr_performed))
        return 5, 4

    _, port = pynetdicom_scp([(pevt.EVT_ASYNC_OPS, on_async_ops)])
    item = AsynchronousOperationsWindowNegotiation(5, 4)
    with our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP", ext_neg=[item]) as assoc:
        # pynetdicom does not support asynchronous operations: it always answers (1, 1).
        assert assoc.negotiated["async_ops"] == (1, 1)
        assert assoc.send_c_echo().Status == 0x0000
    assert seen == [(5, 4)]


def test_rejected_by_pynetdicom_called_aet(pynetdicom_scp):
    pae, port = pynetdicom_scp()
    pae.require_called_aet = True
    scu = our_scu()
    assoc = scu.associate(LOOPBACK, port, ae_title="NOTPYNET")
    assert assoc.is_rejected
    assert not assoc.is_established
    assert not assoc.is_aborted
    assert (assoc.result, assoc.result_source, assoc.diagnostic) == (1, 1, 7)
    with pytest.raises(dimse.AssociationRejected) as info:
        with scu.associate(LOOPBACK, port, ae_title="NOTPYNET"):
            pass
    assert (info.value.result, info.value.source, info.value.reason) == (1, 1, 7)
    with scu.associate(LOOPBACK, port, ae_title="PYNETSCP") as assoc:
        assert assoc.send_c_echo().Status == 0x0000


def test_rejected_by_pynetdicom_calling_aet(pynetdicom_scp):
    pae, port = pynetdicom_scp()
    pae.require_calling_aet = ["OTHER"]
    assoc = our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP")
    assert assoc.is_rejected
    assert (assoc.result, assoc.result_source, assoc.diagnostic) == (1, 1, 3)
    other = our_ae("OTHER")
    other.add_requested_context(sop.Verification)
    with other.associate(LOOPBACK, port, ae_title="PYNETSCP") as assoc:
        assert assoc.send_c_echo().Status == 0x0000


def test_presentation_context_results_from_pynetdicom(pynetdicom_scp):
    supported = [
        (Verification, None),
        (CTImageStorage, [JPEGBaseline8Bit]),
        (MRImageStorage, [ImplicitVRLittleEndian]),
    ]
    _, port = pynetdicom_scp(supported=supported)
    ae = our_ae("OURSCU")
    ae.add_requested_context(sop.Verification)
    ae.add_requested_context(sop.CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(sop.MRImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.add_requested_context(sop.SecondaryCaptureImageStorage)
    with ae.associate(LOOPBACK, port, ae_title="PYNETSCP") as assoc:
        accepted = [(pc.context_id, pc.abstract_syntax) for pc in assoc.accepted_contexts]
        assert accepted == [(1, sop.Verification), (5, sop.MRImageStorage)]
        assert assoc.accepted_contexts[1].transfer_syntax == [ImplicitVRLittleEndian]
        rejected = [(pc.context_id, pc.result) for pc in assoc.rejected_contexts]
        assert rejected == [(3, 4), (7, 3)]
        assert assoc.send_c_echo().Status == 0x0000


def test_local_limit_exceeded_by_pynetdicom(pynetdicom_scp):
    pae, port = pynetdicom_scp()
    pae.maximum_associations = 1
    scu = our_scu()
    with scu.associate(LOOPBACK, port, ae_title="PYNETSCP") as first:
        second = scu.associate(LOOPBACK, port, ae_title="PYNETSCP")
        assert second.is_rejected
        assert (second.result, second.result_source, second.diagnostic) == (2, 3, 2)
        assert first.send_c_echo().Status == 0x0000


def test_pynetdicom_scp_aborts(pynetdicom_scp):
    def abort(event):
        event.assoc.abort()
        return 0x0000

    _, port = pynetdicom_scp([(pevt.EVT_C_ECHO, abort)])
    assoc = our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP")
    assert assoc.is_established
    with pytest.raises(dimse.AssociationAborted, match="abort"):
        assoc.send_c_echo()
    assert assoc.is_aborted
    assert not assoc.is_established
    with pytest.raises(dimse.NotEstablished):
        assoc.send_c_echo()
    with pytest.raises(dimse.AssociationAborted):
        with our_scu().associate(LOOPBACK, port, ae_title="PYNETSCP") as again:
            again.send_c_echo()
