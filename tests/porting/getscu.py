"""A Patient Root C-GET SCU with SCP role selection, written against pynetdicom.

usage: getscu.py HOST PORT PATIENT_ID OUTPUT_DIR [--called-aet TITLE]
Saves each received instance in OUTPUT_DIR; prints the sub-operation counts.
"""

import argparse
import os
import sys

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelGet,
)


def handle_store(event, output_dir):
    """Handle a C-STORE sub-operation of our C-GET."""
    ds = event.dataset
    ds.file_meta = event.file_meta
    ds.save_as(os.path.join(output_dir, ds.SOPInstanceUID + ".dcm"), enforce_file_format=True)
    print(f"received {ds.SOPInstanceUID}", flush=True)
    return 0x0000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("patient_id")
    parser.add_argument("output_dir")
    parser.add_argument("--called-aet", default="ANY-SCP")
    args = parser.parse_args()

    os.makedirs(args.output_dir, exist_ok=True)
    handlers = [(evt.EVT_C_STORE, handle_store, [args.output_dir])]

    ae = AE(ae_title="GETSCU")
    ae.acse_timeout = 10
    ae.dimse_timeout = 10
    ae.network_timeout = 10
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(MRImageStorage)

    roles = [build_role(CTImageStorage, scp_role=True), build_role(MRImageStorage, scp_role=True)]

    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = args.patient_id

    assoc = ae.associate(
        args.host, args.port, ae_title=args.called_aet, ext_neg=roles, evt_handlers=handlers
    )
    if not assoc.is_established:
        print("Association rejected, aborted or never connected")
        return 1

    final = None
    for status, _identifier in assoc.send_c_get(ds, PatientRootQueryRetrieveInformationModelGet):
        if not status:
            print("Connection timed out, was aborted or received invalid response")
            break
        final = status
        if status.Status in (0xFF00, 0xFF01):
            print(f"pending: {status.NumberOfRemainingSuboperations} remaining")
    assoc.release()

    if final is None or final.Status in (0xFF00, 0xFF01):
        return 1
    print(
        f"C-GET final status: 0x{final.Status:04X}, "
        f"completed {final.NumberOfCompletedSuboperations}, "
        f"failed {final.NumberOfFailedSuboperations}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
