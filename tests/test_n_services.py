"""The DIMSE-N services in both roles: ours against ours and against pynetdicom."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dimse import AE, evt, sop

MPPS = sop.ModalityPerformedProcedureStep
COMMIT = sop.StorageCommitmentPushModel
PRINTER = sop.Printer
FILM = sop.BasicFilmSession
META = sop.BasicGrayscalePrintManagementMeta
COMMIT_INSTANCE = "1.2.840.10008.1.20.1.1"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"


def ds(**values) -> Dataset:
    out = Dataset()
    for k, v in values.items():
        setattr(out, k, v)
    return out


@pytest.fixture
def n_server():
    seen = {}

    def on_create(event):
        seen["create"] = (event.attribute_list.PatientName, event.request.AffectedSOPClassUID)
        return 0x0000, ds(
            SOPInstanceUID=generate_uid(), PerformedProcedureStepStatus="IN PROGRESS"
        )

    def on_set(event):
        seen["set"] = event.modification_list.PerformedProcedureStepStatus
        return 0x0000, ds(PerformedProcedureStepStatus="COMPLETED")

    def on_get(event):
        seen["get"] = event.attribute_identifiers
        return 0x0000, ds(PrinterStatus="NORMAL", PrinterName="LASER")

    def on_action(event):
        seen["action"] = (event.action_type, event.action_information.TransactionUID)
        return 0x0000, None

    def on_report(event):
        seen["report"] = (event.event_type, event.event_information.TransactionUID)
        return 0x0000, ds(TransactionUID=event.event_information.TransactionUID)

    def on_delete(event):
        seen["delete"] = event.request.RequestedSOPInstanceUID
        return 0x0000

    ae = AE("NSCP")
    for uid in (MPPS, COMMIT, PRINTER, FILM, META):
        ae.add_supported_context(uid)
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[
            (evt.EVT_N_CREATE, on_create),
            (evt.EVT_N_SET, on_set),
            (evt.EVT_N_GET, on_get),
            (evt.EVT_N_ACTION, on_action),
            (evt.EVT_N_EVENT_REPORT, on_report),
            (evt.EVT_N_DELETE, on_delete),
        ],
    )
    yield server.server_address[1], seen
    server.shutdown()


def scu() -> AE:
    ae = AE("NSCU")
    ae.acse_timeout = ae.dimse_timeout = 10
    for uid in (MPPS, COMMIT, PRINTER, FILM, META):
        ae.add_requested_context(uid)
    return ae


def test_every_n_service_ours_against_ours(n_server):
    port, seen = n_server
    with scu().associate("127.0.0.1", port) as assoc:
        status, created = assoc.send_n_create(ds(PatientName="DOE^JANE"), MPPS)
        assert status.Status == 0
        assert created.PerformedProcedureStepStatus == "IN PROGRESS"
        assert status.AffectedSOPInstanceUID == created.SOPInstanceUID
        uid = status.AffectedSOPInstanceUID

        status, attrs = assoc.send_n_set(ds(PerformedProcedureStepStatus="COMPLETED"), MPPS, uid)
        assert status.Status == 0
        assert attrs.PerformedProcedureStepStatus == "COMPLETED"

        status, printer = assoc.send_n_get(
            [0x21100010, 0x21100030], PRINTER, PRINTER_INSTANCE, meta_uid=META
        )
        assert status.Status == 0
        assert printer.PrinterStatus == "NORMAL"

        tx = generate_uid()
        status, reply = assoc.send_n_action(ds(TransactionUID=tx), 1, COMMIT, COMMIT_INSTANCE)
        assert status.Status == 0
        assert reply is None

        status, reply = assoc.send_n_event_report(
            ds(TransactionUID=tx), 2, COMMIT, COMMIT_INSTANCE
        )
        assert status.Status == 0
        assert reply.TransactionUID == tx

        film = generate_uid()
        assert assoc.send_n_delete(FILM, film).Status == 0
    assert seen["create"] == ("DOE^JANE", MPPS)
    assert seen["set"] == "COMPLETED"
    assert seen["get"] == [0x21100010, 0x21100030]
    assert seen["action"] == (1, tx)
    assert seen["report"] == (2, tx)
    assert seen["delete"] == film


def test_handler_failures_become_statuses():
    def broken(event):
        raise ValueError("no such printer")

    ae = AE("NSCP")
    ae.add_supported_context(PRINTER)
    ae.add_supported_context(FILM)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_N_GET, broken)])
    try:
        requestor = AE("NSCU")
        requestor.add_requested_context(PRINTER)
        requestor.add_requested_context(FILM)
        with requestor.associate("127.0.0.1", server.server_address[1]) as assoc:
            status, reply = assoc.send_n_get(None, PRINTER, "1.2.3")
            assert status.Status == 0x0110
            assert "no such printer" in status.ErrorComment
            assert reply is None
            # No handler bound: a processing failure that says so.
            status = assoc.send_n_delete(FILM, "1.2.4")
            assert status.Status == 0x0110
            assert "EVT_N_DELETE" in status.ErrorComment
    finally:
        server.shutdown()


def test_pynetdicom_scu_against_our_n_scp(n_server):
    from pynetdicom import AE as PynetdicomAE

    port, seen = n_server
    ae = PynetdicomAE("PYSCU")
    ae.add_requested_context(MPPS)
    ae.add_requested_context(PRINTER)
    assoc = ae.associate("127.0.0.1", port, ae_title="NSCP")
    assert assoc.is_established
    try:
        status, attrs = assoc.send_n_create(ds(PatientName="DOE^JANE"), MPPS, generate_uid())
        assert status.Status == 0
        assert attrs.PerformedProcedureStepStatus == "IN PROGRESS"
        status, printer = assoc.send_n_get([0x21100010], PRINTER, PRINTER_INSTANCE)
        assert printer.PrinterName == "LASER"
    finally:
        assoc.release()
    assert seen["get"] == [0x21100010]


def test_our_scu_against_pynetdicom_n_scp():
    from pynetdicom import AE as PynetdicomAE
    from pynetdicom import evt as pevt

    def on_set(event):
        status = event.modification_list.PerformedProcedureStepStatus
        return 0x0000, ds(PerformedProcedureStepStatus=status)

    def on_action(event):
        return 0x0000, ds(TransactionUID=event.action_information.TransactionUID)

    ae = PynetdicomAE("PYSCP")
    ae.add_supported_context(MPPS)
    ae.add_supported_context(COMMIT)
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(pevt.EVT_N_SET, on_set), (pevt.EVT_N_ACTION, on_action)],
    )
    try:
        requestor = AE("NSCU")
        requestor.add_requested_context(MPPS)
        requestor.add_requested_context(COMMIT)
        port = server.server_address[1]
        with requestor.associate("127.0.0.1", port, ae_title="PYSCP") as assoc:
            status, attrs = assoc.send_n_set(
                ds(PerformedProcedureStepStatus="DISCONTINUED"), MPPS, generate_uid()
            )
            assert status.Status == 0
            assert attrs.PerformedProcedureStepStatus == "DISCONTINUED"
            tx = generate_uid()
            status, reply = assoc.send_n_action(ds(TransactionUID=tx), 1, COMMIT, COMMIT_INSTANCE)
            assert status.Status == 0
            assert reply.TransactionUID == tx
    finally:
        ae.shutdown()
