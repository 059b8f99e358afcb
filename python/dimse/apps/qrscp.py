"""``dimse qrscp``: a Query/Retrieve SCP with storage, on an embedded SQLite index.

It stores every instance it receives (all storage SOP classes, every transfer syntax) as
a DICOM file below the data folder, written in Rust as ``storescp`` does, and indexes its
patient, study, series and instance attributes in ``<data folder>/index.sqlite`` (Python's
standard ``sqlite3``: nothing to install). It answers C-FIND at the patient, study, series
and image levels of the Patient Root and Study Root models (PS3.4 C.2.2.2 matching),
C-GET, C-MOVE to the destinations named in its configuration file, and C-ECHO.

Restart-safe: a file is complete under its final name before it is indexed, and success
is returned only after both; at start-up the index and the files are reconciled (files
left half-written are deleted, files without a row are indexed, rows without a file are
dropped), so a crash or a kill at any moment leaves nothing inconsistent.

Configuration file (TOML), every key optional; options on the command line win:

    ae_title = "QRSCP"
    port = 11112
    bind = "0.0.0.0"
    data_dir = "./dimse-data"
    max_associations = 32
    fsync = false
    layout = "study"          # or "flat"

    [destinations]            # C-MOVE destinations: AE title = { host, port[, tls] }
    STORESCP = { host = "127.0.0.1", port = 11113 }
    ARCHIVE = { host = "archive.example.org", port = 2762, tls = true }

A destination with ``tls = true`` is reached over TLS, as a client with the server's own
--tls-cert/--tls-key (sent when the destination asks for a client certificate) and
--tls-ca (which the destination's certificate must chain to).
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from dimse import AllStoragePresentationContexts, evt, sop
from dimse.apps import common, scp
from dimse.evt import Event
from dimse.exceptions import InvalidArgument
from dimse.presentation import DEFAULT_TRANSFER_SYNTAXES, build_context
from dimse.qr import Index, IndexingError, InstanceRecord, QueryError
from dimse.storage import FileStorage, StoredInstance
from dimse.tls import TLS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["QRServer", "load_config", "register", "run"]

LOGGER = logging.getLogger("dimse.apps.qrscp")

DEFAULT_PORT = 11112
DEFAULT_DATA_DIR = Path("dimse-data")
DEFAULT_AE_TITLE = "QRSCP"

#: The information models, by the Abstract Syntax of the request's context.
_MODELS = {
    sop.PatientRootQueryRetrieveInformationModelFind: "patient",
    sop.PatientRootQueryRetrieveInformationModelGet: "patient",
    sop.PatientRootQueryRetrieveInformationModelMove: "patient",
    sop.StudyRootQueryRetrieveInformationModelFind: "study",
    sop.StudyRootQueryRetrieveInformationModelGet: "study",
    sop.StudyRootQueryRetrieveInformationModelMove: "study",
}

_UNCOMPRESSED = frozenset(DEFAULT_TRANSFER_SYNTAXES)

#: The built-in defaults of the options a configuration file may set.
_BUILT_IN: dict[str, Any] = {
    "aetitle": DEFAULT_AE_TITLE,
    "port": DEFAULT_PORT,
    "bind": "0.0.0.0",
    "data_dir": DEFAULT_DATA_DIR,
    "max_associations": 32,
    "fsync": False,
    "layout": "study",
}

#: Configuration keys and the command-line option (dest) each one sets.
_CONFIG_KEYS = {
    "ae_title": "aetitle",
    "port": "port",
    "bind": "bind",
    "data_dir": "data_dir",
    "max_associations": "max_associations",
    "fsync": "fsync",
    "layout": "layout",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = common.add_app_parser(
        subparsers,
        "qrscp",
        "Query/Retrieve SCP with storage on an embedded SQLite index",
        __doc__ or "",
    )
    parser.add_argument(
        "--port",
        metavar="PORT",
        type=common.listen_port,
        default=DEFAULT_PORT,
        help=f"the TCP port to listen on (default {DEFAULT_PORT}; 0: the system picks one, "
        "printed at start)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where files and the index live, created if missing (default ./{DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="a TOML configuration file (see above): AE title, port, data folder, C-MOVE "
        "destinations; options given on the command line win over it",
    )
    parser.add_argument(
        "--layout",
        choices=("study", "flat"),
        default="study",
        help="study: files in <Study UID>/<Series UID>/ folders (default); flat: one folder",
    )
    parser.add_argument(
        "--fsync",
        action="store_true",
        help="flush each file and the index to the device before answering success (an "
        "acknowledged instance then survives a power loss, not only a killed process)",
    )
    parser.add_argument(
        "--move-destination",
        metavar="AE=HOST:PORT",
        action="append",
        default=[],
        help="a C-MOVE destination, added to those of the configuration file (repeatable)",
    )
    scp.add_listen_options(parser, DEFAULT_AE_TITLE)
    common.add_logging_options(parser)
    # Options the configuration file may set start as None, so that one given on the
    # command line is told apart from a default, even when it has the default's value.
    parser.set_defaults(run=run, **dict.fromkeys(_BUILT_IN, None))


def load_config(path: Path) -> dict[str, Any]:
    """The configuration file, checked: unknown keys and wrong types are usage errors."""
    try:
        with path.open("rb") as f:
            config = tomllib.load(f)
    except OSError as e:
        raise common.UsageError(f"cannot read the configuration file: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise common.UsageError(f"{path}: not valid TOML: {e}") from e
    unknown = set(config) - set(_CONFIG_KEYS) - {"destinations", "tls_destinations"}
    if unknown:
        raise common.UsageError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known keys: "
            f"{', '.join([*_CONFIG_KEYS, 'destinations'])}"
        )
    destinations = config.get("destinations", {})
    if not isinstance(destinations, dict):
        raise common.UsageError(f"{path}: [destinations] must be a table of AE = {{host, port}}")
    checked: dict[str, tuple[str, int]] = {}
    over_tls: set[str] = set()
    for title, where in destinations.items():
        if (
            not isinstance(where, dict)
            or not isinstance(where.get("host"), str)
            or not isinstance(where.get("port"), int)
            or not 1 <= where["port"] <= 65535
            or not isinstance(where.get("tls", False), bool)
            or set(where) - {"host", "port", "tls"}
        ):
            raise common.UsageError(
                f'{path}: destination {title!r} must be {{ host = "...", port = 1..65535 '
                "[, tls = true] }"
            )
        checked[_destination_title(title)] = (where["host"], where["port"])
        if where.get("tls"):
            over_tls.add(_destination_title(title))
    config["destinations"] = checked
    config["tls_destinations"] = over_tls
    return config


def _destination_title(title: str) -> str:
    try:
        return common.ae_title(title)
    except argparse.ArgumentTypeError as e:
        raise common.UsageError(f"destination {e}") from e


def _parse_destination(text: str) -> tuple[str, tuple[str, int]]:
    title, sep, where = text.partition("=")
    host, sep2, port = where.rpartition(":")
    if not sep or not sep2 or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise common.UsageError(f"--move-destination {text!r}: give AE=HOST:PORT")
    return _destination_title(title), (host, int(port))


def _resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Settings: the command line where given, else the configuration file, else defaults."""
    config = load_config(args.config) if args.config else {"destinations": {}}
    args.tls_destinations = config.get("tls_destinations", set())
    for key, dest in _CONFIG_KEYS.items():
        if key in config and getattr(args, dest) is None:
            value = config[key]
            try:
                if dest == "aetitle":
                    value = common.ae_title(str(value))
                elif dest == "port":
                    value = common.listen_port(str(value))
                elif dest == "max_associations":
                    value = common.positive_int(str(value))
                elif dest == "data_dir":
                    # Relative to the configuration file, as a reader of the file expects.
                    value = (args.config.parent / str(value)).resolve()
                elif dest == "layout" and value not in ("study", "flat"):
                    raise argparse.ArgumentTypeError(f"{value!r} is not study or flat")
                elif dest == "fsync" and not isinstance(value, bool):
                    raise argparse.ArgumentTypeError(f"{value!r} is not true or false")
            except argparse.ArgumentTypeError as e:
                raise common.UsageError(f"{args.config}: {key}: {e}") from e
            setattr(args, dest, value)
    for dest, default in _BUILT_IN.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    destinations = dict(config["destinations"])
    destinations.update(_parse_destination(d) for d in args.move_destination)
    return destinations


