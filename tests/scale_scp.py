"""A storage SCP run in a process of its own by tests/test_scale.py.

Usage: ``python tests/scale_scp.py '<json settings>'``. Settings (all optional):
``maximum_associations``, ``handler_threads``, ``acse_timeout``, ``network_timeout``
(AE settings); ``store``: ``"discard"`` (FileStorage(discard=True): C-STORE answered in
Rust), ``"python"`` (an EVT_C_STORE handler) or ``None`` (Verification only);
``handler_sleep`` (seconds the Python handler sleeps); ``nofile``: the RLIMIT_NOFILE soft
limit to run with (``"hard"``: raised to the hard limit, the default; a number: lowered to
it); ``notify``: bind an EVT_CONN_OPEN handler (the notifications' path); ``user_id``: bind an
EVT_USER_ID handler that accepts every identity (a negotiation hook in Python).

It prints ``PORT <n>`` once serving, then answers one line on stdout per line on stdin:
``stats`` -> a JSON object (``running``: Python handlers running now, ``max_running``:
the most at once, ``stored``: handler calls, ``conn_open``: EVT_CONN_OPEN calls);
``reset`` -> ``ok`` (zeroes max_running); end of input: shuts down and exits.
Everything it needs is imported before serving: at the file-descriptor limit it opens
nothing.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import threading
import time


def main() -> None:
    settings = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = settings.get("nofile", "hard")
    wanted = hard if nofile == "hard" else int(nofile)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    from dimse import AE, evt, sop
    from dimse.storage import FileStorage

    lock = threading.Lock()
    counts = {"running": 0, "max_running": 0, "stored": 0, "conn_open": 0}
    pause = float(settings.get("handler_sleep", 0))

    def on_store(event):
        with lock:
            counts["running"] += 1
            counts["stored"] += 1
            counts["max_running"] = max(counts["max_running"], counts["running"])
        try:
            if pause:
                time.sleep(pause)
            return 0x0000
        finally:
            with lock:
                counts["running"] -= 1

    def on_conn_open(event):
        with lock:
            counts["conn_open"] += 1

    def on_user_id(event):
        return True, None

    ae = AE("SCALESCP")
    for name in ("maximum_associations", "handler_threads", "acse_timeout", "network_timeout"):
        if name in settings:
            setattr(ae, name, settings[name])
    ae.add_supported_context(sop.Verification)
    ae.add_supported_context(sop.CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    handlers = []
    storage = None
    store = settings.get("store", "discard")
    if store == "python":
        handlers.append((evt.EVT_C_STORE, on_store))
    elif store == "discard":
        storage = FileStorage(tempfile.gettempdir(), discard=True)
    if settings.get("notify"):
        handlers.append((evt.EVT_CONN_OPEN, on_conn_open))
    if settings.get("user_id"):
        handlers.append((evt.EVT_USER_ID, on_user_id))
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers, storage=storage)
    assert server is not None
    print("PORT", server.server_address[1], flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                with lock:
                    out = json.dumps(counts)
                print(out, flush=True)
            elif command == "reset":
                with lock:
                    counts["max_running"] = 0
                print("ok", flush=True)
            else:
                print("unknown command", flush=True)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
