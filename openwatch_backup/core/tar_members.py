"""Count the members of a tar stream as it passes, from its 512-byte headers alone (no tarfile, no buffering).

A volume snapshot streams `tar -cf -` straight into zstd; this counter reads the same bytes on the way and
skips each member's data by the size in its header, so the manifest can say how many members there are without
a second pass. GNU long-name/long-link and pax headers describe the member after them and are not counted.
"""

from __future__ import annotations

from typing import Protocol

BLOCK = 512
_NOT_MEMBERS = frozenset(b"LKxgX")  # GNU long name / long link, pax extended / global headers, Solaris X


class Readable(Protocol):
    def read(self, size: int) -> bytes: ...


def _size(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for sizes of 8 GiB and more
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


class TarCounter:
    """A reader over `source` that counts the tar members it passes on (`members`); `bytes` counts all bytes."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._header = bytearray()
        self._skip = 0  # data bytes (padded to 512) of the current member still to pass
        self._ended = False
        self.members = 0
        self.bytes = 0

    def read(self, size: int) -> bytes:
        data = self._source.read(size)
        self.bytes += len(data)
        view = memoryview(data)
        while len(view) and not self._ended:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                view = view[step:]
                continue
            need = BLOCK - len(self._header)
            self._header += view[:need]
            view = view[need:]
            if len(self._header) == BLOCK:
                self._take(bytes(self._header))
                self._header.clear()
        return data

    def _take(self, header: bytes) -> None:
        if not any(header):
            self._ended = True  # the first zero block: the end-of-archive marker
            return
        size = _size(header[124:136])
        if header[156] not in _NOT_MEMBERS:
            self.members += 1
        if header[156:157] not in (b"1", b"2", b"3", b"4", b"5", b"6"):  # links, devices, folders, fifos: no data
            self._skip = -(-size // BLOCK) * BLOCK
