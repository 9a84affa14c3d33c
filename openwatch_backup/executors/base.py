"""The executor seam: where pg_dump, pg_restore and psql run, behind one interface.

Operations ask the executor for a client (`find_client`: discovery and the version check) and then start it
(`start`: we read its stdout) or feed it (`feed`: we write its stdin). They never learn where it runs: on this
machine (executors/local.py) or inside the database container over the Docker API (executors/docker.py).
Credentials travel in `env` only, never in argv, whichever executor runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Protocol

from openwatch_backup.executors.pg_clients import ClientTool

__all__ = ["ClientFeeder", "ClientProcess", "ClientTool", "Executor"]


class ClientProcess(Protocol):
    """A running client whose stdout we read (pg_dump; pg_restore --file=-)."""

    argv: list[str]

    @property
    def pid(self) -> int: ...

    def read(self, size: int) -> bytes:
        """Up to size bytes of stdout; b'' at EOF."""
        ...

    def wait(self, timeout: float | None = None) -> int:
        """The exit status (negative: killed by that signal)."""
        ...

    def kill(self) -> None: ...

    def close(self) -> None:
        """Kill if still running, reap, release the streams."""
        ...

    def stderr_tail(self) -> str: ...


class ClientFeeder(Protocol):
    """A running client we write to (pg_restore, psql); its stdout and stderr are drained into tails."""

    argv: list[str]
    stdout_lines: int

    def write(self, data: bytes) -> bool:
        """False when the client stopped reading (it exited: its status tells why)."""
        ...

    def finish(self, timeout: float | None = None) -> int:
        """End its input, wait for it; the exit status."""
        ...

    def kill(self) -> None: ...

    def stdout_tail(self) -> str: ...

    def stderr_tail(self) -> str: ...


class Executor(Protocol):
    name: str

    def find_client(self, program: str, server_major: int, server_version: str) -> ClientTool:
        """The `program` to run for a server of `server_major` (at least that major), or ClientVersionMismatch
        saying how to get one. ClientTool.path is what argv[0] must be for this executor."""
        ...

    def start(self, argv: list[str], env: Mapping[str, str], *, stdin: int | None = None) -> ClientProcess:
        """Start argv; stdin: a file descriptor to read its input from (ours to close after the call)."""
        ...

    def feed(self, argv: list[str], env: Mapping[str, str], *,
             on_line: Callable[[bytes], None] | None = None) -> ClientFeeder:
        """Start argv to write its stdin; on_line gets every stdout line (without its end) besides the tail."""
        ...

    def staged_file(self, text: str, name: str) -> AbstractContextManager[str]:
        """A file holding text that the clients can read by the path yielded (where they run), for the block."""
        ...

    def close(self) -> None:
        """Release what the executor holds (the Docker API connection); it may be used again after."""
        ...
