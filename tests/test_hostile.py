"""Hostile and broken peers against our SCP, over loopback: each gets the outcome PS3.8
prescribes (the right A-ABORT, A-RELEASE-RP or nothing, then a close within the
timeouts), and a normal C-ECHO still succeeds while the hostile peer is at work and after.

Layout:

- single cases kept from the first version of this file (garbage, HTTP, ARTIM ...);
- the state table: every PDU type, unknown types, truncated, oversize and malformed PDUs
  sent in each state a raw peer can hold our SCP in (Sta2, Sta3, Sta6, Sta8, Sta13),
  checked against PS3.8 Table 9-10 (``expected_outcome``);
- one test per hostile behaviour: a P-DATA flood that never reads, slowloris peers, 1000
  connections that never send an A-ASSOCIATE-RQ, an abort in the middle of a data set, a
  C-CANCEL-RQ for an unknown message, duplicate Message IDs, responses to requests never
  sent, oversize lengths.

Everything is bounded: sockets are closed by context managers, servers are stopped by the
``echo_server`` and ``scp`` fixtures, every loop has a count and a deadline.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import struct
import threading
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

import dimse
from conftest import APP_CONTEXT, ECHO_CONTEXT, associate_rq, echo_ok, item
from dimse import AE, _core, dsutils, evt, sop
from dimse.exceptions import InvalidPDU
from dimse.storage import TEMP_SUFFIX, FileStorage

ARTIM = 0.5  # the server's ACSE timeout, which is also its ARTIM value
#: ARTIM of the state table's servers, where it must expire (70-odd cases wait for it).
TABLE_ARTIM = 0.3

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
STUDY_FIND = sop.StudyRootQueryRetrieveInformationModelFind

#: Message IDs from this one up are held by the table's C-ECHO handler (Sta8).
HELD_IDS = 0x7000
#: The table's server's maximum_queued_requests (how Sta8 is held).
QUEUED = 2


def abort(source: int, reason: int) -> bytes:
    """An A-ABORT PDU (PS3.8 9.3.8)."""
    return struct.pack(">BBIBBBB", 7, 0, 4, 0, 0, source, reason)


def pdu(pdu_type: int, body: bytes) -> bytes:
    """A PDU: type, reserved, 4-byte length, body (PS3.8 9.3.1)."""
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


RELEASE_RQ = pdu(5, bytes(4))
RELEASE_RP = pdu(6, bytes(4))


def p_data(context_id: int, control: int, data: bytes) -> bytes:
    """A P-DATA-TF with one PDV (PS3.8 9.3.5)."""
    return pdu(4, struct.pack(">IBB", len(data) + 2, context_id, control) + data)


def context_item(context_id: int, abstract_syntax: str, transfer_syntax: str = IMPLICIT_LE):
    """A presentation context item of an A-ASSOCIATE-RQ (PS3.8 9.3.2.2)."""
    return item(
        0x20,
        bytes([context_id, 0, 0, 0])
        + item(0x30, abstract_syntax.encode())
        + item(0x40, transfer_syntax.encode()),
    )


def rq_with(*contexts: bytes, user_items: bytes = b"") -> bytes:
    """An A-ASSOCIATE-RQ for `contexts`, Maximum Length 0 (unlimited), plus `user_items`."""
    return associate_rq(
        APP_CONTEXT, *contexts, item(0x50, item(0x51, struct.pack(">I", 0)) + user_items)
    )


VERIFICATION_RQ = rq_with(ECHO_CONTEXT)
CT_CONTEXT = context_item(1, sop.CTImageStorage)
STORE_RQ = rq_with(CT_CONTEXT, context_item(3, VERIFICATION))


def message_pdus(context_id: int, message: dict, dataset: bytes | None = None) -> bytes:
    """A DIMSE message (command set built by dimse's encoder) as P-DATA-TF PDUs."""
    command = dimse.encode_message(message, has_dataset=dataset is not None)
    return b"".join(dimse.fragment(context_id, command, dataset, 16382))


def command_only(context_id: int, message: dict) -> bytes:
    """The command set of a message whose data set follows (sent by the caller)."""
    command = dimse.encode_message(message, has_dataset=True)
    return b"".join(dimse.fragment(context_id, command, None, 16382))


def echo_rq(message_id: int, context_id: int = 1) -> bytes:
    return message_pdus(
        context_id,
        {"type": "C-ECHO-RQ", "affected_sop_class_uid": VERIFICATION, "message_id": message_id},
    )


def store_rq(message_id: int, instance_uid: str) -> dict:
    return {
        "type": "C-STORE-RQ",
        "affected_sop_class_uid": sop.CTImageStorage,
        "affected_sop_instance_uid": instance_uid,
        "message_id": message_id,
        "priority": "Medium",
    }


def ct_dataset(instance_uid: str, pixels: int) -> bytes:
    """A small CT instance in Implicit VR Little Endian with `pixels` bytes of pixel data."""
    ds = Dataset()
    ds.SOPClassUID = sop.CTImageStorage
    ds.SOPInstanceUID = instance_uid
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.2.1143.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.2.1143.2"
    ds.PatientID = "HOSTILE"
    ds.Modality = "CT"
    ds.BitsAllocated = 8
    ds.PixelData = bytes(pixels)
    return dsutils.encode(ds, ImplicitVRLittleEndian)


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


def read_until_close(s: socket.socket, timeout: float) -> tuple[bytes, float | None]:
    """Everything the server sends until it closes, and when it closed (None: it had not
    closed within `timeout`)."""
    deadline = time.monotonic() + timeout
    received = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return received, None
        s.settimeout(remaining)
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            return received, None
        except ConnectionResetError:
            return received, time.monotonic()
        if not chunk:
            return received, time.monotonic()
        received += chunk


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


def quiet(s: socket.socket, wait: float) -> bool:
    """Whether the server sends nothing (and does not close) for `wait` seconds."""
    s.settimeout(wait)
    try:
        s.recv(1)
    except TimeoutError:
        return True
    return False  # a byte, or the close


def establish(s: socket.socket, rq: bytes = VERIFICATION_RQ) -> bytes:
    s.sendall(rq)
    ac = _recv_pdu(s)
    assert ac[0] == 0x02, f"expected an A-ASSOCIATE-AC, got {ac[:10].hex()}"
    return ac


def read_messages(s: socket.socket, count: int) -> list[dict]:
    """The next `count` DIMSE messages the server sends (decoded command sets)."""
    assembler = dimse.MessageAssembler()
    out: list[dict] = []
    while len(out) < count:
        raw = _recv_pdu(s)
        assert raw[0] == 0x04, f"expected a P-DATA-TF, got {raw[:10].hex()}"
        for _context, command, _data in assembler.push_pdu(raw):
            out.append(dimse.decode_message(command))
    return out


def assert_echo_answered(s: socket.socket, message_id: int) -> None:
    """The association still works: a C-ECHO-RQ on it gets its C-ECHO-RSP."""
    s.sendall(echo_rq(message_id))
    (response,) = read_messages(s, 1)
    assert response["type"] == "C-ECHO-RSP"
    assert response["message_id_being_responded_to"] == message_id


def read_messages_from(raw: bytes) -> list[dict]:
    """The DIMSE messages one P-DATA-TF completes."""
    assembler = dimse.MessageAssembler()
    return [dimse.decode_message(c) for _ctx, c, _ds in assembler.push_pdu(raw)]


def rss_kb() -> int:
    """This process's resident memory (the server runs in it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(f"this test needs {needed} file descriptors; the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class EchoesDuring:
    """Runs ``echo_ok`` against the server again and again from another thread while the
    ``with`` block runs; ``check()`` afterwards says each one succeeded."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.results: list[object] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.results.append(echo_ok(self.port))
            except Exception as e:  # any failure is recorded, and reported by check()
                self.results.append(e)
            self._stop.wait(0.05)

    def __enter__(self) -> EchoesDuring:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def wait_one(self, timeout: float = 10) -> None:
        """Waits until at least one C-ECHO has completed."""
        deadline = time.monotonic() + timeout
        while not self.results and time.monotonic() < deadline:
            time.sleep(0.02)

    def check(self) -> None:
        assert not self._thread.is_alive(), "a C-ECHO during the attack hangs"
        assert self.results, "no C-ECHO completed during the attack"
        assert all(r is True for r in self.results), self.results


@pytest.fixture
def port(echo_server):
    _, _, port = echo_server(acse_timeout=ARTIM, network_timeout=10)
    return port


# -- single cases ----------------------------------------------------------------------------


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


def test_connection_that_never_sends(port):
    received, took = exchange(port, b"")
    assert received == b""
    assert ARTIM - 0.2 < took < ARTIM + 2
    assert echo_ok(port)


def test_bad_protocol_version_is_rejected(port):
    rq = bytearray(associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, b"")))
    rq[7] = 0x02  # protocol version 2: bit 0 clear
    received, _ = exchange(port, bytes(rq))
    # A-ASSOCIATE-RJ: permanent, service-provider (ACSE), protocol version not supported.
    assert received == struct.pack(">BBIBBBB", 3, 0, 4, 0, 1, 2, 2)
    assert echo_ok(port)


