"""Shared test helpers."""

from __future__ import annotations

import os
import struct

import pytest

#: Seconds tests/test_soak.py stores for by default (a few minutes of the whole file in CI);
#: ``--soak-seconds=N`` or the environment variable DIMSE_SOAK_SECONDS runs it longer.
DEFAULT_SOAK_SECONDS = 70.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=None,
        help="seconds tests/test_soak.py stores for (default: $DIMSE_SOAK_SECONDS, else "
        f"{DEFAULT_SOAK_SECONDS:g})",
    )


def soak_seconds(config: pytest.Config) -> float:
    """How long the soak test stores: --soak-seconds, else $DIMSE_SOAK_SECONDS, else the
    default."""
    option = config.getoption("--soak-seconds")
    if option is not None:
        return float(option)
    return float(os.environ.get("DIMSE_SOAK_SECONDS", DEFAULT_SOAK_SECONDS))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "soak(extra): runs for --soak-seconds; its timeout is that plus `extra` seconds",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A soak test's timeout (pytest-timeout) follows its duration.
    for test in items:
        marker = test.get_closest_marker("soak")
        if marker is not None:
            extra = float(marker.args[0]) if marker.args else 180.0
            test.add_marker(pytest.mark.timeout(soak_seconds(config) + extra))


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


@pytest.fixture
def echo_server():
    """Starts our Verification SCP on a free loopback port; stops it after the test.

    Call it with AE settings to change (``echo_server(acse_timeout=2)``); it returns
    ``(ae, server, port)``.
    """
    from dimse import AE, sop

    servers = []

    def start(evt_handlers=None, ae_title="ECHOSCP", **settings):
        ae = AE(ae_title)
        for name, value in settings.items():
            setattr(ae, name, value)
        ae.add_supported_context(sop.Verification)
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=evt_handlers)
        servers.append(server)
        return ae, server, server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def echo_ok(port: int, called: str = "ECHOSCP") -> bool:
    """Whether a normal C-ECHO against our server on `port` succeeds."""
    from dimse import AE, sop

    ae = AE("CHECKER")
    ae.acse_timeout = 5
    ae.dimse_timeout = 5
    ae.add_requested_context(sop.Verification)
    with ae.associate("127.0.0.1", port, ae_title=called) as assoc:
        return assoc.send_c_echo().Status == 0x0000
