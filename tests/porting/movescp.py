"""A Patient/Study Root C-MOVE SCP serving the DICOM files of a folder, written against
pynetdicom.

usage: movescp.py PORT FILES_DIR --dest AE=HOST:PORT [--dest ...] [--ae-title TITLE]
Serves on 127.0.0.1 until interrupted (Ctrl-C).
"""

import argparse
import os

from pydicom import dcmread
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelMove,
)


def handle_move(event, files_dir, known_aes):
    """Handle EVT_C_MOVE: destination, number of sub-operations, then the instances."""
    ds = event.identifier

    try:
        addr, port = known_aes[event.move_destination]
    except KeyError:
        print(f"unknown move destination {event.move_destination}", flush=True)
        yield (None, None)
        return

    yield (addr, port)

    instances = []
    for fname in sorted(os.listdir(files_dir)):
        candidate = dcmread(os.path.join(files_dir, fname))
        if ds.QueryRetrieveLevel == "PATIENT" and candidate.PatientID == ds.PatientID:
            instances.append(candidate)
        elif ds.QueryRetrieveLevel == "STUDY" and (
            candidate.StudyInstanceUID == ds.StudyInstanceUID
        ):
            instances.append(candidate)

    print(f"moving {len(instances)} instances to {event.move_destination}", flush=True)
    yield len(instances)

    for instance in instances:
        if event.is_cancelled:
            yield (0xFE00, None)
            return
        yield (0xFF00, instance)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("files_dir")
    parser.add_argument("--dest", action="append", default=[], help="AE=HOST:PORT")
    parser.add_argument("--ae-title", default="MOVESCP")
    args = parser.parse_args()

    known_aes = {}
    for item in args.dest:
        title, address = item.split("=", 1)
        host, port = address.rsplit(":", 1)
        known_aes[title] = (host, int(port))

    handlers = [(evt.EVT_C_MOVE, handle_move, [args.files_dir, known_aes])]

    ae = AE(ae_title=args.ae_title)
    ae.acse_timeout = 10
    ae.dimse_timeout = 10
    ae.network_timeout = 10
    ae.requested_contexts = StoragePresentationContexts
    ae.add_supported_context(PatientRootQueryRetrieveInformationModelMove)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)

    print(f"listening on port {args.port}", flush=True)
    ae.start_server(("127.0.0.1", args.port), evt_handlers=handlers)
    print("server stopped", flush=True)


if __name__ == "__main__":
    main()
