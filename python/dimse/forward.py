"""Forwarding in Rust: a storage SCP that passes every instance on to another AE.

``AE.start_server(..., forward=Forward("pacs", 104, "PACS"))`` makes the server answer
each C-STORE by sending the data set, as it was received (never decoded, no Python on the
path), to the destination over a small pool of associations, and by returning the
destination's status. The pool keeps, per SOP Class and transfer syntax, up to
``max_associations`` associations each proposing that one context (so an instance is
never converted), releases the ones idle for ``idle_timeout`` seconds, and replaces one
the destination closed while idle (the request is sent again, once, on a new one).

With ``spool`` (a folder), an instance the destination cannot take now (unreachable, the
association refused, the link broken) is written there (fsynced) and acknowledged with
success; the spool is sent again every ``retry_interval`` seconds, oldest first. Without
it such an instance gets 0xA700 (Refused: Out of Resources) with the reason.
With ``tls`` (a :class:`dimse.TLS` with ``ca``, and ``cert``/``key`` for a destination
that wants a client certificate) the associations to the destination run over TLS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dimse.tls import TLS

__all__ = ["Forward"]


@dataclass(frozen=True)
class Forward:
    """Where a forwarding server sends what it receives (see the module docs)."""

    host: str
    port: int
    ae_title: str
    #: Our AE title toward the destination (default: the server's own).
    calling_ae_title: str | None = None
    max_associations: int = 2
    idle_timeout: float = 30.0
    dimse_timeout: float = 60.0
    spool: str | os.PathLike[str] | None = None
    retry_interval: float = 10.0
    #: TLS toward the destination (None: plain TCP).
    tls: TLS | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be 1..65535, not {self.port}")
        if self.max_associations < 1:
            raise ValueError(f"max_associations must be at least 1, not {self.max_associations}")
        from dimse.tls import TLS

        if self.tls is not None and not isinstance(self.tls, TLS):
            raise ValueError(f"tls must be a dimse.TLS, not {type(self.tls).__name__}")
        for name in ("idle_timeout", "dimse_timeout", "retry_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")

    def settings(self, calling_ae_title: str) -> dict[str, Any]:
        """The settings as the extension takes them."""
        spool = None
        if self.spool is not None:
            folder = Path(self.spool).absolute()
            folder.mkdir(parents=True, exist_ok=True)
            spool = os.fspath(folder)
        return {
            "host": self.host,
            "port": self.port,
            "ae_title": self.ae_title,
            "calling_ae_title": self.calling_ae_title or calling_ae_title,
            "max_associations": self.max_associations,
            "idle_timeout": float(self.idle_timeout),
            "dimse_timeout": float(self.dimse_timeout),
            "spool": spool,
            "retry_interval": float(self.retry_interval),
        }
