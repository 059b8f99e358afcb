"""C-FIND: a Study Root query SCP over an in-memory list, queried twice by the SCU.

The second query stops after the first match: leaving the iterator early makes dimse send
a C-CANCEL-RQ, and the SCP's handler sees ``event.is_cancelled`` turn True.

Run: python examples/find.py
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from pydicom.dataset import Dataset

from dimse import AE, evt, sop
from dimse.evt import Event

FIND = sop.StudyRootQueryRetrieveInformationModelFind

STUDIES = [
    ("DOE^JANE", "1.2.826.0.1.3680043.2.1125.1", "CT HEAD"),
    ("DOE^JOHN", "1.2.826.0.1.3680043.2.1125.2", "CT CHEST"),
    ("DOE^JOHN", "1.2.826.0.1.3680043.2.1125.3", "CT ABDOMEN"),
    ("ROE^RICHARD", "1.2.826.0.1.3680043.2.1125.4", "MR KNEE"),
]


def on_find(event: Event) -> Iterator[tuple[int, Dataset | None]]:
    """EVT_C_FIND handler: a generator of (status, identifier) pairs, one per match."""
    query = event.identifier
    pattern = str(query.get("PatientName", "") or "*")
    print(f"SCP: C-FIND for PatientName={pattern!r}")
    for name, uid, description in STUDIES:
        if event.is_cancelled:
            print("SCP: the SCU cancelled the query")
            return
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.PatientName = name
        match.StudyInstanceUID = uid
        match.StudyDescription = description
        yield 0xFF00, match


def study_query(patient_name: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = patient_name
    ds.StudyInstanceUID = ""
    ds.StudyDescription = ""
    return ds


def main() -> int:
    scp = AE("FINDSCP")
    scp.add_supported_context(FIND)
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find)]
    )
    assert server is not None
    try:
        scu = AE("FINDSCU")
        scu.acse_timeout = scu.dimse_timeout = 10
        scu.add_requested_context(FIND)
        port = server.server_address[1]
        with scu.associate("127.0.0.1", port, ae_title="FINDSCP") as assoc:
            matches = 0
            for status, identifier in assoc.send_c_find(study_query("DOE^*"), FIND):
                if identifier is not None:
                    matches += 1
                    print(f"SCU: match {identifier.PatientName} {identifier.StudyDescription}")
                else:
                    print(f"SCU: final status 0x{status.Status:04X}, {matches} matches")

            # Stop after the first match: the rest of the query is cancelled.
            for status, identifier in assoc.send_c_find(study_query("*"), FIND):
                print(f"SCU: first of all studies: {identifier and identifier.PatientName}")
                print(f"SCU: stopping after status 0x{status.Status:04X}")
                break
            # The association is still usable after the cancel.
            results = list(assoc.send_c_find(study_query("ROE^*"), FIND))
            print(f"SCU: after the cancel, ROE^* gives {len(results) - 1} match(es)")
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
