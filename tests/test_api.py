"""The Python surface of the codecs: errors name what is wrong, limits hold."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

import dimse
from dimse import exceptions


def test_exceptions_are_specific_and_subclass_stdlib():
    for cls in (
        dimse.InvalidPDU,
        dimse.InvalidCommandSet,
        dimse.InvalidMessage,
        dimse.InvalidArgument,
    ):
        assert issubclass(cls, dimse.DimseError)
        assert issubclass(cls, ValueError)
    assert dimse.InvalidPDU is exceptions.InvalidPDU


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (
            {
                "type": "C-STORE-RQ",
                "affected_sop_class_uid": "1.2",
                "message_id": 1,
                "priority": "Low",
                "affected_sop_instance_uid": "",
                "has_dataset": True,
            },
            "C-STORE-RQ requires AffectedSOPInstanceUID",
        ),
        (
            {"type": "C-ECHO-RQ", "affected_sop_class_uid": "1.2.x", "message_id": 1},
            "not a UID",
        ),
        (
            {
                "type": "C-MOVE-RQ",
                "affected_sop_class_uid": "1.2",
                "message_id": 1,
                "priority": "Low",
                "move_destination": "A" * 17,
                "has_dataset": True,
            },
            "longer than 16",
        ),
        ({"type": "C-ECHO-RQ", "affected_sop_class_uid": "1.2"}, "missing field `message_id`"),
        ({"type": "C-WHAT-RQ"}, "C-WHAT-RQ"),
        (
            {"type": "C-ECHO-RQ", "affected_sop_class_uid": "1.2", "message_id": 70000},
            "message_id: ",
        ),
        (
            {"type": "C-ECHO-RQ", "affected_sop_class_uid": "1.2", "message_id": 1, "x": 1},
            "unknown field `x`",
        ),
        (
            {"type": "C-FIND-RSP", "message_id_being_responded_to": 1, "status": 0xFF00},
            "pending response must carry an identifier",
        ),
    ],
)
def test_encode_message_rejects_bad_input_with_a_useful_message(message, match):
    with pytest.raises(dimse.InvalidArgument, match=match):
        dimse.encode_message(message)


def test_encode_message_data_set_flag():
    echo = {"type": "C-ECHO-RQ", "affected_sop_class_uid": "1.2.840.10008.1.1", "message_id": 3}
    with pytest.raises(dimse.InvalidArgument, match="has no data set"):
        dimse.encode_message(echo, has_dataset=True)
    store = {
        "type": "C-STORE-RQ",
        "affected_sop_class_uid": "1.2",
        "message_id": 1,
        "priority": "Medium",
        "affected_sop_instance_uid": "1.2.3",
    }
    with pytest.raises(dimse.InvalidArgument, match="must be followed by a data set"):
        dimse.encode_message(store)
    assert dimse.decode_message(dimse.encode_message(store, has_dataset=True))["has_dataset"]


def test_encode_command_set_errors():
    with pytest.raises(dimse.InvalidArgument, match="not a command element keyword"):
        dimse.encode_command_set({"PatientName": "X"})
    with pytest.raises(dimse.InvalidArgument, match="computed on encode"):
        dimse.encode_command_set({"CommandGroupLength": 4})


def test_decode_errors_say_what_is_wrong():
    with pytest.raises(dimse.InvalidCommandSet, match="Command Group Length"):
        dimse.decode_command_set(b"\x00\x00\x10\x01\x02\x00\x00\x00\x01\x00")
    with pytest.raises(dimse.InvalidCommandSet, match="odd value length"):
        dimse.decode_command_set(
            struct.pack("<HHII", 0, 0, 4, 11) + struct.pack("<HHI", 0, 2, 3) + b"1.2"
        )


def test_reader_refuses_oversized_lengths_from_the_header():
    reader = dimse.PduReader(max_pdu_length=16384)
    # A-ASSOCIATE-RQ declaring 4 GB: refused after 6 bytes, nothing buffered for it.
    reader.feed(b"\x01\x00\xff\xff\xff\xff")
    with pytest.raises(dimse.InvalidPDU, match="more than the") as err:
        reader.read()
    assert err.value.abort_reason == 6
    reader = dimse.PduReader(max_pdu_length=16384)
    reader.feed(struct.pack(">BBI", 4, 0, 16385))
    with pytest.raises(dimse.InvalidPDU, match="16385"):
        reader.read()
    reader = dimse.PduReader()
    reader.feed(b"G")
    with pytest.raises(dimse.InvalidPDU, match="0x47") as err:
        reader.read()
    assert err.value.abort_reason == 1


def test_reader_waits_for_more():
    reader = dimse.PduReader()
    reader.feed(b"\x05\x00\x00\x00")
    assert reader.read() is None
    reader.feed(b"\x00\x04\x00\x00\x00")
    assert reader.read() is None
    reader.feed(b"\x00")
    assert reader.read() == {"pdu": "AReleaseRq"}


def test_assembler_errors():
    assembler = dimse.MessageAssembler()
    data_first = dimse.encode_pdu(
        {"pdu": "PDataTf", "values": [{"context_id": 1, "control": 2, "data": b"ab"}]}
    )
    with pytest.raises(dimse.InvalidMessage, match="before any command"):
        assembler.push_pdu(data_first)
    with pytest.raises(dimse.InvalidArgument, match="expected a P-DATA-TF"):
        assembler.push_pdu(dimse.encode_pdu({"pdu": "AReleaseRq"}))
    small = dimse.MessageAssembler(max_dataset_length=10)
    command = dimse.encode_message(
        {
            "type": "C-STORE-RQ",
            "affected_sop_class_uid": "1.2",
            "message_id": 1,
            "priority": "Medium",
            "affected_sop_instance_uid": "1.2.3",
        },
        has_dataset=True,
    )
    first, second = dimse.fragment(1, command, b"x" * 12, 16)[-2:]
    for pdu in dimse.fragment(1, command, b"x" * 12, 16)[:-2]:
        small.push_pdu(pdu)
    small.push_pdu(first)  # 10 bytes of data set so far: at the limit, not past it
    with pytest.raises(dimse.InvalidMessage, match="10-byte limit"):
        small.push_pdu(second)


def test_status_helpers():
    assert dimse.status_category(0x0000) == "Success"
    assert dimse.status_category(0xFF01) == "Pending"
    assert dimse.status_category(0xFE00) == "Cancel"
    assert dimse.status_category(0xB000) == "Warning"
    assert dimse.status_category(0xA700) == "Failure"
    assert dimse.status_category(0xFF00, "C-STORE") == "Failure"
    assert dimse.status_name(0x0122) == "Refused: SOP Class Not Supported"
    assert dimse.status_name(0xA7F3, "C-STORE") == "Refused: Out of Resources"
    assert dimse.status_name(0xA801, "C-MOVE") is not None
    with pytest.raises(dimse.InvalidArgument, match="use one of"):
        dimse.status_name(0, "C-PRINT")


def test_implementation_identity():
    assert dimse.IMPLEMENTATION_CLASS_UID.startswith("2.25.")
    assert dimse.IMPLEMENTATION_VERSION_NAME == f"DIMSE_{dimse.__version__}"


def test_python_m_dimse_runs():
    out = subprocess.run(
        [sys.executable, "-m", "dimse", "selftest", "--echoes", "50"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "50 C-ECHO in" in out.stdout
    assert "statuses {0}" in out.stdout
    assert "association released: True" in out.stdout
    assert dimse.IMPLEMENTATION_CLASS_UID in out.stdout


def test_ready_context_lists():
    from dimse import sop
    from dimse.presentation import (
        QueryRetrievePresentationContexts,
        StoragePresentationContexts,
        VerificationPresentationContexts,
    )

    storage = {c.abstract_syntax for c in StoragePresentationContexts}
    assert len(StoragePresentationContexts) <= 128
    assert {sop.CTImageStorage, sop.MRImageStorage, sop.SecondaryCaptureImageStorage} <= storage
    qr = {c.abstract_syntax for c in QueryRetrievePresentationContexts}
    assert sop.StudyRootQueryRetrieveInformationModelMove in qr
    assert sop.PatientRootQueryRetrieveInformationModelGet in qr
    assert [c.abstract_syntax for c in VerificationPresentationContexts] == [sop.Verification]
    ae = dimse.AE()
    ae.requested_contexts = StoragePresentationContexts
    assert len(ae.requested_contexts) == len(StoragePresentationContexts)
