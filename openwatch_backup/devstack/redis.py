"""Redis for the local stack: the handle to a server, and throwaway servers (start on a free loopback port
with nothing on disk, stop by pid, sweep those of dead owners)."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from openwatch_backup.devstack.errors import DevstackError
from openwatch_backup.devstack.processes import (
    _OWNER_FILE,
    _START_ATTEMPTS,
    LOOPBACK,
    _kill_pid,
    _owner_alive,
    _pid_alive,
    _read_pid,
    _run,
    _tail,
    pick_free_port,
)

DEFAULT_REDIS_PORT = 6379
REDIS_PACKAGES = "redis-server"


def redis_answers(host: str = LOOPBACK, port: int = DEFAULT_REDIS_PORT, timeout: float = 2.0) -> bool:
    """True if a Redis server on host:port answers PING with PONG (no password needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = b""
            while not reply.endswith(b"\r\n") and len(reply) < 256:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"+PONG")


@dataclass(eq=False)
class RedisHandle:
    """A Redis server to use. `owned` servers were started by us and end with `stop()`."""

    host: str
    port: int
    db: int = 0
    owned: bool = False
    server_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"

    @property
    def pid(self) -> int | None:
        return None if self.server_dir is None else _read_pid(self.server_dir / "redis.pid")

    def stop(self) -> None:
        """Stop an owned server by its pid and remove its files; safe to call twice."""
        if not self.owned or self.server_dir is None:
            return
        _stop_redis_dir(self.server_dir)
        self.owned = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _stop_redis_dir(server_dir: Path) -> None:
    pid = _read_pid(server_dir / "redis.pid")
    if pid is not None:
        _kill_pid(pid, expect="redis-server")
    shutil.rmtree(server_dir, ignore_errors=True)


def _redis_dirs(base: Path) -> Iterator[Path]:
    return base.glob("redis-*") if base.is_dir() else iter(())


def ensure_redis(var_dir: Path, *, reuse: bool = True, host: str = LOOPBACK,
                 port: int = DEFAULT_REDIS_PORT) -> RedisHandle:
    """A Redis server to use: the one answering PING on host:port if `reuse`, else a throwaway one on a
    free loopback port with nothing on disk (`owned=True`; `stop()` ends it by pid)."""
    if reuse and redis_answers(host, port):
        return RedisHandle(host=host, port=port, owned=False)
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevstackError(f"redis-server was not found; install it (apt-get install {REDIS_PACKAGES}) "
                            "or run scripts/bootstrap")
    base = Path(var_dir).absolute() / "redis"
    base.mkdir(parents=True, exist_ok=True)
    for stale in _redis_dirs(base):
        if (stale / _OWNER_FILE).exists() and not _owner_alive(stale):
            _stop_redis_dir(stale)

    server_dir = Path(tempfile.mkdtemp(prefix="redis-", dir=base))
    (server_dir / _OWNER_FILE).write_text(f"{os.getpid()}\n")
    handle = RedisHandle(host=LOOPBACK, port=0, owned=True, server_dir=server_dir)
    atexit.register(handle.stop)
    log = server_dir / "redis.log"
    pidfile = server_dir / "redis.pid"
    for _attempt in range(_START_ATTEMPTS):
        free = pick_free_port()
        code = _run([binary, "--port", str(free), "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
                     "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(server_dir),
                     "--logfile", str(log)], log=server_dir / "start.log", cwd=server_dir, timeout=30)
        deadline = time.monotonic() + 15
        while code == 0 and time.monotonic() < deadline:
            if redis_answers(LOOPBACK, free, timeout=0.5):
                handle.port = free
                return handle
            pid = _read_pid(pidfile)
            if pid is not None and not _pid_alive(pid):
                break  # it died (port taken?): try another port
            time.sleep(0.05)
        pid = _read_pid(pidfile)
        if pid is not None:
            _kill_pid(pid, expect="redis-server")
        pidfile.unlink(missing_ok=True)
    detail = _tail(log) or _tail(server_dir / "start.log")
    handle.stop()
    raise DevstackError(f"redis-server did not start after {_START_ATTEMPTS} attempts: {detail}")
