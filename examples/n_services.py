"""DIMSE-N: a Modality Performed Procedure Step flow (N-CREATE, N-SET, N-GET).

The SCP keeps the MPPS instances in a dict. Its handlers return (status, dataset):
N-CREATE the created instance's attributes, N-SET the changed ones, N-GET the requested
attributes.

Run: python examples/n_services.py
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from dimse import AE, evt, sop
from dimse.evt import Event

MPPS = sop.ModalityPerformedProcedureStep
Store = dict[str, Dataset]


def on_create(event: Event, store: Store) -> tuple[int, Dataset | None]:
    assert event.request is not None  # the request's command set
    uid = str(event.request.AffectedSOPInstanceUID)
    if uid in store:
        return 0x0111, None  # duplicate SOP instance
    attrs = event.attribute_list
    store[uid] = attrs
    print(f"SCP: N-CREATE {uid[-8:]}: {attrs.PerformedProcedureStepStatus}")
    return 0x0000, attrs


def on_set(event: Event, store: Store) -> tuple[int, Dataset | None]:
    assert event.request is not None
    uid = str(event.request.RequestedSOPInstanceUID)
    if uid not in store:
        return 0x0112, None  # no such SOP instance
    changes = event.modification_list
    for element in changes:
        store[uid][element.tag] = element
    print(f"SCP: N-SET {uid[-8:]}: {store[uid].PerformedProcedureStepStatus}")
    return 0x0000, changes


def on_get(event: Event, store: Store) -> tuple[int, Dataset | None]:
    assert event.request is not None
    uid = str(event.request.RequestedSOPInstanceUID)
    if uid not in store:
        return 0x0112, None
    wanted = event.attribute_identifiers
    reply = Dataset()
    for element in store[uid]:
        if not wanted or element.tag in wanted:
            reply[element.tag] = element
    print(f"SCP: N-GET {uid[-8:]}: {len(reply)} attributes")
    return 0x0000, reply


def main() -> int:
    store: Store = {}
    scp = AE("MPPSSCP")
    scp.add_supported_context(MPPS)
    server = scp.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[
            (evt.EVT_N_CREATE, on_create, [store]),
            (evt.EVT_N_SET, on_set, [store]),
            (evt.EVT_N_GET, on_get, [store]),
        ],
    )
    assert server is not None
    try:
        scu = AE("MODALITY")
        scu.acse_timeout = scu.dimse_timeout = 10
        scu.add_requested_context(MPPS)
        uid = generate_uid()
        port = server.server_address[1]
        with scu.associate("127.0.0.1", port, ae_title="MPPSSCP") as assoc:
            started = Dataset()
            started.PatientName = "DOE^JANE"
            started.PerformedProcedureStepID = "PPS1"
            started.PerformedProcedureStepStatus = "IN PROGRESS"
            status, attrs = assoc.send_n_create(started, MPPS, uid)
            print(f"SCU: N-CREATE status 0x{status.Status:04X}")

            done = Dataset()
            done.PerformedProcedureStepStatus = "COMPLETED"
            status, attrs = assoc.send_n_set(done, MPPS, uid)
            print(f"SCU: N-SET status 0x{status.Status:04X}")

            wanted: list[int] = [Tag("PerformedProcedureStepStatus"), Tag("PatientName")]
            status, attrs = assoc.send_n_get(wanted, MPPS, uid)
            print(f"SCU: N-GET status 0x{status.Status:04X}")
            if attrs is not None:
                print(f"SCU: {attrs.PatientName}: {attrs.PerformedProcedureStepStatus}")

            status, _ = assoc.send_n_get(None, MPPS, generate_uid())
            print(f"SCU: N-GET of an unknown instance: status 0x{status.Status:04X}")
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
