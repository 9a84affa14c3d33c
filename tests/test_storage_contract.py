"""One contract for every Storage backend: local directory, in-memory fake, and S3 (moto over HTTP).

Operations may take any of them (DESIGN decision 14), so each behaviour the operations rely on is checked on
all three with the same test: what is stored, what is listed, what is refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from openwatch_backup.errors import StorageError
from openwatch_backup.storage.base import Storage
from openwatch_backup.storage.local import LocalStorage
from openwatch_backup.storage.memory import MemoryStorage
from openwatch_backup.storage.probe import probe
from tests.support.moto_server import SECRET_KEY, s3_storage

MIB = 1 << 20


@pytest.fixture(params=["local", "memory", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "backups")
    if request.param == "memory":
        return MemoryStorage()
    endpoint = request.getfixturevalue("moto_endpoint")
    return s3_storage(endpoint, request.getfixturevalue("bucket"))


def write_in_chunks(storage: Storage, key: str, data: bytes, chunk: int = MIB) -> None:
    writer = storage.open_writer(key)
    for start in range(0, len(data), chunk):
        writer.write(data[start:start + chunk])
    writer.commit()


def keys(storage: Storage, prefix: str = "") -> list[tuple[str, int]]:
    return [(o.key, o.size) for o in storage.list(prefix)]


@pytest.mark.parametrize("size", [0, 1, 12 * MIB + 3], ids=["empty", "one-byte", "three-parts"])
def test_written_bytes_read_back_whole_and_streamed(storage: Storage, size: int) -> None:
    data = os.urandom(size)
    write_in_chunks(storage, "postgres/a.dump", data)
    assert storage.exists("postgres/a.dump")
    assert storage.size("postgres/a.dump") == size
    assert storage.read_bytes("postgres/a.dump") == data
    digest = hashlib.sha256()
    with storage.open_reader("postgres/a.dump") as reader:
        while chunk := reader.read(256 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert keys(storage) == [("postgres/a.dump", size)]


def test_nothing_is_visible_before_commit_and_abort_leaves_nothing(storage: Storage) -> None:
    writer = storage.open_writer("postgres/b.dump")
    writer.write(os.urandom(11 * MIB))
    assert not storage.exists("postgres/b.dump")
    writer.abort()
    assert not storage.exists("postgres/b.dump")
    assert keys(storage, "postgres") == []


def test_list_is_sorted_and_limited_to_the_folder(storage: Storage) -> None:
    for key, body in [("postgres/z.dump", b"zz"), ("postgres/a.manifest.json", b"{}"),
                      ("postgresx/other", b"x"), ("config/c.tar", b"ccc")]:
        storage.put_bytes(key, body)
    assert keys(storage, "postgres") == [("postgres/a.manifest.json", 2), ("postgres/z.dump", 2)]
    assert keys(storage) == [("config/c.tar", 3), ("postgres/a.manifest.json", 2), ("postgres/z.dump", 2),
                             ("postgresx/other", 1)]
    assert keys(storage, "nothing-here") == []


def test_an_existing_artifact_is_never_overwritten(storage: Storage) -> None:
    storage.put_bytes("postgres/a.dump", b"first")
    with pytest.raises(StorageError, match="already exists"):
        storage.open_writer("postgres/a.dump")
    with pytest.raises(StorageError, match="already exists"):
        storage.put_bytes("postgres/a.dump", b"second")
    assert storage.read_bytes("postgres/a.dump") == b"first"


@pytest.mark.parametrize("key", ["../escape", "/abs/key", "postgres/../../x", ""])
def test_keys_that_leave_the_root_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(StorageError, match="refusing storage key"):
        storage.open_writer(key)


def test_delete_removes_and_tolerates_a_missing_key(storage: Storage) -> None:
    storage.put_bytes("postgres/a.dump", b"a")
    storage.put_bytes("postgres/b.dump", b"b")
    storage.delete("postgres/a.dump")
    storage.delete("postgres/never-was")
    assert keys(storage, "postgres") == [("postgres/b.dump", 1)]
    assert not storage.exists("postgres/a.dump")


def test_reading_a_missing_key_is_a_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError):
        storage.read_bytes("postgres/missing.dump")
    with pytest.raises(StorageError):
        storage.open_reader("postgres/missing.dump")


def test_location_names_the_key_and_no_credential(storage: Storage) -> None:
    location = storage.location("postgres/a.dump")
    assert location.endswith("postgres/a.dump")
    assert SECRET_KEY not in location


def test_probe_passes_and_leaves_nothing(storage: Storage) -> None:
    result = probe(storage)
    assert [(s.name, s.ok) for s in result.steps] == [("put", True), ("head", True), ("get", True),
                                                        ("delete", True)]
    assert result.ok
    assert "put, head, get and delete work" in result.summary()
    assert keys(storage) == []


def test_writers_of_one_storage_do_not_mix(storage: Storage) -> None:
    first, second = storage.open_writer("postgres/1.dump"), storage.open_writer("postgres/2.dump")
    payload: Callable[[int], bytes] = lambda n: bytes([n]) * (6 * MIB)  # noqa: E731
    first.write(payload(1))
    second.write(payload(2))
    first.write(payload(3))
    second.commit()
    first.commit()
    assert storage.read_bytes("postgres/1.dump") == payload(1) + payload(3)
    assert storage.read_bytes("postgres/2.dump") == payload(2)
