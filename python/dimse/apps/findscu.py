"""``dimse findscu``: query a Query/Retrieve (or worklist) SCP with C-FIND.

The query is the QUERYFILE's data set (DICOM or DICOM JSON), if given, with the -k keys
applied on top; the Query/Retrieve models need a QueryRetrieveLevel. Each match is
printed to stdout as it arrives, as a list of elements, or as one line of DICOM JSON
with --json; the count and final status go to stderr.
"""

from __future__ import annotations

import argparse

from pydicom.dataset import Dataset

from dimse.apps import common

__all__ = ["format_dataset", "register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = common.add_app_parser(
        subparsers, "findscu", "Query SCU: search with C-FIND, print the matches", __doc__ or ""
    )
    common.add_peer_arguments(parser)
    common.add_query_options(parser, worklist=True)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each match as one line of DICOM JSON (PS3.18 F.2) instead of text",
    )
    parser.add_argument(
        "--cancel",
        metavar="N",
        type=common.positive_int,
        help="send a C-CANCEL after N matches (the SCP then ends the search with status "
        "Cancel, which counts as success)",
    )
    common.add_network_options(parser, "FINDSCU")
    common.add_logging_options(parser)
    parser.set_defaults(run=run)


def format_dataset(ds: Dataset, indent: str = "") -> list[str]:
    """A data set as ``(gggg,eeee) VR Keyword  value`` lines; sequence items indented."""
    lines = []
    for elem in ds:
        keyword = elem.keyword or ("(private)" if elem.tag.is_private else "(unknown)")
        head = f"{indent}({elem.tag.group:04X},{elem.tag.element:04X}) {elem.VR} {keyword:<32}"
        if elem.VR == "SQ":
            lines.append(f"{head} {len(elem.value)} item(s)")
            for n, item in enumerate(elem.value):
                lines.append(f"{indent}  item {n}")
                lines.extend(format_dataset(item, indent + "    "))
        else:
            lines.append(f"{head} {elem.repval}".rstrip())
    return lines


def run(args: argparse.Namespace) -> int:
    out = common.Console(args)
    query = common.load_query(args)
    model = common.query_model(args, "C-FIND")
    ae = common.make_ae(args)
    ae.add_requested_context(model)
    assoc = common.associate(ae, args, needed=[model])
    out.verbose(f"association with {args.call} at {args.host}:{args.port} established")
    matches = 0
    cancelled = False
    final: int | None = None
    with common.released(assoc):
        # A fixed Message ID: the one request on this association, cancelled by that ID.
        for status, identifier in assoc.send_c_find(query, model, msg_id=1):
            code = int(status.Status)
            if code not in (0xFF00, 0xFF01):
                final = code
                continue
            matches += 1
            if identifier is not None:
                if args.json:
                    print(common.json_line(identifier), flush=True)
                else:
                    if matches > 1:
                        print()
                    print(f"# match {matches}")
                    print("\n".join(format_dataset(identifier)), flush=True)
            if args.cancel is not None and matches == args.cancel and not cancelled:
                out.verbose(f"sending C-CANCEL after {matches} match(es)")
                assoc.send_c_cancel(1)
                cancelled = True
    if final is None:
        raise common.AppError("the C-FIND ended without a final response")
    text = common.status_text(final, "C-FIND")
    out.info(f"{matches} match(es), final status {text}")
    if final == 0x0000 or (cancelled and final == 0xFE00):
        return common.EXIT_OK
    raise common.AppError(f"C-FIND ended with status {text} after {matches} match(es)")
