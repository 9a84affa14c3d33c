"""copy_object: local -> S3 (the off-site copy) and S3 -> local (a new host), streamed and checked end to end."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from openwatch_backup.errors import StorageIntegrityError
from openwatch_backup.storage.copy import copy_object
from openwatch_backup.storage.local import LocalStorage
from openwatch_backup.storage.memory import MemoryStorage
from tests.support.moto_server import open_uploads, s3_storage, stored

MIB = 1 << 20
DATA = os.urandom(13 * MIB + 7)
SHA = hashlib.sha256(DATA).hexdigest()
KEY = "postgres/openwatch_20261130_020000.dump.zst"


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "backups")
    storage.put_bytes(KEY, DATA)
    return storage


def test_local_to_s3_and_back_to_a_new_host(local: LocalStorage, moto_endpoint: str, bucket: str,
                                            tmp_path: Path) -> None:
    remote = s3_storage(moto_endpoint, bucket)
    copy_object(local, remote, KEY, sha256=SHA, size=len(DATA))
    body, metadata = stored(moto_endpoint, bucket, KEY)
    assert body == DATA
    assert metadata == {"sha256": SHA}
    new_host = LocalStorage(tmp_path / "new-host")
    copy_object(remote, new_host, KEY, sha256=SHA, size=len(DATA))
    assert (tmp_path / "new-host" / KEY).read_bytes() == DATA


def test_a_source_that_no_longer_matches_its_manifest_leaves_no_copy(local: LocalStorage, moto_endpoint: str,
                                                                     bucket: str) -> None:
    remote = s3_storage(moto_endpoint, bucket)
    wrong = hashlib.sha256(b"another backup").hexdigest()
    with pytest.raises(StorageIntegrityError) as info:
        copy_object(local, remote, KEY, sha256=wrong, size=len(DATA))
    assert info.value.message == (f"{local.location(KEY)} read as {len(DATA)} bytes with sha256 {SHA}, not the "
                                  f"{len(DATA)} bytes with sha256 {wrong} its manifest records; nothing was copied "
                                  f"to {remote.location(KEY)}")
    assert not remote.exists(KEY)
    assert open_uploads(moto_endpoint, bucket) == []


def test_a_short_source_leaves_no_copy_on_a_plain_target(local: LocalStorage) -> None:
    target = MemoryStorage()
    with pytest.raises(StorageIntegrityError) as info:
        copy_object(local, target, KEY, sha256=SHA, size=len(DATA) + 1)
    assert info.value.message.startswith(f"{local.location(KEY)} read as {len(DATA)} bytes")
    assert target.list() == []
