"""Resource limits as settings: each ``AE`` limit and timeout is enforced, with the exact
outcome past it (docs/limits.md lists them all, with the test that proves each one).

Settings already proven elsewhere are not tested again here; docs/limits.md names those
tests. This file holds the rest: the documented defaults, ``maximum_associations_per_peer``
(per address), ``maximum_pdu_size`` at values other than the default,
``maximum_queued_requests``, the ACSE timeout on release, the DIMSE and network timeouts
against raw peers, and ``connection_timeout``.

Everything runs over loopback: peers are raw sockets in this process, servers are stopped
by the fixture, and every wait has a deadline.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

import dimse
from conftest import APP_CONTEXT, ECHO_CONTEXT, associate_rq, echo_ok, item
from dimse import AE, dsutils, evt, sop

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
STUDY_FIND = sop.StudyRootQueryRetrieveInformationModelFind
#: The ACSE timeout (so ARTIM) of servers that abort: they close ARTIM after the A-ABORT.
ARTIM = 0.5


# -- raw PDUs --------------------------------------------------------------------------------


def pdu(pdu_type: int, body: bytes) -> bytes:
    """A PDU: type, reserved, 4-byte length, body (PS3.8 9.3.1)."""
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def abort(source: int, reason: int) -> bytes:
    """An A-ABORT (PS3.8 9.3.8)."""
    return pdu(7, bytes([0, 0, source, reason]))


def reject(result: int, source: int, reason: int) -> bytes:
    """An A-ASSOCIATE-RJ (PS3.8 9.3.4)."""
    return pdu(3, bytes([0, result, source, reason]))


RELEASE_RQ = pdu(5, bytes(4))
RELEASE_RP = pdu(6, bytes(4))


def p_data(context_id: int, control: int, data: bytes) -> bytes:
    """A P-DATA-TF with one PDV (PS3.8 9.3.5); its length field is len(data) + 6."""
    return pdu(4, struct.pack(">IBB", len(data) + 2, context_id, control) + data)


def context_item(context_id: int, abstract_syntax: str) -> bytes:
    return item(
        0x20,
        bytes([context_id, 0, 0, 0])
        + item(0x30, abstract_syntax.encode())
        + item(0x40, IMPLICIT_LE.encode()),
    )


#: Verification (context 1), CT storage (3), Study Root FIND (5); Maximum Length 0.
RQ = associate_rq(
    APP_CONTEXT,
    ECHO_CONTEXT,
    context_item(3, sop.CTImageStorage),
    context_item(5, STUDY_FIND),
    item(0x50, item(0x51, struct.pack(">I", 0))),
)


def message(context_id: int, fields: dict, dataset: bytes | None = None) -> bytes:
    """A DIMSE message as P-DATA-TF PDUs (16382-byte PDUs)."""
    command = dimse.encode_message(fields, has_dataset=dataset is not None)
    return b"".join(dimse.fragment(context_id, command, dataset, 16382))


def echo_rq(message_id: int) -> bytes:
    return message(
        1, {"type": "C-ECHO-RQ", "affected_sop_class_uid": VERIFICATION, "message_id": message_id}
    )


def store_command(message_id: int = 1) -> bytes:
    """A C-STORE-RQ's command set alone: its data set follows, sent by the caller."""
    command = dimse.encode_message(
        {
            "type": "C-STORE-RQ",
            "affected_sop_class_uid": sop.CTImageStorage,
            "affected_sop_instance_uid": "1.2.3.4",
            "message_id": message_id,
            "priority": "Medium",
        },
        has_dataset=True,
    )
    return b"".join(dimse.fragment(3, command, None, 16382))


def recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, f"closed after {data[:16].hex()}"
        data += chunk
    return data


def recv_pdu(s: socket.socket) -> bytes:
    """The next whole PDU (the socket's timeout applies)."""
    header = recv_exact(s, 6)
    return header + recv_exact(s, struct.unpack(">I", header[2:6])[0])


def read_messages(s: socket.socket, count: int) -> list[dict]:
    """The next `count` DIMSE messages the server sends (decoded command sets)."""
    assembler = dimse.MessageAssembler()
    out: list[dict] = []
    while len(out) < count:
        raw = recv_pdu(s)
        assert raw[0] == 0x04, f"expected a P-DATA-TF, got {raw[:10].hex()}"
        for _context, command, _data in assembler.push_pdu(raw):
            out.append(dimse.decode_message(command))
    return out


