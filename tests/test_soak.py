"""Soak and crash tests of ``dimse storescp`` (flat layout), run as a process of its own.

``test_soak_storescp``: for ``--soak-seconds`` (default in tests/conftest.py; or
$DIMSE_SOAK_SECONDS) eight requestor threads open association after association, each
storing 1 to 20 CT instances (1 KiB to 2 MiB of random pixel data, now and then one above
the SCP's 8 MiB streaming threshold) in Explicit or Implicit VR Little Endian, while
peers abort at random moments (A-ABORT between stores or from another thread during one, a
hand-made peer that sends part of a data set and then aborts, closes or resets), the
network stalls (an in-test TCP proxy that pauses either direction for up to 2.5 s, shorter
than the SCP's network timeout), connections are cut at a random byte, or stall until the
SCP's network timeout ends them. At the end:

- every instance answered with success is on disk, byte-identical (SHA-256 of the bytes
  after the File Meta Information) to the data set sent;
- an instance whose data set reached the SCP whole but whose response never came may be
  on disk, and is then intact; one whose data set did not reach it whole is not there;
- nothing else is in the folder (no ``.part`` temporary file either);
- the SCP's thread count and open file descriptors are back to their level after a
  warm-up phase, and its RSS within ``RSS_TOLERANCE_KB`` of it.

``test_sigkill_storescp_mid_run_then_restart``: three requestors store 300 small
instances (two with an asynchronous operations window) and storescp is killed (SIGKILL) at
a random moment; after a restart on the same folder every acknowledged instance is
intact, nothing else but intact in-flight instances is there, and storing goes on.

Random choices come from ``random.Random`` seeded by $DIMSE_SOAK_SEED (printed; a new seed
each run when unset): failures name it for reproduction.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import math
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from conftest import APP_CONTEXT, associate_rq, item, soak_seconds
from dimse import AE, _core, sop
from dimse.association import STREAM_THRESHOLD, Association
from dimse.exceptions import NotEstablished
from dimse.pdu_primitives import AsynchronousOperationsWindowNegotiation

LOOPBACK = "127.0.0.1"
CT = sop.CTImageStorage
SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
SCP_AET = "STORESCP"
LISTENING = re.compile(r"storescp listening on ([0-9.]+):(\d+)")

#: storescp's network timeout (-tn) and ACSE timeout (-ta), seconds: the stalls below are
#: much shorter, the "hang" faults last until the network timeout ends them.
SCP_NETWORK_TIMEOUT = 8.0
SCP_ACSE_TIMEOUT = 10.0
#: Our requestors' ACSE, DIMSE and network timeouts: longer than the SCP's, so that a
#: hang is ended by the SCP.
CLIENT_TIMEOUT = 30.0
#: Bound on every blocking socket operation of the proxy and of the hand-made peer.
SOCKET_TIMEOUT = 60.0
#: Seconds storescp has to say it listens, and to stop after SIGTERM.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0

WORKERS = 8
WARMUP_SECONDS = 6.0
#: Every loop is bounded by a count as well as by time.
MAX_ASSOCIATIONS_PER_WORKER = 5000
MAX_INSTANCES = 20
#: Pixel data: rows of 256 bytes, log-uniform from 1 KiB to 2 MiB...
ROWS = (4, 8192)
#: ...and, for this share of the instances, above the SCP's streaming threshold (written
#: to a temporary file as it arrives, so an abort leaves a ``.part`` to clean up).
LARGE_SHARE = 0.01
LARGE_ROWS = (STREAM_THRESHOLD // 256 + 64, STREAM_THRESHOLD // 256 + 2048)
#: Proxy stalls, seconds: well below SCP_NETWORK_TIMEOUT even on a loaded machine.
STALL = (0.5, 2.5)
#: How an association is used, and how often.
MODES = {
    "plain": 24,  # stores, then releases
    "window": 12,  # send_c_store_many with a window; half of them abort after k answers
    "abort": 10,  # assoc.abort() between two stores
    "abort_timer": 10,  # assoc.abort() from another thread at a random moment
    "raw_partial": 10,  # a hand-made peer sends part of a data set, then dies
    "stall": 16,  # through the proxy, which pauses 1 to 3 times: everything succeeds
    "cut": 14,  # through the proxy, which closes both sides at a random byte
    "hang": 4,  # through the proxy, which stops forwarding: the SCP's -tn ends it
}
#: Seconds the SCP gets to come back to its baseline once the requestors are done.
SETTLE_SECONDS = 20.0
#: RSS growth tolerated over the run (kB). The baseline is taken after a warm-up at full
#: concurrency with the largest data sets, so the allocator's arenas and the runtime's
#: buffers are already grown; what remains is glibc keeping freed memory in per-thread
#: arenas (it does not trim them): a few MiB per thread that received a large data set.
#: A leak of even a few hundred bytes per association or per instance (tens of thousands
#: of each in a CI run) would show above it when run longer.
RSS_TOLERANCE_KB = 32 * 1024


@pytest.fixture
def seed() -> int:
    value = os.environ.get("DIMSE_SOAK_SEED")
    chosen = int(value) if value else random.SystemRandom().randrange(2**32)
    print(f"\nDIMSE_SOAK_SEED={chosen}")
    return chosen


# -- the SCP process --------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (kB) and Threads of a process, and its open file descriptors."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class StoreScp:
    """``python -m dimse storescp 0 --bind 127.0.0.1 -od OUT`` with short timeouts; its
    stdout and stderr go to ``log``, from which the port is read."""

    def __init__(self, out: Path, log: Path) -> None:
        self.log = log
        command = [
            sys.executable,
            "-m",
            "dimse",
            "storescp",
            "0",
            "--bind",
            LOOPBACK,
            "-od",
            str(out),
            "-tn",
            f"{SCP_NETWORK_TIMEOUT:g}",
            "-ta",
            f"{SCP_ACSE_TIMEOUT:g}",
        ]
        with log.open("wb") as f:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        self.pid = self.proc.pid
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                match = LISTENING.search(self.output())
                if match:
                    self.port = int(match[2])
                    return
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"storescp exited with {self.proc.returncode}:\n{self.output()}"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"storescp did not listen in time:\n{self.output()}")
                time.sleep(0.02)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status(self) -> dict[str, int]:
        return proc_status(self.pid)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Sends ``sig`` and waits; kills it if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        return self.proc.returncode


# -- instances ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """A generated instance: its source file, and the data set bytes' digest and length."""

    uid: str
    path: Path
    transfer_syntax: str
    digest: str
    size: int


