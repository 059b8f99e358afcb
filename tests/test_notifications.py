"""Notification events and binding handlers at run time (per server, per association)."""

from __future__ import annotations

import threading
import time

import pytest

import dimse
from dimse import AE, evt, sop

LOOPBACK = "127.0.0.1"


def scp():
    ae = AE("NOTIFY-SCP")
    ae.add_supported_context(sop.Verification)
    ae.add_supported_context(sop.CTImageStorage)
    return ae


def scu():
    ae = AE("NOTIFY-SCU")
    ae.add_requested_context(sop.Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    return ae


class Recorder:
    """Collects (event name, attrs) from handlers, thread-safely."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def __call__(self, event, *args) -> None:
        attrs = {k: v for k, v in event.attrs.items() if not k.startswith("_")}
        if args:
            attrs["args"] = args
        attrs["assoc_id"] = getattr(event.assoc, "id", None)
        with self.lock:
            self.seen.append((event.event.name, attrs))

    def names(self) -> list[str]:
        with self.lock:
            return [n for n, _ in self.seen]

    def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.names().count(name) >= count:
                return
            time.sleep(0.01)
        raise AssertionError(f"{name} x{count} not seen within {timeout} s: {self.names()}")


ALL_SERVER_NOTIFICATIONS = [
    evt.EVT_CONN_OPEN,
    evt.EVT_REQUESTED,
    evt.EVT_ACCEPTED,
    evt.EVT_ESTABLISHED,
    evt.EVT_DIMSE_RECV,
    evt.EVT_DIMSE_SENT,
    evt.EVT_PDU_RECV,
    evt.EVT_PDU_SENT,
    evt.EVT_RELEASED,
    evt.EVT_ABORTED,
    evt.EVT_REJECTED,
    evt.EVT_CONN_CLOSE,
]


def test_server_notifications_in_order_for_a_released_association():
    rec = Recorder()
    server = scp().start_server(
        (LOOPBACK, 0),
        block=False,
        evt_handlers=[(e, rec) for e in ALL_SERVER_NOTIFICATIONS],
    )
    try:
        port = server.server_address[1]
        with scu().associate(LOOPBACK, port, ae_title="NOTIFY-SCP") as assoc:
            assert assoc.send_c_echo().Status == 0
        rec.wait_for("EVT_CONN_CLOSE")
    finally:
        server.shutdown()
    names = rec.names()
    # The association's life in order; PDU events interleave with the rest.
    life = [n for n in names if not n.startswith("EVT_PDU")]
    assert life == [
        "EVT_CONN_OPEN",
        "EVT_REQUESTED",
        "EVT_ACCEPTED",
        "EVT_ESTABLISHED",
        "EVT_DIMSE_RECV",
        "EVT_DIMSE_SENT",
        "EVT_RELEASED",
        "EVT_CONN_CLOSE",
    ]
    pdus = [(n, a["pdu_type"]) for n, a in rec.seen if n.startswith("EVT_PDU")]
    # A-ASSOCIATE-RQ in, AC out, the echo in and out, A-RELEASE-RQ in, RP out.
    assert pdus == [
        ("EVT_PDU_RECV", 0x01),
        ("EVT_PDU_SENT", 0x02),
        ("EVT_PDU_RECV", 0x04),
        ("EVT_PDU_SENT", 0x04),
        ("EVT_PDU_RECV", 0x05),
        ("EVT_PDU_SENT", 0x06),
    ]
    attrs = dict(rec.seen)
    assert attrs["EVT_REQUESTED"]["associate_rq"]["calling_ae_title"].strip() == "NOTIFY-SCU"
    assert attrs["EVT_DIMSE_RECV"]["message"].CommandField == 0x0030
    assert attrs["EVT_DIMSE_SENT"]["message"].CommandField == 0x8030
    assert attrs["EVT_DIMSE_SENT"]["message"].Status == 0
    # One association: every event names the same one.
    assert len({a["assoc_id"] for _, a in rec.seen}) == 1


def test_server_notifications_for_aborted_and_rejected_associations():
    rec = Recorder()
    ae = scp()
    ae.require_called_aet = True
    server = ae.start_server(
        (LOOPBACK, 0),
        block=False,
        evt_handlers=[(e, rec) for e in ALL_SERVER_NOTIFICATIONS if "PDU" not in e.name],
    )
    try:
        port = server.server_address[1]
        assoc = scu().associate(LOOPBACK, port, ae_title="NOTIFY-SCP")
        assert assoc.is_established
        assoc.abort()
        rec.wait_for("EVT_CONN_CLOSE")
        refused = scu().associate(LOOPBACK, port, ae_title="SOMEONE-ELSE")
        assert refused.is_rejected
        rec.wait_for("EVT_CONN_CLOSE", 2)
    finally:
        server.shutdown()
    names = rec.names()
    cut = names.index("EVT_CONN_CLOSE") + 1
    assert names[:cut] == [
        "EVT_CONN_OPEN",
        "EVT_REQUESTED",
        "EVT_ACCEPTED",
        "EVT_ESTABLISHED",
        "EVT_ABORTED",
        "EVT_CONN_CLOSE",
    ]
    assert names[cut:] == ["EVT_CONN_OPEN", "EVT_REQUESTED", "EVT_REJECTED", "EVT_CONN_CLOSE"]
    seen = dict(rec.seen)
    # Permanent, service-user, called AE title not recognized (PS3.8 9.3.4).
    assert (seen["EVT_REJECTED"]["result"], seen["EVT_REJECTED"]["source"]) == (1, 1)
    assert seen["EVT_REJECTED"]["reason"] == 7
    assert "peer" in seen["EVT_ABORTED"]["reason"]


def test_bind_and_unbind_on_a_running_server():
    rec = Recorder()
    server = scp().start_server((LOOPBACK, 0), block=False)
    try:
        port = server.server_address[1]
        ae = scu()

        def on_echo(event, tag):
            rec(event, tag)
            return 0x0000

        with ae.associate(LOOPBACK, port) as assoc:
            assert assoc.send_c_echo().Status == 0  # answered in Rust: nothing bound
            server.bind(evt.EVT_C_ECHO, on_echo, ["extra"])
            server.bind(evt.EVT_DIMSE_RECV, rec)
            assert assoc.send_c_echo().Status == 0
            assert server.get_handlers(evt.EVT_C_ECHO) == [(on_echo, ("extra",))]
            server.unbind(evt.EVT_C_ECHO, on_echo)
            server.unbind(evt.EVT_DIMSE_RECV, rec)
            assert assoc.send_c_echo().Status == 0
        assert rec.names() == ["EVT_DIMSE_RECV", "EVT_C_ECHO"]
        assert rec.seen[1][1]["args"] == ("extra",)
    finally:
        server.shutdown()


def test_bind_on_one_association_only():
    """A handler bound through event.assoc sees that association only."""
    rec = Recorder()

    def on_established(event):
        if event.assoc.requestor.ae_title == "WATCHED":
            event.assoc.bind(evt.EVT_DIMSE_RECV, rec)

    server = scp().start_server(
        (LOOPBACK, 0), block=False, evt_handlers=[(evt.EVT_ESTABLISHED, on_established)]
    )
    try:
        port = server.server_address[1]
        for title in ("WATCHED", "OTHER", "WATCHED"):
            ae = scu()
            ae.ae_title = title
            with ae.associate(LOOPBACK, port) as assoc:
                assoc.send_c_echo()
                assoc.send_c_echo()
        # Two echoes on each of the two watched associations.
        assert rec.names() == ["EVT_DIMSE_RECV"] * 4
        assert len({a["assoc_id"] for _, a in rec.seen}) == 2
    finally:
        server.shutdown()


def test_a_notification_handler_that_raises_changes_nothing(caplog):
    def broken(event):
        raise RuntimeError("broken notification handler")

    server = scp().start_server(
        (LOOPBACK, 0),
        block=False,
        evt_handlers=[(evt.EVT_ESTABLISHED, broken), (evt.EVT_DIMSE_RECV, broken)],
    )
    try:
        with scu().associate(LOOPBACK, server.server_address[1]) as assoc:
            assert assoc.send_c_echo().Status == 0
    finally:
        server.shutdown()
    assert "broken notification handler" in caplog.text


def test_requestor_notifications():
    rec = Recorder()
    server = scp().start_server((LOOPBACK, 0), block=False)
    try:
        port = server.server_address[1]
        handlers = [
            (e, rec)
            for e in (
                evt.EVT_CONN_OPEN,
                evt.EVT_ESTABLISHED,
                evt.EVT_DIMSE_SENT,
                evt.EVT_DIMSE_RECV,
                evt.EVT_RELEASED,
                evt.EVT_ABORTED,
                evt.EVT_CONN_CLOSE,
            )
        ]
        with scu().associate(LOOPBACK, port, evt_handlers=handlers) as assoc:
            assoc.send_c_echo()
            assoc.unbind(evt.EVT_DIMSE_SENT, rec)
            assoc.send_c_echo()
        assert rec.names() == [
            "EVT_CONN_OPEN",
            "EVT_ESTABLISHED",
            "EVT_DIMSE_SENT",
            "EVT_DIMSE_RECV",
            "EVT_DIMSE_RECV",
            "EVT_RELEASED",
            "EVT_CONN_CLOSE",
        ]
        sent = dict(rec.seen)["EVT_DIMSE_SENT"]["message"]
        assert sent.CommandField == 0x0030
        rec.seen.clear()
        assoc = scu().associate(LOOPBACK, port, evt_handlers=handlers)
        assoc.abort()
        assert rec.names() == ["EVT_CONN_OPEN", "EVT_ESTABLISHED", "EVT_ABORTED", "EVT_CONN_CLOSE"]
    finally:
        server.shutdown()


def test_requestor_rejected_notification():
    rec = Recorder()
    ae = scp()
    ae.require_called_aet = True
    server = ae.start_server((LOOPBACK, 0), block=False)
    try:
        assoc = scu().associate(
            LOOPBACK,
            server.server_address[1],
            ae_title="WRONG",
            evt_handlers=[(evt.EVT_REJECTED, rec), (evt.EVT_CONN_CLOSE, rec)],
        )
        assert assoc.is_rejected
        assert rec.names() == ["EVT_REJECTED", "EVT_CONN_CLOSE"]
        assert rec.seen[0][1]["reason"] == 7
    finally:
        server.shutdown()


def test_binding_mistakes_are_refused():
    server = scp().start_server((LOOPBACK, 0), block=False)
    try:
        with pytest.raises(TypeError, match="not callable"):
            server.bind(evt.EVT_ESTABLISHED, "print")
        with pytest.raises(TypeError, match="not an event"):
            server.bind("EVT_ESTABLISHED", print)  # type: ignore[arg-type]
        with scu().associate(LOOPBACK, server.server_address[1]) as assoc:
            with pytest.raises(dimse.InvalidArgument, match="EVT_PDU_SENT"):
                assoc.bind(evt.EVT_PDU_SENT, print)
            assert assoc.get_handlers(evt.EVT_PDU_SENT) == []
    finally:
        server.shutdown()
