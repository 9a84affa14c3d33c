"""pump(): bytes in equal bytes out (after zstd), and the digest and size are of the stored bytes."""

from __future__ import annotations

import hashlib
import io
import itertools
import random

import pytest
import zstandard

from openwatch_backup.core.pipeline import StreamResult, pump

MIB = 1 << 20


def mixed_data() -> bytes:
    """~6 MiB: incompressible random blocks between highly repetitive SQL-like text."""
    rng = random.Random(20261126)
    parts = []
    for i in range(6):
        parts.append(rng.randbytes(MIB // 2 + i * 4099))
        parts.append(b"INSERT INTO scan_findings VALUES (%d, 'open port 22/tcp');\n" % i * 9000)
    return b"".join(parts)


DATA = mixed_data()


class OddChunks:
    """An in-memory Source that returns odd-sized pieces, never more than asked for."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0
        self._sizes = itertools.cycle([1, 4099, 65537, 3, MIB + 17, 999_983])

    def read(self, size: int) -> bytes:
        chunk = self._data[self._at:self._at + min(size, next(self._sizes))]
        self._at += len(chunk)
        return chunk


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, bytes_in: int, bytes_out: int) -> None:
        self.calls.append((bytes_in, bytes_out))


def run(zstd_level: int | None, threads: int = 0) -> tuple[StreamResult, bytes, Recorder]:
    sink = io.BytesIO()
    progress = Recorder()
    ticks = iter([100.0, 102.5])
    result = pump(OddChunks(DATA), sink, zstd_level=zstd_level, threads=threads, on_progress=progress,
                  clock=lambda: next(ticks))
    return result, sink.getvalue(), progress


def assert_progress_is_monotonic(progress: Recorder) -> None:
    ins = [c[0] for c in progress.calls]
    outs = [c[1] for c in progress.calls]
    assert ins == sorted(set(ins)), "bytes_in must strictly increase"
    assert outs == sorted(outs), "bytes_out must never go back"
    assert ins[-1] == len(DATA)


def test_without_zstd_the_stored_bytes_are_the_input() -> None:
    result, stored, progress = run(None)

    assert stored == DATA
    assert result == StreamResult(bytes_in=len(DATA), bytes_out=len(DATA), sha256=hashlib.sha256(DATA).hexdigest(),
                                  seconds=2.5)
    assert_progress_is_monotonic(progress)
    assert progress.calls[-1] == (len(DATA), len(DATA))


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_with_zstd_the_stored_bytes_decompress_to_the_input(threads: int) -> None:
    result, stored, progress = run(3, threads)

    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stored)).read() == DATA
    assert result == StreamResult(bytes_in=len(DATA), bytes_out=len(stored),
                                  sha256=hashlib.sha256(stored).hexdigest(), seconds=2.5)
    assert len(stored) < len(DATA)  # the repetitive half compresses
    assert_progress_is_monotonic(progress)


def test_empty_source_gives_an_empty_digest() -> None:
    result = pump(OddChunks(b""), io.BytesIO(), clock=lambda: 1.0)

    assert result == StreamResult(bytes_in=0, bytes_out=0, sha256=hashlib.sha256(b"").hexdigest(), seconds=0.0)
