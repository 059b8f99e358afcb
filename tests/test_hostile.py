"""Hostile and broken peers against our SCP: each gets the right A-ABORT or a close
within the timeouts, and the server goes on serving a normal C-ECHO."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from conftest import APP_CONTEXT, ECHO_CONTEXT, associate_rq, echo_ok, item

ARTIM = 1.0  # the server's ACSE timeout, which is also its ARTIM value


def abort(source: int, reason: int) -> bytes:
    """An A-ABORT PDU (PS3.8 9.3.8)."""
    return struct.pack(">BBIBBBB", 7, 0, 4, 0, 0, source, reason)


def exchange(port: int, payload: bytes, wait: float = 5.0) -> tuple[bytes, float]:
    """Sends `payload`, then reads until the server closes; returns what it sent and how
    long it took to close."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        start = time.monotonic()
        if payload:
            s.sendall(payload)
        received = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
        return received, time.monotonic() - start


@pytest.fixture
def port(echo_server):
    _, _, port = echo_server(acse_timeout=ARTIM, network_timeout=10)
    return port


def test_garbage(port):
    received, took = exchange(port, b"\xff" * 64)
    # Sta2 + invalid PDU (Evt19) is AA-1: A-ABORT, then ARTIM closes.
    assert received == abort(0, 0)
    assert took < ARTIM + 2
    assert echo_ok(port)


def test_http_request(port):
    received, _ = exchange(port, b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n")
    assert received == abort(0, 0)
    assert echo_ok(port)


def test_truncated_pdu_then_silence(port):
    rq = associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, b""))
    received, took = exchange(port, rq[:20])
    # Nothing complete ever arrives: ARTIM (Sta2) expires and the server closes.
    assert received == b""
    assert ARTIM - 0.2 < took < ARTIM + 2
    assert echo_ok(port)


def test_associate_rq_declaring_4_gb(port):
    received, took = exchange(port, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 10)
    assert received == abort(0, 0)
    assert took < ARTIM + 2
    assert echo_ok(port)


def test_p_data_before_association(port):
    pdata = struct.pack(">BBII", 4, 0, 6, 2) + bytes([1, 3])
    received, _ = exchange(port, pdata)
    assert received == abort(0, 0)
    assert echo_ok(port)


def test_connection_that_never_sends(port):
    received, took = exchange(port, b"")
    assert received == b""
    assert ARTIM - 0.2 < took < ARTIM + 2
    assert echo_ok(port)


def test_release_rq_before_association(port):
    received, _ = exchange(port, struct.pack(">BBI", 5, 0, 4) + bytes(4))
    assert received == abort(0, 0)


def test_bad_protocol_version_is_rejected(port):
    rq = bytearray(associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, b"")))
    rq[7] = 0x02  # protocol version 2: bit 0 clear
    received, _ = exchange(port, bytes(rq))
    # A-ASSOCIATE-RJ: permanent, service-provider (ACSE), protocol version not supported.
    assert received == struct.pack(">BBIBBBB", 3, 0, 4, 0, 1, 2, 2)


def test_bad_application_context_is_rejected(port):
    rq = associate_rq(item(0x10, b"1.2.3.4"), ECHO_CONTEXT, item(0x50, b""))
    received, _ = exchange(port, rq)
    assert received == struct.pack(">BBIBBBB", 3, 0, 4, 0, 1, 1, 2)


def test_invalid_pdu_after_association(port):
    """An established association that receives garbage: A-ABORT (service provider,
    unrecognized PDU) and close."""
    rq = associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, item(0x51, struct.pack(">I", 0))))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(rq)
        header = s.recv(6)
        assert header[0] == 0x02  # A-ASSOCIATE-AC
        (length,) = struct.unpack(">I", header[2:6])
        body = b""
        while len(body) < length:
            body += s.recv(length - len(body))
        s.sendall(b"\x99\x00\x00\x00\x00\x00")
        received = b""
        while chunk := s.recv(4096):
            received += chunk
    assert received == abort(2, 1)
    assert echo_ok(port)


def test_peer_closes_mid_pdu_after_association(port):
    rq = associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, b""))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(rq)
        assert s.recv(1) == b"\x02"
        s.sendall(struct.pack(">BBI", 4, 0, 1000) + b"\x00" * 10)
    assert echo_ok(port)


def test_many_hostile_connections_at_once(port):
    socks = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"\x01\x00\x00\x00")  # a PDU header that never completes
            socks.append(s)
        # The server keeps serving while they hang.
        assert echo_ok(port)
    finally:
        for s in socks:
            s.close()


def _recv_pdu(s: socket.socket) -> bytes:
    header = b""
    while len(header) < 6:
        chunk = s.recv(6 - len(header))
        assert chunk, "closed"
        header += chunk
    (length,) = struct.unpack(">I", header[2:6])
    body = b""
    while len(body) < length:
        chunk = s.recv(length - len(body))
        assert chunk, "closed"
        body += chunk
    return header + body


def test_pipelined_requests_are_all_answered(port):
    """A peer that sends 200 requests without waiting (beyond the negotiated window of
    one) gets 200 responses, in order: the server neither deadlocks nor drops any."""
    import dimse

    rq = associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, item(0x51, struct.pack(">I", 0))))
    requests = b"".join(
        dimse.fragment(
            1,
            dimse.encode_message(
                {
                    "type": "C-ECHO-RQ",
                    "affected_sop_class_uid": "1.2.840.10008.1.1",
                    "message_id": i,
                }
            ),
        )[0]
        for i in range(1, 201)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(rq)
        assert _recv_pdu(s)[0] == 0x02
        s.sendall(requests)
        assembler = dimse.MessageAssembler()
        ids = []
        while len(ids) < 200:
            for _ctx, command, _ in assembler.push_pdu(_recv_pdu(s)):
                ids.append(dimse.decode_message(command)["message_id_being_responded_to"])
        assert ids == list(range(1, 201))
        s.sendall(struct.pack(">BBI", 5, 0, 4) + bytes(4))
        assert _recv_pdu(s)[0] == 0x06  # A-RELEASE-RP


def test_peer_that_never_reads_does_not_pin_the_server(echo_server):
    """A peer that floods requests and never reads the responses fills our send buffer;
    the stalled write gives up after the network timeout, the association slot comes
    back, and shutdown is not held."""
    import dimse

    _, server, port = echo_server(network_timeout=1, maximum_associations=1)
    rq = associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, item(0x51, struct.pack(">I", 0))))
    echo = dimse.fragment(
        1,
        dimse.encode_message(
            {"type": "C-ECHO-RQ", "affected_sop_class_uid": "1.2.840.10008.1.1", "message_id": 1}
        ),
    )[0]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(rq)
        assert _recv_pdu(s)[0] == 0x02
        s.settimeout(0.5)
        sent = 0
        deadline = time.monotonic() + 5
        while sent < 20_000_000 and time.monotonic() < deadline:
            try:
                sent += s.send(echo * 1000)
            except (TimeoutError, BlockingIOError):
                break
        # Within a few network timeouts the slot is free again for a normal peer.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                if echo_ok(port):
                    break
            except dimse.AssociationRejected:
                time.sleep(0.2)
        else:
            pytest.fail("the stuck association kept its slot")
        start = time.monotonic()
        server.shutdown()
        assert time.monotonic() - start < 5
    finally:
        s.close()