def read_until_close(s: socket.socket, timeout: float) -> tuple[bytes, float | None]:
    """What the peer sends until it closes, and when it closed (None: not within
    `timeout`)."""
    deadline = time.monotonic() + timeout
    received = b""
    while (remaining := deadline - time.monotonic()) > 0:
        s.settimeout(remaining)
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, time.monotonic()
        if not chunk:
            return received, time.monotonic()
        received += chunk
    return received, None


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A TCP connection to our server from `source` (any 127/8 address is loopback)."""
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def establish(s: socket.socket) -> None:
    s.sendall(RQ)
    ac = recv_pdu(s)
    assert ac[0] == 0x02, f"expected an A-ASSOCIATE-AC, got {ac[:10].hex()}"


def echo_ok_from(s: socket.socket) -> bool:
    """A C-ECHO on an established raw association succeeds."""
    s.sendall(echo_rq(7))
    (response,) = read_messages(s, 1)
    return response["status"] == 0x0000 and response["message_id_being_responded_to"] == 7


# -- our SCP and our SCU ---------------------------------------------------------------------


@pytest.fixture
def scp():
    """Starts our SCP (Verification, CT storage and Study Root FIND, Implicit VR Little
    Endian) with these AE settings; returns its port and stops it after the test."""
    servers = []

    def start(evt_handlers=(), **settings) -> int:
        ae = AE("LIMITSCP")
        ae.acse_timeout = 5
        ae.network_timeout = 10
        for name, value in settings.items():
            setattr(ae, name, value)
        ae.add_supported_context(sop.Verification)
        ae.add_supported_context(sop.CTImageStorage, [ImplicitVRLittleEndian])
        ae.add_supported_context(STUDY_FIND, [ImplicitVRLittleEndian])
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=list(evt_handlers))
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def scu(**settings) -> AE:
    ae = AE("LIMITSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    for name, value in settings.items():
        setattr(ae, name, value)
    ae.add_requested_context(sop.Verification)
    return ae


# -- a raw acceptor, for our requestor -------------------------------------------------------


def associate_ac(rq: bytes) -> bytes:
    """An A-ASSOCIATE-AC accepting presentation context 1 (Implicit VR Little Endian) of
    the A-ASSOCIATE-RQ `rq`, with its AE titles (PS3.8 9.3.3)."""
    fixed = struct.pack(">HH", 1, 0) + rq[10:42] + bytes(32)
    accepted = item(0x21, bytes([1, 0, 0, 0]) + item(0x40, IMPLICIT_LE.encode()))
    user = item(0x50, item(0x51, struct.pack(">I", 16382)) + item(0x52, b"1.2.3.4"))
    return pdu(2, fixed + APP_CONTEXT + accepted + user)


class RawAcceptor:
    """A loopback listener that takes one connection, accepts its association, and then
    sends nothing at all. Records what it receives after the A-ASSOCIATE-RQ and when the
    requestor closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.closed: float | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.listener.settimeout(10)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            conn.sendall(associate_ac(recv_pdu(conn)))
            self.received, self.closed = read_until_close(conn, 15)

    def pdus(self) -> list[bytes]:
        """The PDUs received after the A-ASSOCIATE-RQ (once the requestor closed)."""
        self._thread.join(20)
        out, data = [], self.received
        while len(data) >= 6:
            end = 6 + struct.unpack(">I", data[2:6])[0]
            out.append(data[:end])
            data = data[end:]
        return out

    def close(self) -> None:
        self.listener.close()
        self._thread.join(20)


# -- defaults --------------------------------------------------------------------------------


def test_documented_defaults():
    """The defaults docs/limits.md states."""
    ae = AE()
    assert ae.maximum_associations == 10
    assert ae.maximum_associations_per_peer == 0
    assert ae.maximum_pdu_size == 16382
    assert ae.maximum_dataset_size == 1 << 30
    assert ae.stream_threshold == 8 << 20
    assert ae.maximum_queued_requests == 16
    assert ae.handler_threads == 8
    assert (ae.acse_timeout, ae.dimse_timeout, ae.network_timeout) == (30, 30, 60)
    assert ae.connection_timeout == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("maximum_queued_requests", 0),
        ("maximum_queued_requests", -1),
        ("maximum_queued_requests", 70000),
        ("maximum_queued_requests", True),
        ("maximum_queued_requests", 2.0),
        ("maximum_associations_per_peer", -1),
        ("maximum_associations_per_peer", True),
        ("maximum_associations_per_peer", "2"),
        ("maximum_associations", 0),
        ("maximum_pdu_size", 6),
        ("maximum_associations", True),
        ("maximum_pdu_size", False),
        ("acse_timeout", -1),
        ("dimse_timeout", float("nan")),
        ("network_timeout", True),
        ("connection_timeout", "30"),
        ("handler_threads", 0),
        ("handler_threads", -1),
        ("maximum_dataset_size", 0),
        ("maximum_dataset_size", 1.5),
        ("stream_threshold", -1),
    ],
)
def test_invalid_values_name_the_setting(name, value):
    ae = AE()
    before = getattr(ae, name)
    with pytest.raises(dimse.InvalidArgument, match=name):
        setattr(ae, name, value)
    assert getattr(ae, name) == before


