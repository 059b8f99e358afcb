"""C-ECHO: start a Verification SCP, echo it a few times, stop it.

Run: python examples/echo.py
"""

from __future__ import annotations

from dimse import AE, evt, sop
from dimse.evt import Event


def on_echo(event: Event) -> int:
    """EVT_C_ECHO handler: returns the status of the C-ECHO response."""
    print(f"SCP: C-ECHO from {event.assoc.requestor.ae_title}, message {event.message_id}")
    return 0x0000


def main() -> int:
    scp = AE("ECHOSCP")
    scp.add_supported_context(sop.Verification)
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_ECHO, on_echo)]
    )
    assert server is not None
    try:
        port = server.server_address[1]
        print(f"SCP: listening on 127.0.0.1:{port}")

        scu = AE("ECHOSCU")
        scu.acse_timeout = scu.dimse_timeout = 10
        scu.add_requested_context(sop.Verification)
        with scu.associate("127.0.0.1", port, ae_title="ECHOSCP") as assoc:
            for _ in range(3):
                status = assoc.send_c_echo()
                print(f"SCU: C-ECHO status 0x{status.Status:04X}")
        print("SCU: association released")
    finally:
        server.shutdown()
    print("SCP: stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
