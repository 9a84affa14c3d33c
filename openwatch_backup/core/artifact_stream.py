"""Read a stored artifact back as the dump pg_dump wrote, hashing the stored bytes on the way.

One pass serves a restore and the checksum: the sha256 and size are of the bytes as stored (what the
manifest records), the chunks yielded are what pg_restore or psql must read.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import zstandard

from openwatch_backup.core.pipeline import CHUNK_SIZE


class UnreadableArtifact(Exception):
    """The stored bytes do not decompress (a flipped byte in a compressed frame, a truncated stream)."""


class HashingReader:
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Hash whatever the consumer did not read, so size and digest cover the whole file."""
        while self.read(CHUNK_SIZE):
            pass

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def needs_gunzip(dump_format: str, compression: str) -> bool:
    """Plain SQL in the `pg` mode is gzip written by pg_dump; custom archives keep gzip inside."""
    return dump_format == "plain" and compression == "pg"


def decoded_chunks(reader: HashingReader, *, wrapper: str | None, gunzip: bool) -> Iterator[bytes]:
    """The dump's bytes, undoing our zstd wrapper (or pg_dump's gzip on plain SQL)."""
    try:
        if wrapper == "zstd":
            yield from _unzstd(reader)
            return
        inflate = zlib.decompressobj(wbits=31) if gunzip else None
        while chunk := reader.read(CHUNK_SIZE):
            if inflate is None:
                yield chunk
                continue
            yield inflate.decompress(chunk, CHUNK_SIZE)
            while inflate.unconsumed_tail:
                yield inflate.decompress(inflate.unconsumed_tail, CHUNK_SIZE)
        if inflate is not None:
            yield inflate.flush()
            if not inflate.eof:
                raise UnreadableArtifact("the gzip stream ends before its end marker (truncated)")
            if inflate.unused_data:
                raise UnreadableArtifact("data follows the end of the gzip stream")
    except (zstandard.ZstdError, zlib.error) as exc:
        raise UnreadableArtifact(f"cannot decompress: {exc}") from None


def _unzstd(reader: HashingReader) -> Iterator[bytes]:
    """Decompress every zstd frame in the file; the last must be complete, nothing may follow it.

    decompressobj, not stream_reader: only it says (eof) whether a frame was complete; a truncated file
    would otherwise just end early, looking like a shorter dump. Files written by older versions of this
    package end in a second, empty frame, hence frames in sequence rather than exactly one.
    """
    unzstd = zstandard.ZstdDecompressor().decompressobj()
    pending = b""
    while True:
        data = pending or reader.read(CHUNK_SIZE)
        pending = b""
        if not data:
            break
        if unzstd.eof:
            unzstd = zstandard.ZstdDecompressor().decompressobj()  # the next frame
        yield unzstd.decompress(data)
        if unzstd.eof and unzstd.unused_data:
            pending = unzstd.unused_data
    if not unzstd.eof:
        raise UnreadableArtifact("the zstd stream ends before its frame does (truncated)")
