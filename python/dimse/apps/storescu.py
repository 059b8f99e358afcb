"""``dimse storescu``: send DICOM files to a Storage SCP (C-STORE).

Each PATH is a DICOM file or a folder. A folder's files are sent; its subfolders too
with -r (without -r they are left out, and said so). Only each file's File Meta
Information is read (in Rust): the data sets are sent as they are in the files, never
decoded, unless the peer accepts none of the transfer syntaxes they are in and they are
uncompressed (then pydicom converts them).

The association proposes just what the files need: for each SOP Class, one context with
the uncompressed transfer syntaxes its files use plus Explicit and Implicit VR Little
Endian (so that the peer can choose), and one context per compressed transfer syntax
(the peer accepts one transfer syntax per context, and compressed data cannot be
converted). Beyond 128 contexts the files are sent over several associations in turn.

Each association has up to --max-ops C-STOREs outstanding at once when the peer grants
an asynchronous operations window (PS3.7 D.3.3.3; responses are matched by Message ID);
--associations N sends over N associations in parallel.

Files that cannot be read or are not DICOM are reported, skipped and counted as
failures; DICOMDIR files are left out.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dimse import AE, Association, _core
from dimse.apps import common
from dimse.exceptions import (
    AssociationError,
    DimseTimeout,
    InvalidResponse,
    NoAcceptedContext,
    NotEstablished,
)
from dimse.pdu_primitives import AsynchronousOperationsWindowNegotiation
from dimse.presentation import PresentationContext, build_context

__all__ = ["register", "run"]

#: Media Storage Directory Storage: a DICOMDIR, an index of a file set, not an instance.
DICOMDIR = "1.2.840.10008.1.3.10"

#: Transfer syntaxes dimse can convert between (through pydicom) when the peer prefers
#: another: one context for all of them, per SOP Class.
UNCOMPRESSED = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
)

#: Presentation context IDs are the odd numbers 1-255 (PS3.8 9.3.2.2).
MAX_CONTEXTS = 128


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = common.add_app_parser(
        subparsers, "storescu", "Storage SCU: send DICOM files (C-STORE)", __doc__ or ""
    )
    common.add_peer_arguments(parser)
    parser.add_argument(
        "paths",
        metavar="PATH",
        nargs="+",
        type=Path,
        help="a DICOM file, or a folder whose files are sent",
    )
    parser.add_argument(
        "-r",
        "--recurse",
        action="store_true",
        help="also send the files in the subfolders of folders, at any depth",
    )
    parser.add_argument(
        "--associations",
        metavar="N",
        type=common.positive_int,
        default=1,
        help="send over N associations in parallel, each taking the next file from a "
        "shared queue (default 1)",
    )
    parser.add_argument(
        "--max-ops",
        metavar="N",
        type=common.positive_int,
        default=16,
        help="C-STOREs outstanding at once on each association: proposed as the "
        "asynchronous operations window (PS3.7 D.3.3.3) and used as far as the peer grants "
        "it (a peer that does not answer it gets one at a time); 1 leaves the proposal out, "
        "for devices that refuse it (default 16)",
    )
    common.add_network_options(parser, "STORESCU")
    common.add_logging_options(parser)
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Instance:
    """A file to send, as its File Meta Information describes it."""

    path: Path
    sop_class: str
    transfer_syntax: str
    #: Bytes of the data set (the file after its File Meta Information).
    size: int


@dataclass
class Tally:
    """What happened so far; updated by the sending threads under ``lock``."""

    total: int
    skipped: list[str] = field(default_factory=list)
    sent: int = 0
    success: int = 0
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    bytes: int = 0
    #: Why associations could not be established, or ended before their work was done.
    association_errors: list[str] = field(default_factory=list)
    #: Files that failed because their association failed (not because of their status).
    unsent: int = 0
    #: Unexpected errors that stopped a sending thread.
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


# -- finding and reading the files -----------------------------------------------------------


def find_files(paths: list[Path], recurse: bool, out: common.Console) -> list[Path]:
    """The files to look at, in a stable order (the paths as given, folders sorted)."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            # A missing or unreadable path stays in: reading it reports why it failed.
            files.append(path)
            continue
        if recurse:
            for folder, dirnames, filenames in os.walk(path):
                dirnames.sort()
                files.extend(Path(folder, name) for name in sorted(filenames))
            continue
        entries = sorted(path.iterdir())
        files.extend(p for p in entries if not p.is_dir())
        subfolders = sum(1 for p in entries if p.is_dir())
        if subfolders:
            out.info(f"{path}: {subfolders} subfolder(s) left out (use -r to send them too)")
    return files


