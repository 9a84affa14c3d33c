"""Check that what pg_dump wrote looks like a whole dump, as it streams past.

Exit status 0 is necessary, not sufficient: a custom archive starts with `PGDMP`, and a plain dump ends
with pg_dump's "dump complete" trailer. Catching a truncated stream here costs two small buffers.
"""

from __future__ import annotations

import zlib

from openwatch_backup.core.pipeline import Source

_HEAD = 64
_TAIL = 512
CUSTOM_MAGIC = b"PGDMP"
PLAIN_TRAILER = b"-- PostgreSQL database dump complete"


class ShapeWatcher:
    """A pass-through Source that remembers the first and last bytes of the dump it carries.

    With gzip=True (plain SQL in the `pg` mode, which pg_dump gzips itself) it inflates as it goes, so
    the trailer check still sees SQL; inflating is cheap next to pg_dump's own deflate.
    """

    def __init__(self, source: Source, *, gzip: bool = False) -> None:
        self._source = source
        self._inflate = zlib.decompressobj(wbits=31) if gzip else None
        self._broken = False
        self.head = b""
        self.tail = b""

    def read(self, size: int) -> bytes:
        chunk = self._source.read(size)
        if not chunk or self._broken:  # after a gzip error nothing may pass the trailer check again
            return chunk
        if self._inflate is None:
            self._observe(chunk)
            return chunk
        try:
            piece = self._inflate.decompress(chunk, 1 << 20)
            self._observe(piece)
            while self._inflate.unconsumed_tail:
                self._observe(self._inflate.decompress(self._inflate.unconsumed_tail, 1 << 20))
        except zlib.error:
            self._observe(b"\x00not gzip")  # fails the trailer check below
            self._broken = True
        return chunk

    def _observe(self, data: bytes) -> None:
        if len(self.head) < _HEAD:
            self.head += data[: _HEAD - len(self.head)]
        if data:
            self.tail = (self.tail + data[-_TAIL:])[-_TAIL:]


def shape_problem(dump_format: str, head: bytes, tail: bytes) -> str | None:
    """None when the stream looks complete, else why not (one line)."""
    if not head:
        return "pg_dump wrote nothing"
    if dump_format == "custom":
        if not head.startswith(CUSTOM_MAGIC):
            return "pg_dump's output does not start with a custom-format header (PGDMP)"
        return None
    if PLAIN_TRAILER not in tail:
        return "pg_dump's plain output lacks its 'dump complete' trailer; the stream was cut short"
    return None
