"""The docker executor's frame parser (_Frames.stdout) over a real socket pair: podman's multiplexed exec stream
(8-byte headers: stream, three zero bytes, big-endian length) cut at arbitrary points."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

import pytest

from openwatch_backup.executors.exec_frames import AHEAD, Frames, ReadAhead


def _frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


def test_stdout_is_gathered_in_order_within_the_limit_and_stderr_goes_aside() -> None:
    rng = random.Random(12)
    frames, stdout, stderr = [], bytearray(), bytearray()
    for index in range(3000):
        stream = 2 if index % 5 == 4 else 1
        payload = rng.randbytes(rng.choice([0, 1, 7, 4096, 8192, 30000]))
        frames.append(_frame(stream, payload))
        (stdout if stream == 1 else stderr).extend(payload)
    wire = b"".join(frames)
    ours, theirs = socket.socketpair()

    def send() -> None:
        for start in range(0, len(wire), 777):  # headers and payloads split across reads
            theirs.sendall(wire[start:start + 777])
        theirs.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    parser, got, got_stderr, limit = Frames(ours), bytearray(), bytearray(), 1 << 16
    while (data := parser.stdout(limit, got_stderr.extend)) is not None:
        assert 0 < len(data) <= limit  # b"" never stands for data (empty frames are skipped)
        got += data
    sender.join(10)
    ours.close()
    theirs.close()
    assert got == stdout
    assert got_stderr == stderr


def test_a_frame_larger_than_the_limit_comes_whole_and_stderr_only_ends_with_none() -> None:
    ours, theirs = socket.socketpair()
    big = bytes(range(256)) * 256  # 64 KiB: the socket pair holds it all, so one thread can send it first
    theirs.sendall(_frame(2, b"warning\n") + _frame(1, big) + _frame(2, b"done\n"))
    theirs.shutdown(socket.SHUT_WR)
    parser, stderr = Frames(ours), bytearray()
    assert parser.stdout(1000, stderr.extend) == big  # the first frame is never split by the limit
    assert parser.stdout(1000, stderr.extend) is None
    assert stderr == b"warning\ndone\n"
    ours.close()
    theirs.close()


def test_gathering_reads_still_hand_on_what_a_quiet_program_wrote() -> None:
    """gather=True waits for a whole receive only as long as bytes keep coming: a program that writes one line and
    then waits (for a lock, say) gets that line handed on while it still runs, not at its end."""
    ours, theirs = socket.socketpair()
    handed_on = threading.Event()

    def send() -> None:
        theirs.sendall(_frame(1, b"first line\n"))
        handed_on.wait(30)  # the program stays quiet until the reader has its line
        theirs.sendall(_frame(1, b"last line\n"))
        theirs.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    parser = Frames(ours, gather=True)
    first = parser.stdout(1 << 20, lambda _: None)
    was_waiting = sender.is_alive()
    handed_on.set()
    rest = parser.stdout(1 << 20, lambda _: None)
    sender.join(10)
    ours.close()
    theirs.close()
    assert (first, was_waiting) == (b"first line\n", True)
    assert rest == b"last line\n"


def test_gathered_frames_come_in_order_and_a_frame_larger_than_the_buffer_whole() -> None:
    rng = random.Random(7)
    huge = rng.randbytes(9 << 20)  # larger than the parser's 4 MiB buffer: it grows for it
    payloads = [rng.randbytes(rng.choice([1, 4096, 8192])) for _ in range(2000)]
    wire = b"".join([_frame(1, p) for p in payloads[:1000]] + [_frame(2, b"note\n"), _frame(1, huge)]
                    + [_frame(1, p) for p in payloads[1000:]])
    ours, theirs = socket.socketpair()

    def send() -> None:
        for start in range(0, len(wire), 65521):
            theirs.sendall(wire[start:start + 65521])
        theirs.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    parser, chunks, stderr = Frames(ours, gather=True), [], bytearray()
    while (data := parser.stdout(1 << 20, stderr.extend)) is not None:
        chunks.append(data)
    sender.join(10)
    ours.close()
    theirs.close()
    assert b"".join(chunks) == b"".join(payloads[:1000]) + huge + b"".join(payloads[1000:])
    assert huge in chunks  # the first frame of a read is never split by the limit
    assert stderr == b"note\n"


def test_read_ahead_hands_on_every_chunk_in_order_then_none() -> None:
    rng = random.Random(3)
    payloads = [rng.randbytes(rng.choice([1, 4096, 8192])) for _ in range(3000)]
    ours, theirs = socket.socketpair()

    def send() -> None:
        theirs.sendall(b"".join(_frame(1 if i % 9 else 2, p) for i, p in enumerate(payloads)))
        theirs.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    stderr = bytearray()
    ahead = ReadAhead(Frames(ours, gather=True), stderr.extend)
    chunks = []
    while (chunk := ahead.get()) is not None:
        chunks.append(chunk)
    ahead.stop(timeout=5)
    sender.join(10)
    ours.close()
    theirs.close()
    assert b"".join(chunks) == b"".join(p for i, p in enumerate(payloads) if i % 9)
    assert stderr == b"".join(p for i, p in enumerate(payloads) if not i % 9)
    assert all(len(chunk) <= 1 << 20 for chunk in chunks)


def test_read_ahead_stops_when_its_reader_has_gone_and_holds_at_most_its_queue() -> None:
    """A caller that stops reading (a storage error) then kills the program: the thread, blocked on a full queue,
    ends at stop(), and it never read more than its queue and one chunk ahead of the caller."""
    ours, theirs = socket.socketpair()
    block = _frame(1, bytes(1 << 20))
    sent = 0
    sending = threading.Event()

    def send() -> None:
        nonlocal sent
        sending.set()
        try:
            while True:
                theirs.sendall(block)
                sent += 1
        except OSError:
            pass  # the reader closed its end: the program's write fails, as pg_dump's does

    sender = threading.Thread(target=send)
    sender.start()
    ahead = ReadAhead(Frames(ours, gather=True), lambda _: None)
    assert ahead.get() is not None
    sending.wait(5)
    time.sleep(1.0)  # the sender and the thread run until the queue is full and the socket's buffers too
    held = sent
    theirs.shutdown(socket.SHUT_RDWR)
    ahead.stop(timeout=5)
    alive = ahead._thread.is_alive()
    ours.close()
    theirs.close()
    sender.join(10)
    assert not alive
    assert held <= AHEAD + 4  # the queue, the chunk in hand, the one being gathered, the sockets' buffers


def test_a_failure_on_the_read_ahead_thread_is_raised_to_the_reader() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(_frame(2, b"bad\n") + _frame(1, b"data"))
    theirs.shutdown(socket.SHUT_WR)

    def refuse(_: bytes) -> None:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    ahead = ReadAhead(Frames(ours, gather=True), refuse)
    with pytest.raises(UnicodeDecodeError, match="invalid start byte"):
        ahead.get()
    ahead.stop(timeout=5)
    ours.close()
    theirs.close()