def test_bad_application_context_is_rejected(port):
    rq = associate_rq(item(0x10, b"1.2.3.4"), ECHO_CONTEXT, item(0x50, b""))
    received, _ = exchange(port, rq)
    assert received == struct.pack(">BBIBBBB", 3, 0, 4, 0, 1, 1, 2)
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


def test_pipelined_requests_are_all_answered(port):
    """A peer that sends 200 requests without waiting (beyond the negotiated window of
    one) gets 200 responses, in order: the server neither deadlocks nor drops any."""
    requests = b"".join(echo_rq(i) for i in range(1, 201))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        establish(s)
        s.sendall(requests)
        ids = [m["message_id_being_responded_to"] for m in read_messages(s, 200)]
        assert ids == list(range(1, 201))
        s.sendall(RELEASE_RQ)
        assert _recv_pdu(s) == RELEASE_RP


def test_peer_that_never_reads_does_not_pin_the_server(echo_server):
    """A peer that floods requests and never reads the responses fills our send buffer;
    the stalled write gives up after the network timeout, the association slot comes
    back, and shutdown is not held."""
    _, server, port = echo_server(network_timeout=1, maximum_associations=1)
    echo = echo_rq(1)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        establish(s)
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


# -- the state table (PS3.8 Table 9-10, acceptor side) ---------------------------------------


def _associate_ac() -> bytes:
    """A well-formed A-ASSOCIATE-AC (PS3.8 9.3.3), as a requestor would receive it."""
    fixed = struct.pack(">HH", 1, 0) + b"ECHOSCP".ljust(16) + b"ECHOSCU".ljust(16) + bytes(32)
    accepted = item(0x21, bytes([1, 0, 0, 0]) + item(0x40, IMPLICIT_LE.encode()))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))
    return pdu(2, fixed + APP_CONTEXT + accepted + user)


def _rq_with_item_overrun() -> bytes:
    """An A-ASSOCIATE-RQ whose PDU length is right but whose last item (User Information)
    claims 1024 bytes where a few are left."""
    rq = bytearray(VERIFICATION_RQ)
    user_at = len(VERIFICATION_RQ) - len(item(0x50, item(0x51, bytes(4))))
    assert rq[user_at] == 0x50
    rq[user_at + 2 : user_at + 4] = struct.pack(">H", 1024)
    return bytes(rq)


def _pdv_length(length: int) -> bytes:
    """A P-DATA-TF of 8 bytes whose one PDV item declares `length` (PS3.8 9.3.5.1)."""
    return pdu(4, struct.pack(">IBB", length, 1, 3) + b"\x00\x00")


class Hostile(NamedTuple):
    """A PDU sent when it should not be, and the event it raises (PS3.8 9.2.3)."""

    data: bytes
    #: rq (Evt6), ac (Evt3), rj (Evt4), p-data (Evt10), release-rq (Evt12),
    #: release-rp (Evt13), abort (Evt16), invalid (Evt19), or closed: the peer closes
    #: part-way through a PDU (Evt17).
    event: str
    #: For Evt19: the A-ABORT reason (PS3.8 9.3.8: 1 unrecognized PDU, 6 invalid PDU
    #: parameter value).
    reason: int = 0


