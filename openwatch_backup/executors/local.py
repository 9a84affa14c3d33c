"""Run a PostgreSQL client as a local subprocess, its stdout a pipe we stream from.

stderr is drained by a thread into a bounded tail (a chatty child must never block on a full pipe,
and the tail goes through the redactor before anyone sees it). The first error line is kept apart from
the tail: pg_restore echoes the failed statement after it ("Command was: CREATE TABLE ..." over one line
per column), which would push the line that says what went wrong out of any tail.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import signal
import subprocess
import tempfile
import threading
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from openwatch_backup.executors.pg_clients import ClientTool, find_client

_PIPE_SIZE = 1 << 20  # fewer, larger reads than the default 64 KiB pipe
_TAIL_LINES = 40
_LINE_CHARS = 2000  # one stored line at most; a statement echoed on one line can be megabytes
# What PostgreSQL's clients print on the line that says what went wrong ("pg_dump: error: ...",
# "ERROR:  type ... does not exist", "FATAL:  password authentication failed ...").
_ERROR_MARKS = ("ERROR:", "FATAL:", "PANIC:", "error:")


def is_error_line(line: str) -> bool:
    return any(mark in line for mark in _ERROR_MARKS)


class StderrLog:
    """The last lines of a child's stderr, and its first error line, which no later output can push out."""

    def __init__(self) -> None:
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self.first_error: str | None = None

    def add(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip()[:_LINE_CHARS]
        if self.first_error is None and is_error_line(line):
            self.first_error = line
        self._tail.append(line)

    def text(self) -> str:
        """The tail, led by the first error line when the tail no longer holds it."""
        lines = list(self._tail)
        if self.first_error is not None and self.first_error not in lines:
            lines.insert(0, self.first_error)
        return "\n".join(lines)


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment without its PG* settings, plus ours (which hold the credentials)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


class LocalProcess:
    def __init__(self, argv: list[str], env: Mapping[str, str], *, stdin: int | None = None) -> None:
        self.argv = argv
        self._proc = subprocess.Popen(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=child_environment(env), close_fds=True)
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        self._stdout_fd = self._proc.stdout.fileno()
        self._stderr = StderrLog()
        self._drain = threading.Thread(target=self._read_stderr, name="pg-stderr", daemon=True)
        self._drain.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def read(self, size: int) -> bytes:
        """Read up to size bytes of the child's stdout; b'' at EOF."""
        return os.read(self._stdout_fd, size)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr.add(raw)

    def wait(self, timeout: float | None = None) -> int:
        code = self._proc.wait(timeout=timeout)
        self._drain.join(timeout=5)
        return code

    def kill(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Kill if still running, reap, and close our pipe ends."""
        self.kill()
        with contextlib.suppress(Exception):
            self.wait(timeout=10)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def stderr_tail(self) -> str:
        return self._stderr.text()


def describe_exit(program: str, code: int, stderr_tail: str) -> str:
    """One line: what happened to the child, with the last meaningful stderr line."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = f"{program} was killed by {name}"
    else:
        what = f"{program} exited with status {code}"
    chosen = error_line(stderr_tail)
    return f"{what}: {chosen}" if chosen else what


def error_line(stderr_tail: str) -> str:
    """The line that says what went wrong: the first error line (the clients stop at the first error; what
    follows is its echo: DETAIL, CONTEXT, the statement, a caret), else the last non-empty line."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    errors = [line for line in lines if is_error_line(line)]
    return errors[0] if errors else (lines[-1] if lines else "")


class LocalFeeder:
    """A child we write to (pg_restore, psql): its stdin is our pipe, its stdout and stderr are drained
    into bounded tails by threads, so neither side can block the other."""

    def __init__(self, argv: list[str], env: Mapping[str, str],
                 on_line: Callable[[bytes], None] | None = None) -> None:
        self.argv = argv
        self._on_line = on_line
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=child_environment(env), close_fds=True)
        self.stdout_lines = 0
        self._out: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._err = StderrLog()
        self._threads = [threading.Thread(target=self._drain, args=(self._proc.stdout, self._add_stdout), daemon=True),
                         threading.Thread(target=self._drain, args=(self._proc.stderr, self._err.add), daemon=True)]
        for thread in self._threads:
            thread.start()

    def _add_stdout(self, raw: bytes) -> None:
        self.stdout_lines += 1
        if self._on_line is not None:
            self._on_line(raw.removesuffix(b"\n"))
        self._out.append(raw.decode("utf-8", "replace").rstrip()[:_LINE_CHARS])

    @staticmethod
    def _drain(stream: typing.IO[bytes] | None, add: Callable[[bytes], None]) -> None:
        assert stream is not None
        for raw in stream:
            add(raw)

    def write(self, data: bytes) -> bool:
        """Send data; False when the child stopped reading (it exited: its status tells why)."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def finish(self, timeout: float | None = None) -> int:
        """Close stdin, wait for the child and its output; the exit status."""
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._proc.stdin.close()
        code = self._proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=5)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()
        return code

    def kill(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.finish(timeout=10)

    def stdout_tail(self) -> str:
        return "\n".join(self._out)

    def stderr_tail(self) -> str:
        return self._err.text()


class LocalExecutor:
    """Starts clients on this machine (the worker's image carries a PostgreSQL client)."""

    name = "local"

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir  # OPENWATCH_BACKUP_PG_BIN_DIR; None: search the usual folders and PATH

    def find_client(self, program: str, server_major: int, server_version: str) -> ClientTool:
        return find_client(program, server_major, server_version, self.bin_dir)

    def close(self) -> None:
        pass  # nothing held between programs

    def start(self, argv: list[str], env: Mapping[str, str], *, stdin: int | None = None) -> LocalProcess:
        return LocalProcess(argv, env, stdin=stdin)

    def feed(self, argv: list[str], env: Mapping[str, str], *,
             on_line: Callable[[bytes], None] | None = None) -> LocalFeeder:
        return LocalFeeder(argv, env, on_line)

    @contextlib.contextmanager
    def staged_file(self, text: str, name: str) -> Iterator[str]:
        """A file the clients can read (a pg_restore --use-list), 0600 in a private temporary folder."""
        with tempfile.TemporaryDirectory(prefix="owb-") as folder:
            path = os.path.join(folder, name)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
                out.write(text)
            yield path
