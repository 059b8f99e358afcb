"""Fuzz seeds from real DICOM sessions: records them through a TCP proxy, writes seeds.

Every session runs on 127.0.0.1 through a small recording proxy (one connection, two
pump threads, bounded by socket timeouts) between a real client and a real server:

- DCMTK's echoscu, storescu (a small CT in Explicit and in Implicit VR Little Endian) and
  findscu (Study Root) against our SCP (``dimse.AE``, in this process); echoscu with a
  wrong called AE title (A-ASSOCIATE-RJ) and with ``--abort`` (A-ABORT);
- our SCU (``dimse``) and pynetdicom's SCU against DCMTK's storescp (echo and both CT
  files), and our SCU aborting an association (our A-ABORT).

Each direction's byte stream (``c2s``: requestor to acceptor, ``s2c``: the answers) is
cut into PDUs and written as ``corpus/<target>/seed-capture-<session>-<direction>-<k>``
in each target's input layout (see the top comment of ``fuzz_targets/<target>.rs``).
Names are deterministic: a re-run replaces the same files (the script first removes the
``seed-capture-*`` files it wrote before, and touches no other corpus file).

Run from anywhere: ``python rust/dimse-core/fuzz/capture_seeds.py``. Needs Debian's
``dcmtk`` in /usr/bin, pydicom, pynetdicom and the ``dimse`` package installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pynetdicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dimse import evt, sop

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parents[2]
CORPUS = FUZZ / "corpus"
sys.path.insert(0, str(REPO / "tests"))  # peers.py: the test suite's helpers for real peers

from peers import (  # noqa: E402
    LOOPBACK,
    PEER_TIMEOUT,
    PROCESS_TIMEOUT,
    DcmtkServer,
    dcmtk_env,
    dcmtk_tool,
    our_ae,
)

#: Seconds a proxy waits for a connection, or for bytes on an open one.
SESSION_TIMEOUT = 20.0

#: Largest seed written (bytes): under 64 KiB.
MAX_SEED = 60_000

#: How many PDUs of each direction also become a pdu_reader seed of their own.
SINGLE_PDUS = 2

TARGETS = ("pdu_reader", "command_set", "reassembly", "file_meta", "state_machine")

PDU_NAMES = {
    1: "A-ASSOCIATE-RQ",
    2: "A-ASSOCIATE-AC",
    3: "A-ASSOCIATE-RJ",
    4: "P-DATA-TF",
    5: "A-RELEASE-RQ",
    6: "A-RELEASE-RP",
    7: "A-ABORT",
}

DCMTK_TIMEOUTS = ("-to", PEER_TIMEOUT, "-ta", PEER_TIMEOUT, "-td", PEER_TIMEOUT)
SCP_AET = "OURSCP"
STUDY_FIND = sop.StudyRootQueryRetrieveInformationModelFind


# -- recording -------------------------------------------------------------------------------


class Recorder:
    """A proxy on 127.0.0.1 for one connection to ``upstream_port``, keeping both streams."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(SESSION_TIMEOUT)
        self.port = int(self.listener.getsockname()[1])
        self.c2s = bytearray()
        self.s2c = bytearray()
        self.errors: list[str] = []
        self._sockets: list[socket.socket] = [self.listener]
        self._pumps: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, name="recorder", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError as e:
            self.errors.append(f"no connection: {e}")
            return
        self._sockets.append(client)
        try:
            server = socket.create_connection(
                (LOOPBACK, self.upstream_port), timeout=SESSION_TIMEOUT
            )
        except OSError as e:
            self.errors.append(f"upstream: {e}")
            client.close()
            return
        self._sockets.append(server)
        for s in (client, server):
            s.settimeout(SESSION_TIMEOUT)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pumps = [
            threading.Thread(target=self._pump, args=(client, server, self.c2s), daemon=True),
            threading.Thread(target=self._pump, args=(server, client, self.s2c), daemon=True),
        ]
        for t in self._pumps:
            t.start()
        for t in self._pumps:
            t.join()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, record: bytearray) -> None:
        try:
            while data := src.recv(65536):
                record += data
                dst.sendall(data)
        except OSError:
            pass  # a reset or a timeout ends this direction like an end of stream
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def stop(self) -> tuple[bytes, bytes]:
        """Waits (bounded) for both directions to end, closes everything, returns them."""
        self._thread.join(SESSION_TIMEOUT + 5)
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()
        self._thread.join(5)
        for t in self._pumps:
            t.join(5)
        if self._thread.is_alive():
            self.errors.append("the proxy did not stop")
        return bytes(self.c2s), bytes(self.s2c)


