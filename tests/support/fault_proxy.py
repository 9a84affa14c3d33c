"""A small HTTP-aware TCP proxy on 127.0.0.1 that injects faults in front of moto's S3 server.

Each request is read whole (answering `Expect: 100-continue` itself), matched against the faults, then either
answered with a canned S3 error, cut off with a TCP reset halfway through its body, or forwarded to moto on a
fresh connection whose answer is relayed back. `down = True` resets every connection at once (an endpoint that
is gone). Each fault counts its hits, so a test can prove the fault really happened.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate


@dataclass
class Fault:
    """Matches requests whose method is `method` (None: any) and whose target contains `contains`."""

    method: str | None
    contains: str
    action: str = "respond"  # respond | reset_mid_body | cut_response (forward, relay half the answer, reset)
    status: int = 503
    code: str = "SlowDown"
    message: str = "Please reduce your request rate."
    times: int = 1
    clock_offset: float = 0  # seconds the Date header of a canned answer is ahead of ours (a skewed host)
    header: str | None = None  # only requests that carry this header (lower case)
    hits: int = field(default=0)

    def matches(self, method: str, target: str, headers: dict[str, str]) -> bool:
        return ((self.method in (None, method)) and self.contains in target and self.hits < self.times
                and (self.header is None or self.header in headers))


def _reset(conn: socket.socket) -> None:
    """Close with RST rather than FIN: what a dropped connection looks like to the client."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.faults: list[Fault] = []
        self.down = False
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for conn in list(self._conns):
                _reset(conn)
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                _reset(conn)
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._conns.add(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while not self._closed:
                head = self._read_head(reader)
                if head is None:
                    return
                method, target = head[0].split(" ")[:2]
                headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:])}
                with self._lock:
                    self.requests.append(f"{method} {target}")
                    fault = next((f for f in self.faults if f.matches(method, target, headers)), None)
                    if fault is not None:
                        fault.hits += 1
                if self.down:
                    _reset(conn)
                    return
                if headers.get("expect", "").lower() == "100-continue":
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                length = int(headers.get("content-length", "0"))
                if fault is not None and fault.action == "reset_mid_body":
                    reader.read(length // 2)
                    _reset(conn)
                    return
                body = reader.read(length) if length else b""
                if fault is not None and fault.action == "respond":
                    self._answer(conn, fault)
                    return
                self._forward(conn, head, body, cut=fault is not None and fault.action == "cut_response")
                return  # the upstream answer said Connection: close
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                reader.close()
                conn.close()

    @staticmethod
    def _read_head(reader: object) -> list[str] | None:
        lines: list[str] = []
        while True:
            line = reader.readline()  # type: ignore[attr-defined]
            if not line:
                return None
            if line in (b"\r\n", b"\n"):
                return lines if lines else None
            lines.append(line.decode("latin-1").rstrip("\r\n"))

    @staticmethod
    def _answer(conn: socket.socket, fault: Fault) -> None:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code>'
                f"<Message>{fault.message}</Message><RequestId>FAULT</RequestId></Error>").encode()
        reason = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error", 501: "Not Implemented",
                  503: "Slow Down"}.get(fault.status, "Error")
        date = formatdate(time.time() + fault.clock_offset, usegmt=True)
        conn.sendall(f"HTTP/1.1 {fault.status} {reason}\r\nDate: {date}\r\nContent-Type: application/xml\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)

    def _forward(self, conn: socket.socket, head: list[str], body: bytes, *, cut: bool = False) -> None:
        kept = [line for line in head[1:] if line.split(":", 1)[0].strip().lower() not in ("expect", "connection")]
        request = "\r\n".join([head[0], *kept, "Connection: close", "", ""]).encode() + body
        with socket.create_connection(self._upstream, timeout=30) as upstream:
            upstream.sendall(request)
            if cut:  # the whole answer first, then only its first half goes out, then a reset
                answer = b""
                while chunk := upstream.recv(1 << 16):
                    answer += chunk
                conn.sendall(answer[: len(answer) // 2])
                _reset(conn)
                return
            while chunk := upstream.recv(1 << 16):
                conn.sendall(chunk)