def data_set_bytes(path: Path) -> bytes:
    """A DICOM file's data set: the bytes after its File Meta Information."""
    return path.read_bytes()[_core.read_file_meta(path)["data_offset"] :]


def log_uniform(rng: random.Random, low: int, high: int) -> int:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def make_instance(
    rng: random.Random, directory: Path, ts: str, rows: tuple[int, int] = ROWS
) -> Instance:
    """A CT image with random 8-bit pixel data, saved in ``ts``; sent by path, so the data
    set on the wire is exactly the bytes after the file's File Meta Information."""
    if rows == ROWS and rng.random() < LARGE_SHARE:
        rows = LARGE_ROWS
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = uid = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "SOAK"
    ds.Modality = "CT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelRepresentation = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.Columns = 256
    ds.Rows = log_uniform(rng, *rows)
    ds.PixelData = rng.randbytes(ds.Rows * 256)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    path = directory / f"{uid}.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = data_set_bytes(path)
    return Instance(uid, path, ts, hashlib.sha256(data).hexdigest(), len(data))


def check_stored(path: Path, instance: Instance) -> str | None:
    """What is wrong with ``path`` as the stored ``instance`` (None: it is intact)."""
    try:
        meta = _core.read_file_meta(path)
        data = path.read_bytes()[meta["data_offset"] :]
    except (OSError, ValueError) as e:
        return f"{path.name}: unreadable: {e!r}"
    if meta["media_storage_sop_instance_uid"] != instance.uid:
        return f"{path.name}: File Meta names {meta['media_storage_sop_instance_uid']}"
    if meta["media_storage_sop_class_uid"] != CT:
        return f"{path.name}: File Meta SOP class {meta['media_storage_sop_class_uid']}"
    if meta["transfer_syntax_uid"] != instance.transfer_syntax:
        return f"{path.name}: transfer syntax {meta['transfer_syntax_uid']}"
    if len(data) != instance.size or hashlib.sha256(data).hexdigest() != instance.digest:
        return f"{path.name}: data set of {len(data)} bytes differs from the {instance.size} sent"
    return None


# -- a TCP proxy with faults ----------------------------------------------------------------


class PduCounter:
    """Follows a requestor's PDU stream and counts the data sets the acceptor can have
    received whole: those whose last fragment is in a P-DATA-TF PDU passed on entirely."""

    def __init__(self) -> None:
        self.datasets = 0
        self._header = b""  # PDU header bytes so far (6)
        self._remaining = 0  # bytes of the current PDU's body still to come
        self._type = 0
        self._item = b""  # PDV item header bytes so far (6)
        self._value = 0  # bytes of the current PDV's value still to come
        self._pending = 0  # last data fragments seen in the current PDU

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self._remaining == 0:
                take = min(6 - len(self._header), n - i)
                self._header += data[i : i + take]
                i += take
                if len(self._header) == 6:
                    self._type = self._header[0]
                    self._remaining = struct.unpack(">I", self._header[2:])[0]
                    self._header, self._item, self._value, self._pending = b"", b"", 0, 0
                continue
            if self._type != 0x04:
                take = min(self._remaining, n - i)
            elif self._value:
                take = min(self._value, self._remaining, n - i)
                self._value -= take
            else:
                take = min(6 - len(self._item), self._remaining, n - i)
                self._item += data[i : i + take]
                if len(self._item) == 6:
                    length, _context, control = struct.unpack(">IBB", self._item)
                    if control & 0x03 == 0x02:  # data set, last fragment
                        self._pending += 1
                    self._value, self._item = max(0, length - 2), b""
            i += take
            self._remaining -= take
            if self._remaining == 0:
                self.datasets += self._pending


