"""What the ``dimse`` apps share: options, building the AE, query keys, exit codes, and
how a failure is reported.

Option names follow DCMTK's tools (``-aet``, ``-aec``, ``-pdu``, ``-to``/``-ta``/``-td``,
``-od``, ``-k``) so that command lines carry over; every app parser is built with
``allow_abbrev=False`` so that a mistyped long option is an error, never a silent match
of another one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydicom import config as pydicom_config
from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import UID

import dimse
from dimse import AE, Association, _core, sop
from dimse.exceptions import (
    AssociationError,
    DimseTimeout,
    InvalidArgument,
    InvalidResponse,
    NotEstablished,
)

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_FAILED",
    "EXIT_NO_ASSOCIATION",
    "EXIT_OK",
    "EXIT_USAGE",
    "MODELS",
    "AppError",
    "Console",
    "NoAssociation",
    "UsageError",
    "add_app_parser",
    "add_logging_options",
    "add_network_options",
    "add_output_directory",
    "add_peer_arguments",
    "add_query_options",
    "ae_title",
    "associate",
    "configure_logging",
    "execute",
    "json_line",
    "listen_port",
    "load_query",
    "make_ae",
    "parse_keys",
    "positive_int",
    "query_model",
    "read_query_file",
    "released",
    "report_retrieve",
    "status_text",
    "sub_operation_counts",
    "uid_name",
]

EXIT_OK = 0
#: The operation ran, but something failed: a non-success status, files skipped, ...
EXIT_FAILED = 1
#: argparse's own code for a bad command line; also a bad -k key or query file.
EXIT_USAGE = 2
#: No association: connection refused, association rejected or aborted, a timeout.
EXIT_NO_ASSOCIATION = 3

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  the operation ran but something failed (a non-success status, a file skipped,
     failures in the summary)
  2  usage error (bad option or argument, unknown -k key, unreadable query file)
  3  no association (connection refused, association rejected or aborted, timeout),
     or none for the service (the peer accepted no presentation context for it)
"""

_DEFAULTS = AE()


class AppError(Exception):
    """A failure to report as one line (``dimse <app>: <message>``) and an exit code."""

    code = EXIT_FAILED

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(AppError):
    """The command line asks for something impossible (exit code 2)."""

    code = EXIT_USAGE


class NoAssociation(AppError):
    """There is no association to work on (exit code 3)."""

    code = EXIT_NO_ASSOCIATION


# -- parsers ---------------------------------------------------------------------------------