def _reason(error: Exception, path: Path) -> str:
    """An error's message without the path it may start with (we print the path)."""
    text = str(error) or type(error).__name__
    prefix = f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _is_uid(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isdigit() or c == "." for c in value)


#: The File Meta Information elements a file needs to be sent, and whether they are UIDs
#: that go into the presentation contexts (so must be valid).
_NEEDED = (
    ("Media Storage SOP Class UID", "media_storage_sop_class_uid", True),
    ("Media Storage SOP Instance UID", "media_storage_sop_instance_uid", False),
    ("Transfer Syntax UID", "transfer_syntax_uid", True),
)


def _meta_problem(meta: dict[str, object]) -> str | None:
    """Why a file's File Meta Information does not allow sending it, if it does not."""
    missing = [name for name, key, _ in _NEEDED if not meta.get(key)]
    if missing:
        return f"no {', '.join(missing)} in its File Meta Information"
    invalid = [
        f"{name} {meta[key]!r}"
        for name, key, uid in _NEEDED
        if uid and not _is_uid(str(meta[key]))
    ]
    if invalid:
        return f"invalid {', '.join(invalid)} in its File Meta Information"
    return None


def read_instances(files: list[Path], tally: Tally, out: common.Console) -> list[Instance]:
    """The instances among ``files``; the others are reported and counted as skipped."""
    instances: list[Instance] = []

    def skip(path: Path, reason: str) -> None:
        tally.skipped.append(f"{path}: skipped: {reason}")
        out.info(f"skipped {path}: {reason}")

    for path in files:
        if path.exists() and not path.is_file():
            # A FIFO or a device: opening it could block, and it is no DICOM file.
            skip(path, "not a regular file")
            continue
        try:
            meta = _core.read_file_meta(path)
            size = os.path.getsize(path) - int(meta["data_offset"])
        except (ValueError, OSError) as e:
            skip(path, _reason(e, path))
            continue
        problem = _meta_problem(meta)
        if problem is not None:
            skip(path, problem)
            continue
        sop_class = str(meta["media_storage_sop_class_uid"])
        if sop_class == DICOMDIR:
            out.info(f"{path}: a DICOMDIR (an index, not an instance): left out")
            tally.total -= 1
            continue
        instances.append(Instance(path, sop_class, str(meta["transfer_syntax_uid"]), size))
    return instances


# -- presentation contexts -------------------------------------------------------------------


def _context_key(instance: Instance) -> tuple[str, str]:
    """The context an instance goes on: (SOP Class, "" for uncompressed or its transfer
    syntax)."""
    ts = instance.transfer_syntax
    return instance.sop_class, "" if ts in UNCOMPRESSED else ts


def plan_contexts(instances: list[Instance]) -> dict[tuple[str, str], PresentationContext]:
    """The contexts to propose, by context key: uncompressed files of a SOP Class share
    one (their syntaxes first, then Explicit and Implicit VR Little Endian); each
    compressed transfer syntax gets its own."""
    syntaxes: dict[tuple[str, str], list[str]] = {}
    for instance in instances:
        seen = syntaxes.setdefault(_context_key(instance), [])
        if instance.transfer_syntax not in seen:
            seen.append(instance.transfer_syntax)
    contexts = {}
    for key in sorted(syntaxes):
        proposed = syntaxes[key]
        if key[1] == "":
            proposed = list(
                dict.fromkeys([*proposed, ExplicitVRLittleEndian, ImplicitVRLittleEndian])
            )
        contexts[key] = build_context(key[0], proposed)
    return contexts


# -- progress --------------------------------------------------------------------------------


