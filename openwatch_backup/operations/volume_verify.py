"""Verify a volume snapshot: size, then every stored byte's sha256 while the zstd stream is decompressed and every
tar member header is read (tarfile's stream mode: member data is read past, nothing is written anywhere).

Reasons: `size` (the file is not as long as recorded), `checksum` (its sha256 differs), `unreadable` (zstd or
tar cannot read it to its end), `manifest` (it reads, but holds another number of members than recorded).
There is no database to restore a volume into, so `verify --deep` of a volume run does these same checks.
"""

from __future__ import annotations

import tarfile
import time
from collections.abc import Iterator
from typing import Any

from openwatch_backup.core.artifact_stream import HashingReader, UnreadableArtifact, decoded_chunks
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.verify_result import VerifyReason, VerifyResult, failed
from openwatch_backup.operations.context import OperationContext


class _Chunks:
    """read(size) over decompressed chunks, for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        cut = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        data = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        return data


def count_members(chunks: Iterator[bytes]) -> int:
    """Every member header of the tar stream, read to the end-of-archive marker; UnreadableArtifact if it breaks."""
    source = _Chunks(chunks)
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:  # type: ignore[call-overload]
            members = sum(1 for _ in tar)
    except tarfile.TarError as exc:
        raise UnreadableArtifact(f"tar cannot read it ({exc})") from None
    except EOFError:
        raise UnreadableArtifact("the tar stream ends in the middle of a member (truncated)") from None
    while source.read(1 << 20):  # the zero blocks after the marker: decompressed (and so checked) to the end
        pass
    return members


def verify_volume(ctx: OperationContext, manifest: Manifest, key: str, checks: dict[str, Any]) -> VerifyResult:
    started = time.monotonic()
    size = ctx.storage.size(key)
    checks["size_bytes"] = size
    if size != manifest.size_bytes:
        return failed(False, VerifyReason.SIZE, f"{manifest.artifact} is {size} bytes, the manifest says "
                      f"{manifest.size_bytes}", checks)
    problem = None
    members = 0
    with ctx.storage.open_reader(key) as raw:
        reader = HashingReader(raw)
        try:
            members = count_members(decoded_chunks(reader, wrapper="zstd", gunzip=False))
        except UnreadableArtifact as exc:
            problem = str(exc)
        reader.drain()
    checks["sha256"] = reader.hexdigest()
    checks["read_seconds"] = round(time.monotonic() - started, 3)
    if checks["sha256"] != manifest.sha256:
        return failed(False, VerifyReason.CHECKSUM, f"{manifest.artifact} has sha256 {checks['sha256']}, the "
                      f"manifest says {manifest.sha256}", checks)
    if problem is not None:
        return failed(False, VerifyReason.UNREADABLE, f"{manifest.artifact}: {problem}", checks)
    checks["members"] = members
    expected = manifest.volume.members if manifest.volume is not None else members
    if members != expected:
        return failed(False, VerifyReason.MANIFEST, f"{manifest.artifact} holds {members} tar members, its manifest "
                      f"says {expected}: rebuild the manifest or use another copy", checks)
    return VerifyResult(deep=False, checks=checks)
