"""The ``dimse`` console script: DICOM network tools (``dimse echoscu ...``) on top of the
library, with option names that DCMTK and pynetdicom users already know.

Each app is one module with ``register(subparsers)`` (adds its parser and sets
``run=run`` as a default) and ``run(args) -> int`` (the exit code). ``main`` parses,
dispatches and turns failures into one line on stderr and an exit code scripts can rely
on (see :mod:`dimse.apps.common`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from dimse import __version__
from dimse.apps import common

__all__ = ["APPS", "build_parser", "main"]

#: The apps, in the order ``dimse --help`` lists them (modules of this package).
APPS = ("echoscu", "storescu", "storescp", "findscu", "getscu", "movescu", "qrscp", "selftest")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"dimse.apps.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``dimse`` parser with one subcommand per app (or just ``only``: running one
    app imports only its own module, which keeps start-up short)."""
    parser = argparse.ArgumentParser(
        prog="dimse",
        description="DICOM network tools (DIMSE over TCP) built on the dimse library. "
        "Run 'dimse APP --help' for an app's options.",
        epilog=common.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--version", action="version", version=f"dimse {__version__}", help="print the version"
    )
    subparsers = parser.add_subparsers(dest="app", metavar="APP", title="apps")
    for name in APPS:
        if only is None or name == only:
            _module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs ``dimse`` with ``argv`` (default: the command line) and returns the exit code."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv[0] if argv and argv[0] in APPS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        # argparse exits for --help/--version (0) and usage errors (2); a caller of main()
        # gets the code back instead.
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    # What a process started for --workers repeats.
    args.argv = list(argv)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return common.EXIT_USAGE
    return common.execute(str(args.app), run, args)