class Progress:
    """Progress on stderr: one line redrawn in place on a terminal; otherwise a plain line
    a second (or one per file with -v)."""

    def __init__(self, tally: Tally, out: common.Console) -> None:
        self.tally = tally
        self.out = out
        self.enabled = not out.quiet
        self.tty = self.enabled and sys.stderr.isatty()
        self.started = time.monotonic()
        self.last = 0.0
        self.drawn = False

    def rates(self) -> tuple[float, float, float]:
        took = max(time.monotonic() - self.started, 1e-9)
        return took, self.tally.sent / took, self.tally.bytes / took / 1e6

    def status(self) -> str:
        _, images, mbytes = self.rates()
        count = self.tally.sent + len(self.tally.failures) + len(self.tally.skipped)
        return (
            f"{count}/{self.tally.total} files, {images:.1f} images/s, {mbytes:.2f} MB/s, "
            f"{len(self.tally.failures) + len(self.tally.skipped)} failed"
        )

    def file_done(self, line: str) -> None:
        """After each file (called under the tally's lock)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if self.out.is_verbose:
                self._clear()
                print(line, file=sys.stderr)
            if now - self.last >= 0.1 or self.out.is_verbose:
                self._draw()
                self.last = now
        elif self.out.is_verbose:
            print(line, file=sys.stderr, flush=True)
        elif now - self.last >= 1.0:
            print(self.status(), file=sys.stderr, flush=True)
            self.last = now

    def _draw(self) -> None:
        sys.stderr.write("\r" + self.status() + "\x1b[K")
        sys.stderr.flush()
        self.drawn = True

    def _clear(self) -> None:
        if self.drawn:
            sys.stderr.write("\r\x1b[K")
            self.drawn = False

    def finish(self) -> None:
        if self.tty and self.drawn:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()


# -- sending ---------------------------------------------------------------------------------


class Sender:
    """The work shared by the sending threads: a queue of (batch, instance), ordered by
    batch, where a batch is a set of at most 128 contexts proposed on one association."""

    def __init__(
        self,
        ae: AE,
        args: argparse.Namespace,
        batches: list[list[PresentationContext]],
        work: queue.Queue[tuple[int, Instance]],
        tally: Tally,
        progress: Progress,
    ) -> None:
        self.ae = ae
        self.args = args
        self.batches = batches
        self.work = work
        self.tally = tally
        self.progress = progress

    def _record(self, instance: Instance, code: int | None, reason: str | None) -> None:
        with self.tally.lock:
            if code is None:
                self.tally.failures.append(f"{instance.path}: {reason}")
                line = f"failed {instance.path}: {reason}"
            else:
                self.tally.sent += 1
                self.tally.bytes += instance.size
                text = common.status_text(code, "C-STORE")
                category = _core.status_category(code, "C-STORE")
                if category == "Success":
                    self.tally.success += 1
                elif category == "Warning":
                    self.tally.warnings.append(f"{instance.path}: {text}")
                else:
                    self.tally.failures.append(f"{instance.path}: {text}")
                line = f"sent {instance.path}: {text}"
            self.progress.file_done(line)

    def _associate(self, batch: int) -> Association:
        ext_neg = []
        if self.args.max_ops > 1:
            ext_neg.append(AsynchronousOperationsWindowNegotiation(self.args.max_ops, 1))
        return common.associate(self.ae, self.args, contexts=self.batches[batch], ext_neg=ext_neg)

    def _take(self) -> tuple[int, Instance] | None:
        try:
            return self.work.get_nowait()
        except queue.Empty:
            return None

    def run(self) -> None:
        """One thread's loop: (re)associate for the next file's batch of contexts, then
        send that batch's files from the queue, several outstanding at once."""
        assoc: Association | None = None
        batch = -1
        carry: tuple[int, Instance] | None = None
        try:
            while True:
                item = carry or self._take()
                carry = None
                if item is None:
                    return
                if assoc is None or not assoc.is_established or item[0] != batch:
                    if assoc is not None and assoc.is_established:
                        assoc.release()
                    try:
                        assoc = self._associate(item[0])
                        batch = item[0]
                    except (common.NoAssociation, AssociationError) as e:
                        # Leave the file to another association, if one works.
                        self.work.put(item)
                        with self.tally.lock:
                            self.tally.association_errors.append(str(e))
                        return
                first = item[1]
                current = batch

                def same_batch(
                    first: Instance = first, current: int = current
                ) -> Iterator[Instance]:
                    nonlocal carry
                    yield first
                    while (following := self._take()) is not None:
                        if following[0] != current:
                            carry = following
                            return
                        yield following[1]

                self._send(assoc, same_batch())
        except Exception as e:
            with self.tally.lock:
                self.tally.errors.append(f"{type(e).__name__}: {e}")
        finally:
            if assoc is not None and assoc.is_established:
                try:
                    assoc.release()
                except AssociationError:
                    assoc.abort()

    def _send(self, assoc: Association, instances: Iterator[Instance]) -> None:
        """Sends the files with up to the negotiated window outstanding (the paths go out
        as they are, never decoded), recording each outcome as its response arrives."""
        taken: dict[int, Instance] = {}

        def paths() -> Iterator[Path]:
            for instance in instances:
                taken[id(instance.path)] = instance
                yield instance.path

        try:
            for path, outcome in assoc.send_c_store_many(paths()):
                instance = taken.pop(id(path))
                if isinstance(outcome, Exception):
                    self._record(instance, None, self._why(outcome, instance))
                else:
                    self._record(instance, int(outcome.Status), None)
        except (AssociationError, DimseTimeout, NotEstablished, InvalidResponse) as e:
            # The association failed: what was sent and not answered is lost with it.
            with self.tally.lock:
                self.tally.association_errors.append(str(e))
                self.tally.unsent += len(taken)
            for instance in taken.values():
                self._record(instance, None, str(e))

    @staticmethod
    def _why(error: Exception, instance: Instance) -> str:
        if isinstance(error, NoAcceptedContext):
            sop_class = common.uid_name(instance.sop_class)
            syntax = common.uid_name(instance.transfer_syntax)
            return f"the peer accepted no presentation context for {sop_class} in {syntax}"
        # The file changed since it was read: this file fails, the association goes on.
        return _reason(error, instance.path)


