"""Associations between our own SCU and SCP: negotiation outcomes, release, abort,
timeouts, and the errors a caller sees."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import dimse
from conftest import echo_ok
from dimse import AE, evt, sop


def scu(**settings) -> AE:
    ae = AE("ECHOSCU")
    ae.acse_timeout = 5
    ae.dimse_timeout = 5
    for name, value in settings.items():
        setattr(ae, name, value)
    ae.add_requested_context(sop.Verification)
    return ae


def test_echo_and_release(echo_server):
    _, _, port = echo_server()
    assoc = scu().associate("127.0.0.1", port, ae_title="ECHOSCP")
    assert assoc.is_established
    assert not assoc.is_rejected
    assert not assoc.is_aborted
    (pc,) = assoc.accepted_contexts
    assert pc.abstract_syntax == sop.Verification
    assert pc.context_id == 1
    assert assoc.acceptor.implementation_class_uid == dimse.IMPLEMENTATION_CLASS_UID
    status = assoc.send_c_echo()
    assert status.Status == 0x0000
    assert status.AffectedSOPClassUID == sop.Verification
    assoc.release()
    assert assoc.is_released
    assert not assoc.is_established
    with pytest.raises(dimse.NotEstablished, match="not established"):
        assoc.send_c_echo()


def test_many_echoes_and_message_ids(echo_server):
    seen = []

    def handler(event):
        seen.append(event.message_id)
        return 0x0000

    _, _, port = echo_server(evt_handlers=[(evt.EVT_C_ECHO, handler)])
    with scu().associate("127.0.0.1", port) as assoc:
        for _ in range(20):
            assert assoc.send_c_echo().Status == 0
        assert assoc.send_c_echo(msg_id=999).Status == 0
    assert seen == [*range(1, 21), 999]


def test_handler_status_and_failure(echo_server):
    calls = []

    def handler(event, tag):
        calls.append((tag, event.assoc.requestor.ae_title, event.context.abstract_syntax))
        if len(calls) == 1:
            return 0x0107
        raise RuntimeError("boom")

    _, _, port = echo_server(evt_handlers=[(evt.EVT_C_ECHO, handler, ["x"])])
    with scu().associate("127.0.0.1", port) as assoc:
        assert assoc.send_c_echo().Status == 0x0107
        failed = assoc.send_c_echo()
        assert failed.Status == 0x0110
        assert "boom" in failed.ErrorComment
        # The association goes on after a handler error.
        assert assoc.send_c_echo().Status == 0x0110
    assert calls[0] == ("x", "ECHOSCU", sop.Verification)


def test_rejected_called_ae_title(echo_server):
    _, _, port = echo_server(require_called_aet=True)
    assoc = scu().associate("127.0.0.1", port, ae_title="WRONG")
    assert assoc.is_rejected
    assert not assoc.is_established
    assert (assoc.result, assoc.result_source, assoc.diagnostic) == (1, 1, 7)
    with pytest.raises(dimse.AssociationRejected, match="called AE title not recognized") as err:
        with scu().associate("127.0.0.1", port, ae_title="WRONG"):
            pass
    assert (err.value.result, err.value.source, err.value.reason) == (1, 1, 7)
    assert echo_ok(port)


def test_rejected_calling_ae_title(echo_server):
    _, _, port = echo_server(require_calling_aet=["FRIEND"])
    assoc = scu().associate("127.0.0.1", port)
    assert (assoc.result, assoc.result_source, assoc.diagnostic) == (1, 1, 3)
    friend = scu()
    friend.ae_title = "FRIEND"
    with friend.associate("127.0.0.1", port) as ok:
        assert ok.send_c_echo().Status == 0


def test_no_common_context(echo_server):
    _, _, port = echo_server()
    ae = AE("ECHOSCU")
    ae.add_requested_context(sop.CTImageStorage)
    assoc = ae.associate("127.0.0.1", port)
    assert assoc.is_established
    assert not assoc.accepted_contexts
    (rejected,) = assoc.rejected_contexts
    assert rejected.result == 3  # abstract syntax not supported
    with pytest.raises(dimse.NoAcceptedContext, match=sop.Verification):
        assoc.send_c_echo()
    assoc.release()


def test_transfer_syntax_chosen_by_acceptor_preference(echo_server):
    ae, server, _ = echo_server()
    server.shutdown()
    ae.supported_contexts = []
    ae.add_supported_context(sop.Verification, ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
    server = ae.start_server(("127.0.0.1", 0), block=False)
    try:
        requestor = AE("ECHOSCU")
        requestor.add_requested_context(
            sop.Verification, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
        )
        with requestor.associate("127.0.0.1", server.server_address[1]) as assoc:
            assert assoc.accepted_contexts[0].transfer_syntax == ["1.2.840.10008.1.2"]
    finally:
        server.shutdown()


def test_maximum_associations(echo_server):
    _, _, port = echo_server(maximum_associations=1)
    with scu().associate("127.0.0.1", port) as first:
        second = scu().associate("127.0.0.1", port)
        assert second.is_rejected
        # Transient, service-provider (presentation), local limit exceeded.
        assert (second.result, second.result_source, second.diagnostic) == (2, 3, 2)
        assert first.send_c_echo().Status == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        again = scu().associate("127.0.0.1", port)
        if again.is_established:
            again.release()
            break
        time.sleep(0.05)
    else:
        pytest.fail("the association slot was not given back after release")


def test_abort_by_requestor(echo_server):
    _, _, port = echo_server()
    assoc = scu().associate("127.0.0.1", port)
    assoc.abort()
    assert assoc.is_aborted
    assert not assoc.is_established
    assert echo_ok(port)


def test_context_manager_releases_and_aborts_on_interrupt(echo_server):
    _, _, port = echo_server()
    with scu().associate("127.0.0.1", port) as assoc:
        pass
    assert assoc.is_released
    with pytest.raises(KeyboardInterrupt):
        with scu().associate("127.0.0.1", port) as assoc:
            raise KeyboardInterrupt
    assert assoc.is_aborted


def test_dimse_timeout(echo_server):
    release = threading.Event()

    def slow(event):
        release.wait(5)
        return 0

    _, _, port = echo_server(evt_handlers=[(evt.EVT_C_ECHO, slow)])
    assoc = scu(dimse_timeout=0.3).associate("127.0.0.1", port)
    start = time.monotonic()
    with pytest.raises(dimse.DimseTimeout, match="DIMSE timeout"):
        assoc.send_c_echo()
    assert time.monotonic() - start < 3
    assert assoc.is_aborted
    release.set()


def test_connect_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assoc = scu().associate("127.0.0.1", port)
    assert assoc.is_aborted
    assert not assoc.is_established
    with pytest.raises(dimse.ConnectFailed, match="could not connect"):
        with scu().associate("127.0.0.1", port):
            pass
    assert isinstance(assoc.error, ConnectionError)


def test_acse_timeout_with_a_silent_acceptor():
    """A peer that accepts TCP but never answers the A-ASSOCIATE-RQ must not hold us."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        start = time.monotonic()
        assoc = scu(acse_timeout=0.5).associate("127.0.0.1", port)
        assert time.monotonic() - start < 3
        assert assoc.is_aborted
        assert "did not answer" in str(assoc.error)


