"""C-GET: the SCP sends the matching instances back on the same association.

The SCU proposes CT Image Storage with SCP/SCU role selection (``build_role(...,
scp_role=True)`` in ``ext_neg``) so that it may act as the Storage SCP, and binds an
EVT_C_STORE handler on ``associate()`` to receive the C-STORE sub-operations. The SCP
supports CT Image Storage with ``scp_role=True`` to accept that role.

Run: python examples/get.py
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimse import AE, build_role, evt, sop
from dimse.evt import Event

GET = sop.StudyRootQueryRetrieveInformationModelGet
CT = sop.CTImageStorage
STUDY_UID = "1.2.826.0.1.3680043.2.1125.10"


def make_ct(i: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = STUDY_UID
    ds.PatientName = "DOE^JANE"
    ds.InstanceNumber = i
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


ARCHIVE = [make_ct(i) for i in range(1, 4)]


def on_get(event: Event) -> Iterator[int | tuple[int, Dataset]]:
    """EVT_C_GET handler: yields the number of sub-operations, then (status, dataset)."""
    uid = event.identifier.StudyInstanceUID
    matches = [ds for ds in ARCHIVE if ds.StudyInstanceUID == uid]
    print(f"SCP: C-GET of study {uid}: {len(matches)} instances")
    yield len(matches)
    for ds in matches:
        if event.is_cancelled:
            return
        yield 0xFF00, ds


def on_store(event: Event, received: list[Dataset]) -> int:
    """EVT_C_STORE handler of the SCU: one C-STORE sub-operation of the C-GET."""
    ds = event.dataset
    received.append(ds)
    print(f"SCU: received instance {ds.InstanceNumber}")
    return 0x0000


def main() -> int:
    scp = AE("GETSCP")
    scp.add_supported_context(GET)
    scp.add_supported_context(CT, scu_role=True, scp_role=True)
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_GET, on_get)]
    )
    assert server is not None
    received: list[Dataset] = []
    try:
        scu = AE("GETSCU")
        scu.acse_timeout = scu.dimse_timeout = 10
        scu.add_requested_context(GET)
        scu.add_requested_context(CT)
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = STUDY_UID
        port = server.server_address[1]
        with scu.associate(
            "127.0.0.1",
            port,
            ae_title="GETSCP",
            ext_neg=[build_role(CT, scp_role=True)],
            evt_handlers=[(evt.EVT_C_STORE, on_store, [received])],
        ) as assoc:
            for status, _identifier in assoc.send_c_get(query, GET):
                if status.Status in (0xFF00, 0xFF01):
                    print(f"SCU: pending, {status.NumberOfRemainingSuboperations} remaining")
                else:
                    print(
                        f"SCU: final status 0x{status.Status:04X}, "
                        f"{status.NumberOfCompletedSuboperations} completed, "
                        f"{status.NumberOfFailedSuboperations} failed"
                    )
    finally:
        server.shutdown()
    print(f"received {len(received)} instances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