def shut(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


class Proxy:
    """Relays one TCP connection to the SCP. Faults in the requestor -> SCP direction
    happen at byte offsets: ``("stall", offset, seconds)`` pauses, ``("cut", offset)``
    shuts both sides, ``("hang", offset)`` stops passing anything on (what the requestor
    sends is swallowed) until the SCP closes. In the other direction ``reply_stall``
    (chunk index, seconds) pauses before passing a chunk, ``reply_cut`` (chunk index)
    shuts both sides instead of passing it."""

    def __init__(
        self,
        target: int,
        faults: list[tuple] | None = None,
        reply_stall: tuple[int, float] | None = None,
        reply_cut: int | None = None,
    ) -> None:
        self.target = target
        self.faults = sorted(faults or [], key=lambda f: f[1])
        self.reply_stall = reply_stall
        self.reply_cut = reply_cut
        self.counter = PduCounter()
        self.forwarded = 0
        self.stalls = 0
        self.cut = False
        self.hung_at: float | None = None
        self.scp_closed_at: float | None = None
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(SOCKET_TIMEOUT)
        self.port = int(self.listener.getsockname()[1])
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Waits (bounded) for the relay to end."""
        with contextlib.suppress(OSError):
            self.listener.close()
        self.thread.join(SOCKET_TIMEOUT)

    def _run(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                self.listener.close()
        with client:
            try:
                server = socket.create_connection((LOOPBACK, self.target), SOCKET_TIMEOUT)
            except OSError:
                return
            with server:
                client.settimeout(SOCKET_TIMEOUT)
                back = threading.Thread(target=self._backward, args=(server, client))
                back.start()
                self._forward(client, server)
                back.join(SOCKET_TIMEOUT)

    def _forward(self, client: socket.socket, server: socket.socket) -> None:
        faults = list(self.faults)
        try:
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    server.shutdown(socket.SHUT_WR)
                    return
                while chunk and self.hung_at is None:
                    room = faults[0][1] - self.forwarded if faults else len(chunk)
                    piece = chunk[: max(0, room)]
                    if piece:
                        server.sendall(piece)
                        self.counter.feed(piece)
                        self.forwarded += len(piece)
                        chunk = chunk[len(piece) :]
                    if faults and self.forwarded >= faults[0][1]:
                        fault = faults.pop(0)
                        if fault[0] == "stall":
                            time.sleep(fault[2])
                            self.stalls += 1
                        elif fault[0] == "cut":
                            self.cut = True
                            shut(client, server)
                            return
                        else:
                            self.hung_at = time.monotonic()
        except OSError:
            shut(client, server)

    def _backward(self, server: socket.socket, client: socket.socket) -> None:
        chunks = 0
        try:
            while True:
                chunk = server.recv(65536)
                if not chunk:
                    break
                if self.reply_cut is not None and chunks >= self.reply_cut:
                    self.cut = True
                    break
                if self.reply_stall is not None and chunks == self.reply_stall[0]:
                    time.sleep(self.reply_stall[1])
                    self.stalls += 1
                client.sendall(chunk)
                chunks += 1
        except OSError:
            pass
        self.scp_closed_at = time.monotonic()
        shut(client, server)


# -- a hand-made requestor that dies in the middle of a data set -----------------------------

RAW_IMPLEMENTATION_UID = b"1.2.826.0.1.3680043.8.498.1"


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the SCP closed the connection")
        data += chunk
    return data


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    kind, _, length = struct.unpack(">BBI", recv_exactly(sock, 6))
    return kind, recv_exactly(sock, length)


def sub_items(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The items of an A-ASSOCIATE PDU's variable part (2-byte lengths)."""
    i = 0
    while i + 4 <= len(data):
        kind, _, length = struct.unpack(">BBH", data[i : i + 4])
        yield kind, data[i + 4 : i + 4 + length]
        i += 4 + length


def raw_associate(port: int, ts: str) -> tuple[socket.socket, int]:
    """An association for CT Image Storage in ``ts`` on a plain socket; returns it and the
    largest PDV value the SCP takes."""
    sock = socket.create_connection((LOOPBACK, port), SOCKET_TIMEOUT)
    try:
        context = item(
            0x20, bytes([1, 0, 0, 0]) + item(0x30, CT.encode()) + item(0x40, ts.encode())
        )
        user = item(0x50, item(0x51, struct.pack(">I", 0)) + item(0x52, RAW_IMPLEMENTATION_UID))
        rq = associate_rq(APP_CONTEXT, context, user, called=SCP_AET.encode(), calling=b"RAWSCU")
        sock.sendall(rq)
        kind, body = read_pdu(sock)
        assert kind == 0x02, f"A-ASSOCIATE-AC expected, got PDU type {kind:#x}: {body!r}"
        max_pdu = 0
        for kind, value in sub_items(body[68:]):
            if kind == 0x21:
                assert value[2] == 0, f"presentation context refused ({value[2]})"
            elif kind == 0x50:
                for sub, sub_value in sub_items(value):
                    if sub == 0x51:
                        max_pdu = struct.unpack(">I", sub_value)[0]
        return sock, (max_pdu or 65536) - 6
    except BaseException:
        sock.close()
        raise


def store_command(instance_uid: str, message_id: int) -> bytes:
    """A C-STORE-RQ command set (PS3.7 9.3.1.1, Implicit VR Little Endian)."""

    def element(elem: int, value: bytes) -> bytes:
        if len(value) % 2:
            value += b"\0"
        return struct.pack("<HHI", 0, elem, len(value)) + value

    def us(v: int) -> bytes:
        return struct.pack("<H", v)

    body = b"".join(
        [
            element(0x0002, CT.encode()),
            element(0x0100, us(0x0001)),
            element(0x0110, us(message_id)),
            element(0x0700, us(0x0002)),
            element(0x0800, us(0x0000)),
            element(0x1000, instance_uid.encode()),
        ]
    )
    return element(0x0000, struct.pack("<I", len(body))) + body


def p_data(control: int, value: bytes) -> bytes:
    """A P-DATA-TF PDU holding one PDV for presentation context 1."""
    pdv = struct.pack(">IBB", len(value) + 2, 1, control) + value
    return struct.pack(">BBI", 0x04, 0, len(pdv)) + pdv


def data_pdus(data: bytes, max_value: int) -> list[bytes]:
    pieces = [data[i : i + max_value] for i in range(0, len(data), max_value)] or [b""]
    return [p_data(0x02 if k == len(pieces) - 1 else 0x00, p) for k, p in enumerate(pieces)]


def raw_response_status(sock: socket.socket) -> int:
    """Reads P-DATA-TF PDUs up to a complete command set; its Status."""
    command = b""
    while True:
        kind, body = read_pdu(sock)
        assert kind == 0x04, f"P-DATA-TF expected, got PDU type {kind:#x}: {body!r}"
        i = 0
        while i < len(body):
            length, _context, control = struct.unpack(">IBB", body[i : i + 6])
            command += body[i + 6 : i + 4 + length]
            i += 4 + length
            if control & 0x03 == 0x03:
                return int(_core.decode_command_set(command)["Status"])


# -- the requestors ---------------------------------------------------------------------------

Outcome = dict[str, str]  # SOP Instance UID -> "acked", "maybe" or "never"


class Unexpected(AssertionError):
    """Something a requestor saw that the SCP must not do."""


@dataclass
class Run:
    """What the requestors did, shared between their threads."""

    out: Path
    port: int
    seed: int
    deadline: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    instances: dict[str, Instance] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    #: Acknowledged, found intact on disk right after the association, then deleted.
    verified: set[str] = field(default_factory=set)
    #: Sent whole (or possibly so) without a response: may be on disk, intact.
    maybe: set[str] = field(default_factory=set)
    #: Never reached the SCP whole: must not be on disk.
    never: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    hang_seconds: list[float] = field(default_factory=list)
    bytes_acked: int = 0

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)
        self.stop.set()


