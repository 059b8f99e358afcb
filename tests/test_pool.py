"""Association pools (``dimse.AssociationPool``): reuse, the per-peer cap, idle release,
re-association after a peer ended an idle association, fail-over and back-off, close.
Every peer is on loopback: our own SCP, a bare listening socket, and DCMTK's storescp."""

from __future__ import annotations

import gc
import socket
import threading
import time
import weakref
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import (
    AE,
    AssociationPool,
    Peer,
    PoolClosed,
    PoolTimeout,
    build_context,
    evt,
    pool,
    sop,
)
from dimse.exceptions import (
    AcseTimeout,
    AssociationAborted,
    AssociationRejected,
    ConnectFailed,
    InvalidArgument,
    NoAcceptedContext,
)
from dimse.pdu_primitives import UserIdentityNegotiation
from peers import LOOPBACK, DcmtkServer, our_ae

CT = sop.CTImageStorage
MR = sop.MRImageStorage


def ct(sop_class: str = CT) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "POOL"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


class Scp:
    """Our storage SCP, recording each association by the requestor's port (unique per
    TCP connection, unlike the server's association IDs, which restart per server)."""

    def __init__(self, port: int = 0, store_delay: float = 0.0, **settings) -> None:
        self.lock = threading.Lock()
        self.stores: list[int] = []
        self.ended: list[tuple[str, int]] = []
        self.current = 0
        self.peak = 0
        self.store_delay = store_delay
        self.ae = AE("STORESCP")
        for name, value in settings.items():
            setattr(self.ae, name, value)
        for uid in (CT, MR, sop.Verification):
            self.ae.add_supported_context(uid, [ExplicitVRLittleEndian])
        self.server = self.ae.start_server(
            (LOOPBACK, port),
            block=False,
            evt_handlers=[
                (evt.EVT_C_STORE, self.on_store),
                (evt.EVT_CONN_OPEN, self.on_open),
                (evt.EVT_CONN_CLOSE, self.on_close),
                (evt.EVT_RELEASED, self.on_ended, ["released"]),
                (evt.EVT_ABORTED, self.on_ended, ["aborted"]),
            ],
        )
        self.port = self.server.server_address[1]
        self.peer = Peer(LOOPBACK, self.port, "STORESCP")

    def on_store(self, event):
        if self.store_delay:
            time.sleep(self.store_delay)
        with self.lock:
            self.stores.append(event.assoc.requestor.port)
        return 0x0000

    def on_open(self, event):
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def on_close(self, event):
        with self.lock:
            self.current -= 1

    def on_ended(self, event, how):
        with self.lock:
            self.ended.append((how, event.assoc.requestor.port))


@pytest.fixture
def scps():
    """Starts our SCPs (``scps(**settings)``); every one is shut down after the test."""
    started: list[Scp] = []

    def start(**kwargs) -> Scp:
        scp = Scp(**kwargs)
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.server.shutdown()


@pytest.fixture
def make_pool():
    """Pools of an SCU proposing CT and MR storage; every one is closed after the test."""
    pools: list[AssociationPool] = []

    def make(**kwargs) -> AssociationPool:
        ae = our_ae("POOLSCU")
        ae.acse_timeout = ae.dimse_timeout = 5
        ae.connection_timeout = 5
        ae.add_requested_context(CT, ExplicitVRLittleEndian)
        ae.add_requested_context(MR, ExplicitVRLittleEndian)
        made = AssociationPool(ae, **kwargs)
        pools.append(made)
        return made

    yield make
    for made in pools:
        made.close()


def only(stats):
    (value,) = stats.values()
    return value


def test_reuses_the_association(scps, make_pool):
    scp = scps()
    p = make_pool()
    with p.acquire(LOOPBACK, scp.port, "STORESCP") as first:
        assert first.is_established
        assert first.send_c_store(ct()).Status == 0
    with p.acquire(scp.peer) as second:
        assert second.send_c_store(ct()).Status == 0
    assert second is first
    assert p.send_c_store(scp.peer, ct()).Status == 0
    assert len(scp.stores) == 3
    assert len(set(scp.stores)) == 1  # one association on the server
    stats = only(p.stats())
    assert (stats.open, stats.idle, stats.in_use, stats.created, stats.reused) == (1, 1, 0, 1, 2)


