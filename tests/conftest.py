"""Shared test helpers."""

from __future__ import annotations

import struct

import pytest


def associate_rq(*items: bytes, called: bytes = b"ANY-SCP", calling: bytes = b"ECHOSCU") -> bytes:
    """An A-ASSOCIATE-RQ (PS3.8 9.3.2) around the given variable items."""
    fixed = struct.pack(">HH", 1, 0) + called.ljust(16, b" ") + calling.ljust(16, b" ") + bytes(32)
    body = fixed + b"".join(items)
    return struct.pack(">BBI", 1, 0, len(body)) + body


def item(item_type: int, body: bytes) -> bytes:
    """An item or sub-item with a 2-byte length (PS3.8 9.3.2)."""
    return struct.pack(">BBH", item_type, 0, len(body)) + body


APP_CONTEXT = item(0x10, b"1.2.840.10008.3.1.1.1")
ECHO_CONTEXT = item(
    0x20,
    bytes([1, 0, 0, 0]) + item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2"),
)


@pytest.fixture
def wrap_user_items():
    """Wraps user-information sub-items into a complete A-ASSOCIATE-RQ."""

    def wrap(*sub_items: bytes) -> bytes:
        return associate_rq(APP_CONTEXT, ECHO_CONTEXT, item(0x50, b"".join(sub_items)))

    return wrap