def requestor(ts: str) -> AE:
    ae = AE("SOAKSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = CLIENT_TIMEOUT
    ae.connection_timeout = CLIENT_TIMEOUT
    ae.add_requested_context(CT, [ts])
    return ae


def associate(port: int, ts: str, window: int | None = None) -> Association:
    ext_neg = [AsynchronousOperationsWindowNegotiation(window, 1)] if window else None
    return requestor(ts).associate(LOOPBACK, port, ae_title=SCP_AET, ext_neg=ext_neg)


def store_each(assoc: Association, instances: list[Instance], outcome: Outcome) -> None:
    """send_c_store, one at a time; "maybe" from the moment a store is sent until answered."""
    for instance in instances:
        outcome[instance.uid] = "maybe"
        status = int(assoc.send_c_store(instance.path).Status)
        if status != 0x0000:
            raise Unexpected(f"{instance.uid}: status 0x{status:04X}")
        outcome[instance.uid] = "acked"


def established(assoc: Association, what: str) -> Association:
    if not assoc.is_established:
        raise Unexpected(f"{what}: no association: {assoc.error}")
    return assoc


def mode_plain(run: Run, rng: random.Random, ts: str, instances: list[Instance]) -> Outcome:
    outcome: Outcome = {}
    assoc = established(associate(run.port, ts), "plain")
    store_each(assoc, instances, outcome)
    assoc.release()
    return outcome


def mode_window(run: Run, rng: random.Random, ts: str, instances: list[Instance]) -> Outcome:
    outcome: Outcome = {}
    window = rng.choice([2, 4, 8, 16])
    assoc = established(associate(run.port, ts, window), "window")
    abort_after = rng.randrange(len(instances)) if rng.random() < 0.5 else None
    paths = {i.path: i for i in instances}

    def pulled() -> Iterator[Path]:
        for instance in instances:
            outcome[instance.uid] = "maybe"  # handed to the library: may be sent
            yield instance.path

    answers = 0
    for path, status in assoc.send_c_store_many(pulled(), window=window):
        if isinstance(status, Exception):
            raise Unexpected(f"{path}: {status!r}")
        if int(status.Status) != 0x0000:
            raise Unexpected(f"{paths[Path(path)].uid}: status 0x{int(status.Status):04X}")
        outcome[paths[Path(path)].uid] = "acked"
        answers += 1
        if answers == abort_after:
            run.count("aborts")
            assoc.abort()
            break
    if assoc.is_established:
        assoc.release()
    return outcome


def mode_abort(run: Run, rng: random.Random, ts: str, instances: list[Instance]) -> Outcome:
    outcome: Outcome = {}
    assoc = established(associate(run.port, ts), "abort")
    store_each(assoc, instances[: rng.randrange(len(instances))], outcome)
    assoc.abort()
    run.count("aborts")
    return outcome


def mode_abort_timer(run: Run, rng: random.Random, ts: str, instances: list[Instance]) -> Outcome:
    """assoc.abort() from a timer thread while this one stores: whatever was in flight may
    or may not be on disk (intact if so)."""
    outcome: Outcome = {}
    assoc = established(associate(run.port, ts), "abort_timer")
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        assoc.abort()

    seconds = rng.uniform(0, 0.02 + sum(i.size for i in instances) / 40e6)
    timer = threading.Timer(seconds, fire)
    timer.start()
    try:
        store_each(assoc, instances, outcome)
    except NotEstablished:
        # Raised before anything of that store was sent (or the abort came first).
        if not fired.is_set():
            raise
        last = next(u for u in reversed(list(outcome)) if outcome[u] == "maybe")
        outcome[last] = "never"
    except Exception:
        if not fired.is_set():
            raise
    finally:
        timer.cancel()
        timer.join(SOCKET_TIMEOUT)
    if fired.is_set():
        run.count("aborts")
    elif assoc.is_established:
        assoc.release()
    return outcome


def mode_raw_partial(run: Run, rng: random.Random, ts: str, instances: list[Instance]) -> Outcome:
    """0 to 2 complete stores, then a C-STORE-RQ with part of its data set, and the peer
    sends an A-ABORT, closes or resets the connection."""
    outcome: Outcome = {}
    sock, max_value = raw_associate(run.port, ts)
    ending = rng.choice(["abort", "close", "reset"])
    try:
        complete = rng.randint(0, min(2, len(instances) - 1))
        for n, instance in enumerate(instances[: complete + 1]):
            data = data_set_bytes(instance.path)
            pdus = data_pdus(data, max_value)
            command = p_data(0x03, store_command(instance.uid, n + 1))
            if n < complete:
                outcome[instance.uid] = "maybe"
                sock.sendall(command + b"".join(pdus))
                status = raw_response_status(sock)
                if status != 0x0000:
                    raise Unexpected(f"{instance.uid}: status 0x{status:04X}")
                outcome[instance.uid] = "acked"
                continue
            stream = b"".join(pdus)
            if ending == "abort":
                # Whole PDUs, then an A-ABORT: never the last fragment.
                boundaries = [0]
                for pdu in pdus[:-1]:
                    boundaries.append(boundaries[-1] + len(pdu))
                cut = rng.choice(boundaries)
            else:
                cut = rng.randrange(len(stream))  # short of the data set's last byte
            outcome[instance.uid] = "never"
            sock.sendall(command + stream[:cut])
            if ending == "abort":
                sock.sendall(struct.pack(">BBIBBBB", 0x07, 0, 4, 0, 0, 0, 0))
            elif ending == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            run.count(f"partial_{ending}")
    finally:
        sock.close()
    return outcome


def through_proxy(
    run: Run, rng: random.Random, ts: str, instances: list[Instance], proxy: Proxy, mode: str
) -> Outcome:
    """Stores one at a time through ``proxy``; afterwards, an instance not answered is
    "maybe" when its data set passed the proxy whole, else "never"."""
    outcome: Outcome = {}
    order = [i.uid for i in instances]
    try:
        assoc = associate(proxy.port, ts)
        faulty = proxy.cut or proxy.hung_at is not None
        if not assoc.is_established and mode != "stall" and faulty:
            return outcome  # cut or hung during negotiation: nothing was sent
        established(assoc, mode)
        try:
            store_each(assoc, instances, outcome)
        except Exception:
            if mode == "stall" or not (proxy.cut or proxy.hung_at is not None):
                raise
        if assoc.is_established:
            try:
                assoc.release()
            except Exception:
                if mode == "stall" or not (proxy.cut or proxy.hung_at is not None):
                    raise
    finally:
        proxy.close()
    run.count("stalls", proxy.stalls)
    if proxy.cut:
        run.count("cuts")
    if proxy.hung_at is not None:
        run.count("hangs")
        closed = (proxy.scp_closed_at or time.monotonic()) - proxy.hung_at
        with run.lock:
            run.hang_seconds.append(closed)
        if not SCP_NETWORK_TIMEOUT - 0.5 <= closed <= SCP_NETWORK_TIMEOUT + 10:
            raise Unexpected(
                f"hang: the SCP closed {closed:.1f} s after the requestor went silent "
                f"(network timeout {SCP_NETWORK_TIMEOUT} s)"
            )
    whole = proxy.counter.datasets
    for k, uid in enumerate(order):
        if outcome.get(uid) != "acked":
            outcome[uid] = "maybe" if k < whole else "never"
    return outcome


def fault_span(instances: list[Instance]) -> int:
    """About how many bytes the requestor sends (PDU overhead included)."""
    return sum(i.size + i.size // 1000 + 200 for i in instances) + 600


def mode_stall(run: Run, rng: random.Random, ts: str, instances: list[Instance]) -> Outcome:
    span = fault_span(instances)
    faults = [
        ("stall", rng.randrange(span), rng.uniform(*STALL)) for _ in range(rng.randint(1, 3))
    ]
    reply = (
        (rng.randrange(len(instances) + 2), rng.uniform(*STALL)) if rng.random() < 0.5 else None
    )
    proxy = Proxy(run.port, faults, reply_stall=reply)
    return through_proxy(run, rng, ts, instances, proxy, "stall")


def mode_cut(run: Run, rng: random.Random, ts: str, instances: list[Instance]) -> Outcome:
    if rng.random() < 0.25:
        proxy = Proxy(run.port, reply_cut=rng.randrange(len(instances) + 2))
    else:
        proxy = Proxy(run.port, [("cut", rng.randrange(fault_span(instances)))])
    return through_proxy(run, rng, ts, instances, proxy, "cut")


def mode_hang(run: Run, rng: random.Random, ts: str, instances: list[Instance]) -> Outcome:
    # Past the A-ASSOCIATE-RQ (a few hundred bytes), so that the network timeout ends it.
    proxy = Proxy(run.port, [("hang", rng.randrange(1024, fault_span(instances)))])
    return through_proxy(run, rng, ts, instances, proxy, "hang")


MODE_FUNCTIONS: dict[str, Callable[[Run, random.Random, str, list[Instance]], Outcome]] = {
    "plain": mode_plain,
    "window": mode_window,
    "abort": mode_abort,
    "abort_timer": mode_abort_timer,
    "raw_partial": mode_raw_partial,
    "stall": mode_stall,
    "cut": mode_cut,
    "hang": mode_hang,
}


def worker(run: Run, number: int, source: Path, phase: str) -> None:
    """Associations one after another until the deadline (or a problem, or the count)."""
    rng = random.Random(f"{run.seed}:{phase}:{number}")
    directory = source / f"{phase}{number}"
    directory.mkdir(parents=True, exist_ok=True)
    names, weights = list(MODES), list(MODES.values())
    for _ in range(MAX_ASSOCIATIONS_PER_WORKER):
        if run.stop.is_set() or time.monotonic() >= run.deadline:
            return
        mode = rng.choices(names, weights)[0]
        if mode == "hang" and run.deadline - time.monotonic() < SCP_NETWORK_TIMEOUT + 5:
            mode = "plain"  # a hang would outlast the phase
        ts = rng.choice(SYNTAXES)
        instances = [
            make_instance(rng, directory, ts) for _ in range(rng.randint(1, MAX_INSTANCES))
        ]
        with run.lock:
            run.instances.update((i.uid, i) for i in instances)
        try:
            outcome = MODE_FUNCTIONS[mode](run, rng, ts, instances)
        except Exception as e:
            run.problem(f"{mode} ({len(instances)} instances, {ts}): {e!r}")
            with run.lock:
                run.maybe.update(i.uid for i in instances)
            return
        finally:
            for instance in instances:
                instance.path.unlink()
        # Acknowledged: must be on disk now, intact. Checked and deleted at once (the
        # folder would otherwise hold gigabytes); a deleted one must never reappear.
        acked = [i for i in instances if outcome.get(i.uid) == "acked"]
        for instance in acked:
            path = run.out / f"{instance.uid}.dcm"
            wrong = check_stored(path, instance) if path.exists() else "missing"
            if wrong:
                run.problem(f"{mode}: acknowledged {instance.uid}: {wrong}")
                return
            path.unlink()
        with run.lock:
            run.counts[mode] += 1
            run.counts["associations"] += 1
            run.acked.update(i.uid for i in acked)
            run.verified.update(i.uid for i in acked)
            run.bytes_acked += sum(i.size for i in acked)
            for instance in instances:
                kind = outcome.get(instance.uid, "never")
                if kind == "maybe":
                    run.maybe.add(instance.uid)
                elif kind == "never":
                    run.never.add(instance.uid)


def run_phase(run: Run, source: Path, phase: str, seconds: float) -> None:
    run.deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=worker, args=(run, n, source, phase), daemon=True)
        for n in range(WORKERS)
    ]
    for t in threads:
        t.start()
    # Each association ends within the SCP's and our timeouts.
    limit = time.monotonic() + seconds + 3 * CLIENT_TIMEOUT + SOCKET_TIMEOUT
    for t in threads:
        t.join(max(0.1, limit - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        run.problem(f"{phase}: {stuck} requestor threads still run after their deadline")


class Sampler:
    """Samples the SCP's thread count all along (a thread per job would show as a peak)."""

    def __init__(self, scp: StoreScp) -> None:
        self.scp = scp
        self.peak_threads = 0
        self.peak_rss = 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            try:
                now = self.scp.status()
            except (OSError, ValueError):
                return
            self.peak_threads = max(self.peak_threads, now["Threads"])
            self.peak_rss = max(self.peak_rss, now["VmRSS"])
            time.sleep(0.05)

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


@pytest.mark.soak(180)
def test_soak_storescp(tmp_path, seed, request):
    seconds = soak_seconds(request.config)
    out, source = tmp_path / "out", tmp_path / "source"
    scp = StoreScp(out, tmp_path / "storescp.log")
    run = Run(out=out, port=scp.port, seed=seed)

    def context() -> str:
        return (
            f"DIMSE_SOAK_SEED={seed}; counts {dict(run.counts)}; "
            f"{len(run.acked)} acknowledged, {len(run.maybe)} unanswered, "
            f"{len(run.never)} never stored; storescp output:\n{scp.output()[-3000:]}"
        )

    sampler = None
    try:
        at_start = scp.status()
        run_phase(run, source, "warmup", WARMUP_SECONDS)
        assert not run.problems, f"warm-up: {run.problems[:5]}; {context()}"
        time.sleep(2.0)
        baseline = scp.status()
        warmup_counts = dict(run.counts)
        print(f"storescp at start {at_start}, after the warm-up {baseline} ({warmup_counts})")

        sampler = Sampler(scp)
        started = time.monotonic()
        run_phase(run, source, "soak", seconds)
        soak_took = time.monotonic() - started
        assert scp.alive(), f"storescp died: {context()}"
        assert not run.problems, f"{len(run.problems)} problems: {run.problems[:5]}; {context()}"

        # The SCP still serves: one more association.
        last = make_instance(random.Random(seed), source, ExplicitVRLittleEndian)
        run.instances[last.uid] = last
        with associate(scp.port, ExplicitVRLittleEndian) as assoc:
            assert int(assoc.send_c_store(last.path).Status) == 0, context()
        run.acked.add(last.uid)

        # Back to the baseline: threads and descriptors exactly, RSS within tolerance, no
        # temporary file (aborted stores clean theirs up).
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            now = scp.status()
            parts = temp_files(out)
            settled = (
                now["Threads"] == baseline["Threads"]
                and now["fds"] == baseline["fds"]
                and now["VmRSS"] <= baseline["VmRSS"] + RSS_TOLERANCE_KB
                and not parts
            )
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        sampler.stop()
        figures = (
            f"storescp baseline {baseline}, at the end {now}, peak threads "
            f"{sampler.peak_threads}, peak RSS {sampler.peak_rss} kB"
        )
        print(figures)
        assert now["Threads"] == baseline["Threads"], f"thread leak: {figures}; {context()}"
        assert now["fds"] == baseline["fds"], f"file descriptor leak: {figures}; {context()}"
        assert now["VmRSS"] <= baseline["VmRSS"] + RSS_TOLERANCE_KB, (
            f"RSS grew by more than {RSS_TOLERANCE_KB} kB: {figures}; {context()}"
        )
        assert parts == [], f"temporary files left: {parts[:10]}; {context()}"

        # The folder: acknowledged instances (not yet checked) and intact unanswered ones.
        on_disk: dict[str, Path] = {}
        unknown: list[str] = []
        for path in sorted(out.iterdir()):
            uid = path.name.removesuffix(".dcm")
            if not path.name.endswith(".dcm") or uid not in run.instances:
                unknown.append(path.name)
            else:
                on_disk[uid] = path
        assert unknown == [], f"files nobody sent: {unknown[:10]}; {context()}"
        reappeared = sorted(set(on_disk) & run.verified)
        assert reappeared == [], f"deleted after their check, back again: {reappeared}"
        stored_never = sorted(set(on_disk) & run.never)
        assert stored_never == [], (
            f"stored although their data set never reached the SCP whole: {stored_never}; "
            f"{context()}"
        )
        missing = sorted(run.acked - run.verified - set(on_disk))
        assert missing == [], f"acknowledged, not on disk: {missing}; {context()}"
        damaged = [w for u, p in on_disk.items() if (w := check_stored(p, run.instances[u]))]
        assert damaged == [], f"not intact: {damaged[:10]}; {context()}"
        unanswered_on_disk = len(set(on_disk) & run.maybe)
        verified = len(run.verified) + len(set(on_disk) & run.acked)
        assert verified == len(run.acked)
        print(
            f"soak: {seconds:g} s (+{WARMUP_SECONDS:g} s warm-up), seed {seed}, "
            f"{run.counts['associations']} associations {dict(run.counts)}; "
            f"{len(run.acked)} instances acknowledged and verified byte for byte "
            f"({run.bytes_acked / 2**20:.0f} MiB), {len(run.maybe)} unanswered "
            f"({unanswered_on_disk} of them stored, intact), {len(run.never)} never stored "
            f"(none on disk); {len(run.hang_seconds)} hangs ended by the SCP after "
            f"{min(run.hang_seconds, default=0):.1f}-{max(run.hang_seconds, default=0):.1f} s; "
            f"the stores took {soak_took:.0f} s"
        )
        assert run.counts["associations"] > 0, context()
        assert run.counts["aborts"] > 0, context()
        assert scp.stop() == 0, scp.output()
    finally:
        run.stop.set()
        if sampler is not None:
            sampler.stop()
        scp.stop(signal.SIGKILL)


# -- SIGKILL in the middle of a store run ----------------------------------------------------


@dataclass
class Sent:
    """What the senders of the kill test saw."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: set[str] = field(default_factory=set)
    #: Handed to send_c_store / send_c_store_many (possibly on the wire).
    started: set[str] = field(default_factory=set)
    refused: list[tuple[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def sender(port: int, ts: str, window: int | None, instances: list[Instance], sent: Sent) -> None:
    """Stores ``instances`` on one association until done or the SCP dies."""
    try:
        assoc = associate(port, ts, window)
        if not assoc.is_established:
            with sent.lock:
                sent.errors.append(f"no association: {assoc.error}")
            return
        by_path = {i.path: i for i in instances}

        def handed() -> Iterator[Path]:
            for instance in instances:
                with sent.lock:
                    sent.started.add(instance.uid)
                yield instance.path

        try:
            for path, status in assoc.send_c_store_many(handed(), window=window or 1):
                uid = by_path[Path(path)].uid
                with sent.lock:
                    if isinstance(status, Exception):
                        sent.errors.append(f"{uid}: {status!r}")
                    elif int(status.Status) == 0:
                        sent.acked.add(uid)
                    else:
                        sent.refused.append((uid, int(status.Status)))
            assoc.release()
        finally:
            with contextlib.suppress(Exception):
                assoc.abort()
    except Exception as e:
        with sent.lock:
            sent.errors.append(repr(e))


@pytest.mark.timeout(240)
def test_sigkill_storescp_mid_run_then_restart(tmp_path, seed):
    rng = random.Random(f"{seed}:kill")
    total = 300
    source, out = tmp_path / "source", tmp_path / "out"
    source.mkdir()
    # (transfer syntax, window): one synchronous sender, two with a window.
    senders = [
        (ExplicitVRLittleEndian, 8),
        (ImplicitVRLittleEndian, None),
        (ImplicitVRLittleEndian, 16),
    ]
    shares: list[list[Instance]] = [[] for _ in senders]
    for n in range(total):
        ts = senders[n % len(senders)][0]
        shares[n % len(senders)].append(make_instance(rng, source, ts, rows=(4, 256)))
    instances = {i.uid: i for share in shares for i in share}
    kill_after = rng.randint(30, 200)
    kill_delay = rng.uniform(0, 0.01)
    print(f"kill test: SIGKILL after {kill_after} acknowledgements + {kill_delay * 1000:.1f} ms")

    scp = StoreScp(out, tmp_path / "storescp1.log")
    killed_pid = scp.pid
    sent = Sent()
    threads = [
        threading.Thread(target=sender, args=(scp.port, ts, w, share, sent), daemon=True)
        for (ts, w), share in zip(senders, shares, strict=True)
    ]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while (
            len(sent.acked) < kill_after
            and time.monotonic() < deadline
            and any(t.is_alive() for t in threads)
        ):
            time.sleep(0.0005)
        assert len(sent.acked) >= kill_after, f"only {len(sent.acked)} stored: {sent.errors}"
        time.sleep(kill_delay)
    finally:
        scp.stop(signal.SIGKILL)
        for t in threads:
            t.join(CLIENT_TIMEOUT * 2)
    assert not any(t.is_alive() for t in threads), "a sender still runs after the kill"
    with sent.lock:
        acknowledged, started = set(sent.acked), set(sent.started)
        assert sent.refused == [], f"refused before the kill: {sent.refused}"
        assert sent.errors, "the senders saw nothing of the kill"
    assert len(acknowledged) < total, "storescp was killed after the run, not in the middle"

    # A temporary file of the killed process may be left, under its temporary name only;
    # the restarted storescp deletes it before it serves.
    leftovers = sorted(p.name for p in out.iterdir() if p.name.endswith(".part"))
    pattern = re.compile(rf"\.(.+\.dcm)\.{killed_pid}-\d+\.part")
    odd = [n for n in leftovers if not pattern.fullmatch(n)]
    assert odd == [], f"temporary files not of the killed process: {odd}"
    restarted = StoreScp(out, tmp_path / "storescp2.log")
    try:
        names = sorted(p.name for p in out.iterdir())
        assert [n for n in names if n.endswith(".part")] == [], "stale temporary files kept"
        stored = {n.removesuffix(".dcm"): out / n for n in names if not n.endswith(".part")}
        unknown = sorted(set(stored) - set(instances))
        assert unknown == [], f"files nobody sent: {unknown}"
        missing = sorted(acknowledged - set(stored))
        assert missing == [], f"acknowledged before the kill, gone after it: {missing}"
        not_sent = sorted(set(stored) - started)
        assert not_sent == [], f"stored but never handed to a sender: {not_sent}"
        damaged = [w for u, p in stored.items() if (w := check_stored(p, instances[u]))]
        assert damaged == [], f"not intact after the kill: {damaged}"
        in_flight = len(set(stored) - acknowledged)

        # Storing goes on: what is missing, and a few acknowledged ones again (replaced).
        again = [i for u, i in instances.items() if u not in stored]
        again += [instances[u] for u in sorted(acknowledged)[:5]]
        by_ts = {ts: [i for i in again if i.transfer_syntax == ts] for ts in SYNTAXES}
        for ts, todo in by_ts.items():
            with associate(restarted.port, ts, 16) as assoc:
                for path, status in assoc.send_c_store_many([i.path for i in todo]):
                    assert not isinstance(status, Exception), status
                    assert int(status.Status) == 0, (path, status)
        final = {p.name.removesuffix(".dcm"): p for p in out.iterdir() if p.suffix == ".dcm"}
        assert sorted(final) == sorted(instances)
        damaged = [w for u, p in final.items() if (w := check_stored(p, instances[u]))]
        assert damaged == [], f"not intact after storing again: {damaged}"
        assert temp_files(out) == [], "the restarted storescp left temporary files"
        print(
            f"kill test: seed {seed}, {len(acknowledged)} of {total} acknowledged before the "
            f"SIGKILL, all intact; {in_flight} more were in flight and stored intact; "
            f"{len(leftovers)} temporary files of the killed process deleted at the restart; "
            f"{len(again)} stored again after the restart"
        )
        assert restarted.stop() == 0, restarted.output()
    finally:
        restarted.stop(signal.SIGKILL)
