"""What makes a Redis RDB file whole (pure, stdlib only): its header and its trailing CRC64.

An RDB file starts with `REDIS` and a 4-digit format version (`REDIS0010`) and, from version 5 on, ends with
the 8-byte little-endian CRC64 of every byte before it (Redis's crc64.c: the "Jones" polynomial
0xad93d23594c935a9, reflected, initial value 0, no final xor). A checksum of 0 means Redis ran with
`rdbchecksum no`: there is nothing to compare. redis-check-rdb does the same check and reads every key too;
this is the check where that program is missing (operations/redis_verify.py).
"""

from __future__ import annotations

import re

_HEADER = re.compile(rb"^REDIS(\d{4})")
HEADER_SIZE = 9
TRAILER_SIZE = 8
FIRST_CHECKSUMMED_VERSION = 5
_POLY = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9 bit-reversed: the table of the reflected algorithm


def rdb_version(head: bytes) -> int | None:
    """The format version in an RDB header (`REDIS0010` -> 10), or None when `head` does not start with one."""
    match = _HEADER.match(head)
    return int(match.group(1)) if match else None


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


class Crc64:
    """Redis's CRC64 over the bytes fed to it, in pieces."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        crc, table = self.value, _TABLE
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self.value = crc


class RdbChecker:
    """Fed an RDB file's bytes in order; at the end says whether its header and trailing checksum fit.

    The last 8 bytes seen so far are held back, because only at the end is it known they are the trailer."""

    def __init__(self) -> None:
        self._crc = Crc64()
        self._held = b""
        self.head = b""
        self.size = 0

    def update(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if len(self.head) < HEADER_SIZE:
            self.head += data[:HEADER_SIZE - len(self.head)]
        joined = self._held + data
        self._crc.update(joined[:-TRAILER_SIZE])
        self._held = joined[-TRAILER_SIZE:]

    def problem(self) -> str | None:
        """Why the bytes fed are not a whole RDB file, or None. Call once all bytes were fed."""
        version = rdb_version(self.head)
        if version is None:
            return "it does not start with an RDB header (REDIS and a 4-digit version)"
        if self.size < HEADER_SIZE + (TRAILER_SIZE if version >= FIRST_CHECKSUMMED_VERSION else 1):
            return f"it is {self.size} bytes, too short for an RDB file (truncated)"
        if version < FIRST_CHECKSUMMED_VERSION:
            return None  # these versions have no checksum (Redis 2.4 and older)
        stored = int.from_bytes(self._held, "little")
        if stored == 0:
            return None  # written with rdbchecksum no
        if stored != self._crc.value:
            return (f"its CRC64 is {self._crc.value:016x}, the file's trailer says {stored:016x} (altered or "
                    "truncated)")
        return None

    @property
    def checksummed(self) -> bool:
        version = rdb_version(self.head)
        return version is not None and version >= FIRST_CHECKSUMMED_VERSION and self._held != bytes(TRAILER_SIZE)
