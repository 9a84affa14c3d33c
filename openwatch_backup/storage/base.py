"""The storage interface: a writer that is committed whole or not at all, plus read, list and delete.

Keys are plain relative paths such as `postgres/openwatch_20261126_020000.dump.zst`. An S3 backend
takes the same `write` stream (as a multipart upload) without staging to local disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


class ArtifactWriter(Protocol):
    """Bytes written here are invisible under `key` until commit(); abort() removes every trace."""

    key: str

    def write(self, data: bytes) -> int: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class Storage(Protocol):
    name: str

    def check_writable(self) -> None:
        """Raise StorageError naming the location and the fix when it cannot take new artifacts."""

    def free_bytes(self) -> int | None:
        """Free space for new artifacts, or None where the notion does not apply (object stores)."""

    def open_writer(self, key: str) -> ArtifactWriter: ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object atomically (manifests)."""

    def read_bytes(self, key: str) -> bytes: ...

    def open_reader(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def list(self, prefix: str = "") -> list[StoredObject]: ...

    def delete(self, key: str) -> None: ...

    def location(self, key: str) -> str:
        """Human and catalog form of where the key lives (a path or a URL, never a credential)."""


def write_whole(writer: ArtifactWriter, data: bytes) -> None:
    """Write `data` through `writer` and commit it, or abort: every backend's put_bytes."""
    try:
        writer.write(data)
    except BaseException:
        writer.abort()
        raise
    writer.commit()
