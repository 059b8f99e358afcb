"""Storage written in Rust: received instances go straight to DICOM files.

``AE.start_server(..., storage=FileStorage("out"))`` makes the server answer every C-STORE
itself: the data set is written, as it arrived, after a File Meta Information (PS3.10), to
a temporary name in its final folder, then renamed; success is returned only after that,
and a failed write returns 0xA700 (Refused: Out of Resources) and leaves no partial file.
No byte of the data set passes through Python. ``on_stored`` is told of each file after
it is written (to index it, say) and may change the status it gets.

File names come from the SOP Instance UID (``<uid>.dcm``); with ``layout="study"`` in
``<Study Instance UID>/<Series Instance UID>/`` folders read from the data set. A UID that
is not a valid UID is replaced by a digest (``x<16 hex digits>``): whatever a peer sends,
files stay inside ``directory``.

Durability: by default a stored file survives the process being killed at any moment (it
is complete under its final name, or absent). With ``fsync=True`` the file and its folder
are also flushed to the device before success is returned, so it survives a power loss;
this costs a device round trip per instance.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dimse import _core

__all__ = ["TEMP_SUFFIX", "FileStorage", "StoredInstance"]

#: Temporary files carry this suffix until they are renamed; any left after a crash are
#: incomplete and may be deleted.
TEMP_SUFFIX = ".part"


@dataclass(frozen=True)
class StoredInstance:
    """An instance the server has just written (what ``on_stored`` receives)."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    #: Length of the data set in bytes (the file adds its File Meta Information).
    size: int
    calling_ae_title: str
    #: The association it came on (as ``event.assoc`` for handlers).
    assoc: Any = None


#: What ``on_stored`` returns: None (success), a status, or (status, error comment).
StoredResult = int | tuple[int, str] | None


@dataclass(frozen=True)
class FileStorage:
    """Where and how a server writes the instances it receives (see the module docs)."""

    directory: str | os.PathLike[str]
    layout: Literal["flat", "study"] = "flat"
    fsync: bool = False
    #: Accept and answer success without writing anything (storescp --ignore).
    discard: bool = False
    on_stored: Callable[[StoredInstance], StoredResult] | None = None

    def __post_init__(self) -> None:
        if self.layout not in ("flat", "study"):
            raise ValueError(f'layout must be "flat" or "study", not {self.layout!r}')
        if not self.discard:
            directory = Path(self.directory)
            if directory.exists() and not directory.is_dir():
                raise ValueError(f"{directory} is not a folder")

    def settings(self) -> dict[str, Any]:
        """The settings as the extension takes them."""
        return {
            "directory": os.fspath(Path(self.directory).absolute()),
            "layout": self.layout,
            "durability": "fsync" if self.fsync else "rename",
            "discard": self.discard,
        }

    def remove_stale_parts(self) -> list[Path]:
        """Deletes the temporary files (``.<name>.<pid>-<n>.part``) that processes which
        no longer run left behind (killed mid-write); those of live processes (another
        worker on the same folder) stay. Returns what it deleted. Run it at start-up."""
        removed: list[Path] = []
        root = Path(self.directory)
        if self.discard or not root.is_dir():
            return removed
        for path in root.rglob(f".*{TEMP_SUFFIX}"):
            pid_text = path.name[: -len(TEMP_SUFFIX)].rpartition(".")[2].partition("-")[0]
            if not pid_text.isdigit() or _alive(int(pid_text)):
                continue
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
        return removed

    def write(
        self,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
        data: bytes,
        source_ae_title: str | None = None,
    ) -> Path:
        """Writes one data set (encoded in ``transfer_syntax_uid``) as a DICOM file, the
        way the server does, and returns its path. Raises ``StorageFailed`` (an OSError)
        when the file cannot be written, ``InvalidArgument`` for a UID that a File Meta
        Information cannot carry."""
        return Path(
            _core.store_file(
                self.directory,
                sop_class_uid,
                sop_instance_uid,
                transfer_syntax_uid,
                data,
                source_ae_title=source_ae_title or None,
                layout=self.layout,
                durability="fsync" if self.fsync else "rename",
            )
        )


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (signal 0 checks without signalling)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