def test_most_recently_used_first(scps, make_pool):
    scp = scps()
    p = make_pool()
    a, b = p.checkout(scp.peer), p.checkout(scp.peer)
    assert a is not b
    p.checkin(a)
    p.checkin(b)
    # b went back last: it is handed out first, so that a can stay idle and be reaped.
    with p.acquire(scp.peer) as again:
        assert again is b


def test_different_contexts_or_titles_get_different_associations(scps, make_pool):
    scp = scps()
    p = make_pool()
    ct_only = [build_context(CT, ExplicitVRLittleEndian)]
    mr_only = [build_context(MR, ExplicitVRLittleEndian)]
    with p.acquire(scp.peer, contexts=ct_only) as a:
        assert [c.abstract_syntax for c in a.accepted_contexts] == [CT]
    with p.acquire(scp.peer, contexts=mr_only) as b:
        assert [c.abstract_syntax for c in b.accepted_contexts] == [MR]
    with p.acquire(LOOPBACK, scp.port, "OTHERTITLE", contexts=ct_only) as c:
        pass
    with p.acquire(scp.peer, contexts=[build_context(CT, ExplicitVRLittleEndian)]) as d:
        pass
    assert len({id(a), id(b), id(c)}) == 3
    assert d is a  # equal contexts, equal key
    assert len(p.stats()) == 3
    assert sorted(k.ae_title for k in p.stats()) == ["OTHERTITLE", "STORESCP", "STORESCP"]


def test_ext_neg_is_part_of_the_key_but_never_shown(scps, make_pool):
    scp = scps()
    p = make_pool()
    alice = [UserIdentityNegotiation(2, b"alice", b"secret")]
    bob = [UserIdentityNegotiation(2, b"bob", b"secret")]
    with p.acquire(scp.peer, ext_neg=alice) as a:
        pass
    with p.acquire(scp.peer, ext_neg=bob) as b:
        pass
    with p.acquire(scp.peer, ext_neg=[UserIdentityNegotiation(2, b"alice", b"secret")]) as c:
        pass
    assert a is not b
    assert c is a
    assert "secret" not in repr(p.stats())


def test_at_most_max_per_peer_associations_with_many_threads(scps, make_pool):
    scp = scps(store_delay=0.02)
    p = make_pool(max_per_peer=2)
    in_use = 0
    most = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work():
        nonlocal in_use, most
        try:
            for _ in range(3):
                with p.acquire(scp.peer) as assoc:
                    with lock:
                        in_use += 1
                        most = max(most, in_use)
                    assert assoc.send_c_store(ct()).Status == 0
                    with lock:
                        in_use -= 1
                assert p.send_c_store(scp.peer, ct()).Status == 0
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert len(scp.stores) == 36
    assert most == 2
    assert len(set(scp.stores)) == 2  # two associations carried everything
    assert scp.peak == 2  # never more than two open at the server at once
    stats = only(p.stats())
    assert (stats.created, stats.reused, stats.open) == (2, 34, 2)


def test_acquire_times_out_when_every_association_is_in_use(scps, make_pool):
    scp = scps()
    p = make_pool(max_per_peer=1, acquire_timeout=0.2)
    with p.acquire(scp.peer):
        start = time.monotonic()
        with pytest.raises(PoolTimeout, match="max_per_peer") as info:
            with p.acquire(scp.peer):
                pass
        assert 0.15 < time.monotonic() - start < 2.0
        assert isinstance(info.value, TimeoutError)
        with pytest.raises(PoolTimeout):
            p.send_c_store(scp.peer, ct(), timeout=0)


def test_a_waiting_thread_gets_the_association_given_back(scps, make_pool):
    scp = scps()
    p = make_pool(max_per_peer=1, acquire_timeout=5)
    held = threading.Event()
    got: list[object] = []

    def hold():
        with p.acquire(scp.peer) as assoc:
            got.append(assoc)
            held.set()
            time.sleep(0.3)

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(5)
    start = time.monotonic()
    with p.acquire(scp.peer) as assoc:
        assert time.monotonic() - start > 0.1
        assert assoc is got[0]
    t.join(5)