HOSTILE = {
    "A-ASSOCIATE-RQ": Hostile(VERIFICATION_RQ, "rq"),
    "A-ASSOCIATE-AC": Hostile(_associate_ac(), "ac"),
    "A-ASSOCIATE-RJ": Hostile(pdu(3, bytes([0, 1, 1, 1])), "rj"),
    "P-DATA-TF": Hostile(echo_rq(0x0100), "p-data"),
    "A-RELEASE-RQ": Hostile(RELEASE_RQ, "release-rq"),
    "A-RELEASE-RP": Hostile(RELEASE_RP, "release-rp"),
    "A-ABORT": Hostile(abort(0, 0), "abort"),
    "type-0x00": Hostile(pdu(0x00, bytes(4)), "invalid", 1),
    "type-0x08": Hostile(pdu(0x08, bytes(4)), "invalid", 1),
    "type-0xFF": Hostile(pdu(0xFF, bytes(4)), "invalid", 1),
    "truncated-header": Hostile(VERIFICATION_RQ[:3], "closed"),
    "truncated-body": Hostile(struct.pack(">BBI", 4, 0, 1000) + bytes(10), "closed"),
    "P-DATA-TF-length-0xFFFFFFFF": Hostile(b"\x04\x00\xff\xff\xff\xff" + bytes(10), "invalid", 6),
    "A-ASSOCIATE-RQ-length-0xFFFFFFFF": Hostile(
        b"\x01\x00\xff\xff\xff\xff" + bytes(10), "invalid", 6
    ),
    "A-RELEASE-RQ-length-6": Hostile(pdu(5, bytes(6)), "invalid", 6),
    "A-ABORT-source-3": Hostile(pdu(7, bytes([0, 0, 3, 0])), "invalid", 6),
    "A-ASSOCIATE-RQ-item-overrun": Hostile(_rq_with_item_overrun(), "invalid", 6),
    "P-DATA-TF-without-PDV": Hostile(pdu(4, b""), "invalid", 6),
    "PDV-length-0": Hostile(_pdv_length(0), "invalid", 6),
    "PDV-length-1": Hostile(_pdv_length(1), "invalid", 6),
    "PDV-length-past-end": Hostile(_pdv_length(100), "invalid", 6),
}


def expected_outcome(state: str, hostile: Hostile) -> tuple[bytes | str, str]:
    """What PS3.8 Table 9-10 makes an acceptor do: (what it sends, how it ends).

    What it sends is the exact bytes, or "A-ASSOCIATE-AC" / "C-ECHO-RSP" for a normal
    answer. How it ends: "open" (the association goes on), "now" (it closes at once,
    without waiting for ARTIM), "artim" (it waits for the peer to close, Sta13, and closes
    itself when ARTIM expires).

    AA-1 sends an A-ABORT with source 0 (service-user; the reason is not significant);
    AA-8 one with source 2 (service-provider), reason 2 (unexpected PDU) for a well-formed
    PDU, the PDU's own reason for an invalid one (Evt19). AA-7 (Sta13) names no source:
    the association is over, so the provider is the source, with the same reasons as
    AA-8.
    """
    event = hostile.event
    if event == "closed":
        return b"", "now"  # Evt17: AA-5 (Sta2), AA-4 (Sta3, Sta6, Sta8), AR-5 (Sta13)
    if state == "Sta2":
        if event == "rq":
            return "A-ASSOCIATE-AC", "open"  # AE-6, then our user accepts (AE-7)
        if event == "abort":
            return b"", "now"  # AA-2
        return abort(0, 0), "artim"  # AA-1: Evt3, 4, 10, 12, 13, 19
    if state == "Sta6":
        if event == "p-data":
            return "C-ECHO-RSP", "open"  # DT-2
        if event == "release-rq":
            return RELEASE_RP, "artim"  # AR-2, our user answers (AR-4), Sta13
        if event == "abort":
            return b"", "now"  # AA-3
        if event == "invalid":
            return abort(2, hostile.reason), "artim"  # AA-8
        return abort(2, 2), "artim"  # AA-8: Evt3, 4, 6, 13
    if state in ("Sta3", "Sta8"):
        if event == "abort":
            return b"", "now"  # AA-3
        if event == "invalid":
            return abort(2, hostile.reason), "artim"  # AA-8
        return abort(2, 2), "artim"  # AA-8: Evt3, 4, 6, 10, 12, 13
    assert state == "Sta13"
    if event == "abort":
        return b"", "now"  # AA-2
    if event == "rq":
        return abort(2, 2), "artim"  # AA-7
    if event == "invalid":
        return abort(2, hostile.reason), "artim"  # AA-7
    return b"", "artim"  # AA-6: Evt3, 4, 10, 12, 13 are ignored


#: How Sta13 is entered: by an A-RELEASE-RP (AR-4), an A-ASSOCIATE-RJ (AE-6's reject
#: branch) or an A-ABORT (AA-1). The whole table runs after the first; a few PDUs, one per
#: distinct action, after the other two.
STA13_ENTRIES = ("A-RELEASE-RP", "A-ASSOCIATE-RJ", "A-ABORT")
_TABLE = [
    pytest.param(state, name, id=f"{state}-{name}")
    for state in ("Sta2", "Sta3", "Sta6", "Sta8", "Sta13")
    for name in HOSTILE
] + [
    pytest.param(f"Sta13/{entry}", name, id=f"Sta13-after-{entry}-{name}")
    for entry in STA13_ENTRIES[1:]
    for name in ("A-ASSOCIATE-RQ", "P-DATA-TF", "A-ABORT", "type-0xFF", "truncated-body")
]