def test_invalid_arguments():
    with pytest.raises(dimse.InvalidArgument, match="1 to 16"):
        AE("A" * 17)
    ae = AE()
    with pytest.raises(dimse.InvalidArgument, match="add_requested_context"):
        ae.associate("127.0.0.1", 104)
    with pytest.raises(dimse.InvalidArgument, match="not a UID"):
        ae.add_requested_context("1.2.x")
    with pytest.raises(dimse.InvalidArgument, match="maximum_pdu_size"):
        ae.maximum_pdu_size = 3
    with pytest.raises(dimse.InvalidArgument, match="add_supported_context"):
        ae.start_server(("127.0.0.1", 0), block=False)
    for _ in range(128):
        ae.add_requested_context(sop.Verification)
    with pytest.raises(dimse.InvalidArgument, match="128"):
        ae.add_requested_context(sop.Verification)


@pytest.mark.parametrize("max_pdu", [0, 4096, 16382, 1 << 20])
def test_maximum_pdu_sizes(echo_server, max_pdu):
    _, _, port = echo_server(maximum_pdu_size=max_pdu)
    with scu(maximum_pdu_size=max_pdu).associate("127.0.0.1", port) as assoc:
        assert assoc.acceptor.maximum_length == max_pdu
        assert assoc.send_c_echo().Status == 0


