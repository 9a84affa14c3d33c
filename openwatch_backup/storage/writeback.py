"""Start the kernel's writeback of an artifact while it is still being written.

A backup ends with fsync (storage/local.py). Left alone, the kernel holds the whole file dirty until then, so
the fsync of a 400 MB dump waits 0.1-0.15 s here for writes that could have run during the stream; that wait
alone was most of the docker executor's gap to a bare exec read (bench/bench_docker_exec.py). Every WINDOW
bytes we ask for the previous window to go out, without waiting (SYNC_FILE_RANGE_WRITE): the final fsync is
then left with the last window (0.01-0.02 s for 400 MB here) and the writes themselves are not slowed.

Hand-written through ctypes because neither `os` nor a maintained library exposes sync_file_range(2). It is
a hint, never needed for durability (fsync still decides): where libc or the call is missing (not Linux) or
it fails, it is skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

WINDOW = 32 << 20
_SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int

    def start_writeback(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # errors ignored: fsync at commit decides

    return start_writeback


_start_writeback = _load()


class Writeback:
    """Counts what a writer wrote; every WINDOW bytes, flushes it and starts the window's writeback."""

    def __init__(self, fd: int, flush: Callable[[], None]) -> None:
        self._fd = fd
        self._flush = flush
        self._written = 0
        self._started = 0  # bytes whose writeback was already asked for

    def wrote(self, count: int) -> None:
        self._written += count
        if _start_writeback is None or self._written - self._started < WINDOW:
            return
        self._flush()  # the buffered file's bytes must reach the kernel before their range is synced
        _start_writeback(self._fd, self._started, self._written - self._started)
        self._started = self._written
