"""Cross-checks against the reference byte vectors shipped inside the pynetdicom wheel.

The vectors are imported at run time (none are copied into this repository). Each is
decoded with our codec and re-encoded, and the bytes must be identical; the vectors that
capture quirky peers have the behaviour we chose asserted instead.
"""

from __future__ import annotations

import pytest
from pynetdicom.tests import encoded_dimse_msg, encoded_dimse_n_msg, encoded_pdu_items

import dimse
from conftest import APP_CONTEXT, ECHO_CONTEXT, associate_rq, item

PDU_VECTORS = [
    "a_abort",
    "a_associate_ac",
    "a_associate_ac_no_ts",
    "a_associate_ac_user",
    "a_associate_ac_zero_ts",
    "a_associate_rj",
    "a_associate_rq",
    "a_associate_rq_called",
    "a_associate_rq_calling",
    "a_associate_rq_com_ext_neg",
    "a_associate_rq_role",
    "a_associate_rq_user_async",
    "a_associate_rq_user_id_ext_neg",
    "a_associate_rq_user_id_user_pass",
    "a_p_abort",
    "a_release_rp",
    "a_release_rq",
    "p_data_tf",
    "p_data_tf_n_event_report",
    "p_data_tf_rq",
]


def test_every_pdu_vector_is_covered():
    """A new PDU vector in a pynetdicom release must be added here, not silently ignored."""
    pdus = {name for name in dir(encoded_pdu_items) if name.startswith(("a_", "p_data_tf"))}
    assert pdus == set(PDU_VECTORS)


# Vectors with a non-zero reserved byte: PS3.8 9.3.1 says reserved fields are not
# tested on receipt; we decode them and write zero, as the standard asks of a sender.
RESERVED_NONZERO = {"a_associate_rq_user_id_user_pass": [105]}  # PC item byte 3 = 0xFF


def _reserved_zeroed(name: str, raw: bytes) -> bytes:
    out = bytearray(raw)
    for offset in RESERVED_NONZERO.get(name, []):
        assert out[offset] != 0
        out[offset] = 0
    return bytes(out)


# A-ASSOCIATE-AC with a user identity sub-item appended after the fact: neither the PDU
# length nor the user information item length counts its 14 bytes.
MISCOUNTED = "a_associate_ac_user"


@pytest.mark.parametrize("name", [n for n in PDU_VECTORS if n != MISCOUNTED])
def test_pdu_vector_round_trips(name):
    raw = getattr(encoded_pdu_items, name)
    decoded = dimse.decode_pdu(raw)
    assert dimse.encode_pdu(decoded) == _reserved_zeroed(name, raw)
    # The incremental reader agrees with the one-shot decoder, fed one byte at a time.
    reader = dimse.PduReader()
    out = []
    for i in range(len(raw)):
        reader.feed(raw[i : i + 1])
        pdu = reader.read()
        if pdu is not None:
            out.append(pdu)
    assert out == [decoded]
    assert reader.buffered() == 0


def test_quirk_miscounted_pdu_length():
    """The PDU length does not count the appended sub-item, but the user information item
    length does: the one-shot decoder refuses the trailing bytes, and a stream reader,
    which takes the PDU length as the boundary, finds the user information item overrunning
    the PDU and refuses it (A-ABORT reason 6, invalid PDU parameter value)."""
    raw = encoded_pdu_items.a_associate_ac_user
    with pytest.raises(dimse.InvalidPDU, match="14 bytes follow"):
        dimse.decode_pdu(raw)
    reader = dimse.PduReader()
    reader.feed(raw)
    with pytest.raises(dimse.InvalidPDU, match="truncated") as err:
        reader.read()
    assert err.value.abort_reason == 6


def test_associate_rq_fields():
    rq = dimse.decode_pdu(encoded_pdu_items.a_associate_rq)
    assert rq["pdu"] == "AAssociateRq"
    assert rq["called_ae_title"] == "ANY-SCP"
    assert rq["calling_ae_title"] == "ECHOSCU"
    assert rq["application_context_name"] == "1.2.840.10008.3.1.1.1"
    assert rq["presentation_contexts"] == [
        {
            "id": 1,
            "abstract_syntax": "1.2.840.10008.1.1",
            "transfer_syntaxes": ["1.2.840.10008.1.2"],
        }
    ]
    items = rq["user_information"]["items"]
    assert {"type": "MaximumLength", "maximum_length": 16382} in items


