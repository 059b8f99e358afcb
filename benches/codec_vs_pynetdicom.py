"""Codec speed from Python: dimse against pynetdicom, in one run, printed as ratios.

Each case does the same work with both libraries, from the same inputs to the same
outputs (PDU bytes), and is timed over a bounded number of repetitions and a bounded
wall time. Run: `python benches/codec_vs_pynetdicom.py` (after `pip install .`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from io import BytesIO

from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.pdu import A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.tests import encoded_pdu_items

import dimse

MAX_PDU = 16382
CT = "1.2.840.10008.5.1.4.1.1.2"


def rate(fn: Callable[[], object], max_seconds: float, max_calls: int) -> float:
    """Calls per second of `fn`, over at most `max_calls` calls and about `max_seconds`."""
    fn()  # warm up
    calls = 0
    start = time.perf_counter()
    deadline = start + max_seconds
    batch = 1
    while calls < max_calls and time.perf_counter() < deadline:
        for _ in range(batch):
            fn()
        calls += batch
        batch = min(batch * 2, max_calls - calls) or 1
    return calls / (time.perf_counter() - start)


# --- dimse -----------------------------------------------------------------------------

ECHO = {"type": "C-ECHO-RQ", "affected_sop_class_uid": "1.2.840.10008.1.1", "message_id": 1}


def store_rq(uid: str) -> dict[str, object]:
    return {
        "type": "C-STORE-RQ",
        "affected_sop_class_uid": CT,
        "message_id": 1,
        "priority": "Low",
        "affected_sop_instance_uid": uid,
    }


def dimse_encode(message: dict[str, object], dataset: bytes | None) -> list[bytes]:
    command = dimse.encode_message(message, has_dataset=dataset is not None)
    return dimse.fragment(1, command, dataset, MAX_PDU)


def dimse_decode(pdus: list[bytes]) -> dict[str, object]:
    assembler = dimse.MessageAssembler()
    for pdu in pdus:
        for _ctx, command, _dataset in assembler.push_pdu(pdu):
            return dimse.decode_message(command)
    raise AssertionError("no message")


# --- pynetdicom ------------------------------------------------------------------------


def pn_echo_primitive() -> C_ECHO:
    p = C_ECHO()
    p.MessageID = 1
    p.AffectedSOPClassUID = "1.2.840.10008.1.1"
    return p


def pn_store_primitive(uid: str, dataset: bytes) -> C_STORE:
    p = C_STORE()
    p.MessageID = 1
    p.AffectedSOPClassUID = CT
    p.AffectedSOPInstanceUID = uid
    p.Priority = 2
    p.DataSet = BytesIO(dataset)
    return p


def pn_encode(message_cls: type[DIMSEMessage], primitive: object) -> list[bytes]:
    msg = message_cls()
    msg.primitive_to_message(primitive)
    out = []
    for p_data in msg.encode_msg(1, MAX_PDU):
        pdu = P_DATA_TF()
        pdu.from_primitive(p_data)
        out.append(pdu.encode())
    return out


def pn_decode(pdus: list[bytes]) -> object:
    msg = DIMSEMessage()
    for raw in pdus:
        pdu = P_DATA_TF()
        pdu.decode(raw)
        if msg.decode_msg(pdu.to_primitive()):
            return msg.message_to_primitive()
    raise AssertionError("no message")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per case and library")
    args = parser.parse_args()
    seconds = args.seconds
    uid = "1.2.826.0.1.3680043.8.498.12345678901234567890"
    small = bytes(2048)
    large = bytes(512 * 1024)

    echo_pdus = dimse_encode(ECHO, None)
    assert echo_pdus == pn_encode(C_ECHO_RQ, pn_echo_primitive())
    store_pdus = dimse_encode(store_rq(uid), large)
    assert store_pdus == pn_encode(C_STORE_RQ, pn_store_primitive(uid, large))
    rq_bytes = encoded_pdu_items.a_associate_rq_user_id_ext_neg
    rq_dict = dimse.decode_pdu(rq_bytes)

    def pn_rq_decode() -> object:
        pdu = A_ASSOCIATE_RQ()
        pdu.decode(rq_bytes)
        return pdu

    pn_rq = pn_rq_decode()

    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        (
            "C-ECHO-RQ encode (command set -> P-DATA-TF)",
            lambda: dimse_encode(ECHO, None),
            lambda: pn_encode(C_ECHO_RQ, pn_echo_primitive()),
        ),
        (
            "C-ECHO-RQ decode (P-DATA-TF -> message)",
            lambda: dimse_decode(echo_pdus),
            lambda: pn_decode(echo_pdus),
        ),
        (
            "C-STORE-RQ 2 KiB encode",
            lambda: dimse_encode(store_rq(uid), small),
            lambda: pn_encode(C_STORE_RQ, pn_store_primitive(uid, small)),
        ),
        (
            "C-STORE-RQ 512 KiB encode (16 KiB PDUs)",
            lambda: dimse_encode(store_rq(uid), large),
            lambda: pn_encode(C_STORE_RQ, pn_store_primitive(uid, large)),
        ),
        (
            "C-STORE-RQ 512 KiB decode (16 KiB PDUs)",
            lambda: dimse_decode(store_pdus),
            lambda: pn_decode(store_pdus),
        ),
        (
            "A-ASSOCIATE-RQ decode",
            lambda: dimse.decode_pdu(rq_bytes),
            pn_rq_decode,
        ),
        (
            "A-ASSOCIATE-RQ encode",
            lambda: dimse.encode_pdu(rq_dict),
            pn_rq.encode,
        ),
    ]
    print("| case | dimse ops/s | pynetdicom ops/s | dimse / pynetdicom |")
    print("|---|---:|---:|---:|")
    for name, ours, theirs in cases:
        a = rate(ours, seconds, 2_000_000)
        b = rate(theirs, seconds, 200_000)
        print(f"| {name} | {a:,.0f} | {b:,.0f} | {a / b:,.1f}x |", flush=True)


if __name__ == "__main__":
    main()
