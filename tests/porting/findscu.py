"""A Patient Root C-FIND SCU, written against pynetdicom.

usage: findscu.py HOST PORT PATIENT_NAME [--called-aet TITLE] [--debug]
Prints one line per match and the final status; exits 1 when the association fails.
"""

import argparse
import sys

from pydicom.dataset import Dataset
from pynetdicom import AE, debug_logger
from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelFind


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("patient_name")
    parser.add_argument("--called-aet", default="ANY-SCP")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()

    if args.debug:
        debug_logger()

    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)

    ds = Dataset()
    ds.PatientName = args.patient_name
    ds.PatientID = ""
    ds.QueryRetrieveLevel = "PATIENT"

    assoc = ae.associate(args.host, args.port, ae_title=args.called_aet)
    if not assoc.is_established:
        print("Association rejected, aborted or never connected")
        return 1

    responses = assoc.send_c_find(ds, PatientRootQueryRetrieveInformationModelFind)
    matches = 0
    for status, identifier in responses:
        if not status:
            print("Connection timed out, was aborted or received invalid response")
            break
        if status.Status in (0xFF00, 0xFF01):
            matches += 1
            print(f"match: {identifier.PatientName} ({identifier.PatientID})")
        else:
            print(f"C-FIND final status: 0x{status.Status:04X}, {matches} matches")

    assoc.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
