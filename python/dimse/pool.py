"""Association pools: established associations kept open and handed out again.

A router forwards many instances to a few peers. Negotiating an association for each one
costs a TCP handshake and an A-ASSOCIATE round trip (more than the C-STORE itself for
small instances), and opening one per worker thread without limit floods peers that only
accept a few at a time. :class:`AssociationPool` keeps the associations it opened, keyed
by everything that was negotiated, hands an idle one out again (most recently used
first), caps how many are open to each peer, releases (A-RELEASE, PS3.8 7.2) the ones
idle too long, and fails over between peers.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, NamedTuple, TypeAlias, cast

from pydicom.dataset import Dataset

from dimse.ae import AE, _check_ae_title
from dimse.association import Association
from dimse.exceptions import (
    AcseTimeout,
    AssociationAborted,
    AssociationRejected,
    ConnectFailed,
    DimseError,
    DimseTimeout,
    InvalidArgument,
    InvalidFile,
    NoAcceptedContext,
    NotEstablished,
)
from dimse.presentation import PresentationContext

__all__ = [
    "AssociationPool",
    "Lease",
    "Peer",
    "PeerSpec",
    "PoolClosed",
    "PoolKey",
    "PoolStats",
    "PoolTimeout",
]

LOGGER = logging.getLogger(__name__)

#: An idle association unused for longer than this (seconds) is checked before it is
#: handed out: a non-blocking look at what the peer sent meanwhile (about a millisecond,
#: the core's timer tick). One used a moment ago is handed out unchecked; the
#: ``send_c_store`` convenience covers that window by retrying once.
PROBE_AFTER = 0.5

#: How often (seconds) the reaper thread looks at the idle associations: it answers a
#: peer's A-RELEASE-RQ, drops the ones the peer aborted, and releases the expired ones.
REAP_INTERVAL = 1.0

#: Failures of a peer itself (not of our request): the next peer is tried, and the
#: failed one is skipped for ``backoff`` seconds.
_PEER_FAILURES = (ConnectFailed, AssociationRejected, AssociationAborted, AcseTimeout)

#: Errors raised before anything was sent: the association is as good as before.
_HARMLESS = (NoAcceptedContext, InvalidFile, InvalidArgument)


class PoolTimeout(DimseError, TimeoutError):
    """No association to the peer became free within the pool's ``acquire_timeout``:
    every one of the ``max_per_peer`` allowed is in use."""


class PoolClosed(DimseError):
    """The pool was closed: it hands out no association any more."""


class Peer(NamedTuple):
    """A remote AE: where it listens and its AE title (the Called AE Title we ask for)."""

    host: str
    port: int
    ae_title: str = "ANY-SCP"

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


#: A peer as ``Peer``, ``(host, port)`` or ``(host, port, ae_title)``.
PeerSpec: TypeAlias = Peer | tuple[str, int] | tuple[str, int, str]

#: A proposed presentation context as it goes in a key: abstract syntax, transfer
#: syntaxes, SCU role, SCP role.
ContextSignature: TypeAlias = tuple[str, tuple[str, ...], bool | None, bool | None]


class PoolKey(NamedTuple):
    """What an association was negotiated with; only an association with the same key
    is handed out again, since a different proposal may have been answered differently.

    ``ext_neg`` is a digest of the extended negotiation items rather than the items, so
    that a key (in ``stats()``, in logs) never shows a user identity's passcode.
    """

    host: str
    port: int
    ae_title: str
    calling_ae_title: str
    contexts: tuple[ContextSignature, ...]
    ext_neg: str

    @property
    def peer(self) -> Peer:
        return Peer(self.host, self.port, self.ae_title)


@dataclasses.dataclass(frozen=True)
class PoolStats:
    """The associations of one key: ``open`` (``idle`` + ``in_use``) now, and how many
    were ever ``created`` and handed out again (``reused``)."""

    open: int
    idle: int
    in_use: int
    created: int
    reused: int


@dataclasses.dataclass(eq=False)
class _Entry:
    """One pooled association and its bookkeeping (guarded by the pool's lock)."""

    assoc: Association
    key: PoolKey
    #: When it went idle last (monotonic seconds): LIFO order and idle expiry.
    idle_since: float
    #: When it was last seen alive (used, or probed).
    verified_at: float
    #: Handed out from the idle list this time (not freshly negotiated).
    reused: bool = False


@dataclasses.dataclass
class _Counters:
    created: int = 0
    reused: int = 0


class Lease:
    """``with pool.acquire(...) as assoc``: the association is taken from the pool on
    entry and given back on exit, or discarded when the block raised (see
    :meth:`AssociationPool.checkin`)."""

    def __init__(
        self,
        pool: AssociationPool,
        peers: list[Peer],
        contexts: list[PresentationContext] | None,
        ext_neg: Sequence[Any] | None,
        timeout: float | None,
    ) -> None:
        self._pool = pool
        self._args = (peers, contexts, ext_neg, timeout)
        self._entry: _Entry | None = None

    def __enter__(self) -> Association:
        if self._entry is not None:
            raise InvalidArgument("this lease is in use: call pool.acquire() again")
        peers, contexts, ext_neg, timeout = self._args
        self._entry = self._pool._checkout(peers, contexts, ext_neg, timeout, fresh=False)
        return self._entry.assoc

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            self._pool._checkin(entry, _disposal(exc))


def _disposal(exc: BaseException | None) -> str:
    """What to do with an association given back after ``exc``: "keep" it idle,
    "release" it, or "abort" it.

    After an error other than one raised before anything was sent, the association may
    hold half an exchange (a C-FIND iterator left open, responses of send_c_store_many
    still coming): a later user would read another's responses, so it is released. A
    KeyboardInterrupt and the like abort, as ``Association.__exit__`` does: no wait on
    the peer then."""
    if exc is None or isinstance(exc, _HARMLESS):
        return "keep"
    return "release" if isinstance(exc, Exception) else "abort"


class AssociationPool:
    """Established associations kept open for reuse, for an AE that sends to the same
    peers over and over (a router, a forwarding queue).

    ``max_per_peer`` caps the associations open to one peer (host, port, AE title) at
    once, in use or idle, across presentation contexts: many peers accept only a few.
    Beyond it :meth:`acquire` waits up to ``acquire_timeout`` seconds for one to come
    back, then raises :class:`PoolTimeout`. Associations idle for ``idle_timeout``
    seconds are released (A-RELEASE, never an abort: the peer sees a clean end); None
    keeps them until :meth:`close`. A peer that could not be associated (no connection,
    rejected, aborted, no answer) is not tried again for ``backoff`` seconds: the next
    peer of a fail-over list is used, or the call fails at once, rather than every
    request waiting on a dead peer again. A peer that is only busy is waited for, not
    failed over.

    Associations are negotiated with ``ae.associate()``, so the AE's timeouts apply;
    set ``ae.connection_timeout`` for peers that may be unreachable (the operating
    system's own connect timeout can be minutes). Thread-safe: any number of threads
    may acquire at once; each association is used by one thread at a time.
    """

    def __init__(
        self,
        ae: AE,
        max_per_peer: int = 4,
        idle_timeout: float | None = 30.0,
        acquire_timeout: float | None = 30.0,
        backoff: float = 5.0,
    ) -> None:
        if not isinstance(max_per_peer, int) or isinstance(max_per_peer, bool):
            raise InvalidArgument(f"max_per_peer must be an int, not {max_per_peer!r}")
        if max_per_peer < 1:
            raise InvalidArgument(f"max_per_peer must be at least 1, not {max_per_peer}")
        for name, value in (("idle_timeout", idle_timeout), ("acquire_timeout", acquire_timeout)):
            if value is not None and not value >= 0:
                raise InvalidArgument(f"{name} must be None or at least 0, not {value!r}")
        if not backoff >= 0:
            raise InvalidArgument(f"backoff must be at least 0, not {backoff!r}")
        self.ae = ae
        self.max_per_peer = max_per_peer
        self.idle_timeout = idle_timeout
        self.acquire_timeout = acquire_timeout
        self.backoff = backoff
        self._cond = threading.Condition()
        self._closed = False
        #: Idle associations per key, oldest first (handed out from the end: LIFO).
        self._idle: dict[PoolKey, list[_Entry]] = {}
        #: Idle associations the reaper is probing right now, per key.
        self._probing: dict[PoolKey, int] = {}
        self._in_use: dict[int, _Entry] = {}
        #: Associations counted against each peer's cap: in use, idle, being probed,
        #: being negotiated and being released.
        self._open: dict[Peer, int] = {}
        self._counters: dict[PoolKey, _Counters] = {}
        #: Peer -> (monotonic time its back-off ends, why it failed).
        self._backoff: dict[Peer, tuple[float, Exception]] = {}
        self._reaper: threading.Thread | None = None

    # -- the public face ------------------------------------------------------------------

    def acquire(
        self,
        peers: str | PeerSpec | Sequence[PeerSpec],
        port: int | None = None,
        ae_title: str | None = None,
        *,
        contexts: Sequence[PresentationContext] | None = None,
        ext_neg: Sequence[Any] | None = None,
        timeout: float | None = None,
    ) -> Lease:
        """An established association to a peer, as a context manager::

            with pool.acquire("10.0.0.5", 104, "PACS") as assoc:
                assoc.send_c_store(ds)

        ``peers`` is a host (with ``port`` and ``ae_title``), one peer as a
        ``(host, port, ae_title)`` tuple or :class:`Peer`, or a list of them: the first
        that can be associated is used (fail-over); when all fail, the last error is
        raised with every peer's reason in its message. ``contexts`` (default: the AE's
        requested contexts) and ``ext_neg`` are proposed as with ``ae.associate()``.
        ``timeout`` overrides ``acquire_timeout`` for this call.

        The association is obtained on entering the block. An idle one that the peer
        released or aborted is noticed before it is handed out, except within a moment
        of its last use (:data:`PROBE_AFTER`): an operation on it may then raise
        ``AssociationAborted``; retry with another ``acquire()``, or use
        :meth:`send_c_store`, which does.
        """
        peer_list = _peers(peers, port, ae_title)
        return Lease(self, peer_list, _context_list(contexts), ext_neg, timeout)

    def checkout(
        self,
        peers: str | PeerSpec | Sequence[PeerSpec],
        port: int | None = None,
        ae_title: str | None = None,
        *,
        contexts: Sequence[PresentationContext] | None = None,
        ext_neg: Sequence[Any] | None = None,
        timeout: float | None = None,
    ) -> Association:
        """:meth:`acquire` without the ``with`` block, for code that gives the
        association back somewhere else: pair every call with :meth:`checkin`."""
        peer_list = _peers(peers, port, ae_title)
        entry = self._checkout(peer_list, _context_list(contexts), ext_neg, timeout, False)
        return entry.assoc

    def checkin(self, assoc: Association, discard: bool = False) -> None:
        """Gives back an association from :meth:`checkout`. It goes idle if it is still
        established, has no C-FIND/GET/MOVE in progress and ``discard`` is false;
        otherwise it is released (or just forgotten, when it already ended)."""
        with self._cond:
            entry = self._in_use.get(id(assoc))
        if entry is None or entry.assoc is not assoc:
            raise InvalidArgument(f"{assoc!r} is not checked out of this pool")
        self._checkin(entry, "release" if discard else "keep")

    def send_c_store(
        self,
        peers: PeerSpec | Sequence[PeerSpec],
        dataset: Dataset | str | os.PathLike[str],
        *,
        contexts: Sequence[PresentationContext] | None = None,
        ext_neg: Sequence[Any] | None = None,
        priority: int = 2,
        timeout: float | None = None,
    ) -> Dataset:
        """Sends one C-STORE through the pool and returns its status, as
        ``Association.send_c_store`` does.

        An association handed out again can turn out dead on its first use (the peer
        released or aborted it while it was idle, and that was not seen yet). Then,
        and only then, the C-STORE is sent once more on a newly negotiated association:
        the peer cannot have stored the instance on an association it had already ended
        (and storing the same SOP Instance again is what retrying SCUs do anyway). A
        failure on a new association, or a timeout, is raised as it is.
        """
        peer_list = _peers(peers, None, None)
        context_list = _context_list(contexts)
        entry = self._checkout(peer_list, context_list, ext_neg, timeout, fresh=False)
        try:
            status = entry.assoc.send_c_store(dataset, priority=priority)
        except (AssociationAborted, NotEstablished) as e:
            self._checkin(entry, "release")
            if not entry.reused:
                raise
            LOGGER.info(
                "%s: the pooled association had ended (%s): sending on a new one", entry.key, e
            )
            entry = self._checkout(peer_list, context_list, ext_neg, timeout, fresh=True)
            with self._given_back(entry):
                return entry.assoc.send_c_store(dataset, priority=priority)
        except BaseException as e:
            self._checkin(entry, _disposal(e))
            raise
        self._checkin(entry, "keep")
        return status

    def stats(self) -> dict[PoolKey, PoolStats]:
        """Per key: the associations open now (idle, in use) and the counts so far."""
        with self._cond:
            in_use: dict[PoolKey, int] = {}
            for entry in self._in_use.values():
                in_use[entry.key] = in_use.get(entry.key, 0) + 1
            out = {}
            for key, counters in self._counters.items():
                idle = len(self._idle.get(key, ())) + self._probing.get(key, 0)
                busy = in_use.get(key, 0)
                out[key] = PoolStats(idle + busy, idle, busy, counters.created, counters.reused)
            return out

    def close(self) -> None:
        """Releases every idle association (A-RELEASE) and refuses acquires from now on
        (:class:`PoolClosed`, also for threads waiting). Associations in use are
        released when they are given back. Calling it again does nothing."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            entries = [e for stack in self._idle.values() for e in stack]
            self._idle.clear()
            reaper = self._reaper
            self._cond.notify_all()
        for entry in entries:
            self._end(entry, "release")
        if reaper is not None and reaper is not threading.current_thread():
            # It may be releasing an expired association: bounded by the ACSE timeout.
            reaper.join(REAP_INTERVAL + (self.ae.acse_timeout or 30.0) + 2.0)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> AssociationPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._cond:
            idle = sum(len(s) for s in self._idle.values())
            state = "closed" if self._closed else "open"
            return (
                f"<AssociationPool {self.ae.ae_title} {state}: {len(self._in_use)} in use, "
                f"{idle} idle>"
            )

    # -- checkout ---------------------------------------------------------------------------

    def _checkout(
        self,
        peers: list[Peer],
        contexts: list[PresentationContext] | None,
        ext_neg: Sequence[Any] | None,
        timeout: float | None,
        fresh: bool,
    ) -> _Entry:
        """An association to the first peer that can be associated; ``fresh`` asks for a
        newly negotiated one (the idle ones of the key are suspect)."""
        if self._closed:
            raise PoolClosed("the association pool is closed")
        proposed = contexts if contexts is not None else self.ae.requested_contexts
        if not proposed:
            raise InvalidArgument(
                "no presentation context to propose: pass contexts= or call "
                "ae.add_requested_context() first"
            )
        signature = tuple(_context_signature(pc) for pc in proposed)
        ext_sig = _ext_neg_digest(ext_neg)
        wait = self.acquire_timeout if timeout is None else timeout
        deadline = None if wait is None else time.monotonic() + wait
        failures: list[tuple[Peer, Exception]] = []
        for peer in peers:
            key = PoolKey(
                peer.host, peer.port, peer.ae_title, self.ae.ae_title, signature, ext_sig
            )
            with self._cond:
                skipped = self._backoff.get(peer)
                if skipped is not None and skipped[0] <= time.monotonic():
                    del self._backoff[peer]
                    skipped = None
            if skipped is not None:
                left = skipped[0] - time.monotonic()
                LOGGER.debug("%s: skipped, in back-off for %.1f s", peer, left)
                why = f"not tried for {left:.1f} s more (back-off) after: {skipped[1]}"
                failures.append((peer, _reworded(skipped[1], why)))
                continue
            try:
                return self._checkout_key(key, proposed, ext_neg, deadline, fresh)
            except _PEER_FAILURES as e:
                LOGGER.info("%s: cannot associate: %s", peer, e)
                if self.backoff > 0:
                    with self._cond:
                        self._backoff[peer] = (time.monotonic() + self.backoff, e)
                failures.append((peer, e))
            except NoAcceptedContext as e:
                failures.append((peer, e))
        raise _all_failed(failures)

    def _checkout_key(
        self,
        key: PoolKey,
        contexts: list[PresentationContext],
        ext_neg: Sequence[Any] | None,
        deadline: float | None,
        fresh: bool,
    ) -> _Entry:
        peer = key.peer
        while True:
            entry: _Entry | None = None
            victim: _Entry | None = None
            with self._cond:
                while True:
                    if self._closed:
                        raise PoolClosed("the association pool is closed")
                    stack = self._idle.get(key)
                    if stack and not fresh:
                        entry = stack.pop()  # the most recently used: LIFO
                        self._in_use[id(entry.assoc)] = entry
                        break
                    if not fresh and self._probing.get(key):
                        # One of ours is being probed by the reaper: wait for it (about
                        # a millisecond) rather than negotiate another.
                        self._wait(deadline, key)
                        continue
                    if self._open.get(peer, 0) < self.max_per_peer:
                        self._open[peer] = self._open.get(peer, 0) + 1
                        break
                    victim = self._oldest_idle(peer, None if fresh else key)
                    if victim is not None:
                        # At the cap with an idle association we cannot use: its slot
                        # becomes ours once it is released.
                        break
                    self._wait(deadline, key)
            if entry is not None:
                if self._alive(entry):
                    entry.reused = True
                    with self._cond:
                        self._counters[key].reused += 1
                    return entry
                with self._cond:
                    del self._in_use[id(entry.assoc)]
                self._end(entry, "release")
                continue
            if victim is not None:
                LOGGER.debug("%s: releasing an idle association for another", victim.key)
                self._end(victim, "release", keep_slot=True)
            return self._negotiate(key, contexts, ext_neg)

    def _wait(self, deadline: float | None, key: PoolKey) -> None:
        """Waits (lock held) for an association to come back, up to ``deadline``."""
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise PoolTimeout(
                f"no association to {key.peer} became free in time: all "
                f"{self.max_per_peer} allowed (max_per_peer) are in use"
            )
        # Bounded even without a deadline, so that a missed wake-up costs a second.
        self._cond.wait(REAP_INTERVAL if left is None else min(left, REAP_INTERVAL))

    def _oldest_idle(self, peer: Peer, other_than: PoolKey | None) -> _Entry | None:
        """Takes (lock held) the least recently used idle association to ``peer`` whose
        key is not ``other_than``."""
        best: PoolKey | None = None
        for key, stack in self._idle.items():
            if key.peer == peer and key != other_than and stack:
                if best is None or stack[0].idle_since < self._idle[best][0].idle_since:
                    best = key
        return None if best is None else self._idle[best].pop(0)

    def _negotiate(
        self, key: PoolKey, contexts: list[PresentationContext], ext_neg: Sequence[Any] | None
    ) -> _Entry:
        """A new association for ``key``, in a slot already counted for its peer."""
        peer = key.peer
        try:
            assoc = self.ae.associate(
                key.host, key.port, contexts=contexts, ae_title=key.ae_title, ext_neg=ext_neg
            )
            if not assoc.is_established:
                raise assoc.error or NotEstablished(f"{peer}: the association was not established")
            if not assoc.accepted_contexts:
                _end(assoc, "release")
                raise NoAcceptedContext(
                    f"{peer} accepted none of the {len(contexts)} presentation contexts proposed"
                )
        except BaseException:
            with self._cond:
                self._open[peer] -= 1
                self._cond.notify_all()
            raise
        now = time.monotonic()
        entry = _Entry(assoc, key, idle_since=now, verified_at=now)
        with self._cond:
            self._backoff.pop(peer, None)
            self._counters.setdefault(key, _Counters()).created += 1
            self._in_use[id(assoc)] = entry
        LOGGER.debug("%s: new association", key)
        return entry

    # -- checkin ------------------------------------------------------------------------

    def _checkin(self, entry: _Entry, how: str) -> None:
        """Takes back a checked-out association: "keep" it idle if it can be, else
        "release" or "abort" it."""
        assoc = entry.assoc
        with self._cond:
            if self._in_use.get(id(assoc)) is not entry:
                return  # given back already (two checkins raced)
            del self._in_use[id(assoc)]
            usable = assoc.is_established and not assoc._outstanding
            if how == "keep" and usable and not self._closed:
                now = time.monotonic()
                entry.idle_since = entry.verified_at = now
                self._idle.setdefault(entry.key, []).append(entry)
                self._cond.notify_all()
                self._start_reaper()
                return
        if how == "keep" and assoc.is_established:
            how = "release"  # a query still in progress, or the pool closed meanwhile
        self._end(entry, how)

    @contextmanager
    def _given_back(self, entry: _Entry) -> Iterator[None]:
        try:
            yield
        except BaseException as e:
            self._checkin(entry, _disposal(e))
            raise
        self._checkin(entry, "keep")

    def _end(self, entry: _Entry, how: str, keep_slot: bool = False) -> None:
        """Ends an association taken out of the pool's lists and frees its peer slot
        (unless ``keep_slot``: the caller takes it over)."""
        try:
            _end(entry.assoc, how)
        finally:
            if not keep_slot:
                with self._cond:
                    self._open[entry.key.peer] -= 1
                    self._cond.notify_all()

    @staticmethod
    def _alive(entry: _Entry) -> bool:
        if time.monotonic() - entry.verified_at < PROBE_AFTER:
            return entry.assoc.is_established
        alive = _probe(entry.assoc)
        if alive:
            entry.verified_at = time.monotonic()
        return alive

    # -- the reaper ---------------------------------------------------------------------

    def _start_reaper(self) -> None:
        """Starts (lock held) the reaper thread on first need. It holds the pool only
        weakly, so that a pool dropped without close() is still collected (its
        associations then abort, as any Association dropped while open does)."""
        if self._reaper is not None or self._closed:
            return
        self._reaper = threading.Thread(
            target=_reap_loop,
            args=(weakref.ref(self), self._cond),
            name=f"dimse-pool-reaper-{self.ae.ae_title}",
            daemon=True,
        )
        self._reaper.start()

    def _next_reap(self) -> float:
        """Seconds (lock held) until the reaper has something to do, at most
        :data:`REAP_INTERVAL`."""
        now = time.monotonic()
        soonest = now + REAP_INTERVAL
        for stack in self._idle.values():
            for entry in stack:
                soonest = min(soonest, entry.verified_at + REAP_INTERVAL)
                if self.idle_timeout is not None:
                    soonest = min(soonest, entry.idle_since + self.idle_timeout)
        return max(0.0, soonest - now)

    def _reap(self) -> None:
        """Releases the associations idle for ``idle_timeout``, and probes the others not
        seen alive for :data:`REAP_INTERVAL` (answering a peer's A-RELEASE-RQ, dropping
        the ones it aborted)."""
        expired: list[_Entry] = []
        probe: list[_Entry] = []
        with self._cond:
            now = time.monotonic()
            for key, stack in self._idle.items():
                keep = []
                for entry in stack:
                    if self.idle_timeout is not None and now - entry.idle_since >= (
                        self.idle_timeout
                    ):
                        expired.append(entry)
                    elif now - entry.verified_at >= REAP_INTERVAL:
                        probe.append(entry)
                        self._probing[key] = self._probing.get(key, 0) + 1
                    else:
                        keep.append(entry)
                stack[:] = keep
        for entry in expired:
            LOGGER.debug("%s: idle for %.1f s: releasing", entry.key, self.idle_timeout)
            self._end(entry, "release")
        for entry in probe:
            alive = _probe(entry.assoc)
            with self._cond:
                self._probing[entry.key] -= 1
                if alive and not self._closed:
                    entry.verified_at = time.monotonic()
                    stack = self._idle.setdefault(entry.key, [])
                    bisect.insort(stack, entry, key=lambda e: e.idle_since)
                    self._cond.notify_all()
                    continue
            self._end(entry, "release")


def _reap_loop(pool_ref: weakref.ref[AssociationPool], cond: threading.Condition) -> None:
    """The reaper thread: runs until the pool is closed or collected."""
    while True:
        pool = pool_ref()
        if pool is None:
            return
        with cond:
            if pool._closed:
                return
            delay = pool._next_reap()
            if delay > 0:
                del pool
                cond.wait(delay)
                continue
        try:
            pool._reap()
        except Exception:
            LOGGER.exception("the association pool's reaper failed (it goes on)")
        del pool


# -- helpers ---------------------------------------------------------------------------------


def _probe(assoc: Association) -> bool:
    """Whether an idle association is still established, by a non-blocking look at
    what arrived on it. A peer's A-RELEASE-RQ is answered (PS3.8 AR-2), an A-ABORT or a
    closed connection noted, an unsolicited message (nobody is there to answer it)
    aborts it."""
    core = assoc._core
    if not assoc.is_established or core is None:
        return False
    try:
        event = core.receive(0.0)
    except DimseTimeout:
        return True  # nothing arrived: as alive as can be told without a round trip
    except DimseError as e:
        LOGGER.info("%r ended while idle: %s", assoc, e)
        assoc.abort()
        return False
    try:
        assoc._message_event(core, event)
    except DimseError as e:
        LOGGER.info("%r ended while idle: %s", assoc, e)
        return False
    LOGGER.warning("%r: unsolicited message while idle: aborting it", assoc)
    assoc.abort()
    return False


def _end(assoc: Association, how: str) -> None:
    """Releases (or aborts) an association if it is still established; a release the
    peer does not answer (or that fails) becomes an abort. Never raises: ending is
    cleanup."""
    if not assoc.is_established:
        return  # it ended already (and dropped its link)
    if how == "abort":
        assoc.abort()
        return
    try:
        assoc.release()
    except Exception as e:
        LOGGER.info("%r: release failed (%s): aborted", assoc, e)
        assoc.abort()


def _peers(
    peers: str | PeerSpec | Sequence[PeerSpec], port: int | None, ae_title: str | None
) -> list[Peer]:
    """The peers to try, in order, from the forms ``acquire()`` takes."""
    if isinstance(peers, str):
        if port is None:
            raise InvalidArgument(f"the port of {peers!r} is missing: acquire(host, port, ...)")
        return [_peer((peers, port, ae_title or "ANY-SCP"))]
    if port is not None or ae_title is not None:
        raise InvalidArgument(
            "port and ae_title go with a host; give a peer as (host, port, ae_title)"
        )
    if isinstance(peers, tuple) and peers and isinstance(peers[0], str):
        return [_peer(cast(PeerSpec, peers))]
    out = [_peer(p) for p in cast(Sequence[PeerSpec], peers)]
    if not out:
        raise InvalidArgument("no peer given")
    return out


def _peer(spec: PeerSpec) -> Peer:
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise InvalidArgument(f"a peer is (host, port) or (host, port, ae_title), not {spec!r}")
    host, port = spec[0], spec[1]
    if not isinstance(host, str) or not host:
        raise InvalidArgument(f"a peer's host must be a non-empty str, not {host!r}")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise InvalidArgument(f"a peer's port must be 1..65535, not {port!r}")
    title = spec[2] if len(spec) == 3 else "ANY-SCP"
    return Peer(host, port, _check_ae_title(title, "called AE title"))


def _context_list(
    contexts: Sequence[PresentationContext] | None,
) -> list[PresentationContext] | None:
    return None if contexts is None else list(contexts)


def _context_signature(pc: PresentationContext) -> ContextSignature:
    return (
        str(pc.abstract_syntax),
        tuple(str(ts) for ts in pc.transfer_syntax),
        pc.scu_role,
        pc.scp_role,
    )


def _freeze(value: Any) -> Any:
    """A hashable, printable form of an extended negotiation item."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (
            type(value).__name__,
            tuple((f.name, _freeze(getattr(value, f.name))) for f in fields),
        )
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if value is None or isinstance(value, str | bytes | int | float):
        return value
    raise InvalidArgument(
        f"{value!r} is not an extended negotiation item: use build_role() or the classes "
        "of dimse.pdu_primitives"
    )


def _ext_neg_digest(ext_neg: Sequence[Any] | None) -> str:
    if not ext_neg:
        return ""
    frozen = tuple(_freeze(item) for item in ext_neg)
    return hashlib.sha256(repr(frozen).encode()).hexdigest()[:16]


def _reworded(error: Exception, message: str) -> Exception:
    """A copy of ``error`` (same class and attributes, so that ``except ConnectFailed``
    and the like still work) saying ``message``. A copy, because back-off errors are
    shared between threads: raising one exception object in two threads at once would
    mix their tracebacks."""
    reworded = copy.copy(error)
    reworded.args = (message,)
    return reworded


def _all_failed(failures: list[tuple[Peer, Exception]]) -> Exception:
    """The exception for a checkout that found no peer: the last peer's error, saying
    why each peer failed."""
    reasons = "; ".join(f"{peer}: {error}" for peer, error in failures)
    if len(failures) == 1:
        return _reworded(failures[0][1], reasons)
    return _reworded(failures[-1][1], f"no peer could be associated: {reasons}")