def test_at_the_cap_an_idle_association_of_another_key_is_released(scps, make_pool):
    scp = scps()
    p = make_pool(max_per_peer=1, acquire_timeout=0.5)
    with p.acquire(scp.peer, contexts=[build_context(CT, ExplicitVRLittleEndian)]) as a:
        a.send_c_store(ct())
    with p.acquire(scp.peer, contexts=[build_context(MR, ExplicitVRLittleEndian)]) as b:
        assert a.is_released  # before b was negotiated
        b.send_c_store(ct(MR))
    wait_until(lambda: scp.ended)
    assert scp.ended == [("released", scp.stores[0])]
    assert scp.stores[0] != scp.stores[1]


def test_idle_associations_are_released_not_aborted(scps, make_pool):
    scp = scps()
    p = make_pool(idle_timeout=0.3)
    with p.acquire(scp.peer) as assoc:
        assoc.send_c_store(ct())
    wait_until(lambda: scp.ended, timeout=3)
    assert scp.ended == [("released", scp.stores[0])]
    assert assoc.is_released
    assert not assoc.is_aborted
    stats = only(p.stats())
    assert (stats.open, stats.idle) == (0, 0)
    # The next request negotiates a new association.
    assert p.send_c_store(scp.peer, ct()).Status == 0
    assert only(p.stats()).created == 2


def restart(scps, scp: Scp) -> Scp:
    """Shuts ``scp`` down (aborting its associations) and starts another on its port."""
    scp.server.shutdown()
    return scps(port=scp.port)


def test_an_association_the_peer_aborted_while_idle_is_not_handed_out(scps, make_pool):
    scp = scps()
    p = make_pool()
    with p.acquire(scp.peer) as first:
        first.send_c_store(ct())
    scp = restart(scps, scp)
    time.sleep(pool.PROBE_AFTER + 0.1)
    with p.acquire(scp.peer) as second:
        assert second is not first
        assert second.send_c_store(ct()).Status == 0
    assert first.is_aborted
    assert only(p.stats()).created == 2


@pytest.fixture
def unchecked(monkeypatch):
    """Idle associations are handed out without a look at them (as within PROBE_AFTER of
    their last use), and the reaper does not look either."""
    monkeypatch.setattr(pool, "PROBE_AFTER", 60.0)
    monkeypatch.setattr(pool, "REAP_INTERVAL", 60.0)


@pytest.mark.usefixtures("unchecked")
def test_send_c_store_reassociates_once_when_the_association_turns_out_dead(scps, make_pool):
    scp = scps()
    p = make_pool()
    assert p.send_c_store(scp.peer, ct()).Status == 0
    scp = restart(scps, scp)
    assert p.send_c_store(scp.peer, ct()).Status == 0  # transparently, on a new one
    assert len(scp.stores) == 1
    stats = only(p.stats())
    assert (stats.created, stats.reused, stats.open) == (2, 1, 1)  # the dead one, then new


@pytest.mark.usefixtures("unchecked")
def test_acquire_lets_the_caller_see_a_dead_association_and_drops_it(scps, make_pool):
    scp = scps()
    p = make_pool()
    with p.acquire(scp.peer) as first:
        first.send_c_store(ct())
    scp = restart(scps, scp)
    used: list[object] = []

    def store() -> None:
        with p.acquire(scp.peer) as assoc:
            used.append(assoc)
            assoc.send_c_store(ct())

    with pytest.raises(AssociationAborted):
        store()
    assert used == [first]
    assert only(p.stats()).open == 0
    with p.acquire(scp.peer) as fresh:
        assert fresh.send_c_store(ct()).Status == 0


def test_an_error_in_the_block_releases_the_association(scps, make_pool):
    scp = scps()
    p = make_pool()
    with pytest.raises(RuntimeError), p.acquire(scp.peer) as assoc:
        raise RuntimeError("the caller's own failure")
    assert assoc.is_released
    # Errors raised before anything was sent leave it in the pool.
    with pytest.raises(NoAcceptedContext), p.acquire(scp.peer) as kept:
        kept.send_c_store(ct(sop.SecondaryCaptureImageStorage))
    with p.acquire(scp.peer) as again:
        assert again is kept
    # A query left in progress (an iterator neither exhausted nor closed) is not given
    # to the next user: the association is released instead.
    p.ae.add_requested_context(sop.Verification)
    with p.acquire(scp.peer) as busy:
        busy._outstanding[99] = 1
    assert busy.is_released