class QRServer:
    """The Query/Retrieve SCP: an index, a storage folder and the handlers over them."""

    def __init__(
        self,
        data_dir: Path,
        destinations: dict[str, tuple[str, int]],
        ae_title: str,
        layout: str = "study",
        fsync: bool = False,
        move_tls: dict[str, TLS] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.destinations = destinations
        #: The TLS of the destinations reached over TLS, by AE title.
        self.move_tls = move_tls or {}
        self.ae_title = ae_title
        data_dir.mkdir(parents=True, exist_ok=True)
        self.index = Index(data_dir)
        self.storage = FileStorage(
            data_dir / "files",
            layout="study" if layout == "study" else "flat",
            fsync=fsync,
            on_stored=self.on_stored,
        )

    # -- storage ----------------------------------------------------------------------------

    def on_stored(self, instance: StoredInstance) -> tuple[int, str] | None:
        """Index a file Rust has just written. A file that cannot be indexed is deleted
        and refused, so that files and index keep agreeing."""
        try:
            record = self.index.add(instance.path)
        except IndexingError as e:
            LOGGER.warning(
                "refused %s from %s: %s", instance.path.name, instance.calling_ae_title, e
            )
            instance.path.unlink(missing_ok=True)
            # PS3.4 Table B.2-1: A9xx Data Set does not match SOP Class.
            return 0xA900, f"not indexed: {e}"
        except (sqlite3.Error, OSError) as e:
            LOGGER.error("cannot index %s: %s", instance.path, e)
            instance.path.unlink(missing_ok=True)
            self._forget(instance.sop_instance_uid)
            return 0xA700, f"cannot index: {e}"
        if record.replaced_path is not None and record.replaced_path != instance.path:
            # The instance was sent again with other Study/Series UIDs: its new file won.
            record.replaced_path.unlink(missing_ok=True)
        LOGGER.info("stored %s from %s", instance.path, instance.calling_ae_title)
        return None

    def _forget(self, sop_instance_uid: str) -> None:
        """Best effort after a failed index write (the start-up reconcile repairs the rest)."""
        try:
            self.index.remove(sop_instance_uid)
        except (sqlite3.Error, OSError) as e:
            LOGGER.error("cannot drop %s from the index: %s", sop_instance_uid, e)

    # -- handlers ---------------------------------------------------------------------------

    def on_find(self, event: Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        model = _MODELS.get(event.context.abstract_syntax, "study")
        try:
            matches = self.index.find(event.identifier, model)
            for match in matches:
                if event.is_cancelled:
                    return
                match.RetrieveAETitle = self.ae_title
                yield 0xFF00, match
        except QueryError as e:
            yield _failure(e), None
            return
        yield 0x0000, None

    def _matches(self, event: Event) -> list[InstanceRecord]:
        model = _MODELS.get(event.context.abstract_syntax, "study")
        return self.index.instances(event.identifier, model)

    def on_get(self, event: Event) -> Iterator[Any]:
        try:
            records = self._matches(event)
        except QueryError as e:
            yield 0
            yield _failure(e), None
            return
        yield len(records)
        for record in records:
            yield 0xFF00, record.path

    def on_move(self, event: Event) -> Iterator[Any]:
        destination = self.destinations.get(str(event.move_destination).strip())
        if destination is None:
            LOGGER.warning("C-MOVE to unknown destination %r", event.move_destination)
            yield None, None
            return
        tls = self.move_tls.get(str(event.move_destination).strip())
        try:
            records = self._matches(event)
        except QueryError as e:
            # The destination is known; the identifier is not: the failure comes after.
            yield (*destination, {"contexts": [build_context(sop.Verification)], "tls": tls})
            yield 0
            yield _failure(e), None
            return
        yield (*destination, {"contexts": _contexts_for(records), "tls": tls})
        yield len(records)
        for record in records:
            yield 0xFF00, record.path

    # -- serving ----------------------------------------------------------------------------

    def start(self, args: argparse.Namespace) -> Any:
        ae = scp.make_scp_ae(args)
        syntaxes = scp.storage_transfer_syntaxes(args.prefer_uncompressed)
        for context in AllStoragePresentationContexts:
            # scp_role: a C-GET requestor may take the SCP role for storage (PS3.4 C.4.3).
            ae.add_supported_context(
                context.abstract_syntax, syntaxes, scu_role=True, scp_role=True
            )
        for uid in _MODELS:
            ae.add_supported_context(uid)
        ae.add_supported_context(sop.Verification)
        return ae.start_server(
            (args.bind, args.port),
            block=False,
            storage=self.storage,
            reuse_port=scp.is_worker(),
            tls=common.tls_from_args(args, server=True),
            evt_handlers=[
                *scp.negotiation_handlers(args),
                (evt.EVT_C_FIND, self.on_find),
                (evt.EVT_C_GET, self.on_get),
                (evt.EVT_C_MOVE, self.on_move),
            ],
        )


def _failure(error: QueryError) -> Dataset:
    """A failure status with its Error Comment and Offending Element (PS3.7 C.4)."""
    ds = Dataset()
    ds.Status = error.status
    ds.ErrorComment = error.comment[:64]
    if error.offending_element is not None:
        ds.OffendingElement = [error.offending_element]
    return ds


def _contexts_for(records: list[InstanceRecord]) -> list[Any]:
    """The contexts a C-MOVE proposes to its destination. A destination accepts one
    transfer syntax per context, so per SOP class: one context for its uncompressed
    instances (their syntaxes first, then the other uncompressed ones, so that the
    destination may choose and the file be converted), and one per compressed syntax
    (compressed data is sent as it is). At most 128 (PS3.8 9.3.2.2: odd IDs 1-255)."""
    uncompressed: dict[str, list[str]] = {}
    compressed: dict[tuple[str, str], None] = {}
    for r in records:
        if r.transfer_syntax_uid in _UNCOMPRESSED:
            syntaxes = uncompressed.setdefault(r.sop_class_uid, [])
            if r.transfer_syntax_uid not in syntaxes:
                syntaxes.append(r.transfer_syntax_uid)
        else:
            compressed[(r.sop_class_uid, r.transfer_syntax_uid)] = None
    contexts = [
        build_context(
            sop_class, syntaxes + [ts for ts in DEFAULT_TRANSFER_SYNTAXES if ts not in syntaxes]
        )
        for sop_class, syntaxes in uncompressed.items()
    ]
    contexts += [build_context(sop_class, [ts]) for sop_class, ts in compressed]
    if not contexts:
        contexts.append(build_context(sop.Verification))
    if len(contexts) > 128:
        LOGGER.warning(
            "C-MOVE: %d presentation contexts needed, 128 proposed: the instances of the "
            "others fail",
            len(contexts),
        )
    return contexts[:128]


def run(args: argparse.Namespace) -> int:
    out = common.Console(args)
    destinations = _resolve(args)
    if args.workers > 1 and not scp.is_worker():
        # The workers share the index: it is reconciled once, here, before they start
        # (a worker's reconcile would delete another's files in progress).
        if args.port == 0:
            raise common.UsageError("--workers needs a fixed port: the workers share it")
        with Index(Path(args.data_dir)) as index:
            _report(out, index, index.reconcile(), args.data_dir)
        workers = scp.run_workers(args, args.port, out, "qrscp")
        assert workers is not None
        return workers
    server_state = QRServer(
        args.data_dir,
        destinations,
        args.aetitle,
        layout=args.layout,
        fsync=args.fsync,
        move_tls=_move_tls(args),
    )
    if not scp.is_worker():
        _report(out, server_state.index, server_state.index.reconcile(), args.data_dir)
    out.verbose(
        "C-MOVE destinations: "
        + (", ".join(f"{t}={h}:{p}" for t, (h, p) in destinations.items()) or "none")
    )
    server = server_state.start(args)
    try:
        return scp.serve(server, out, "qrscp")
    finally:
        server_state.index.close()


def _move_tls(args: argparse.Namespace) -> dict[str, TLS]:
    """The client TLS for the destinations marked ``tls = true``: our certificate and
    key, and the CA bundle their certificates must chain to."""
    if not args.tls_destinations:
        return {}
    if args.tls_ca is None:
        raise common.UsageError(
            f"destination(s) {', '.join(sorted(args.tls_destinations))} use TLS: give "
            "--tls-ca (the CA bundle their certificates must chain to)"
        )
    try:
        tls = TLS(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)
        tls._client_config()
    except InvalidArgument as e:
        raise common.UsageError(str(e)) from None
    return dict.fromkeys(args.tls_destinations, tls)


def _report(out: common.Console, index: Index, report: Any, data_dir: Path) -> None:
    """The start-up line: what the archive holds and what reconciling did."""
    out.info(
        f"qrscp data in {Path(data_dir).absolute()}: {index.count()} "
        f"instances; start-up check: {report.indexed} indexed, {report.reindexed} re-read, "
        f"{report.dropped} dropped, {report.parts_deleted} partial files deleted"
        + (f", {len(report.failed)} unreadable" if report.failed else "")
    )
    for path, why in report.failed:
        out.verbose(f"unreadable, left in place: {path}: {why}")
