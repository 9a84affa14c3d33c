"""Copy one stored object to another storage (local -> S3 for an off-site copy, S3 -> local for a new host).

Streams in 1 MiB chunks: nothing is staged. The source's sha256 and size (from its manifest) go to the target's
writer up front where it takes them (S3 puts the sha256 in the object's metadata and refuses to complete an
upload whose bytes differ), and are checked here for every target: a source that changed or a short read never
leaves a copy behind.
"""

from __future__ import annotations

import hashlib
import inspect

from openwatch_backup.errors import StorageError, StorageIntegrityError
from openwatch_backup.storage.base import ArtifactWriter, Storage

CHUNK = 1 << 20


def _open_writer(target: Storage, key: str, sha256: str, size: int) -> ArtifactWriter:
    parameters = inspect.signature(target.open_writer).parameters
    if "sha256" in parameters and "size_hint" in parameters:
        writer: ArtifactWriter = target.open_writer(key, size_hint=size, sha256=sha256)  # type: ignore[call-arg]
        return writer
    return target.open_writer(key)


def copy_object(source: Storage, target: Storage, key: str, *, sha256: str, size: int) -> None:
    """Copy `key` from source to target under the same key; raise StorageError (nothing left on the target) unless
    the bytes read have exactly this sha256 and size."""
    writer = _open_writer(target, key, sha256, size)
    digest, copied = hashlib.sha256(), 0
    try:
        with source.open_reader(key) as reader:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                copied += len(chunk)
                writer.write(chunk)
        if copied != size or digest.hexdigest() != sha256:
            raise StorageIntegrityError(
                f"{source.location(key)} read as {copied} bytes with sha256 {digest.hexdigest()}, not the "
                f"{size} bytes with sha256 {sha256} its manifest records; nothing was copied to "
                f"{target.location(key)}")
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    stored = target.size(key)
    if stored != size:
        target.delete(key)
        raise StorageError(f"{target.location(key)} held {stored} bytes after the copy, not {size}; the copy was "
                           "deleted")