def enter_state(s: socket.socket, state: str, gate: threading.Event) -> float:
    """Brings a fresh connection's association to `state`; returns when ARTIM started,
    if it runs there (Sta13), else now."""
    if state == "Sta2":
        return time.monotonic()
    if state == "Sta13/A-ASSOCIATE-RJ":
        rq = bytearray(VERIFICATION_RQ)
        rq[7] = 0x02  # protocol version 2: rejected by the service-provider
        s.sendall(bytes(rq))
        assert _recv_pdu(s) == struct.pack(">BBIBBBB", 3, 0, 4, 0, 1, 2, 2)
        return time.monotonic()
    if state == "Sta13/A-ABORT":
        s.sendall(RELEASE_RQ)  # a well-formed PDU, unexpected in Sta2: AA-1
        assert _recv_pdu(s) == abort(0, 0)
        return time.monotonic()
    if state == "Sta3":
        # Sta3 lasts while our user decides on the A-ASSOCIATE-RQ: held here by an
        # EVT_ASYNC_OPS handler, called because the RQ proposes a window.
        gate.clear()
        s.sendall(rq_with(ECHO_CONTEXT, user_items=item(0x53, struct.pack(">HH", 2, 2))))
        assert quiet(s, 0.1), "the A-ASSOCIATE-RQ was answered at once: Sta3 was not held"
        return time.monotonic()
    establish(s)
    if state == "Sta6":
        return time.monotonic()
    if state == "Sta8":
        # Sta8 lasts from the peer's A-RELEASE-RQ to our user's answer, which our server
        # gives at once. It waits, though, while the association's queue of requests is
        # full: one request whose handler is held, QUEUED waiting behind it (the server's
        # maximum_queued_requests), then the A-RELEASE-RQ, whose indication waits behind
        # them. The machine is in Sta8 meanwhile.
        gate.clear()
        s.sendall(b"".join(echo_rq(HELD_IDS + i) for i in range(1 + QUEUED)) + RELEASE_RQ)
        assert quiet(s, 0.1), "the A-RELEASE-RQ was answered at once: Sta8 was not held"
        return time.monotonic()
    assert state == "Sta13"
    s.sendall(RELEASE_RQ)
    assert _recv_pdu(s) == RELEASE_RP
    return time.monotonic()