@dataclass
class Session:
    name: str
    c2s: bytes
    s2c: bytes
    #: Files the server wrote: (DICOM file bytes, transfer syntax UID of its data set).
    files: list[tuple[bytes, str]] = field(default_factory=list)


@contextlib.contextmanager
def recording(sessions: list[Session], name: str, upstream_port: int) -> Iterator[Recorder]:
    """Runs the body with a recorder in front of ``upstream_port``; keeps the session."""
    rec = Recorder(upstream_port)
    try:
        yield rec
    finally:
        c2s, s2c = rec.stop()
        if rec.errors or not c2s:
            raise RuntimeError(f"session {name}: {rec.errors or 'nothing recorded'}")
        sessions.append(Session(name, c2s, s2c))


def run_tool(name: str, *args: str | int, ok: bool = True) -> str:
    """Runs a DCMTK tool (by absolute path) to completion; checks its exit status."""
    proc = subprocess.run(
        [dcmtk_tool(name), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dcmtk_env(),
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    if (proc.returncode == 0) != ok:
        raise RuntimeError(
            f"{name} {' '.join(map(str, args))}: exit {proc.returncode}\n{proc.stdout}"
        )
    return proc.stdout


def uid(label: str) -> str:
    """A fixed UUID-derived UID (2.25.x), the same on every run."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'dimse-capture-seeds/' + label).int}"


def write_ct(path: Path, transfer_syntax: str) -> str:
    """Writes a small CT image file (8x8, 16 bits) and returns its SOP Instance UID."""
    ds = Dataset()
    ds.SOPClassUID = sop.CTImageStorage
    ds.SOPInstanceUID = uid(f"instance/{transfer_syntax}")
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series")
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "P1"
    ds.StudyDate = "20240101"
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(128))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return str(ds.SOPInstanceUID)


def our_scp() -> tuple[object, int]:
    """Our SCP (Verification, CT storage, Study Root C-FIND), started in this process."""

    def on_store(_event: object) -> int:
        return 0x0000

    def on_find(_event: object) -> Iterator[tuple[int, Dataset]]:
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.PatientName = "DOE^JOHN"
        match.StudyInstanceUID = uid("study")
        yield 0xFF00, match

    ae = our_ae(SCP_AET)
    ae.require_called_aet = True
    ae.add_supported_context(sop.Verification)
    ae.add_supported_context(sop.CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.add_supported_context(STUDY_FIND)
    handlers = [(evt.EVT_C_STORE, on_store), (evt.EVT_C_FIND, on_find)]
    server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)
    return server, int(server.server_address[1])


def received_files(folder: Path, files: dict[str, str]) -> list[tuple[bytes, str]]:
    """The files storescp wrote for these SOP Instance UIDs (to transfer syntaxes)."""
    out = []
    for instance, ts in files.items():
        found = sorted(folder.glob(f"*{instance}*"))
        if len(found) != 1:
            raise RuntimeError(f"storescp wrote {len(found)} files for {instance} in {folder}")
        out.append((found[0].read_bytes(), ts))
    return out


def record_sessions(work: Path) -> list[Session]:
    ex_file, im_file = work / "ct-explicit.dcm", work / "ct-implicit.dcm"
    files = {
        write_ct(ex_file, ExplicitVRLittleEndian): ExplicitVRLittleEndian,
        write_ct(im_file, ImplicitVRLittleEndian): ImplicitVRLittleEndian,
    }
    sessions: list[Session] = []
    to_us = ("-aet", "DCMTKSCU", "-aec", SCP_AET, *DCMTK_TIMEOUTS, LOOPBACK)

    # DCMTK's SCUs against our SCP.
    server, port = our_scp()
    try:
        with recording(sessions, "dcmtk-echoscu", port) as rec:
            run_tool("echoscu", *to_us, rec.port)
        with recording(sessions, "dcmtk-storescu-explicit", port) as rec:
            run_tool("storescu", "-xe", *to_us, rec.port, ex_file)
        with recording(sessions, "dcmtk-storescu-implicit", port) as rec:
            run_tool("storescu", "-xi", "-R", *to_us, rec.port, im_file)
        with recording(sessions, "dcmtk-findscu", port) as rec:
            query = ("-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=DOE*")
            run_tool("findscu", "-S", *query, "-k", "StudyInstanceUID", *to_us, rec.port)
        with recording(sessions, "dcmtk-echoscu-reject", port) as rec:
            wrong = ("-aec", "NOTOURS", *DCMTK_TIMEOUTS, LOOPBACK, rec.port)
            run_tool("echoscu", *wrong, ok=False)
        with recording(sessions, "dcmtk-echoscu-abort", port) as rec:
            run_tool("echoscu", "--abort", *to_us, rec.port)
    finally:
        server.shutdown()

    # Our SCU and pynetdicom's against DCMTK's storescp (a fresh one for each SCU, so that
    # the files in its folder come from one storing session).
    def storescp(name: str) -> DcmtkServer:
        out = work / name
        out.mkdir()
        return DcmtkServer("storescp", ["-od", str(out)], work / f"{name}.log")

    peer = storescp("dimse-storescp")
    try:
        ae = our_ae("OURSCU")
        ae.add_requested_context(sop.Verification)
        ae.add_requested_context(sop.CTImageStorage, ExplicitVRLittleEndian)
        ae.add_requested_context(sop.CTImageStorage, ImplicitVRLittleEndian)
        with recording(sessions, "dimse-storescp", peer.port) as rec:
            with ae.associate(LOOPBACK, rec.port, ae_title="STORESCP") as assoc:
                statuses = [assoc.send_c_echo().Status]
                statuses += [assoc.send_c_store(f).Status for f in (ex_file, im_file)]
            if statuses != [0, 0, 0] or not assoc.is_released:
                raise RuntimeError(f"dimse-storescp: statuses {statuses}")
        with recording(sessions, "dimse-abort", peer.port) as rec:
            assoc = ae.associate(LOOPBACK, rec.port, ae_title="STORESCP")
            if not assoc.is_established or assoc.send_c_echo().Status != 0:
                raise RuntimeError("dimse-abort: no echo")
            assoc.abort()
        sessions[-2].files = received_files(work / "dimse-storescp", files)
    finally:
        peer.stop()

    peer = storescp("pynetdicom-storescp")
    try:
        pae = pynetdicom.AE(ae_title="PYNETDICOM")
        pae.acse_timeout = pae.dimse_timeout = pae.network_timeout = PEER_TIMEOUT
        pae.add_requested_context(sop.Verification)
        pae.add_requested_context(sop.CTImageStorage, ExplicitVRLittleEndian)
        pae.add_requested_context(sop.CTImageStorage, ImplicitVRLittleEndian)
        with recording(sessions, "pynetdicom-storescp", peer.port) as rec:
            passoc = pae.associate(LOOPBACK, rec.port, ae_title="STORESCP")
            if not passoc.is_established:
                raise RuntimeError("pynetdicom-storescp: not established")
            statuses = [passoc.send_c_echo().Status]
            statuses += [passoc.send_c_store(f).Status for f in (ex_file, im_file)]
            passoc.release()
            if statuses != [0, 0, 0]:
                raise RuntimeError(f"pynetdicom-storescp: statuses {statuses}")
        sessions[-1].files = received_files(work / "pynetdicom-storescp", files)
    finally:
        peer.stop()
    return sessions


# -- cutting streams -------------------------------------------------------------------------


def split_pdus(stream: bytes) -> list[bytes]:
    """The complete PDUs of a stream (6-byte header: type, reserved, 4-byte BE length)."""
    pdus = []
    at = 0
    while at + 6 <= len(stream):
        end = at + 6 + int.from_bytes(stream[at + 2 : at + 6], "big")
        if end > len(stream):
            break
        pdus.append(stream[at:end])
        at = end
    return pdus


Pdv = tuple[int, int, bytes]  # presentation context ID, message control header, data


def pdvs(pdu: bytes) -> list[Pdv]:
    """The PDVs of a P-DATA-TF (each item: 4-byte BE length, context ID, control, data)."""
    out = []
    body = pdu[6:]
    at = 0
    while at + 6 <= len(body):
        n = int.from_bytes(body[at : at + 4], "big")
        if n < 2:
            break
        item = body[at + 4 : at + 4 + n]
        out.append((item[0], item[1], item[2:]))
        at += 4 + n
    return out


def announces_data_set(command: bytes) -> bool:
    """Whether a command set's Command Data Set Type (0000,0800) is not 0x0101."""
    at = 0
    while at + 8 <= len(command):
        group, element, length = struct.unpack_from("<HHI", command, at)
        if (group, element) == (0x0000, 0x0800):
            value = command[at + 8 : at + 10]
            return len(value) == 2 and int.from_bytes(value, "little") != 0x0101
        at += 8 + length
    return False


def messages(pdus: list[bytes]) -> list[list[Pdv]]:
    """The PDVs of each DIMSE message (the last one may be incomplete)."""
    out: list[list[Pdv]] = []
    current: list[Pdv] = []
    command = b""
    for pdu in pdus:
        if pdu[0] != 0x04:
            continue
        for pdv in pdvs(pdu):
            _, control, data = pdv
            current.append(pdv)
            if control & 1:
                command += data
                done = control & 2 and not announces_data_set(command)
            else:
                done = bool(control & 2)
            if done:
                out.append(current)
                current, command = [], b""
    if current:
        out.append(current)
    return out


def fit(pdus: list[bytes], budget: int, cost: Callable[[bytes], int] = len) -> list[bytes]:
    """The longest prefix of ``pdus`` whose cost stays within ``budget`` (at least a part of
    the first PDU, cut to the budget)."""
    out = []
    total = 0
    for pdu in pdus:
        total += cost(pdu)
        if total > budget:
            break
        out.append(pdu)
    if not out and pdus:
        out.append(pdus[0][:budget])
    return out


# -- seeds per target ------------------------------------------------------------------------

#: pdu_reader: limits byte 0 (no P-DATA-TF limit, default A-ASSOCIATE limit), then 3 chunk
#: sizes (256, 7 and 64 bytes, in turn) for a whole stream, 1 (16 bytes) for one PDU.
STREAM_PREFIX = bytes([0x00, 0x02, 0xFF, 0x06, 0x3F])
PDU_PREFIX = bytes([0x00, 0x00, 0x0F])

#: reassembly: the real context IDs go to the target's four slots (1, 3, 5, 255).
SLOTS = {1: 0, 3: 1, 5: 2}

#: state_machine setup bytes: bit 0 the role, limits 0 (defaults, Maximum Length 16384).
ACCEPTOR, REQUESTOR = 0x01, 0x00
OP_RAW, OP_ACCEPT, OP_RELEASE, OP_RELEASE_RESPONSE = 0, 8, 11, 12


def pdu_reader_seeds(pdus: list[bytes]) -> list[bytes]:
    whole = STREAM_PREFIX + b"".join(fit(pdus, MAX_SEED - len(STREAM_PREFIX)))
    singles = [PDU_PREFIX + p[: MAX_SEED - len(PDU_PREFIX)] for p in pdus[:SINGLE_PDUS]]
    return [whole, *singles]


def command_set_seeds(pdus: list[bytes]) -> list[bytes]:
    # A received command set starts with the (0000,0000) tag, so with the 0x00 byte that
    # selects the decoding path: the bytes are the input as they are.
    out = []
    for message in messages(pdus):
        command = b"".join(data for _, control, data in message if control & 1)
        if command[:1] == b"\x00":
            out.append(command[:MAX_SEED])
    return out


def reassembly_seeds(pdus: list[bytes]) -> list[bytes]:
    out = []
    for message in messages(pdus):
        seed = bytearray([0x00])  # bit 7 clear: PDVs; bits 0-1: no data set limit
        for context_id, control, data in message:
            room = min(MAX_SEED - len(seed) - 3, 0xFFFF)
            if room < 0:
                break
            data = data[:room]
            seed.append((SLOTS.get(context_id, 3) | (control << 2)) & 0xFF)
            seed += len(data).to_bytes(2, "little") + data
        out.append(bytes(seed))
    return out


def raw_ops(data: bytes) -> bytes:
    """State machine op 0 (raw bytes from the peer) in chunks of at most 255 bytes."""
    out = bytearray()
    for at in range(0, len(data), 255):
        chunk = data[at : at + 255]
        out += bytes([OP_RAW, len(chunk)]) + chunk
    return bytes(out)


def program(setup: int, pdus: list[bytes], before: dict[int, int], after: dict[int, int]) -> bytes:
    """A state machine input: each PDU as raw bytes, with user operations inserted before
    or after the PDUs of some types (PDU type to opcode)."""

    def cost(pdu: bytes) -> int:
        return len(raw_ops(pdu)) + 2

    out = bytearray([setup])
    for pdu in fit(pdus, MAX_SEED - 1, cost):
        if pdu[0] in before:
            out.append(before[pdu[0]])
        out += raw_ops(pdu)
        if pdu[0] in after:
            out.append(after[pdu[0]])
    return bytes(out)


def state_machine_seeds(pdus: list[bytes], direction: str) -> list[bytes]:
    if direction == "c2s":
        # We accept: the requestor's stream as it came, then with our user answering it
        # (accept after the A-ASSOCIATE-RQ, answer the A-RELEASE-RQ).
        return [
            program(ACCEPTOR, pdus, {}, {}),
            program(ACCEPTOR, pdus, {}, {1: OP_ACCEPT, 5: OP_RELEASE_RESPONSE}),
        ]
    # We request: the acceptor's answers as they came, then with our user asking for the
    # release the A-RELEASE-RP answers.
    return [
        program(REQUESTOR, pdus, {}, {}),
        program(REQUESTOR, pdus, {6: OP_RELEASE}, {}),
    ]


def file_meta_seeds(files: list[tuple[bytes, str]]) -> list[bytes]:
    """Per file: byte 0 even and the file (File Meta parsing); byte 0 odd and the data set
    after the File Meta (the walker, in the file's encoding)."""
    walker = {ImplicitVRLittleEndian: 0x01, ExplicitVRLittleEndian: 0x03}
    out = []
    for data, ts in files:
        out.append(b"\x00" + data[:4095])
        if data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00":
            offset = 144 + int.from_bytes(data[140:144], "little")
            out.append(bytes([walker[ts]]) + data[offset : offset + 4095])
    return out


def seeds_for(session: Session) -> Iterator[tuple[str, str, list[bytes]]]:
    """(target, direction, seeds) for one session."""
    for direction, stream in (("c2s", session.c2s), ("s2c", session.s2c)):
        pdus = split_pdus(stream)
        if not pdus:
            continue
        yield "pdu_reader", direction, pdu_reader_seeds(pdus)
        yield "command_set", direction, command_set_seeds(pdus)
        yield "reassembly", direction, reassembly_seeds(pdus)
        yield "state_machine", direction, state_machine_seeds(pdus, direction)
    if session.files:
        yield "file_meta", "c2s", file_meta_seeds(session.files)


def write_seeds(sessions: list[Session]) -> dict[str, list[tuple[str, int]]]:
    """Replaces the ``seed-capture-*`` files; a seed equal to an earlier one is skipped."""
    written: dict[str, list[tuple[str, int]]] = {t: [] for t in TARGETS}
    for target in TARGETS:
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-capture-*"):
            old.unlink()
    seen: set[tuple[str, bytes]] = set()
    for session in sessions:
        for target, direction, seeds in seeds_for(session):
            for k, seed in enumerate(seeds):
                assert len(seed) <= MAX_SEED, (session.name, target, len(seed))
                key = (target, hashlib.sha1(seed).digest())
                if key in seen:
                    continue
                seen.add(key)
                name = f"seed-capture-{session.name}-{direction}-{k}"
                (CORPUS / target / name).write_bytes(seed)
                written[target].append((name, len(seed)))
    return written


def describe(stream: bytes) -> str:
    pdus = split_pdus(stream)
    names = [PDU_NAMES.get(p[0], f"type 0x{p[0]:02x}") for p in pdus]
    compact: list[str] = []
    for name in names:
        if compact and compact[-1].split(" x")[0] == name:
            count = int(compact[-1].split(" x")[1]) + 1 if " x" in compact[-1] else 2
            compact[-1] = f"{name} x{count}"
        else:
            compact.append(name)
    rest = len(stream) - sum(map(len, pdus))
    tail = f" (+{rest} bytes of an incomplete PDU)" if rest else ""
    return f"{len(stream)} bytes: {', '.join(compact) or '-'}{tail}"


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="capture-seeds-") as tmp:
        sessions = record_sessions(Path(tmp))
    recorded = time.monotonic() - started
    written = write_seeds(sessions)

    print(f"Recorded {len(sessions)} sessions in {recorded:.1f} s:")
    types: set[int] = set()
    for s in sessions:
        types |= {p[0] for p in split_pdus(s.c2s) + split_pdus(s.s2c)}
        print(f"  {s.name}")
        print(f"    c2s {describe(s.c2s)}")
        print(f"    s2c {describe(s.s2c)}")
        if s.files:
            print(f"    files written by storescp: {len(s.files)}")
    missing = [PDU_NAMES[t] for t in PDU_NAMES if t not in types]
    print(f"\nSeeds written under {CORPUS}:")
    for target, seeds in written.items():
        size = sum(n for _, n in seeds)
        largest = max((n for _, n in seeds), default=0)
        print(f"  {target:14} {len(seeds):3} seeds, {size:7} bytes (largest {largest})")
    total = sum(map(len, written.values()))
    print(f"  {'total':14} {total:3} seeds")
    print(f"Done in {time.monotonic() - started:.1f} s.")
    if missing:
        print(f"error: no {', '.join(missing)} was captured", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
