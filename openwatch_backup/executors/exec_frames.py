"""Reading a `docker exec` socket: stdout and stderr multiplexed as frames (an 8-byte header: stream, three
zero bytes, big-endian length, then the payload), as the Docker API and podman send them.

Frames parses them out of one reused receive buffer; ReadAhead drains a read-only exec on its own thread so the
program never waits for the caller's hashing and writing (bench/bench_docker_exec.py measures both).
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import struct
import threading
from collections.abc import Callable

RECV = 1 << 20  # one receive, and the largest chunk stdout() gathers for the pipeline (its CHUNK_SIZE)
_BUFFER = 4 * RECV  # room for a gathered RECV and what stdout() has not yet handed on
AHEAD = 8  # chunks the read-ahead thread may hold: 8 MiB at most
_GATHER_WAIT = 0.25  # seconds a gathering receive waits for a whole RECV before handing on what came
STDOUT = 1
_HEADER = struct.Struct(">BxxxI")  # a frame's header: stream, three zero bytes, big-endian payload length


class Frames:
    """The exec socket's multiplexed output: next() -> (stream, payload), None at EOF; stdout() for bulk reads.

    Bytes land straight in one reused buffer (recv_into: the kernel's copy is the only one until stdout()
    joins the payloads) between _start (the first byte not yet handed on) and _end (the last received).

    gather=True (a program we only read, never feed): each receive waits for a whole RECV or for _GATHER_WAIT
    to pass (MSG_WAITALL bounded by SO_RCVTIMEO). Podman sends 4-8 KiB frames; a read that returned whatever
    had arrived handed the pipeline ~15,000 small chunks per 376 MB dump (each a hash update, a file write and a
    progress call), gathered ~380, and a bare read this way takes 0.90-0.97x the time of a plain recv() loop.
    A fed program must not gather: its "exited" line on stderr has to arrive at once to stop the input."""

    def __init__(self, raw: socket.socket, *, gather: bool = False) -> None:
        self._raw = raw
        self._buf = bytearray(_BUFFER)
        self._start = self._end = 0
        self._eof = False
        # Only a plain socket takes recv flags (an SSLSocket refuses them).
        self._flags = socket.MSG_WAITALL if gather and type(raw) is socket.socket else 0
        if self._flags:
            seconds, fraction = divmod(_GATHER_WAIT, 1)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                           struct.pack("ll", int(seconds), int(fraction * 1_000_000)))

    def next(self) -> tuple[int, bytes] | None:
        while True:
            if self._end - self._start >= 8:
                stream, size = _HEADER.unpack_from(self._buf, self._start)
                begin = self._start + 8
                if self._end - begin >= size:
                    with memoryview(self._buf) as view:
                        payload = bytes(view[begin:begin + size])
                    self._start = begin + size
                    return stream, payload
            if not self._receive():
                return None

    def stdout(self, limit: int, on_stderr: Callable[[bytes], None]) -> bytes | None:
        """The stdout of every whole frame that has arrived, up to `limit` bytes (a frame that does not fit
        stays for the next call, unless it is the first); stderr frames go to on_stderr. Waits only while
        nothing has arrived; None at EOF. The payloads are found by offset and joined once."""
        buf = self._buf
        pos = self._start
        taken = 0
        payloads: list[tuple[int, int]] = []
        while True:
            full = False
            while self._end - pos >= 8:
                stream, size = _HEADER.unpack_from(buf, pos)
                end = pos + 8 + size
                if end > self._end:
                    break
                if taken and taken + size > limit:
                    full = True
                    break
                if stream == STDOUT:
                    if size:
                        payloads.append((pos + 8, end))
                        taken += size
                else:
                    with memoryview(buf) as view:
                        on_stderr(bytes(view[pos + 8:end]))
                pos = end
            # Handed on before a receive could need the room they hold: the buffer is compacted only then.
            if taken and (full or taken >= limit or len(buf) - self._end < RECV or not self._ready()):
                return self._take(payloads, pos)
            if not taken:  # the stderr frames handed on are consumed, and the receive may move what is left
                self._start = pos
            if not self._receive():
                return self._take(payloads, pos) if taken else None
            if not taken:
                pos = self._start  # with stdout pending there was room: nothing moved under its offsets

    def _take(self, payloads: list[tuple[int, int]], consumed: int) -> bytes:
        with memoryview(self._buf) as view:
            data = b"".join([view[start:end] for start, end in payloads])  # the slices die before release
        self._start = consumed
        return data

    def _ready(self) -> bool:
        """More bytes wait in the socket (a zero-timeout poll)."""
        if self._eof:
            return False
        try:
            return bool(select.select([self._raw], [], [], 0)[0])
        except (OSError, ValueError):  # closed under us by a kill: the next receive reports EOF
            return False

    def _room(self) -> None:
        """At least RECV free after _end: the bytes not yet handed on (rarely more than one partial frame)
        move to the front, and the buffer grows only for a frame larger than it."""
        buf = self._buf
        if len(buf) - self._end >= RECV:
            return
        kept = self._end - self._start
        if self._start:
            buf[:kept] = buf[self._start:self._end]
            self._start, self._end = 0, kept
        if len(buf) - kept < RECV:
            buf.extend(bytes(RECV - (len(buf) - kept)))

    def _receive(self) -> bool:
        """Add what the socket has to the buffer; False at EOF."""
        if self._eof:
            return False
        self._room()
        try:
            with memoryview(self._buf) as view:
                received = self._raw.recv_into(view[self._end:self._end + RECV], RECV, self._flags)
        except BlockingIOError:
            return True  # SO_RCVTIMEO passed with nothing received: a quiet program, not EOF
        except OSError:  # podman resets when the program exits while we still write; closed by a kill
            received = 0
        if not received:
            self._eof = True
            return False
        self._end += received
        return True


class ReadAhead:
    """Drains a read-only exec's stdout on its own thread into a bounded queue (AHEAD chunks of up to RECV).

    The exec socket holds only ~200 KB in flight (the sender's buffer), so while the caller hashes and writes a
    chunk (0.35-0.8 s in all per 376 MB into a file here, writeback included) podman, conmon and pg_dump stall
    behind it. With this thread the socket is drained while the caller works (hashlib and file writes release
    the GIL): a 376 MB docker-executor backup took 1.77 s against 1.91 s without it (bench, medians of 5)."""

    def __init__(self, frames: Frames, on_stderr: Callable[[bytes], None]) -> None:
        self._frames = frames
        self._on_stderr = on_stderr
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="exec-read")
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and (data := self._frames.stdout(RECV, self._on_stderr)) is not None:
                self._put(data)
        except BaseException as exc:  # handed to the reader, who raises it in its own thread
            self._failure = exc
        self._put(None)

    def _put(self, item: bytes | None) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return

    def get(self) -> bytes | None:
        """The next chunk, None at EOF."""
        item = self._queue.get()
        if item is None and self._failure is not None:
            raise self._failure
        return item

    def stop(self, timeout: float) -> None:
        """After the program is killed or done: the thread ends at EOF or at its next put."""
        self._stop.set()
        self._thread.join(timeout)