@pytest.mark.parametrize(("state", "name"), _TABLE)
def test_pdu_in_state(echo_server, state, name):
    """One hostile PDU in one state: the exact PDU the server answers with (or none), and
    how the connection ends, per PS3.8 Table 9-10 (see ``expected_outcome``). A normal
    C-ECHO works while the hostile connection waits for its close, and after."""
    hostile = HOSTILE[name]
    reply, end = expected_outcome(state.split("/")[0], hostile)
    gate = threading.Event()
    gate.set()

    def on_echo(event):
        if event.request.MessageID >= HELD_IDS:
            gate.wait(10)
        return 0x0000

    def on_async_ops(event):
        gate.wait(10)
        return (1, 1)

    # A short ARTIM where the server must wait for it; a long one where it must not (so
    # that a close "at once" is told apart from a close at ARTIM without tight timing).
    artim = TABLE_ARTIM if end == "artim" else 10
    _, _, port = echo_server(
        acse_timeout=artim,
        network_timeout=10,
        maximum_queued_requests=QUEUED,
        evt_handlers=[(evt.EVT_C_ECHO, on_echo), (evt.EVT_ASYNC_OPS, on_async_ops)],
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            entered = enter_state(s, state, gate)
            sent = time.monotonic()
            s.sendall(hostile.data)
            if hostile.event == "closed":
                s.shutdown(socket.SHUT_WR)
            if end == "open":
                answer = _recv_pdu(s)
                if reply == "A-ASSOCIATE-AC":
                    assert answer[0] == 0x02, answer[:10].hex()
                else:
                    (message,) = read_messages_from(answer)
                    assert message["type"] == "C-ECHO-RSP"
                    assert message["message_id_being_responded_to"] == 0x0100
                    assert message["status"] == 0x0000
                assert echo_ok(port)  # during
                assert quiet(s, 0.2), "the association did not go on"
            else:
                if end == "artim":
                    assert echo_ok(port)  # during: the hostile connection is still open
                received, closed = read_until_close(s, artim + 5 if end == "artim" else 3)
                assert received == reply
                assert closed is not None, "the server did not close"
                if end == "now":
                    assert closed - sent < 2, "the server waited before closing"
                else:
                    # ARTIM runs from the hostile PDU (AA-1, AA-8, AR-4), or already ran
                    # from entering Sta13 (AA-6, AA-7 leave it running).
                    start = entered if state.startswith("Sta13") else sent
                    assert TABLE_ARTIM * 0.5 <= closed - start <= TABLE_ARTIM + 4
    finally:
        gate.set()
    assert echo_ok(port)


def test_the_hostile_pdus_are_what_they_claim():
    """The table's premises: the well-formed PDUs decode, the invalid ones do not."""
    for name, hostile in HOSTILE.items():
        if hostile.event in ("invalid", "closed"):
            with pytest.raises(InvalidPDU):
                _core.decode_pdu(hostile.data, 16382)
        else:
            assert _core.decode_pdu(hostile.data, 16382)["pdu"], name


# -- a P-DATA flood that never reads -----------------------------------------------------------


def test_p_data_flood_without_reading(echo_server):
    """A peer floods C-ECHO-RQs and never reads a response. Expected: the server stops
    reading once its responses cannot be written (the peer's sends block after a bounded
    number of bytes, the kernel's buffers), its memory does not grow with the flood, and
    the stalled write gives up after the network timeout: the connection is closed (no
    A-ABORT can pass the full buffers). C-ECHOs from other peers succeed throughout."""
    network_timeout = 3
    closes: dict[int, float] = {}

    def on_close(event):
        closes[event.assoc.requestor.port] = time.monotonic()

    _, _, port = echo_server(
        acse_timeout=ARTIM,
        network_timeout=network_timeout,
        evt_handlers=[(evt.EVT_CONN_CLOSE, on_close)],
    )
    burst = echo_rq(1) * 1024
    limit, sent, blocked = 64 << 20, 0, None
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        establish(s)
        flooder = s.getsockname()[1]
        rss_before = rss_peak = rss_kb()
        s.settimeout(0.5)
        start = time.monotonic()
        with EchoesDuring(port) as during:
            while sent < limit and time.monotonic() - start < 20:
                try:
                    sent += s.send(burst)
                except TimeoutError:
                    blocked = time.monotonic()
                    break
                rss_peak = max(rss_peak, rss_kb())
            during.wait_one()
            deadline = time.monotonic() + network_timeout + 5
            while flooder not in closes and time.monotonic() < deadline:
                time.sleep(0.05)
        during.check()
    print(
        f"\nflood: {sent / 1e6:.1f} MB sent before the server stopped reading, "
        f"RSS +{(rss_peak - rss_before) / 1024:.1f} MB"
    )
    assert blocked is not None, f"{sent} bytes sent in {time.monotonic() - start:.0f} s: no block"
    assert rss_peak - rss_before < 100 * 1024, "memory grew with the flood"
    assert flooder in closes, "the flooding association was never closed"
    assert closes[flooder] - blocked < network_timeout + 3
    assert echo_ok(port)


# -- slowloris ----------------------------------------------------------------------------------


def _trickle(s: socket.socket, data: bytes, seconds: float) -> tuple[int, bytes, float | None]:
    """Sends `data` one byte a second for at most `seconds`; returns how many bytes went,
    what the server sent meanwhile, and when it closed (None: it did not)."""
    start = time.monotonic()
    sent, received = 0, b""
    while sent < len(data) and time.monotonic() - start < seconds:
        try:
            s.sendall(data[sent : sent + 1])
        except OSError:
            return sent, received, time.monotonic()
        sent += 1
        next_byte = start + sent
        while (remaining := next_byte - time.monotonic()) > 0:
            s.settimeout(remaining)
            try:
                chunk = s.recv(4096)
            except TimeoutError:
                break
            except ConnectionResetError:
                return sent, received, time.monotonic()
            if not chunk:
                return sent, received, time.monotonic()
            received += chunk
    return sent, received, None


def test_slowloris_a_associate_rq_is_cut_by_artim(echo_server):
    """An A-ASSOCIATE-RQ sent one byte a second. ARTIM bounds the wait for the whole
    A-ASSOCIATE-RQ (PS3.8 9.1.2): it is not restarted by each byte, so the server closes
    ARTIM after the connection (Evt18 in Sta2, AA-2: no PDU), well before the RQ is
    complete."""
    artim = 2.0
    _, _, port = echo_server(acse_timeout=artim, network_timeout=10)
    with EchoesDuring(port) as during:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            start = time.monotonic()
            sent, received, closed = _trickle(s, VERIFICATION_RQ, artim + 6)
        during.wait_one()
    during.check()
    assert closed is not None, f"still open after {sent} bytes at one a second"
    assert received == b""
    assert artim - 0.3 < closed - start < artim + 2
    assert sent < len(VERIFICATION_RQ)
    assert echo_ok(port)


def test_slowloris_p_data_holds_the_association_while_bytes_come(echo_server):
    """A P-DATA-TF sent one byte a second on an established association. The network
    timeout measures silence, as DCMTK's and pynetdicom's do, and PS3.8 has no timer for
    a PDU in progress; so the association is held while the bytes come (for 2.5 network
    timeouts here: each byte restarts it), other peers are served meanwhile, and once the
    bytes stop the server aborts (A-ABORT, service-user source: the user gave up) one
    network timeout after the last byte and closes at once.

    Note: such a peer keeps its association slot for as long as it trickles, so
    ``maximum_associations`` of them lock every other peer out; only that limit (and
    ``maximum_associations_per_peer``) bounds the damage."""
    network_timeout = 2.0
    _, _, port = echo_server(acse_timeout=ARTIM, network_timeout=network_timeout)
    with EchoesDuring(port) as during:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            establish(s)
            data = echo_rq(1)
            sent, received, closed = _trickle(s, data, network_timeout * 2.5)
            last_byte = time.monotonic() - 1
            during.wait_one()
            assert closed is None, f"closed after {sent} bytes at one a second"
            assert received == b""
            assert sent < len(data)
            received, closed = read_until_close(s, network_timeout + 5)
    during.check()
    assert received == abort(0, 0)
    assert closed is not None
    assert network_timeout - 0.5 < closed - last_byte < network_timeout + 3
    assert echo_ok(port)


# -- connections that never send an A-ASSOCIATE-RQ -------------------------------------------


def test_1000_connections_that_never_complete_an_a_associate_rq(echo_server):
    """1000 connections at once that never complete an A-ASSOCIATE-RQ: 850 silent, 100
    stopped mid-header, 50 slowloris (an A-ASSOCIATE-RQ one byte a second). ARTIM closes
    each of them, sending nothing (AA-2); none takes an association slot meanwhile
    (``maximum_associations`` is 10), so C-ECHOs succeed throughout; afterwards every
    server-side socket is gone. (tests/test_scale.py holds 10,000 idle connections in an
    SCP subprocess, and closes 500 silent ones by ARTIM; this mixes the kinds, in-process.)
    """
    silent, partial, slow = 850, 100, 50
    n = silent + partial + slow
    artim = 1.5
    raise_fd_limit(2 * n + 200)
    _, _, port = echo_server(acse_timeout=artim, network_timeout=30)
    fds_before = len(os.listdir("/proc/self/fd"))
    socks: dict[socket.socket, tuple[str, float]] = {}
    closed: dict[socket.socket, float] = {}
    received: dict[socket.socket, bytes] = {}
    selector = selectors.DefaultSelector()
    try:
        with EchoesDuring(port) as during:
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                kind = "silent" if i < silent else "partial" if i < silent + partial else "slow"
                socks[s] = (kind, time.monotonic())
                if kind == "partial":
                    s.sendall(b"\x01\x00\x00")
                elif kind == "slow":
                    s.sendall(VERIFICATION_RQ[:1])
                s.setblocking(False)
                selector.register(s, selectors.EVENT_READ)
            opened = time.monotonic()
            during.wait_one()
            byte, next_byte = 1, opened + 1
            deadline = opened + artim + 8
            while len(closed) < n and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.1):
                    s = key.fileobj
                    try:
                        chunk = s.recv(4096)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        chunk = b""
                    if chunk:
                        received[s] = received.get(s, b"") + chunk
                        continue
                    closed[s] = time.monotonic()
                    selector.unregister(s)
                if time.monotonic() >= next_byte:
                    for s, (kind, _) in socks.items():
                        if kind == "slow" and s not in closed:
                            try:
                                s.send(VERIFICATION_RQ[byte : byte + 1])
                            except OSError:
                                pass
                    byte, next_byte = byte + 1, next_byte + 1
        during.check()
    finally:
        selector.close()
        for s in socks:
            s.close()
    assert len(closed) == n, f"{n - len(closed)} connections still open after ARTIM + 8 s"
    assert not received, f"{len(received)} connections were sent something"
    waits = [closed[s] - t for s, (_, t) in socks.items()]
    assert min(waits) > artim * 0.5
    assert max(waits) < artim + 5
    deadline = time.monotonic() + 10
    while len(os.listdir("/proc/self/fd")) > fds_before + 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 20, "server sockets left open"
    assert echo_ok(port)


