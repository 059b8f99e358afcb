"""Type stubs of the ``dimse._core`` extension module (checked by mypy.stubtest in CI)."""

import os
import pathlib
from collections.abc import Callable
from typing import Any, final

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "Association",
    "MessageAssembler",
    "PduReader",
    "Responder",
    "Server",
    "TlsClientConfig",
    "TlsServerConfig",
    "__version__",
    "associate",
    "decode_command_set",
    "decode_message",
    "decode_pdu",
    "encode_command_set",
    "encode_message",
    "encode_pdu",
    "fragment",
    "read_file_meta",
    "status_category",
    "status_name",
    "store_file",
]

__version__: str
IMPLEMENTATION_CLASS_UID: str
IMPLEMENTATION_VERSION_NAME: str

def decode_command_set(data: bytes) -> dict[str, Any]:
    """Decode a command set into ``{keyword: value}``."""

def encode_command_set(elements: dict[str, Any]) -> bytes:
    """Encode ``{keyword: value}`` into a command set with Command Group Length."""

def decode_message(data: bytes) -> dict[str, Any]:
    """Decode a command set into a typed message dict with ``type`` and ``has_dataset``."""

def encode_message(message: dict[str, Any], has_dataset: bool | None = None) -> bytes:
    """Encode a typed message dict into a command set."""

def decode_pdu(data: bytes, max_pdu_length: int = 0) -> dict[str, Any]:
    """Decode one complete PDU into a dict with a ``pdu`` key naming its type."""

def encode_pdu(pdu: dict[str, Any]) -> bytes:
    """Encode a PDU dict."""

def fragment(
    context_id: int, command: bytes, dataset: bytes | None = None, max_pdu_length: int = 0
) -> list[bytes]:
    """Split a message into encoded P-DATA-TF PDUs no longer than the peer accepts."""

def read_file_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A DICOM file's File Meta Information, with ``data_offset`` and ``has_preamble``."""

def store_file(
    directory: str | os.PathLike[str],
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax_uid: str,
    dataset: bytes,
    source_ae_title: str | None = None,
    layout: str = "flat",
    durability: str = "rename",
) -> pathlib.Path:
    """Writes a data set as a DICOM file (temporary name, then rename); returns its path."""

def status_category(code: int, service: str | None = None) -> str:
    """The category of a status code: Success, Pending, Cancel, Warning or Failure."""

def status_name(code: int, service: str | None = None) -> str | None:
    """The standard's name of a status code, optionally within a service."""

@final
class PduReader:
    """Incremental PDU reader: feed bytes, read PDUs as they complete."""

    def __new__(
        cls, max_pdu_length: int = 0, max_associate_length: int | None = None
    ) -> PduReader: ...
    def feed(self, data: bytes) -> None: ...
    def read(self) -> dict[str, Any] | None: ...
    def buffered(self) -> int: ...

@final
class MessageAssembler:
    """Reassembles DIMSE messages from P-DATA-TF PDUs."""

    def __new__(cls, max_dataset_length: int | None = None) -> MessageAssembler: ...
    def push_pdu(self, pdu: bytes) -> list[tuple[int, bytes, bytes | None]]: ...

def associate(
    address: str,
    params: dict[str, Any],
    settings: dict[str, Any],
    tls: TlsClientConfig | None = None,
) -> Association:
    """Connect to ``address`` ("host:port") and negotiate; raises AssociationRejected,
    AssociationAborted, ConnectFailed or TLSError."""

@final
class TlsServerConfig:
    """A server's TLS configuration, checked when built."""

    def __new__(
        cls,
        cert_chain: bytes,
        key: bytes,
        client_ca: bytes | None = None,
        client_auth: str = "none",
        minimum_version: str = "1.2",
    ) -> TlsServerConfig: ...

@final
class TlsClientConfig:
    """A client's TLS configuration, checked when built."""

    def __new__(
        cls,
        ca: bytes | None = None,
        check_hostname: bool = True,
        cert_chain: bytes | None = None,
        key: bytes | None = None,
        server_hostname: str | None = None,
        minimum_version: str = "1.2",
    ) -> TlsClientConfig: ...

@final
class Association:
    """An established association (requestor side)."""

    def negotiated(self) -> dict[str, Any]: ...
    def peer(self) -> tuple[str, int]: ...
    def send(self, context_id: int, command: bytes, dataset: bytes | None = None) -> None: ...
    def receive(self, timeout: float | None = None) -> tuple[Any, ...]: ...
    def request(
        self,
        context_id: int,
        command: bytes,
        dataset: bytes | None = None,
        timeout: float | None = None,
    ) -> tuple[Any, ...]: ...
    def request_file(
        self,
        context_id: int,
        command: bytes,
        path: str | os.PathLike[str],
        offset: int,
        timeout: float | None = None,
    ) -> tuple[Any, ...]: ...
    def release_response(self) -> None: ...
    def release(self, timeout: float = 30.0) -> None: ...
    def abort(self) -> None: ...

@final
class Responder:
    """What a handler uses to send responses as it goes and to see a C-CANCEL."""

    def send(self, context_id: int, command: bytes, dataset: bytes | None = None) -> bool: ...
    def is_cancelled(self) -> bool: ...
    def reply(self, timeout: float | None = None) -> tuple[int, bytes, bytes | None] | None: ...

@final
class Server:
    """A running server."""

    def __new__(
        cls,
        host: str,
        port: int,
        acceptor: dict[str, Any],
        settings: dict[str, Any],
        dispatch: Callable[..., list[tuple[int, bytes, bytes | None]]] | None = None,
        hooks: object | None = None,
        native_echo: bool = True,
        handler_threads: int = 8,
        notify: Callable[[str, dict[str, Any], Any], None] | None = None,
        storage: dict[str, Any] | None = None,
        on_stored: Callable[[dict[str, Any], dict[str, Any]], Any] | None = None,
        reuse_port: bool = False,
        forward: dict[str, Any] | None = None,
        tls: TlsServerConfig | None = None,
        forward_tls: TlsClientConfig | None = None,
    ) -> Server: ...
    @property
    def address(self) -> tuple[str, int]: ...
    def shutdown(self, timeout: float = 10.0) -> None: ...
    def set_notifications(self, kinds: list[str]) -> None: ...
    def set_native_echo(self, on: bool) -> None: ...
    def set_negotiation_hooks(self, on: bool) -> None: ...
    def track(self, id: int) -> None: ...
    def ended(self) -> list[int]: ...
    def is_running(self) -> bool: ...
