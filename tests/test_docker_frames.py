"""The docker executor's frame parser (_Frames.stdout) over a real socket pair: podman's multiplexed exec stream
(8-byte headers: stream, three zero bytes, big-endian length) cut at arbitrary points."""

from __future__ import annotations

import random
import socket
import struct
import threading

from openwatch_backup.executors.docker import _Frames


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
    parser, got, got_stderr, limit = _Frames(ours), bytearray(), bytearray(), 1 << 16
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
    parser, stderr = _Frames(ours), bytearray()
    assert parser.stdout(1000, stderr.extend) == big  # the first frame is never split by the limit
    assert parser.stdout(1000, stderr.extend) is None
    assert stderr == b"warning\ndone\n"
    ours.close()
    theirs.close()