def run(args: argparse.Namespace) -> int:
    out = common.Console(args)
    files = find_files(args.paths, args.recurse, out)
    tally = Tally(total=len(files))
    instances = read_instances(files, tally, out)
    if not instances:
        reason = "no DICOM file to send"
        if tally.skipped:
            reason += f" ({len(tally.skipped)} skipped)"
        raise common.AppError(reason)

    contexts = plan_contexts(instances)
    keys = list(contexts)
    batches = [
        [contexts[k] for k in keys[i : i + MAX_CONTEXTS]]
        for i in range(0, len(keys), MAX_CONTEXTS)
    ]
    batch_of = {k: i // MAX_CONTEXTS for i, k in enumerate(keys)}
    if len(batches) > 1:
        out.info(
            f"{len(keys)} presentation contexts needed (at most {MAX_CONTEXTS} per "
            f"association): the files go over {len(batches)} associations in turn"
        )
    out.verbose(
        f"{len(instances)} files, {len(keys)} presentation contexts, "
        f"{args.associations} association(s) at a time"
    )
    work: queue.Queue[tuple[int, Instance]] = queue.Queue()
    for instance in sorted(instances, key=lambda i: batch_of[_context_key(i)]):
        work.put((batch_of[_context_key(instance)], instance))

    ae = common.make_ae(args)
    progress = Progress(tally, out)
    sender = Sender(ae, args, batches, work, tally, progress)
    threads = [
        threading.Thread(target=sender.run, name=f"storescu-{n}", daemon=True)
        for n in range(min(args.associations, len(instances)))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    finally:
        progress.finish()
    # Files no association could take (each association failed or broke).
    while True:
        try:
            _, instance = work.get_nowait()
        except queue.Empty:
            break
        tally.failures.append(f"{instance.path}: not sent: no association")
        tally.unsent += 1

    took, images, mbytes = progress.rates()
    failed = len(tally.failures) + len(tally.skipped)
    out.info(
        f"sent {tally.sent} of {tally.total} files: {tally.success} success, "
        f"{len(tally.warnings)} warning, {failed} failure; {tally.bytes} bytes "
        f"({tally.bytes / 1e6:.1f} MB) in "
        f"{took:.2f} s ({images:.1f} images/s, {mbytes:.2f} MB/s)"
    )
    for line in tally.skipped + tally.failures:
        out.info(f"  failure: {line}")
    for line in tally.warnings:
        out.info(f"  warning: {line}")

    if tally.errors:
        raise common.AppError(tally.errors[0])
    errors = list(dict.fromkeys(tally.association_errors))
    if tally.unsent:
        reason = errors[0] if errors else "no association"
        raise common.NoAssociation(f"{reason} ({tally.unsent} files not sent)")
    for error in errors:
        # An association that failed while the others sent every file: worth a note only.
        out.info(f"note: one association failed: {error}")
    if failed:
        raise common.AppError(f"{failed} of {tally.total} files failed")
    return common.EXIT_OK
