"""Stream bytes from a producer through optional zstd and a sha256 into a sink, in bounded chunks.

Memory stays flat whatever the database size: one read buffer plus zstd's own job buffers.
The digest and size are of the bytes as stored, so verify can check the file without decompressing.
"""

from __future__ import annotations

import hashlib
import os
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import zstandard

CHUNK_SIZE = 1 << 20


class Sink(Protocol):
    def write(self, data: bytes) -> int: ...


class Source(Protocol):
    def read(self, size: int) -> bytes: ...


@dataclass(frozen=True)
class StreamResult:
    bytes_in: int
    bytes_out: int
    sha256: str
    seconds: float


class Progress(Protocol):
    def __call__(self, bytes_in: int, bytes_out: int) -> None: ...


class DigestingSink:
    """Counts and hashes what passes to the real sink (the stored bytes)."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def zstd_threads(requested: int) -> int:
    """0 means one worker per CPU core."""
    return requested if requested > 0 else (os.cpu_count() or 1)


def pump(
    source: Source,
    sink: Sink,
    *,
    zstd_level: int | None = None,
    threads: int = 0,
    on_progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> StreamResult:
    """Copy source to sink until EOF, compressing with zstd when zstd_level is given."""
    started = clock()
    digest = DigestingSink(sink)
    bytes_in = 0
    if zstd_level is None:
        writer: Sink = digest
        compressor = None
    else:
        # write_checksum: zstd's own frame checksum, so even a bare `zstd -t FILE` detects corruption.
        params = zstandard.ZstdCompressionParameters.from_level(zstd_level, threads=zstd_threads(threads),
                                                                write_checksum=True)
        compressor = zstandard.ZstdCompressor(compression_params=params).stream_writer(
            typing.cast(typing.IO[bytes], digest), closefd=False, write_return_read=True)
        writer = compressor
    while True:
        chunk = source.read(CHUNK_SIZE)
        if not chunk:
            break
        writer.write(chunk)
        bytes_in += len(chunk)
        if on_progress is not None:
            on_progress(bytes_in, digest.size)
    if compressor is not None:
        # close() ends the frame; a flush(FLUSH_FRAME) first would append a second, empty frame.
        compressor.close()  # type: ignore[no-untyped-call]
    return StreamResult(bytes_in=bytes_in, bytes_out=digest.size, sha256=digest.hexdigest(),
                        seconds=clock() - started)