# -- an abort in the middle of a data set ------------------------------------------------------


@pytest.fixture
def scp():
    """Starts an SCP for `contexts` (Implicit VR Little Endian) and Verification, with
    short timeouts; stops it after the test. Returns its port."""
    servers = []

    def start(contexts=(sop.CTImageStorage,), evt_handlers=None, storage=None, **settings):
        ae = AE("ECHOSCP")
        ae.acse_timeout = ARTIM
        ae.network_timeout = 10
        for name, value in settings.items():
            setattr(ae, name, value)
        for abstract_syntax in contexts:
            ae.add_supported_context(abstract_syntax, [ImplicitVRLittleEndian])
        ae.add_supported_context(sop.Verification)
        server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=evt_handlers, storage=storage
        )
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def _all_entries(folder: Path) -> list[str]:
    """Every file and folder under `folder`, hidden ones too."""
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, dirs, files in os.walk(folder)
        for name in dirs + files
    )


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _abort_mid_dataset(port: int, dataset: bytes, watch: Path | None = None) -> None:
    """Sends a C-STORE-RQ and half of its data set, then an A-ABORT: the server closes at
    once (AA-3) and sends nothing. If `watch` is given, first waits for something to be
    written there (the data set is being streamed)."""
    pdus = dimse.fragment(1, dimse.encode_message(store_rq(1, "1.2.3.4.5"), True), dataset, 16382)
    assert len(pdus) >= 4
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        establish(s, STORE_RQ)
        s.sendall(b"".join(pdus[: len(pdus) // 2]))
        if watch is not None:
            assert _wait_for(lambda: _all_entries(watch), 5), "nothing was streamed"
        assert echo_ok(port)  # during
        sent = time.monotonic()
        s.sendall(abort(0, 0))
        received, closed = read_until_close(s, 3)
    assert received == b""
    assert closed is not None
    assert closed - sent < 2


def _store_one(port: int, instance_uid: str, pixels: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        establish(s, STORE_RQ)
        s.sendall(message_pdus(1, store_rq(1, instance_uid), ct_dataset(instance_uid, pixels)))
        (response,) = read_messages(s, 1)
        s.sendall(RELEASE_RQ)
        assert _recv_pdu(s) == RELEASE_RP
    return int(response["status"])


@pytest.mark.parametrize("streamed", [False, True], ids=["held", "spooled"])
def test_abort_mid_dataset_with_a_handler(scp, tmp_path, monkeypatch, streamed):
    """C-STORE-RQ, half its data set, A-ABORT: the EVT_C_STORE handler is never called, a
    data set spooled to a temporary file (above ``stream_threshold``) leaves nothing
    behind, and the next C-STORE is stored normally."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    calls: list[str] = []

    def on_store(event):
        calls.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    size = 4 << 20 if streamed else 64 << 10
    port = scp(
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
        stream_threshold=16 << 10 if streamed else 8 << 20,
    )
    _abort_mid_dataset(port, ct_dataset("1.2.3.4.5", size), spool if streamed else None)
    time.sleep(0.3)
    assert calls == []
    assert _wait_for(lambda: not _all_entries(spool), 3), _all_entries(spool)
    assert echo_ok(port)
    assert _store_one(port, "1.2.3.4.6", size) == 0x0000
    assert calls == ["1.2.3.4.6"]


@pytest.mark.parametrize("streamed", [False, True], ids=["held", "streamed"])
def test_abort_mid_dataset_with_native_storage(scp, tmp_path, streamed):
    """The same with FileStorage: no file and no ``.part`` file is left in the folder
    (streamed: the ``.part`` file that was being written is removed), and the next C-STORE
    is written."""
    out = tmp_path / "out"
    size = 4 << 20 if streamed else 64 << 10
    port = scp(storage=FileStorage(out), stream_threshold=16 << 10 if streamed else 8 << 20)
    out.mkdir(exist_ok=True)
    _abort_mid_dataset(port, ct_dataset("1.2.3.4.5", size), out if streamed else None)
    assert _wait_for(lambda: not _all_entries(out), 3), _all_entries(out)
    assert echo_ok(port)
    assert _store_one(port, "1.2.3.4.6", size) == 0x0000
    assert _all_entries(out) == ["1.2.3.4.6.dcm"]
    assert not [p for p in _all_entries(out) if p.endswith(TEMP_SUFFIX)]


# -- C-CANCEL-RQ for a message that does not exist ---------------------------------------------


def test_c_cancel_for_an_unknown_message_id_is_ignored(port):
    """A C-CANCEL-RQ (0x0FFF) whose Message ID Being Responded To names no request: no
    response (C-CANCEL has none), no abort; the association goes on."""
    cancel = message_pdus(1, {"type": "C-CANCEL-RQ", "message_id_being_responded_to": 0x0120})
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        establish(s)
        s.sendall(cancel)
        assert quiet(s, 0.3)
        assert echo_ok(port)  # during
        assert_echo_answered(s, 0x0121)
        assert quiet(s, 0.2)
        s.sendall(RELEASE_RQ)
        assert _recv_pdu(s) == RELEASE_RP
    assert echo_ok(port)


def test_c_cancel_for_an_unknown_message_id_does_not_cancel_a_later_request(scp):
    """A C-CANCEL-RQ for a Message ID no request carries is about nothing: a C-FIND-RQ
    that later uses that Message ID (IDs only have to be unique among outstanding
    operations, PS3.7 9.1.1.1.1) runs normally: all its matches, then success."""

    def on_find(event):
        for i in range(3):
            if event.is_cancelled:
                return
            match = Dataset()
            match.QueryRetrieveLevel = "STUDY"
            match.StudyInstanceUID = f"1.2.3.{i}"
            yield 0xFF00, match

    port = scp(contexts=[STUDY_FIND], evt_handlers=[(evt.EVT_C_FIND, on_find)])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    find = {
        "type": "C-FIND-RQ",
        "affected_sop_class_uid": STUDY_FIND,
        "message_id": 7,
        "priority": "Medium",
    }
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        establish(s, rq_with(context_item(1, STUDY_FIND), context_item(3, VERIFICATION)))
        s.sendall(message_pdus(1, {"type": "C-CANCEL-RQ", "message_id_being_responded_to": 7}))
        assert quiet(s, 0.3)
        s.sendall(message_pdus(1, find, dsutils.encode(query, ImplicitVRLittleEndian)))
        responses = read_messages(s, 1)
        while responses[-1]["status"] in (0xFF00, 0xFF01):
            responses += read_messages(s, 1)
        assert [r["status"] for r in responses] == [0xFF00] * 3 + [0x0000]
    assert echo_ok(port)


# -- duplicate Message IDs ---------------------------------------------------------------------


def test_duplicate_message_ids_are_both_answered(port):
    """Two C-ECHO-RQs with the same Message ID back to back: both are answered, in order,
    and the association goes on."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        establish(s)
        s.sendall(echo_rq(0x0042) + echo_rq(0x0042))
        assert echo_ok(port)  # during
        responses = read_messages(s, 2)
        assert [r["message_id_being_responded_to"] for r in responses] == [0x0042, 0x0042]
        assert [r["status"] for r in responses] == [0x0000, 0x0000]
        assert quiet(s, 0.2)
        s.sendall(RELEASE_RQ)
        assert _recv_pdu(s) == RELEASE_RP
    assert echo_ok(port)


def test_duplicate_message_ids_in_an_asynchronous_window(scp):
    """With an asynchronous operations window of 4 negotiated, requests run at once, so a
    slow C-STORE is answered after a fast one sent behind it. Two C-STOREs with the same
    Message ID, though, cannot be told apart by their responses: the second waits for the
    first (rust/dimse-core/src/net/server.rs), and both are answered, in order."""

    def on_store(event):
        if event.request.AffectedSOPInstanceUID.endswith(".1"):
            time.sleep(0.5)
        return 0x0000

    port = scp(evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_ASYNC_OPS, lambda e: (4, 4))])
    window = item(0x53, struct.pack(">HH", 4, 4))

    def store(message_id: int, uid: str) -> bytes:
        return message_pdus(1, store_rq(message_id, uid), ct_dataset(uid, 256))

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        ac = establish(s, rq_with(CT_CONTEXT, context_item(3, VERIFICATION), user_items=window))
        assert window in ac, "the window was not negotiated"
        s.sendall(store(7, "1.2.3.7.1") + store(8, "1.2.3.8.2"))
        responses = read_messages(s, 2)
        assert [r["affected_sop_instance_uid"] for r in responses] == ["1.2.3.8.2", "1.2.3.7.1"]
        s.sendall(store(9, "1.2.3.9.1") + store(9, "1.2.3.9.2"))
        assert echo_ok(port)  # during
        responses = read_messages(s, 2)
        assert [r["affected_sop_instance_uid"] for r in responses] == ["1.2.3.9.1", "1.2.3.9.2"]
        assert [r["message_id_being_responded_to"] for r in responses] == [9, 9]
        assert [r["status"] for r in responses] == [0x0000, 0x0000]
        s.sendall(RELEASE_RQ)
        assert _recv_pdu(s) == RELEASE_RP
    assert echo_ok(port)


# -- responses to requests never sent ----------------------------------------------------------


def test_responses_to_requests_never_sent_are_ignored(port):
    """A C-ECHO-RSP, a C-STORE-RSP and a C-FIND-RSP with an identifier arrive at the SCP,
    which sent no request: they are dropped (no answer, no abort), and the association
    still answers a C-ECHO-RQ."""
    match = Dataset()
    match.QueryRetrieveLevel = "STUDY"
    responses = (
        message_pdus(
            1,
            {
                "type": "C-ECHO-RSP",
                "affected_sop_class_uid": VERIFICATION,
                "message_id_being_responded_to": 0x0999,
                "status": 0x0000,
            },
        )
        + message_pdus(
            1,
            {
                "type": "C-STORE-RSP",
                "affected_sop_class_uid": sop.CTImageStorage,
                "affected_sop_instance_uid": "1.2.3.4",
                "message_id_being_responded_to": 0x099A,
                "status": 0x0000,
            },
        )
        + message_pdus(
            1,
            {
                "type": "C-FIND-RSP",
                "affected_sop_class_uid": STUDY_FIND,
                "message_id_being_responded_to": 0x099B,
                "status": 0xFF00,
            },
            dsutils.encode(match, ImplicitVRLittleEndian),
        )
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        establish(s)
        s.sendall(responses)
        assert quiet(s, 0.3)
        assert echo_ok(port)  # during
        assert_echo_answered(s, 0x0100)
        s.sendall(RELEASE_RQ)
        assert _recv_pdu(s) == RELEASE_RP
    assert echo_ok(port)


# -- oversize lengths --------------------------------------------------------------------------


def _aborted(s: socket.socket, reason: int) -> None:
    """The server answers with A-ABORT (service-provider, `reason`) and closes at ARTIM."""
    sent = time.monotonic()
    received, closed = read_until_close(s, ARTIM + 5)
    assert received == abort(2, reason)
    assert closed is not None
    assert closed - sent < ARTIM + 4


def test_p_data_longer_than_our_maximum_length(scp):
    """Our A-ASSOCIATE-AC announces a Maximum Length of 16382 (the P-DATA-TF variable
    field, PS3.8 D.1): a P-DATA-TF of exactly that is taken, one byte more gets A-ABORT
    (service-provider, invalid PDU parameter value), and the handler never sees it."""
    calls: list[int] = []

    def on_store(event):
        calls.append(len(event.data))
        return 0x0000

    port = scp(evt_handlers=[(evt.EVT_C_STORE, on_store)])
    command = command_only(1, store_rq(1, "1.2.3.4"))
    for length, accepted in ((16382, True), (16383, False)):
        data = bytes(length - 6)  # PDV item length (4), context ID (1), control header (1)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            ac = establish(s, STORE_RQ)
            assert item(0x51, struct.pack(">I", 16382)) in ac
            s.sendall(command + p_data(1, 0x02, data))
            if accepted:
                (response,) = read_messages(s, 1)
                assert response["status"] == 0x0000
                s.sendall(RELEASE_RQ)
                assert _recv_pdu(s) == RELEASE_RP
            else:
                assert echo_ok(port)  # during
                _aborted(s, 6)
        assert echo_ok(port)
    assert calls == [16376]


def _command_with_group_length(delta: int) -> bytes:
    command = dimse.encode_message(
        {"type": "C-ECHO-RQ", "affected_sop_class_uid": VERIFICATION, "message_id": 1}
    )
    assert command[:8] == b"\x00\x00\x00\x00\x04\x00\x00\x00"  # (0000,0000) UL, length 4
    (length,) = struct.unpack("<I", command[8:12])
    return command[:8] + struct.pack("<I", length + delta) + command[12:]


@pytest.mark.parametrize("delta", [100, 0x7FFFFFFF, -10], ids=["100-more", "2GB-more", "less"])
def test_command_group_length_that_lies(port, delta):
    """A command set whose Command Group Length (0000,0000) does not match the elements
    that follow: the message cannot be decoded, so the server aborts (service-provider,
    invalid PDU parameter value) rather than guess."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        establish(s)
        s.sendall(p_data(1, 0x03, _command_with_group_length(delta)))
        assert echo_ok(port)  # during
        _aborted(s, 6)
    assert echo_ok(port)


def test_dataset_larger_than_maximum_dataset_size(scp):
    """``AE.maximum_dataset_size`` caps a data set held in memory: one of exactly that
    size is stored, one two bytes longer gets A-ABORT (service-provider, invalid PDU
    parameter value) as soon as it passes the cap, and the handler never sees it."""
    cap = 64 << 10
    calls: list[int] = []

    def on_store(event):
        calls.append(len(event.data))
        return 0x0000

    port = scp(evt_handlers=[(evt.EVT_C_STORE, on_store)], maximum_dataset_size=cap)
    command = command_only(1, store_rq(1, "1.2.3.4"))
    for size, accepted in ((cap, True), (cap + 2, False)):
        data = bytes(size)
        fragments = [data[i : i + 16000] for i in range(0, size, 16000)]
        pdus = b"".join(
            p_data(1, 0x02 if i == len(fragments) - 1 else 0x00, fragment)
            for i, fragment in enumerate(fragments)
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            establish(s, STORE_RQ)
            s.sendall(command + pdus)
            if accepted:
                (response,) = read_messages(s, 1)
                assert response["status"] == 0x0000
                s.sendall(RELEASE_RQ)
                assert _recv_pdu(s) == RELEASE_RP
            else:
                assert echo_ok(port)  # during
                _aborted(s, 6)
        assert echo_ok(port)
    assert calls == [cap]


def test_p_data_on_a_context_never_accepted(port):
    """A PDV on presentation context 3, which the association does not have: A-ABORT
    (service-provider, invalid PDU parameter value)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        establish(s)
        s.sendall(echo_rq(1, context_id=3))
        assert echo_ok(port)  # during
        _aborted(s, 6)
    assert echo_ok(port)


def test_release_waits_for_the_requests_before_it(scp):
    """An A-RELEASE-RQ right behind requests still in progress: each request is answered
    (P-DATA in Sta8, PS3.8 AR-7), then the A-RELEASE-RP; nothing is lost."""
    gate = threading.Event()

    def slow_echo(event):
        gate.wait(5)
        return 0x0000

    port = scp(evt_handlers=[(evt.EVT_C_ECHO, slow_echo)])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        establish(s)
        s.sendall(echo_rq(1) + echo_rq(2) + echo_rq(3) + RELEASE_RQ)
        assert quiet(s, 0.3), "answered the release before its requests"
        gate.set()
        responses = read_messages(s, 3)
        assert [r["message_id_being_responded_to"] for r in responses] == [1, 2, 3]
        assert _recv_pdu(s) == RELEASE_RP
        _, closed = read_until_close(s, ARTIM + 5)
        assert closed is not None
    assert echo_ok(port)


@pytest.mark.parametrize("field", [None, 0x0777, 0x8777])
def test_a_command_that_is_no_request_aborts(port, field):
    """A command set without a Command Field, or with one no DIMSE message has: nothing
    can answer it, and the peer would wait for ever: A-ABORT (service-user), then close.
    (0x8777 has the response bit: a response to nothing, ignored as the others.)"""
    elements = {0x0000_0002: VERIFICATION.encode() + b"\0", 0x0000_0110: struct.pack("<H", 9)}
    if field is not None:
        elements[0x0000_0100] = struct.pack("<H", field)
    elements[0x0000_0800] = struct.pack("<H", 0x0101)
    body = b"".join(
        struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value
        for tag, value in sorted(elements.items())
    )
    command = struct.pack("<HHII", 0, 0, 4, len(body)) + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        establish(s)
        s.sendall(p_data(1, 0x03, command))
        if field == 0x8777:
            assert quiet(s, 0.3)
            s.sendall(echo_rq(1))
            assert [r["status"] for r in read_messages(s, 1)] == [0x0000]
        else:
            assert _recv_pdu(s) == abort(0, 0)
            _, closed = read_until_close(s, ARTIM + 5)
            assert closed is not None
    assert echo_ok(port)
