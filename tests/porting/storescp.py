"""A Storage SCP that saves what it receives, written against pynetdicom.

usage: storescp.py PORT OUTPUT_DIR [--ae-title TITLE]
Serves on 127.0.0.1 until interrupted (Ctrl-C).
"""

import argparse
import os

from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification


def handle_store(event, storage_dir):
    """Handle EVT_C_STORE: write the dataset to storage_dir as a DICOM file."""
    fname = os.path.join(storage_dir, event.request.AffectedSOPInstanceUID + ".dcm")
    with open(fname, "wb") as f:
        f.write(event.encoded_dataset())
    ds = event.dataset
    print(
        f"stored {ds.SOPInstanceUID} for {ds.PatientName} from {event.assoc.requestor.ae_title}",
        flush=True,
    )
    return 0x0000


def handle_echo(event):
    print(f"echo from {event.assoc.requestor.ae_title}", flush=True)
    return 0x0000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("output_dir")
    parser.add_argument("--ae-title", default="STORESCP")
    args = parser.parse_args()

    os.makedirs(args.output_dir, exist_ok=True)

    handlers = [
        (evt.EVT_C_STORE, handle_store, [args.output_dir]),
        (evt.EVT_C_ECHO, handle_echo),
    ]

    ae = AE(ae_title=args.ae_title)
    ae.supported_contexts = StoragePresentationContexts
    ae.add_supported_context(Verification)

    print(f"listening on port {args.port}", flush=True)
    ae.start_server(("127.0.0.1", args.port), evt_handlers=handlers)
    print("server stopped", flush=True)


if __name__ == "__main__":
    main()