def test_release_abort_and_reject_fields():
    assert dimse.decode_pdu(encoded_pdu_items.a_release_rq) == {"pdu": "AReleaseRq"}
    assert dimse.decode_pdu(encoded_pdu_items.a_release_rp) == {"pdu": "AReleaseRp"}
    assert dimse.decode_pdu(encoded_pdu_items.a_abort) == {
        "pdu": "AAbort",
        "source": "ServiceUser",
        "reason": "NotSpecified",
    }
    assert dimse.decode_pdu(encoded_pdu_items.a_p_abort) == {
        "pdu": "AAbort",
        "source": "ServiceProvider",
        "reason": "UnrecognizedPduParameter",
    }
    rj = dimse.decode_pdu(encoded_pdu_items.a_associate_rj)
    assert rj["pdu"] == "AAssociateRj"
    assert rj["result"] == "Permanent"
    assert rj["reason"] == "UserNoReasonGiven"


def test_quirk_blank_called_ae_title():
    """A called AE title of 16 spaces (not a valid title) decodes as blank and re-encodes
    as the same 16 spaces: the association layer, not the codec, decides to reject it."""
    raw = encoded_pdu_items.a_associate_rq_called
    rq = dimse.decode_pdu(raw)
    assert rq["called_ae_title"] == ""
    assert dimse.encode_pdu(rq) == raw


def test_quirk_rejected_context_without_transfer_syntax():
    """A rejected context whose transfer syntax sub-item is empty or missing decodes
    (PS3.8 says the sub-item is not significant when rejected) and re-encodes as it came."""
    zero = dimse.decode_pdu(encoded_pdu_items.a_associate_ac_zero_ts)
    none = dimse.decode_pdu(encoded_pdu_items.a_associate_ac_no_ts)
    accepted, pc_zero = zero["presentation_contexts"]
    assert accepted == {
        "id": 1,
        "result": "Acceptance",
        "transfer_syntax": "1.2.840.10008.1.2.1",
    }
    (pc_none,) = none["presentation_contexts"]
    assert pc_zero["result"] == "AbstractSyntaxNotSupported"
    assert pc_zero["transfer_syntax"] == ""
    assert pc_none["result"] == "AbstractSyntaxNotSupported"
    assert pc_none["transfer_syntax"] is None


ITEM_VECTORS = [
    "maximum_length_received",
    "implementation_class_uid",
    "implementation_version_name",
    "asynchronous_window_ops",
    "role_selection",
    "role_selection_odd",
    "user_identity_rq_user_nopw",
    "user_identity_rq_user_pass",
    "user_identity_ac",
    "extended_negotiation",
    "common_extended_negotiation",
    "implementation_class_uid_empty",
    "implementation_version_name_empty",
]


@pytest.mark.parametrize("name", ITEM_VECTORS)
def test_user_information_sub_item_vectors(name, wrap_user_items):
    raw = wrap_user_items(getattr(encoded_pdu_items, name))
    assert dimse.encode_pdu(dimse.decode_pdu(raw)) == raw


def test_user_information_item_vector():
    raw = associate_rq(APP_CONTEXT, ECHO_CONTEXT, encoded_pdu_items.user_information)
    assert dimse.encode_pdu(dimse.decode_pdu(raw)) == raw


@pytest.mark.parametrize("name", ["presentation_context_rq", "presentation_context_rq_utf8"])
def test_presentation_context_vectors(name):
    raw = associate_rq(APP_CONTEXT, getattr(encoded_pdu_items, name), item(0x50, b""))
    rq = dimse.decode_pdu(raw)
    # The item's 3 reserved bytes after the context ID are written as zero (the vectors
    # carry 0xFF in one of them; reserved fields are not tested on receipt, PS3.8 9.3.1).
    start = 6 + 68 + len(APP_CONTEXT)
    expected = bytearray(raw)
    expected[start + 5 : start + 8] = bytes(3)
    assert dimse.encode_pdu(rq) == bytes(expected)


def test_quirk_utf8_in_uid_is_kept_not_rejected():
    """A UID with zero-width spaces (a captured quirk) is kept as text: it matches no
    supported abstract syntax, so the acceptor rejects that one context, not the whole
    association."""
    raw = associate_rq(
        APP_CONTEXT, encoded_pdu_items.presentation_context_rq_utf8, item(0x50, b"")
    )
    (pc,) = dimse.decode_pdu(raw)["presentation_contexts"]
    assert "\u200b" in pc["abstract_syntax"]


def test_quirk_odd_length_role_selection_uid():
    """PDU items carry UIDs unpadded (PS3.8 9.3.2.2.1): an odd length is normal."""
    rq = dimse.decode_pdu(
        associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, encoded_pdu_items.role_selection_odd))
    )
    role = rq["user_information"]["items"][0]
    assert role == {
        "type": "RoleSelection",
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
        "scu_role": False,
        "scp_role": True,
    }


def test_quirk_empty_application_context_and_implementation_uid():
    """Empty values decode as empty strings and round-trip; the association layer checks
    the application context name."""
    raw = associate_rq(encoded_pdu_items.application_context_empty, ECHO_CONTEXT, item(0x50, b""))
    rq = dimse.decode_pdu(raw)
    assert rq["application_context_name"] == ""
    assert dimse.encode_pdu(rq) == raw