def test_server_shutdown_aborts_associations(echo_server):
    _, server, port = echo_server()
    assoc = scu().associate("127.0.0.1", port)
    server.shutdown()
    assert not server.is_running()
    with pytest.raises(dimse.AssociationAborted):
        assoc.send_c_echo()


def test_user_information_items_through_a_real_association():
    """Every user information item, proposed by our SCU and answered by our SCP's hooks."""
    from dimse.pdu_primitives import (
        AsynchronousOperationsWindowNegotiation,
        SOPClassCommonExtendedNegotiation,
        SOPClassExtendedNegotiation,
        UserIdentityNegotiation,
    )

    seen = {}

    def on_user_id(event):
        seen["user"] = (event.user_id_type, event.primary_field, event.secondary_field)
        return True, b"welcome"

    def on_extended(event):
        seen["extended"] = event.app_info
        return {uid: b"\x01\x00" for uid in event.app_info}

    def on_async(event):
        seen["async"] = (event.nr_invoked, event.nr_performed)
        return 2, 1

    scp = AE("ECHOSCP")
    scp.add_supported_context(sop.Verification)
    scp.add_supported_context(sop.CTImageStorage, scp_role=True, scu_role=True)
    server = scp.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[
            (evt.EVT_USER_ID, on_user_id),
            (evt.EVT_SOP_EXTENDED, on_extended),
            (evt.EVT_ASYNC_OPS, on_async),
        ],
    )
    try:
        requestor = scu()
        requestor.add_requested_context(sop.CTImageStorage)
        ext_neg = [
            dimse.build_role(sop.CTImageStorage, scu_role=True, scp_role=True),
            UserIdentityNegotiation(5, b"head.body.sig", b"", positive_response_requested=True),
            SOPClassExtendedNegotiation(sop.CTImageStorage, b"\x01\x01"),
            SOPClassCommonExtendedNegotiation(
                sop.CTImageStorage, "1.2.840.10008.4.2", ["1.2.840.10008.5.1.4.1.1.2.1"]
            ),
            AsynchronousOperationsWindowNegotiation(5, 3),
        ]
        port = server.server_address[1]
        with requestor.associate("127.0.0.1", port, ext_neg=ext_neg) as assoc:
            n = assoc.negotiated
            assert n["user_identity_response"] == b"welcome"
            assert n["extended"] == [{"sop_class_uid": sop.CTImageStorage, "info": b"\x01\x00"}]
            assert n["async_ops"] == [2, 1] or n["async_ops"] == (2, 1)
            ct = next(
                c for c in assoc.accepted_contexts if c.abstract_syntax == sop.CTImageStorage
            )
            assert ct.scu_role is True
            assert ct.scp_role is True
            assert assoc.send_c_echo().Status == 0
        assert seen["user"] == (5, b"head.body.sig", b"")
        assert seen["extended"] == {sop.CTImageStorage: b"\x01\x01"}
        assert seen["async"] == (5, 3)
        # A rejected identity rejects the association (service-user, no reason given).
        server.shutdown()
        server = scp.start_server(
            ("127.0.0.1", 0),
            block=False,
            evt_handlers=[(evt.EVT_USER_ID, lambda e: (False, None))],
        )
        refused = requestor.associate("127.0.0.1", server.server_address[1], ext_neg=ext_neg[1:2])
        assert (refused.result, refused.result_source, refused.diagnostic) == (1, 1, 1)
    finally:
        server.shutdown()


