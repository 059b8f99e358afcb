"""C-MOVE: the SCP stores the matches at a third AE (a second dimse storage server).

The EVT_C_MOVE handler yields, in this order: the (address, port) of
``event.move_destination`` (or (None, None) if it is unknown), the number of
sub-operations, then one (status, dataset) per instance. The move SCP opens its own
association to the destination, proposing its *supported* storage contexts, so it
supports CT Image Storage here as well as the retrieve model.

Run: python examples/move.py
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import AE, evt, sop
from dimse.evt import Event

MOVE = sop.PatientRootQueryRetrieveInformationModelMove
CT = sop.CTImageStorage


def make_ct(patient_id: str, i: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = "DOE^JANE"
    ds.InstanceNumber = i
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


ARCHIVE = [make_ct("PAT1", i) for i in range(1, 4)] + [make_ct("PAT2", 1)]


def on_move(
    event: Event, known_aes: dict[str, tuple[str, int]]
) -> Iterator[tuple[str | None, int | None] | int | tuple[int, Dataset]]:
    """EVT_C_MOVE handler: destination first, then the count, then the instances."""
    destination = event.move_destination
    print(f"SCP: C-MOVE to {destination!r} requested by {event.assoc.requestor.ae_title}")
    if destination not in known_aes:
        yield None, None  # answered with 0xA801 (move destination unknown)
        return
    yield known_aes[destination]
    patient_id = event.identifier.PatientID
    matches = [ds for ds in ARCHIVE if ds.PatientID == patient_id]
    yield len(matches)
    for ds in matches:
        if event.is_cancelled:
            return
        yield 0xFF00, ds


def on_store(event: Event, received: list[str]) -> int:
    """EVT_C_STORE handler of the destination."""
    assert event.request is not None  # the C-STORE request's command set
    origin = event.request.get("MoveOriginatorApplicationEntityTitle", "")
    received.append(str(event.request.AffectedSOPInstanceUID))
    print(f"DEST: stored instance {event.dataset.InstanceNumber} (move originator {origin})")
    return 0x0000


def patient_query(patient_id: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = patient_id
    return ds


def main() -> int:
    received: list[str] = []
    dest_ae = AE("STOREDEST")
    dest_ae.add_supported_context(CT)
    dest = dest_ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store, [received])]
    )
    assert dest is not None
    try:
        known_aes = {"STOREDEST": ("127.0.0.1", dest.server_address[1])}
        move_ae = AE("MOVESCP")
        move_ae.acse_timeout = move_ae.dimse_timeout = 10
        move_ae.add_supported_context(MOVE)
        move_ae.add_supported_context(CT)  # proposed to the destination
        server = move_ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_MOVE, on_move, [known_aes])]
        )
        assert server is not None
        try:
            scu = AE("MOVESCU")
            scu.acse_timeout = scu.dimse_timeout = 10
            scu.add_requested_context(MOVE)
            port = server.server_address[1]
            with scu.associate("127.0.0.1", port, ae_title="MOVESCP") as assoc:
                for status, _ in assoc.send_c_move(patient_query("PAT1"), "STOREDEST", MOVE):
                    if status.Status in (0xFF00, 0xFF01):
                        remaining = status.NumberOfRemainingSuboperations
                        print(f"SCU: pending, {remaining} remaining")
                    else:
                        done = status.NumberOfCompletedSuboperations
                        print(f"SCU: final status 0x{status.Status:04X}, {done} completed")
                for status, _ in assoc.send_c_move(patient_query("PAT1"), "NOWHERE", MOVE):
                    print(f"SCU: move to an unknown AE: status 0x{status.Status:04X}")
        finally:
            server.shutdown()
    finally:
        dest.shutdown()
    print(f"destination received {len(received)} instances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
