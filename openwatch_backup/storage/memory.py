"""An in-memory Storage for unit and contract tests: same contract as local and S3, nothing on disk.

It keeps local storage's rules: keys are relative paths without '..', a writer's bytes are invisible until
commit, abort leaves no trace, and an existing artifact is never overwritten.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import BinaryIO

from openwatch_backup.errors import StorageError, StorageObjectMissing
from openwatch_backup.storage.base import StoredObject


def _check_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or key.endswith("/") or any(p in ("..", ".", "") for p in parts):
        raise StorageError(f"refusing storage key {key!r}: keys are relative paths without '..'")
    return key


class MemoryWriter:
    def __init__(self, storage: MemoryStorage, key: str) -> None:
        self.key = key
        self._storage = storage
        self._buffer: io.BytesIO | None = io.BytesIO()

    def write(self, data: bytes) -> int:
        if self._buffer is None:
            raise StorageError(f"write to memory://{self.key} after commit or abort")
        return self._buffer.write(data)

    def commit(self) -> None:
        if self._buffer is None:
            raise StorageError(f"commit of memory://{self.key} after commit or abort")
        data, self._buffer = self._buffer.getvalue(), None
        self._storage._store(self.key, data)

    def abort(self) -> None:
        self._buffer = None


class MemoryStorage:
    name = "memory"

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, datetime]] = {}
        self._lock = threading.Lock()

    def _store(self, key: str, data: bytes) -> None:
        with self._lock:
            if key in self._objects:
                raise StorageError(f"{self.location(key)} already exists; refusing to overwrite an artifact")
            self._objects[key] = (data, datetime.now(UTC))

    def _get(self, key: str) -> bytes:
        with self._lock:
            found = self._objects.get(_check_key(key))
        if found is None:
            raise StorageObjectMissing(f"cannot read {self.location(key)}: no such object")
        return found[0]

    def check_writable(self) -> None:
        return None

    def free_bytes(self) -> int | None:
        return None

    def open_writer(self, key: str) -> MemoryWriter:
        if self.exists(key):
            raise StorageError(f"{self.location(key)} already exists; refusing to overwrite an artifact")
        return MemoryWriter(self, _check_key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._store(_check_key(key), bytes(data))

    def read_bytes(self, key: str) -> bytes:
        return self._get(key)

    def open_reader(self, key: str) -> BinaryIO:
        return io.BytesIO(self._get(key))

    def exists(self, key: str) -> bool:
        with self._lock:
            return _check_key(key) in self._objects

    def size(self, key: str) -> int:
        return len(self._get(key))

    def list(self, prefix: str = "") -> list[StoredObject]:
        below = _check_key(prefix) + "/" if prefix else ""
        with self._lock:
            items = [(k, v) for k, v in self._objects.items() if k.startswith(below)]
        return sorted((StoredObject(key=k, size=len(data), modified=when) for k, (data, when) in items),
                      key=lambda o: o.key)

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(_check_key(key), None)

    def location(self, key: str) -> str:
        return f"memory://{key}"

    def replace(self, key: str, data: bytes) -> None:
        """Tests only: change an object behind the storage's back (corruption, truncation)."""
        with self._lock:
            self._objects[_check_key(key)] = (data, datetime.now(UTC))