def test_ctrl_c_interrupts_a_blocking_call():
    """A blocking call (here: waiting for a silent acceptor's answer) releases the GIL and
    turns SIGINT into KeyboardInterrupt promptly."""
    import signal
    import subprocess
    import sys

    code = """
import socket, sys
from dimse import AE, sop
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(1)
ae = AE("SCU"); ae.acse_timeout = 60; ae.add_requested_context(sop.Verification)
print("ready", flush=True)
try:
    ae.associate("127.0.0.1", listener.getsockname()[1])
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(0)
sys.exit(1)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "interrupted" in out
        assert time.monotonic() - start < 2
    finally:
        proc.kill()
        proc.wait()


def test_failing_user_identity_handler_rejects(echo_server):
    """A handler that raises or answers something unusable does not let the user in."""
    from dimse.pdu_primitives import UserIdentityNegotiation

    def broken(event):
        raise RuntimeError("user database unavailable")

    for handler in (broken, lambda e: False):
        _, _, port = echo_server(evt_handlers=[(evt.EVT_USER_ID, handler)])
        assoc = scu().associate("127.0.0.1", port, ext_neg=[UserIdentityNegotiation(1, b"u")])
        assert (assoc.result, assoc.result_source, assoc.diagnostic) == (1, 1, 1)


def test_slow_handler_is_not_a_network_timeout(echo_server):
    def slow(event):
        time.sleep(1.5)
        return 0

    _, _, port = echo_server(network_timeout=0.5, evt_handlers=[(evt.EVT_C_ECHO, slow)])
    with scu(network_timeout=5).associate("127.0.0.1", port) as assoc:
        assert assoc.send_c_echo().Status == 0


def test_idle_requestor_can_still_call(echo_server):
    """The requestor's network timeout counts from its last exchange: a pause between
    calls longer than it does not race the next call."""
    _, _, port = echo_server(network_timeout=30)
    with scu(network_timeout=0.3).associate("127.0.0.1", port) as assoc:
        for _ in range(3):
            time.sleep(0.5)
            assert assoc.send_c_echo().Status == 0


def test_huge_timeouts_do_not_crash(echo_server):
    _, _, port = echo_server()
    with scu(acse_timeout=1e20, dimse_timeout=1e300, network_timeout=float("inf")).associate(
        "127.0.0.1", port
    ) as assoc:
        assert assoc.send_c_echo().Status == 0


def test_unsupported_event_handlers_are_refused():
    ae = AE("X")
    ae.add_supported_context(sop.Verification)
    ae.add_requested_context(sop.Verification)
    with pytest.raises(TypeError, match="not an event"):
        ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[("EVT_C_ECHO", print)])
    with pytest.raises(dimse.InvalidArgument, match="EVT_C_FIND"):
        ae.associate("127.0.0.1", 1, evt_handlers=[(evt.EVT_C_FIND, print)])
    # PDU notifications come from the Rust driver of a server only.
    with pytest.raises(dimse.InvalidArgument, match="EVT_PDU_RECV"):
        ae.associate("127.0.0.1", 1, evt_handlers=[(evt.EVT_PDU_RECV, print)])


def test_dimse_called_from_a_signal_handler_during_a_blocking_call():
    """A Python signal handler runs outside the runtime: calling dimse from it (here an
    association attempt) while the main thread waits in dimse must not panic."""
    import signal

    results = []
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]

    def on_alarm(signum, frame):
        results.append(scu().associate("127.0.0.1", closed_port).is_aborted)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            assoc = scu(acse_timeout=1.5).associate("127.0.0.1", listener.getsockname()[1])
            assert assoc.is_aborted
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert results == [True]
