"""``python -m dimse``: show what this build is and check its codecs end to end."""

from __future__ import annotations

import sys

import dimse


def main(argv: list[str] | None = None) -> int:
    """Print the implementation identity and round-trip a C-ECHO-RQ through the codecs."""
    del argv
    print(f"dimse {dimse.__version__}")
    print(f"implementation class UID {dimse.IMPLEMENTATION_CLASS_UID}")
    print(f"implementation version name {dimse.IMPLEMENTATION_VERSION_NAME}")
    echo = {"type": "C-ECHO-RQ", "affected_sop_class_uid": "1.2.840.10008.1.1", "message_id": 1}
    command = dimse.encode_message(echo, has_dataset=False)
    pdus = dimse.fragment(1, command, None, max_pdu_length=16384)
    assembler = dimse.MessageAssembler()
    messages = [m for pdu in pdus for m in assembler.push_pdu(pdu)]
    decoded = dimse.decode_message(messages[0][1])
    print(f"C-ECHO-RQ: {len(command)}-byte command set in {len(pdus)} P-DATA-TF PDU(s)")
    print(f"decoded back: {decoded}")
    return 0 if decoded == {**echo, "has_dataset": False} else 1


if __name__ == "__main__":
    sys.exit(main())