def test_checkout_and_checkin(scps, make_pool):
    scp = scps()
    p = make_pool()
    assoc = p.checkout(scp.peer)
    assert only(p.stats()).in_use == 1
    p.checkin(assoc)
    assert p.checkout(scp.peer) is assoc
    p.checkin(assoc, discard=True)
    assert assoc.is_released
    with pytest.raises(InvalidArgument, match="not checked out"):
        p.checkin(assoc)


def test_fails_over_to_the_next_peer(scps, make_pool):
    scp = scps()
    dead = Peer(LOOPBACK, free_closed_port(), "DEAD")
    p = make_pool()
    with p.acquire([dead, scp.peer]) as assoc:
        assert assoc.acceptor.port == scp.port
    assert p.send_c_store([dead, scp.peer], ct()).Status == 0
    assert [k.ae_title for k in p.stats()] == ["STORESCP"]


def test_a_rejecting_peer_is_skipped(scps, make_pool):
    scp = scps(require_called_aet=True)
    p = make_pool()
    wrong = (LOOPBACK, scp.port, "WRONG")
    assert p.send_c_store([wrong, scp.peer], ct()).Status == 0
    with pytest.raises(AssociationRejected, match="called AE title not recognized") as info:
        p.send_c_store([(LOOPBACK, scp.port, "WRONG2")], ct())
    assert (info.value.result, info.value.source, info.value.reason) == (1, 1, 7)


def free_closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def test_when_every_peer_fails_the_error_names_each(make_pool):
    a, b = Peer(LOOPBACK, free_closed_port(), "A"), Peer(LOOPBACK, free_closed_port(), "B")
    p = make_pool()
    with pytest.raises(ConnectFailed) as info:
        with p.acquire([a, b]):
            pass
    assert str(a) in str(info.value)
    assert str(b) in str(info.value)
    # Both are in back-off now: the next call fails at once, saying so.
    start = time.monotonic()
    with pytest.raises(ConnectFailed, match="back-off"):
        p.send_c_store([a, b], ct())
    assert time.monotonic() - start < 0.5


def test_a_failed_peer_is_not_tried_again_within_the_backoff(scps, make_pool):
    scp = scps()
    # A peer that takes TCP connections (the kernel's backlog) and never answers.
    silent = socket.socket()
    silent.bind((LOOPBACK, 0))
    silent.listen(8)
    try:
        p = make_pool(backoff=0.6)
        p.ae.acse_timeout = 0.3
        mute = Peer(LOOPBACK, silent.getsockname()[1], "MUTE")
        start = time.monotonic()
        with p.acquire([mute, scp.peer]) as assoc:
            assert assoc.acceptor.port == scp.port
        assert time.monotonic() - start >= 0.3  # waited on the silent peer once
        assert connections(silent) == 1
        start = time.monotonic()
        with p.acquire([mute, scp.peer]):
            pass
        assert time.monotonic() - start < 0.25  # not again
        assert connections(silent) == 0
        time.sleep(0.7)  # the back-off is over: the peer is tried again
        with pytest.raises(AcseTimeout):
            with p.acquire(mute):
                pass
        assert connections(silent) == 1
    finally:
        silent.close()


def connections(listener: socket.socket) -> int:
    """How many connections wait in ``listener``'s backlog (accepted and closed)."""
    listener.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_close_releases_idle_associations_and_refuses_acquires(scps, make_pool):
    scp = scps()
    p = make_pool(max_per_peer=2, acquire_timeout=5)
    idle = p.checkout(scp.peer)
    busy = p.checkout(scp.peer)
    p.checkin(idle)
    # A thread waiting for a free association (the idle one is of another key) ...
    outcome: list[BaseException] = []

    def waiter():
        try:
            with p.acquire(scp.peer, contexts=[build_context(MR)]), p.acquire(scp.peer):
                pass
        except BaseException as e:
            outcome.append(e)

    p.close()
    t = threading.Thread(target=waiter)
    t.start()
    t.join(5)
    assert isinstance(outcome[0], PoolClosed)
    assert idle.is_released
    assert busy.is_established  # in use: released when given back
    p.checkin(busy)
    assert busy.is_released
    wait_until(lambda: len(scp.ended) == 2)
    assert sorted(how for how, _ in scp.ended) == ["released", "released"]
    with pytest.raises(PoolClosed):
        p.send_c_store(scp.peer, ct())
    p.close()  # again: nothing to do
    assert p.closed