# -- maximum_associations_per_peer -----------------------------------------------------------


def test_maximum_associations_per_peer_counts_each_address(scp, caplog):
    """With maximum_associations_per_peer=2 (maximum_associations=10), a third association
    from 127.0.0.1 is rejected: transient (2), service-provider presentation (3), local
    limit exceeded (2), logged with the address; 127.0.0.2 has two of its own (and its
    third is rejected the same way); a slot comes back when an association ends."""
    port = scp(maximum_associations=10, maximum_associations_per_peer=2)
    ae = scu()
    first, second = ae.associate("127.0.0.1", port), ae.associate("127.0.0.1", port)
    others: list[socket.socket] = []
    try:
        assert first.is_established
        assert second.is_established
        with caplog.at_level(logging.WARNING, logger="dimse"):
            third = ae.associate("127.0.0.1", port)
            assert not third.is_established
            assert (third.result, third.result_source, third.diagnostic) == (2, 3, 2)
            deadline = time.monotonic() + 5
            while "per client address" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.02)
        lines = [r.getMessage() for r in caplog.records]
        (line,) = [x for x in lines if "per client address" in x]
        assert "association from 127.0.0.1:" in line
        assert "127.0.0.1 holds 2 associations already" in line
        # Another address: its own two slots, then the same rejection.
        for _ in range(2):
            others.append(connect(port, "127.0.0.2"))
            establish(others[-1])
        with connect(port, "127.0.0.2") as s:
            s.sendall(RQ)
            assert recv_pdu(s) == reject(2, 3, 2)
        assert first.send_c_echo().Status == 0
        assert echo_ok_from(others[0])
        second.release()
        deadline = time.monotonic() + 5
        while not (again := ae.associate("127.0.0.1", port)).is_established:
            assert time.monotonic() < deadline, "the released association's slot stays taken"
            time.sleep(0.05)
        again.release()
    finally:
        first.release()
        for s in others:
            s.close()


# -- maximum_pdu_size ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "taken", "refused"),
    [(4096, 4096, 4097), (0, 100_000, 64 * 1024 * 1024 + 1)],
    ids=["4096", "0-unlimited"],
)
def test_maximum_pdu_size_is_what_the_server_accepts(scp, setting, taken, refused):
    """The Maximum Length announced is the largest P-DATA-TF length field accepted: one
    of `taken` bytes is stored; one of `refused` gets A-ABORT (service-provider, invalid
    PDU parameter value: 2, 6) from its 6-byte header, and the handler never sees it.
    0 ("unlimited", PS3.8 D.1) is clamped to 64 MiB. (The default, 16382, is proven by
    test_hostile.py::test_p_data_longer_than_our_maximum_length.)"""
    calls: list[int] = []

    def on_store(event):
        calls.append(len(event.data))
        return 0x0000

    port = scp(
        evt_handlers=[(evt.EVT_C_STORE, on_store)], maximum_pdu_size=setting, acse_timeout=ARTIM
    )
    with connect(port) as s:
        s.sendall(RQ)
        ac = recv_pdu(s)
        assert item(0x51, struct.pack(">I", setting)) in ac
        s.sendall(store_command() + p_data(3, 0x02, bytes(taken - 6)))
        (response,) = read_messages(s, 1)
        assert response["status"] == 0x0000
        # Only the header of the oversize PDU: the server must not wait for its body.
        s.sendall(store_command(2) + struct.pack(">BBI", 4, 0, refused) + bytes(64))
        sent = time.monotonic()
        received, closed = read_until_close(s, ARTIM + 5)
        assert received == abort(2, 6)
        # AA-8: the server then waits for our close until ARTIM (PS3.8 Sta13).
        assert closed is not None
        assert closed - sent < ARTIM + 3
    assert calls == [taken - 6]
    assert echo_ok(port, called="LIMITSCP")