def add_app_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
) -> argparse.ArgumentParser:
    """The parser of one app, with the exit codes in its epilog."""
    return subparsers.add_parser(
        name,
        help=summary,
        description=description.replace("``", ""),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not in 1..65535")
    return port


def listen_port(text: str) -> int:
    """A port to listen on: 0 lets the system pick one."""
    return 0 if text.strip() == "0" else _port(text)


def ae_title(text: str) -> str:
    """An AE title as PS3.5 6.2 allows it (checked here, so the error names the option)."""
    stripped = text.strip(" ")
    if (
        not stripped
        or len(text) > 16
        or "\\" in text
        or not text.isascii()
        or any(ord(c) < 0x20 for c in text)
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an AE title: 1 to 16 ASCII characters, no backslash or "
            "control characters, not all spaces"
        )
    return stripped


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 (no limit) or a positive number")
    return None if value == 0 or math.isinf(value) else value


def _max_pdu(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of bytes: {text!r}") from None
    if not (value == 0 or 7 <= value <= 0xFFFFFFFF):
        raise argparse.ArgumentTypeError(
            f"{value} is out of range: 0 (no limit) or 7 to 4294967295 bytes"
        )
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _limit(value: float | None) -> str:
    return "no limit" if value is None else f"{value:g}"


def add_peer_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST PORT of the peer to associate with."""
    parser.add_argument("host", metavar="HOST", help="the peer's host name or IP address")
    parser.add_argument("port", metavar="PORT", type=_port, help="the peer's TCP port")


def add_network_options(
    parser: argparse.ArgumentParser, default_aet: str, requestor: bool = True
) -> None:
    """AE titles, maximum PDU and timeouts. ``requestor``: also the called AE title."""
    group = parser.add_argument_group("network")
    group.add_argument(
        "-aet",
        "--aetitle",
        metavar="AE",
        type=ae_title,
        default=default_aet,
        help=f"our AE title (default {default_aet})"
        + (": the calling AE title of our associations" if requestor else ""),
    )
    if requestor:
        group.add_argument(
            "-aec",
            "--call",
            metavar="AE",
            type=ae_title,
            default="ANY-SCP",
            help="the AE title of the peer, the called AE title (default ANY-SCP)",
        )
    group.add_argument(
        "-pdu",
        "--max-pdu",
        metavar="N",
        type=_max_pdu,
        default=_DEFAULTS.maximum_pdu_size,
        help="the largest PDU we accept, announced to the peer: 0 = no limit, else 7 to "
        f"4294967295 bytes (default {_DEFAULTS.maximum_pdu_size})",
    )
    timeouts = (
        ("-to", "--connection-timeout", "for the TCP connection", _DEFAULTS.connection_timeout),
        ("-ta", "--acse-timeout", "for association set-up and release", _DEFAULTS.acse_timeout),
        ("-td", "--dimse-timeout", "for each DIMSE response", _DEFAULTS.dimse_timeout),
        ("-tn", "--network-timeout", "without any data from the peer", _DEFAULTS.network_timeout),
    )
    for short, long, what, default in timeouts:
        group.add_argument(
            short,
            long,
            metavar="SECONDS",
            type=_seconds,
            default=default,
            help=f"seconds to wait at most {what}; 0 = no limit (default {_limit(default)})",
        )
    add_tls_options(parser, requestor)


def add_tls_options(parser: argparse.ArgumentParser, requestor: bool) -> None:
    """TLS (PS3.15 B.9, BCP 195): certificate, key, CA bundle, and the checks."""
    group = parser.add_argument_group(
        "TLS", "secure transport (PS3.15 Annex B; TLS 1.2 and 1.3, BCP 195 cipher suites)"
    )
    group.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="our certificate chain (PEM)"
        + (
            ", sent to a server that asks for one (mutual TLS); with --tls-key"
            if requestor
            else "; with --tls-key, turns TLS on"
        ),
    )
    group.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert (PEM)")
    group.add_argument(
        "--tls-ca",
        metavar="FILE",
        help=(
            "CA bundle (PEM) the server's certificate must chain to; turns TLS on"
            if requestor
            else "CA bundle (PEM) client certificates must chain to: clients must present "
            "one (mutual TLS) unless --tls-optional-client-cert"
        ),
    )
    group.add_argument(
        "--tls-min-version",
        choices=("1.2", "1.3"),
        default="1.2",
        help="the oldest TLS version accepted (default 1.2)",
    )
    if requestor:
        group.add_argument(
            "--tls-no-hostname-check",
            action="store_true",
            help="accept a server certificate from the CA bundle whatever host it names",
        )
        group.add_argument(
            "--tls-no-verify",
            action="store_true",
            help="TLS without checking the server at all (encryption without "
            "authentication; for tests, as DCMTK's -ic)",
        )
    else:
        group.add_argument(
            "--tls-optional-client-cert",
            action="store_true",
            help="with --tls-ca: verify a client certificate when one is sent, but serve "
            "clients without one",
        )


def tls_from_args(args: argparse.Namespace, server: bool) -> dimse.TLS | None:
    """The TLS settings of the command line (None: plain TCP)."""
    cert, key, ca = args.tls_cert, args.tls_key, args.tls_ca
    no_verify = bool(getattr(args, "tls_no_verify", False))
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together: give both or neither")
    try:
        if server:
            if cert is None:
                if ca is not None or args.tls_optional_client_cert:
                    raise UsageError(
                        "a TLS server needs --tls-cert and --tls-key (its certificate and key)"
                    )
                return None
            tls = dimse.TLS(
                cert=cert,
                key=key,
                ca=ca,
                client_auth=("optional" if args.tls_optional_client_cert else "required")
                if ca is not None
                else None,
                minimum_version=args.tls_min_version,
            )
            tls._server_config()
            return tls
        if cert is None and ca is None and not no_verify:
            return None
        if no_verify and ca is not None:
            raise UsageError("--tls-no-verify ignores --tls-ca: give one or the other")
        if ca is None and not no_verify:
            raise UsageError(
                "TLS needs --tls-ca (the CA bundle the server's certificate must chain to), "
                "or --tls-no-verify to skip checking the server"
            )
        tls = dimse.TLS(
            cert=cert,
            key=key,
            ca=ca,
            verify=not no_verify,
            check_hostname=not args.tls_no_hostname_check,
            minimum_version=args.tls_min_version,
        )
        tls._client_config()
        return tls
    except dimse.InvalidArgument as e:
        raise UsageError(str(e)) from None


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    """-v, -d, -q: how much the app (and the library) prints."""
    group = parser.add_argument_group("output")
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="say what is done step by step, and log the library's INFO messages",
    )
    group.add_argument(
        "-d",
        "--debug",
        action="store_true",
        help="log everything the library does (PDUs, messages) and print tracebacks",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only results and the one-line error on failure (no progress or summary)",
    )


def add_output_directory(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-od",
        "--output-directory",
        metavar="DIR",
        type=Path,
        default=Path("."),
        help=f"the directory {what} are written to, created if missing (default: .)",
    )


def add_query_options(parser: argparse.ArgumentParser, worklist: bool = False) -> None:
    """The information model (-P/-S), the query file and the -k keys."""
    group = parser.add_argument_group("query")
    models = group.add_mutually_exclusive_group()
    models.add_argument(
        "-P",
        "--patient",
        dest="model",
        action="store_const",
        const="P",
        help="use the Patient Root information model",
    )
    models.add_argument(
        "-S",
        "--study",
        dest="model",
        action="store_const",
        const="S",
        help="use the Study Root information model (the default)",
    )
    if worklist:
        models.add_argument(
            "-W",
            "--worklist",
            dest="model",
            action="store_const",
            const="W",
            help="use the Modality Worklist information model",
        )
    parser.set_defaults(model="S")
    group.add_argument(
        "queryfile",
        metavar="QUERYFILE",
        nargs="?",
        type=Path,
        help="the query: a DICOM file or a DICOM JSON data set (as pydicom's "
        "Dataset.from_json reads it); -k keys are applied on top of it",
    )
    group.add_argument(
        "-k",
        "--key",
        metavar="KEY[=VALUE]",
        action="append",
        default=[],
        help="a query key: a keyword or tag (gggg,eeee) with an optional value, e.g. "
        "-k QueryRetrieveLevel=STUDY -k PatientName=DOE* -k 0020,000D (no value: "
        "universal matching, the key is returned); items of a sequence as "
        "-k 'ScheduledProcedureStepSequence[0].Modality=CT'; a value with several parts "
        "separated by backslashes; repeatable, later keys win",
    )


# -- output ----------------------------------------------------------------------------------


class Console:
    """How much an app prints: results to stdout, everything else to stderr.

    ``info`` is the normal output (progress, summary) that ``-q`` silences; ``verbose``
    only shows with ``-v`` or ``-d``.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.debug = bool(getattr(args, "debug", False))
        self.is_verbose = bool(getattr(args, "verbose", False)) or self.debug
        self.quiet = bool(getattr(args, "quiet", False)) and not self.is_verbose

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def verbose(self, message: str) -> None:
        if self.is_verbose:
            print(message, file=sys.stderr, flush=True)


def configure_logging(args: argparse.Namespace) -> None:
    """The library is quiet unless asked: -d logs everything, -v its INFO messages."""
    if getattr(args, "debug", False):
        dimse.debug_logger()
    elif getattr(args, "verbose", False):
        logger = logging.getLogger("dimse")
        logger.setLevel(logging.INFO)
        # One handler however often main() runs in a process (debug_logger adds its own).
        if not any(getattr(h, "_dimse_debug", False) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname).1s: %(name)s: %(message)s"))
            handler._dimse_debug = True  # type: ignore[attr-defined]
            logger.addHandler(handler)


def status_text(code: int, service: str | None = None) -> str:
    """``0xA700 (Refused: Out of Resources)``: a status code with the standard's name."""
    try:
        name = _core.status_name(code, service)
    except InvalidArgument:
        name = None
    return f"0x{code:04X}" + (f" ({name})" if name else "")


def execute(app: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Runs an app; a failure becomes one line ``dimse <app>: <reason>`` on stderr (a
    traceback too with -d) and its exit code."""
    debug = bool(getattr(args, "debug", False))
    configure_logging(args)

    def fail(reason: str, code: int) -> int:
        if debug:
            traceback.print_exc()
        print(f"dimse {app}: {reason}", file=sys.stderr, flush=True)
        return code

    try:
        return int(run(args))
    except AppError as e:
        return fail(str(e), e.code)
    except (AssociationError, DimseTimeout, NotEstablished, InvalidResponse) as e:
        # InvalidResponse: the peer broke the protocol and the association was aborted.
        return fail(str(e), EXIT_NO_ASSOCIATION)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except BrokenPipeError:
        # The reader of our stdout went away (``| head``): stop quietly, and keep Python
        # from complaining while flushing stdout at exit.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except SystemExit as e:
        if isinstance(e.code, int) or e.code is None:
            return e.code or 0
        print(e.code, file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception as e:
        return fail(f"{type(e).__name__}: {e}", EXIT_FAILED)


# -- the AE and its association --------------------------------------------------------------


def make_ae(args: argparse.Namespace) -> AE:
    """An AE configured from the network options."""
    ae = AE(args.aetitle)
    ae.maximum_pdu_size = args.max_pdu
    ae.connection_timeout = args.connection_timeout
    ae.acse_timeout = args.acse_timeout
    ae.dimse_timeout = args.dimse_timeout
    ae.network_timeout = args.network_timeout
    return ae


def uid_name(uid: str) -> str:
    """``Study Root Query/Retrieve Information Model - FIND (1.2.840...)``, or the UID."""
    name = UID(uid).name
    return f"{name} ({uid})" if name != uid else uid


def associate(
    ae: AE, args: argparse.Namespace, needed: Sequence[str] = (), **kwargs: Any
) -> Association:
    """Requests the association with HOST PORT as -aec; raises NoAssociation (exit 3)
    with the reason when it is not established, or when the peer accepted no context for
    one of the ``needed`` abstract syntaxes (the service cannot run at all then)."""
    kwargs.setdefault("tls", tls_from_args(args, server=False))
    assoc = ae.associate(args.host, args.port, ae_title=args.call, **kwargs)
    if not assoc.is_established:
        reason = str(assoc.error) if assoc.error else "association not established"
        raise NoAssociation(reason)
    accepted = {pc.abstract_syntax for pc in assoc.accepted_contexts}
    for uid in needed:
        if uid not in accepted:
            assoc.release()
            raise NoAssociation(
                f"{args.call} at {args.host}:{args.port} accepted no presentation context "
                f"for {uid_name(uid)}"
            )
    return assoc


@contextlib.contextmanager
def released(assoc: Association, abort: bool = False) -> Iterator[Association]:
    """Releases (or aborts) the association at the end of the block; an exception that
    already ends the app aborts it rather than waiting on the peer."""
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    if abort:
        assoc.abort()
    else:
        assoc.release()


# -- queries ---------------------------------------------------------------------------------

#: Query/retrieve information models by service and -P/-S/-W.
MODELS = {
    "C-FIND": {
        "P": sop.PatientRootQueryRetrieveInformationModelFind,
        "S": sop.StudyRootQueryRetrieveInformationModelFind,
        "W": sop.ModalityWorklistInformationModelFind,
    },
    "C-GET": {
        "P": sop.PatientRootQueryRetrieveInformationModelGet,
        "S": sop.StudyRootQueryRetrieveInformationModelGet,
    },
    "C-MOVE": {
        "P": sop.PatientRootQueryRetrieveInformationModelMove,
        "S": sop.StudyRootQueryRetrieveInformationModelMove,
    },
}

_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")

#: One part of a -k path: a keyword or a tag (gggg,eeee), optionally with an item index.
_PART = re.compile(
    r"^(?:\(?(?P<group>[0-9A-Fa-f]{4}),(?P<element>[0-9A-Fa-f]{4})\)?"
    r"|(?P<keyword>[A-Za-z][A-Za-z0-9]*))"
    r"(?:\[(?P<index>\d+)\])?$"
)

_INTEGER_VRS = frozenset({"US", "UL", "SS", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})


def query_model(args: argparse.Namespace, service: str) -> str:
    """The SOP Class UID of the model chosen with -P/-S(/-W) for ``service``."""
    return MODELS[service][args.model]


def _usage(key: str, reason: str) -> NoReturn:
    raise UsageError(f"-k {key!r}: {reason}")


def _tag_of(part: str, key: str) -> tuple[int, str, int | None]:
    """(tag, VR, item index) of one part of a -k path."""
    match = _PART.match(part.strip())
    if match is None:
        _usage(key, f"{part!r} is neither a keyword nor a tag (gggg,eeee)")
    index = int(match["index"]) if match["index"] is not None else None
    if match["keyword"]:
        tag = tag_for_keyword(match["keyword"])
        if tag is None:
            _usage(key, f"unknown keyword {match['keyword']!r} (not in pydicom's dictionary)")
    else:
        tag = int(Tag(int(match["group"], 16), int(match["element"], 16)))
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        _usage(key, f"tag {part!r} is not in pydicom's dictionary: its VR is unknown")
    # "US or SS", "OB or OW": either is right for a query key; take the first.
    return tag, vr.split(" or ")[0], index


def _value(vr: str, text: str, key: str) -> Any:
    """The value of a -k key for pydicom, for ``vr``; empty text is an empty value."""
    if text == "":
        return None
    parts = text.split("\\")
    try:
        if vr in _INTEGER_VRS:
            numbers: list[Any] = [int(p, 0) for p in parts]
        elif vr in _FLOAT_VRS:
            numbers = [float(p) for p in parts]
        elif vr == "AT":
            numbers = [_tag_of(p, key)[0] for p in parts]
        elif vr in _BINARY_VRS:
            _usage(key, f"{vr} (binary) values cannot be given on the command line")
        else:
            return text
    except ValueError:
        _usage(key, f"{text!r} is not a valid {vr} value")
    return numbers[0] if len(numbers) == 1 else numbers


def _apply_key(dataset: Dataset, key: str) -> None:
    path, has_value, text = key.partition("=")
    if not path.strip():
        _usage(key, "give a keyword or a tag, e.g. PatientName=DOE* or 0010,0010=DOE*")
    parts = path.split(".")
    ds = dataset
    for n, part in enumerate(parts):
        tag, vr, index = _tag_of(part, key)
        last = n == len(parts) - 1
        if not last or index is not None:
            if vr != "SQ":
                _usage(key, f"{part!r} is not a sequence ({vr}): it has no items")
            if tag not in ds or ds[tag].VR != "SQ":
                ds.add_new(tag, "SQ", [])
            items = ds[tag].value
            index = 0 if index is None else index
            if index > len(items):
                _usage(key, f"item [{index}] would leave a gap: sequence items count from 0")
            if index == len(items):
                items.append(Dataset())
            ds = items[index]
            if last and has_value and text:
                _usage(key, f"{part!r} is a sequence item: give keys inside it, not a value")
            continue
        if vr == "SQ":
            if text:
                _usage(key, f"{part!r} is a sequence: give its items' keys ({part}[0].Keyword)")
            if tag not in ds:
                ds.add_new(tag, "SQ", [])
            continue
        value = _value(vr, text, key)
        try:
            ds.add_new(tag, vr, value)
        except (ValueError, TypeError, OverflowError) as e:
            _usage(key, str(e).split(" Please see")[0])


def parse_keys(keys: Sequence[str], dataset: Dataset | None = None) -> Dataset:
    """The data set that DCMTK-style ``-k`` keys describe, applied on top of ``dataset``
    (a new one by default): ``PatientName=DOE*``, ``PatientID`` (empty: universal
    matching), ``0010,0020=X`` or ``(0010,0020)=X``, ``Seq[0].Keyword=value``. The VR
    comes from pydicom's dictionary; a value pydicom finds invalid for it is a usage
    error (exit 2), as is an unknown keyword or tag."""
    ds = Dataset() if dataset is None else dataset
    mode = pydicom_config.settings.reading_validation_mode
    # Strict while building: an over-long or malformed value is a usage error here
    # rather than a warning now and a rejection by the peer later.
    pydicom_config.settings.reading_validation_mode = pydicom_config.RAISE
    try:
        for key in keys:
            _apply_key(ds, key)
    finally:
        pydicom_config.settings.reading_validation_mode = mode
    return ds


def read_query_file(path: Path) -> Dataset:
    """A query from a file: DICOM JSON (the file starts with ``{``) or a DICOM file, with
    or without File Meta Information. Unreadable: a usage error (exit 2)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the query file {path}: {e.strerror or e}") from None
    if raw.lstrip()[:1] == b"{":
        try:
            return Dataset.from_json(raw.decode("utf-8"))
        except (ValueError, TypeError, KeyError) as e:
            raise UsageError(f"{path}: not a DICOM JSON data set: {e}") from None
    try:
        read = dcmread(path, force=True)
        ds = Dataset({tag: read[tag] for tag in read.keys() if (tag >> 16) != 0x0002})
        if len(ds) == 0:
            raise InvalidDicomError("no data elements")
    except (InvalidDicomError, ValueError, EOFError, OSError, TypeError) as e:
        raise UsageError(f"{path}: neither a DICOM file nor a DICOM JSON data set: {e}") from None
    return ds


def load_query(args: argparse.Namespace) -> Dataset:
    """The identifier of a C-FIND/C-GET/C-MOVE: the query file's data set (if given)
    with the -k keys applied. The query/retrieve models need a QueryRetrieveLevel."""
    base = read_query_file(args.queryfile) if args.queryfile is not None else None
    query = parse_keys(args.key, base)
    if args.model != "W":
        if "QueryRetrieveLevel" not in query or not query.QueryRetrieveLevel:
            raise UsageError(
                "the query has no QueryRetrieveLevel: add -k QueryRetrieveLevel=LEVEL "
                f"({', '.join(_LEVELS)})"
            )
    return query


#: The sub-operation counters of C-GET and C-MOVE responses (PS3.7 9.1.3, 9.1.4).
_COUNTERS = {
    "remaining": "NumberOfRemainingSuboperations",
    "completed": "NumberOfCompletedSuboperations",
    "failed": "NumberOfFailedSuboperations",
    "warning": "NumberOfWarningSuboperations",
}


def sub_operation_counts(status: Dataset) -> dict[str, int]:
    """The counters of a C-GET/C-MOVE response (absent ones as 0)."""
    return {name: int(status.get(keyword) or 0) for name, keyword in _COUNTERS.items()}


def report_retrieve(
    out: Console, service: str, final: Dataset, identifier: Dataset | None
) -> tuple[int, dict[str, int]]:
    """Prints a C-GET/C-MOVE's final status, counters and failed instances; returns
    (status, counters)."""
    code = int(final.Status)
    counts = sub_operation_counts(final)
    out.info(
        f"{service} final status {status_text(code, service)}: {counts['completed']} "
        f"completed, {counts['failed']} failed, {counts['warning']} warning"
    )
    failed = identifier.get("FailedSOPInstanceUIDList") if identifier is not None else None
    if failed:
        for uid in [failed] if isinstance(failed, str) else list(failed):
            out.info(f"  failed: {uid}")
    return code, counts


def json_line(ds: Dataset) -> str:
    """One data set as one line of DICOM JSON (PS3.18 F.2), as pydicom writes it."""
    return json.dumps(ds.to_json_dict(), separators=(",", ":"))