def test_close_wakes_threads_waiting_for_an_association(scps, make_pool):
    scp = scps()
    p = make_pool(max_per_peer=1, acquire_timeout=10)
    outcome: list[BaseException] = []
    assoc = p.checkout(scp.peer)

    def waiter():
        try:
            with p.acquire(scp.peer):
                pass
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.1)
    start = time.monotonic()
    p.close()
    t.join(5)
    assert time.monotonic() - start < 2
    assert isinstance(outcome[0], PoolClosed)
    p.checkin(assoc)
    assert assoc.is_released


def test_pool_as_context_manager_and_arguments(scps):
    scp = scps()
    ae = AE("POOLSCU")
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    with AssociationPool(ae) as p:
        with p.acquire(LOOPBACK, scp.port, "STORESCP") as assoc:
            pass
    assert p.closed
    assert assoc.is_released
    with pytest.raises(InvalidArgument):
        AssociationPool(ae, max_per_peer=0)
    with pytest.raises(InvalidArgument, match="port"):
        AssociationPool(ae).acquire(LOOPBACK)
    with pytest.raises(InvalidArgument, match="AE title"):
        AssociationPool(ae).acquire(LOOPBACK, 104, "A\\B")
    with pytest.raises(InvalidArgument):
        AssociationPool(ae).acquire([])


def test_through_dcmtk_storescp_over_two_associations(make_pool, tmp_path):
    out = tmp_path / "storescp"
    out.mkdir()
    files = [write_ct(tmp_path, n) for n in range(8)]
    peer = DcmtkServer("storescp", ["-d", "--fork", "-od", str(out)], tmp_path / "log.txt")
    try:
        p = make_pool(max_per_peer=2)
        target = (LOOPBACK, peer.port, "STORESCP")
        both = threading.Barrier(2, timeout=10)
        statuses: list[int] = []
        errors: list[BaseException] = []

        def send(mine: list[Path]) -> None:
            try:
                with p.acquire(target) as assoc:
                    both.wait()  # two associations at once
                    statuses.append(assoc.send_c_store(mine[0]).Status)
                for path in mine[1:]:
                    statuses.append(p.send_c_store(target, path).Status)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=send, args=(files[i::2],)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert not errors
        assert statuses == [0] * 8
        stats = only(p.stats())
        assert (stats.created, stats.reused) == (2, 6)
        p.close()
        received = {f.name.split(".", 1)[1] for f in out.iterdir() if f.name.startswith("CT.")}
        assert received == {f.stem for f in files}
        wait_until(lambda: peer.output().count("Association Release") >= 2)
        assert "Abort" not in peer.output()
    finally:
        peer.stop()


def write_ct(folder: Path, n: int) -> Path:
    ds = ct()
    ds.Modality = "CT"
    ds.InstanceNumber = n
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_peer_accepting_no_context_is_skipped(scps, make_pool, echo_server):
    _, _, echo_port = echo_server()  # Verification only: accepts none of CT, MR
    scp = scps()
    p = make_pool()
    verification_only = (LOOPBACK, echo_port, "ECHOSCP")
    with p.acquire([verification_only, scp.peer]) as assoc:
        assert assoc.acceptor.port == scp.port
    with pytest.raises(NoAcceptedContext, match="accepted none"):
        p.send_c_store(verification_only, ct())
    assert [k.port for k in p.stats()] == [scp.port]


def test_a_pool_dropped_without_close_is_collected(scps):
    scp = scps()
    ae = AE("POOLSCU")
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    dropped = AssociationPool(ae)
    assoc = dropped.checkout(scp.peer)
    dropped.checkin(assoc)
    reaper = dropped._reaper
    assert reaper is not None
    assert reaper.is_alive()
    ref = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert ref() is None
    reaper.join(3)
    assert not reaper.is_alive()
    del assoc
    gc.collect()
    wait_until(lambda: scp.ended)
    assert scp.ended[0][0] == "aborted"