# -- maximum_dataset_size above stream_threshold ---------------------------------------------


@pytest.mark.parametrize(
    ("stream_threshold", "expected"),
    # Below the threshold the message assembler refuses the PDV (provider, invalid PDU
    # parameter); above it the server's loop holds the parts and aborts as the user.
    [(8 << 20, (2, 6)), (16 << 10, (0, 0))],
    ids=["below-threshold", "above-threshold"],
)
def test_maximum_dataset_size_of_a_c_find_identifier(scp, stream_threshold, expected):
    """A C-FIND identifier of 100 kB with maximum_dataset_size=64 KiB gets A-ABORT and
    the handler never sees it, as ae.py documents ("a peer sending more gets an A-ABORT"),
    whether it is assembled (below stream_threshold) or held in parts (above it, when no
    sink takes it: anything but a C-STORE). (The C-STORE case, exactly at the cap and
    past it: test_hostile.py::test_dataset_larger_than_maximum_dataset_size.)
    """
    calls: list[int] = []

    def on_find(event):
        calls.append(1)
        return []

    port = scp(
        evt_handlers=[(evt.EVT_C_FIND, on_find)],
        maximum_dataset_size=64 << 10,
        stream_threshold=stream_threshold,
        acse_timeout=ARTIM,
    )
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.private_block(0x0009, "LIMITS", create=True).add_new(0x10, "OB", bytes(100_000))
    identifier = dsutils.encode(ds, ImplicitVRLittleEndian)
    find = message(
        5,
        {
            "type": "C-FIND-RQ",
            "affected_sop_class_uid": STUDY_FIND,
            "message_id": 1,
            "priority": "Medium",
        },
        identifier,
    )
    with connect(port) as s:
        establish(s)
        s.sendall(find)
        first = recv_pdu(s)
        assert first == abort(*expected), f"got {first[:12].hex()}, handler calls {calls}"
        _, closed = read_until_close(s, ARTIM + 5)
        assert closed is not None
    assert calls == []


# -- maximum_queued_requests -----------------------------------------------------------------


@pytest.mark.parametrize("queued", [1, 4])
def test_maximum_queued_requests_stops_reading(scp, queued):
    """12 C-ECHO-RQs pipelined on one association, whose handler is held: the server
    reads one (its handler runs), then `queued` more (waiting for it), then no further
    (its events, so its socket, are not read: rust/dimse-core/src/net/server.rs only
    receives while ``queue.len() < max_queued``, and EVT_DIMSE_RECV is reported for each
    message as it is taken, before it is queued). Once the handler is released, all 12
    are answered, in order."""
    gate = threading.Event()
    lock = threading.Lock()
    received: list[int] = []

    def on_echo(event):
        gate.wait(20)
        return 0x0000

    def on_recv(event):
        with lock:
            received.append(int(event.message.MessageID))

    port = scp(
        evt_handlers=[(evt.EVT_C_ECHO, on_echo), (evt.EVT_DIMSE_RECV, on_recv)],
        maximum_queued_requests=queued,
    )
    try:
        with connect(port) as s:
            establish(s)
            s.sendall(b"".join(echo_rq(i) for i in range(1, 13)))
            deadline = time.monotonic() + 5
            while len(received) < 1 + queued and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(1.0)  # time to read more, if it would
            with lock:
                assert received == list(range(1, 2 + queued))
            gate.set()
            s.settimeout(10)
            responses = read_messages(s, 12)
            assert [r["message_id_being_responded_to"] for r in responses] == list(range(1, 13))
            assert all(r["status"] == 0x0000 for r in responses)
            s.sendall(RELEASE_RQ)
            assert recv_pdu(s) == RELEASE_RP
    finally:
        gate.set()
    assert received == list(range(1, 13))


# -- acse_timeout ----------------------------------------------------------------------------


def test_acse_timeout_bounds_the_release():
    """Our requestor releases; the peer never answers the A-RELEASE-RQ. After
    acse_timeout it gives up: AcseTimeout, A-ABORT (service-user: 0, 0) and close; the
    association is aborted. (The A-ASSOCIATE-RQ side is test_association.py::
    test_acse_timeout_with_a_silent_acceptor; ARTIM on our server is
    test_hostile.py::test_connection_that_never_sends.)"""
    timeout = 1.0
    peer = RawAcceptor()
    try:
        assoc = scu(acse_timeout=timeout).associate("127.0.0.1", peer.port)
        assert assoc.is_established
        start = time.monotonic()
        with pytest.raises(dimse.AcseTimeout, match="A-RELEASE-RQ"):
            assoc.release()
        took = time.monotonic() - start
        assert not assoc.is_established
        assert assoc.is_aborted
        assert timeout - 0.2 < took < timeout + 3
        assert peer.pdus() == [RELEASE_RQ, abort(0, 0)]
        assert peer.closed is not None
    finally:
        peer.close()


