"""TLS for associations (PS3.15 Annex B, the secure transport connection profiles).

One :class:`TLS` describes both roles' material; pass it as ``start_server(..., tls=...)``
or ``associate(..., tls=...)``::

    server_tls = dimse.TLS(cert="scp.pem", key="scp.key", ca="clients-ca.pem")  # mutual TLS
    client_tls = dimse.TLS(ca="ca.pem", cert="scu.pem", key="scu.key")

TLS 1.2 and 1.3 only, with rustls's cipher suites (ECDHE key exchange, AEAD ciphers):
the BCP 195 profiles of PS3.15 B.9. Certificates and keys are PEM, given as paths or as
the PEM bytes themselves. They are read and checked when the server starts or the first
association is requested, so a wrong file fails there with a message naming it.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any, Literal

from . import _core
from .exceptions import InvalidArgument

__all__ = ["TLS"]

PemSource = str | os.PathLike[str] | bytes

#: How a server treats client certificates.
ClientAuth = Literal["none", "optional", "required"]


def _pem(source: PemSource | None, what: str) -> bytes | None:
    """The PEM bytes of a path or of PEM given inline."""
    if source is None:
        return None
    if isinstance(source, bytes | bytearray):
        if b"-----BEGIN " not in source:
            raise InvalidArgument(
                f"TLS {what}: bytes are taken as PEM text, and these hold no "
                "'-----BEGIN ...' line (give a path as str or Path to read a file)"
            )
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        try:
            with open(source, "rb") as f:
                return f.read()
        except OSError as e:
            raise InvalidArgument(
                f"TLS {what}: cannot read {os.fspath(source)!r}: {e.strerror}"
            ) from None
    raise InvalidArgument(
        f"TLS {what}: expected a path (str or os.PathLike) or PEM bytes, "
        f"not {type(source).__name__}"
    )


class TLS:
    """Certificates, keys and checks for TLS associations.

    As a server (``start_server(tls=...)``): ``cert`` (our chain, ours first) and ``key``
    are required. With ``ca`` the server asks for client certificates and verifies them
    against it: ``client_auth="required"`` (the default with ``ca``: mutual TLS) refuses a
    client without one, ``"optional"`` serves it.

    As a client (``associate(tls=...)``): ``ca`` is what the server's chain must lead to,
    and the server's certificate must name the host connected to (DNS name or IP address;
    ``server_hostname`` to check another name, ``check_hostname=False`` to trust any name
    the CA vouches for). ``cert``/``key`` are sent to a server that asks. ``verify=False``
    skips every check of the server (encryption without authentication, as DCMTK's
    ``-ic``): for tests only.

    ``minimum_version`` is ``"1.2"`` (default) or ``"1.3"``.
    """

    def __init__(
        self,
        *,
        cert: PemSource | None = None,
        key: PemSource | None = None,
        ca: PemSource | None = None,
        client_auth: ClientAuth | None = None,
        check_hostname: bool = True,
        server_hostname: str | None = None,
        verify: bool = True,
        minimum_version: Literal["1.2", "1.3"] = "1.2",
    ) -> None:
        if (cert is None) != (key is None):
            raise InvalidArgument(
                "TLS: a certificate needs its private key and a key its certificate: "
                "give both cert= and key=, or neither"
            )
        if client_auth not in (None, "none", "optional", "required"):
            raise InvalidArgument(
                f"TLS client_auth must be 'none', 'optional' or 'required', not {client_auth!r}"
            )
        if client_auth in ("optional", "required") and ca is None:
            raise InvalidArgument(
                f"TLS client_auth={client_auth!r} needs ca= (the CAs client certificates "
                "must chain to)"
            )
        if minimum_version not in ("1.2", "1.3"):
            raise InvalidArgument(
                f"TLS minimum_version must be '1.2' or '1.3' (BCP 195 allows nothing "
                f"older), not {minimum_version!r}"
            )
        if not verify and ca is not None:
            raise InvalidArgument("TLS: verify=False ignores ca=; give one or the other")
        self.cert = cert
        self.key = key
        self.ca = ca
        self.client_auth: ClientAuth = client_auth or ("required" if ca is not None else "none")
        self.check_hostname = check_hostname
        self.server_hostname = server_hostname
        self.verify = verify
        self.minimum_version = minimum_version
        self._server: _core.TlsServerConfig | None = None
        self._client: _core.TlsClientConfig | None = None

    @classmethod
    def from_ssl_args(cls, args: Mapping[str, Any], *, server: bool) -> TLS:
        """A TLS from a description in the ``ssl`` module's words: ``certfile``,
        ``keyfile``, ``cafile`` (as ``SSLContext.load_cert_chain`` and
        ``load_verify_locations`` take them), ``verify_mode`` (``ssl.CERT_NONE``,
        ``CERT_OPTIONAL``, ``CERT_REQUIRED``), ``check_hostname``, ``server_hostname``,
        ``minimum_version`` (``ssl.TLSVersion.TLSv1_2`` or ``TLSv1_3``). ``server`` says
        which role ``verify_mode`` is for. ``start_server``/``associate`` take such a
        mapping as ``tls=`` too."""
        known = {
            "certfile", "keyfile", "cafile", "verify_mode", "check_hostname",
            "server_hostname", "minimum_version",
        }  # fmt: skip
        unknown = sorted(set(args) - known)
        if unknown:
            raise InvalidArgument(
                f"TLS description: unknown keys {unknown}; known: {sorted(known)}"
            )
        mode = args.get("verify_mode", ssl.CERT_REQUIRED)
        if mode not in (ssl.CERT_NONE, ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED):
            raise InvalidArgument(f"TLS description: verify_mode {mode!r} is not an ssl.CERT_*")
        version = args.get("minimum_version", ssl.TLSVersion.TLSv1_2)
        versions = {ssl.TLSVersion.TLSv1_2: "1.2", ssl.TLSVersion.TLSv1_3: "1.3"}
        if version not in versions:
            raise InvalidArgument(
                f"TLS description: minimum_version must be ssl.TLSVersion.TLSv1_2 or "
                f"TLSv1_3 (BCP 195 allows nothing older), not {version!r}"
            )
        ca = args.get("cafile")
        if server:
            auth: ClientAuth | None = None
            if ca is not None:
                auth = {
                    ssl.CERT_NONE: "none",
                    ssl.CERT_OPTIONAL: "optional",
                    ssl.CERT_REQUIRED: "required",
                }[mode]  # type: ignore[assignment]
            return cls(
                cert=args.get("certfile"),
                key=args.get("keyfile"),
                ca=ca if auth != "none" else None,
                client_auth=auth if auth != "none" else None,
                minimum_version=versions[version],  # type: ignore[arg-type]
            )
        verify = mode != ssl.CERT_NONE
        return cls(
            cert=args.get("certfile"),
            key=args.get("keyfile"),
            ca=ca if verify else None,
            verify=verify,
            check_hostname=bool(args.get("check_hostname", True)),
            server_hostname=args.get("server_hostname"),
            minimum_version=versions[version],  # type: ignore[arg-type]
        )

    def _server_config(self) -> _core.TlsServerConfig:
        """The server side, built (and checked) once."""
        if self._server is None:
            if self.cert is None:
                raise InvalidArgument(
                    "TLS for a server needs cert= and key= (its certificate and private key)"
                )
            self._server = _core.TlsServerConfig(
                _pem(self.cert, "cert") or b"",
                _pem(self.key, "key") or b"",
                client_ca=_pem(self.ca, "ca"),
                client_auth=self.client_auth,
                minimum_version=self.minimum_version,
            )
        return self._server

    def _client_config(self) -> _core.TlsClientConfig:
        """The client side, built (and checked) once."""
        if self._client is None:
            if self.verify and self.ca is None:
                raise InvalidArgument(
                    "TLS for a client needs ca= (the CA bundle the server's certificate "
                    "must chain to), or verify=False to skip checking the server"
                )
            self._client = _core.TlsClientConfig(
                ca=_pem(self.ca, "ca") if self.verify else None,
                check_hostname=self.check_hostname,
                cert_chain=_pem(self.cert, "cert"),
                key=_pem(self.key, "key"),
                server_hostname=self.server_hostname,
                minimum_version=self.minimum_version,
            )
        return self._client

    def __repr__(self) -> str:
        parts = [
            f"{name}={getattr(self, name)!r}" for name in ("cert", "ca") if getattr(self, name)
        ]
        if not self.verify:
            parts.append("verify=False")
        return f"TLS({', '.join(parts)})"