def test_user_identity_fields(wrap_user_items):
    rq = dimse.decode_pdu(wrap_user_items(encoded_pdu_items.user_identity_rq_user_pass))
    assert rq["user_information"]["items"] == [
        {
            "type": "UserIdentityRq",
            "identity_type": "UsernameAndPasscode",
            "positive_response_requested": False,
            "primary": b"pynetdicom",
            "secondary": b"p4ssw0rd",
        }
    ]


def test_pdv_vectors():
    pdu = dimse.decode_pdu(encoded_pdu_items.p_data_tf)
    (pdv,) = pdu["values"]
    assert pdv["context_id"] == 1
    assert pdv["control"] == 3
    assert pdv["data"] == encoded_pdu_items.presentation_data[1:]


DIMSE_MODULES = [encoded_dimse_msg, encoded_dimse_n_msg]
COMMAND_VECTORS = [
    (mod, name)
    for mod in DIMSE_MODULES
    for name in dir(mod)
    if "_cmd" in name and not name.startswith("_")
]
# Vectors that capture peers sending what PS3.7 does not allow, with our verdict.
QUIRKY = {
    # US values of 4 bytes and a group length that does not count the added element.
    "c_move_rsp_cmd_with_dup",
}
TYPED_REJECTS = {
    # An empty Requested SOP Class UID and Requested SOP Instance UID, both mandatory.
    "n_set_rq_cmd_empty": "RequestedSOPClassUID",
}


def _id(v):
    return v[1]


@pytest.mark.parametrize(("mod", "name"), COMMAND_VECTORS, ids=[_id(v) for v in COMMAND_VECTORS])
def test_command_set_vectors(mod, name):
    raw = getattr(mod, name)
    assert raw[0] in (0x01, 0x03), "the vectors are command PDVs: control header then command"
    command = raw[1:]
    if name in QUIRKY:
        with pytest.raises(dimse.InvalidCommandSet):
            dimse.decode_command_set(command)
        with pytest.raises(dimse.InvalidCommandSet):
            dimse.decode_message(command)
        return
    elements = dimse.decode_command_set(command)
    assert dimse.encode_command_set(elements) == command
    if name in TYPED_REJECTS:
        with pytest.raises(dimse.InvalidCommandSet, match=TYPED_REJECTS[name]):
            dimse.decode_message(command)
        return
    message = dimse.decode_message(command)
    assert dimse.encode_message(message) == command


def test_command_vector_fields():
    m = dimse.decode_message(encoded_dimse_msg.c_get_rsp_cmd[1:])
    assert m == {
        "type": "C-GET-RSP",
        "affected_sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
        "message_id_being_responded_to": 5,
        "status": 0xFF00,
        "remaining": 3,
        "completed": 1,
        "failed": 2,
        "warning": 4,
        "has_dataset": True,
    }
    n = dimse.decode_message(encoded_dimse_n_msg.n_get_rq_cmd[1:])
    assert n["attribute_identifier_list"] == [(0x7FE0, 0x0010), (0, 0), (0xFFFF, 0xFFFF)]
    assert n["has_dataset"] is False


def test_quirk_empty_optional_uid_round_trips():
    """N-CREATE-RQ with an empty Affected SOP Instance UID (optional): kept as empty."""
    raw = encoded_dimse_n_msg.n_create_rq_cmd_empty[1:]
    m = dimse.decode_message(raw)
    assert m["affected_sop_instance_uid"] == ""
    assert dimse.encode_message(m) == raw


DATASET_VECTORS = [
    (mod, name)
    for mod in DIMSE_MODULES
    for name in dir(mod)
    if name.endswith(("_ds", "_ds_b")) and not name.startswith("_")
]


@pytest.mark.parametrize(("mod", "name"), DATASET_VECTORS, ids=[_id(v) for v in DATASET_VECTORS])
@pytest.mark.parametrize("max_pdu", [0, 16, 64, 16382])
def test_message_vectors_fragment_and_reassemble(mod, name, max_pdu):
    """Each reference data set sent behind its command, at several PDU sizes."""
    dataset = getattr(mod, name)[1:]
    command_name = {"c_store_ds": "c_store_rq_cmd"}.get(name, name.replace("_ds", "_cmd"))
    command = getattr(mod, command_name)[1:]
    pdus = dimse.fragment(1, command, dataset, max_pdu)
    limit = max_pdu or 4 * 1024 * 1024
    for pdu in pdus:
        assert len(pdu) - 6 <= limit
    assembler = dimse.MessageAssembler()
    out = [m for pdu in pdus for m in assembler.push_pdu(pdu)]
    assert out == [(1, command, dataset)]