# -- dimse_timeout ---------------------------------------------------------------------------


def test_dimse_timeout_against_a_peer_that_never_answers():
    """The peer accepts the association and never answers the C-ECHO-RQ: DimseTimeout
    after dimse_timeout (not before), an A-ABORT to the peer, then close. (Against our own
    SCP with a held handler: test_association.py::test_dimse_timeout.)"""
    timeout = 1.0
    peer = RawAcceptor()
    try:
        assoc = scu(dimse_timeout=timeout, network_timeout=30).associate("127.0.0.1", peer.port)
        start = time.monotonic()
        with pytest.raises(dimse.DimseTimeout, match="DIMSE timeout"):
            assoc.send_c_echo()
        assert timeout - 0.2 < time.monotonic() - start < timeout + 3
        assert assoc.is_aborted
        pdus = peer.pdus()
        assert [p[0] for p in pdus] == [0x04, 0x07], [p[:12].hex() for p in pdus]
        assert pdus[-1] == abort(0, 0)
        assert peer.closed is not None
    finally:
        peer.close()


# -- network_timeout -------------------------------------------------------------------------


def test_network_timeout_aborts_a_silent_association(scp):
    """An established association that sends nothing (no PDU in progress) gets an A-ABORT
    (service-user: 0, 0) network_timeout after its last PDU, and is closed. (Silence in
    the middle of a PDU: test_hostile.py::
    test_slowloris_p_data_holds_the_association_while_bytes_come.)"""
    timeout = 1.0
    port = scp(network_timeout=timeout)
    with connect(port) as s:
        establish(s)
        assert echo_ok_from(s)
        last = time.monotonic()
        received, closed = read_until_close(s, timeout + 5)
    assert received == abort(0, 0)
    assert closed is not None
    assert timeout - 0.2 < closed - last < timeout + 3
    assert echo_ok(port, called="LIMITSCP")


def test_network_timeout_of_our_requestor():
    """Our requestor waiting for a response (dimse_timeout 30 s) from a peer that went
    silent: the network timeout ends it first (AssociationAborted), with an A-ABORT
    (service-user: 0, 0) to the peer."""
    timeout = 1.0
    peer = RawAcceptor()
    try:
        assoc = scu(dimse_timeout=30, network_timeout=timeout).associate("127.0.0.1", peer.port)
        start = time.monotonic()
        with pytest.raises(dimse.AssociationAborted, match="within the network timeout"):
            assoc.send_c_echo()
        assert timeout - 0.2 < time.monotonic() - start < timeout + 3
        assert assoc.is_aborted
        pdus = peer.pdus()
        assert [p[0] for p in pdus] == [0x04, 0x07], [p[:12].hex() for p in pdus]
        assert pdus[-1] == abort(0, 0)
    finally:
        peer.close()


# -- connection_timeout ----------------------------------------------------------------------


def test_connection_timeout():
    """A listening socket with a backlog of 0 that never accepts: once one connection
    fills its queue, Linux drops further SYNs, so connect() hangs (the kernel retries for
    about two minutes). connection_timeout ends it: ConnectFailed after the timeout."""
    timeout = 0.5
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers: list[socket.socket] = []
        try:
            # Fill the accept queue: until a connect does not complete at once.
            for _ in range(8):
                s = socket.socket()
                s.settimeout(0.3)
                fillers.append(s)
                try:
                    s.connect(("127.0.0.1", port))
                except TimeoutError:
                    break
            else:
                pytest.fail("connect() to a full listen queue never blocks here")
            result: list[object] = []

            def attempt() -> None:
                start = time.monotonic()
                try:
                    with scu(connection_timeout=timeout).associate("127.0.0.1", port):
                        result.append("established")
                except Exception as e:
                    result.append((e, time.monotonic() - start))

            worker = threading.Thread(target=attempt, daemon=True)
            worker.start()
            worker.join(timeout + 5)
            assert not worker.is_alive(), "connect() was not bounded by connection_timeout"
        finally:
            for s in fillers:
                s.close()
    ((error, took),) = result
    assert isinstance(error, dimse.ConnectFailed), error
    assert "within" in str(error)
    assert timeout - 0.1 < took < timeout + 3
