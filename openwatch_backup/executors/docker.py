"""Run pg_dump, pg_restore and psql inside the database container (OPENWATCH_BACKUP_DB_CONTAINER) over the
Docker API, so the worker's image needs no PostgreSQL client: the container has the matching one.

One `docker exec` per program. Its hijacked socket carries everything: we write stdin to it (shutdown(SHUT_WR)
is EOF) and read stdout and stderr as frames (an 8-byte header: stream, 0, 0, 0, big-endian length), parsed
here so stdout flows into the same pipeline as a local pg_dump's pipe and stderr lands in the same bounded
tail. No file is written in the container and nothing is copied out of it.

The connection: inside the container the server is local. The exec gets the user, password and database name
of OPENWATCH_DATABASE_URL in its environment (never argv) but not its host, port or TLS files (those describe
the way in from the worker): libpq then uses the container's own PGHOST/PGPORT when it sets them, else the
default local socket (/var/run/postgresql, port 5432 in the official postgres image).

Cancelling: dropping the connection does not stop the program (and podman then reports it finished while
it still runs). The exec's host PID leads its own process group, so kill() ends the whole tree with killpg
when that PID is visible here and carries our marker; otherwise (a remote engine, the worker in its own PID
namespace) it kills, from inside the container, every process whose environment carries the marker.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from openwatch_backup.docker_api import docker_client, exec_open, exec_run, exec_state, running_container
from openwatch_backup.errors import ClientVersionMismatch, ContainerMissing, DockerUnavailable
from openwatch_backup.executors.exec_frames import RECV, STDOUT, Frames, ReadAhead
from openwatch_backup.executors.local import _LINE_CHARS, _TAIL_LINES, StderrLog
from openwatch_backup.executors.pg_clients import ClientTool, parse_version

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

SETTING = "OPENWATCH_BACKUP_DB_CONTAINER"
MARKER = "OPENWATCH_BACKUP_EXEC"  # in each exec's environment: how kill() finds its processes
# What describes the way in from the worker, not the server inside the container.
_HOST_ONLY = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGSSLMODE", "PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT")
# A program fed through stdin runs under this shell: when it exits early (pg_restore --list has read the table of
# contents), `cat` keeps reading until our EOF. Without it podman resets the attach connection under the bytes
# still in flight and drops the program's last output (seen here: 17 lines of `pg_restore --list`, exit 0, gone).
# The line on stderr tells us it exited, so we stop sending.
_DRAIN_AFTER = '"$@"; code=$?; echo "$0 $code" >&2; cat >/dev/null; exit $code'
_KILL_BY_MARKER = ('for d in /proc/[0-9]*; do tr "\\0" "\\n" < "$d/environ" 2>/dev/null | grep -qx "$1" '
                   '&& kill -9 "${d#/proc/}" 2>/dev/null; done; true')


def container_env(env: Mapping[str, str], marker: str) -> dict[str, str]:
    """The exec's environment: the credentials and database name, not the worker's way in, plus our marker."""
    out = {k: v for k, v in env.items() if k not in _HOST_ONLY}
    out[MARKER] = marker
    return out


class _Lines:
    """Bytes in, whole lines out to `add` (a frame may end mid-line)."""

    def __init__(self, add: Any) -> None:
        self._add = add
        self._partial = b""

    def feed(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-_LINE_CHARS * 4:]
        for line in lines:
            self._add(line)

    def end(self) -> None:
        if self._partial:
            self._add(self._partial)
            self._partial = b""


class _Exec:
    """What a read and a fed exec share: start, state, kill, and the wait for the exit status."""

    def __init__(self, executor: DockerExecutor, argv: list[str], env: Mapping[str, str], *, stdin: bool) -> None:
        self.argv = argv
        self._executor = executor
        token = uuid.uuid4().hex
        self._marker = f"{MARKER}={token}"
        self._exited_line = f"owb-exited-{token}".encode()
        self.exited = threading.Event()  # a fed program has exited (it reads no more input)
        container = executor.container()
        self._container = container
        command = ["sh", "-c", _DRAIN_AFTER, self._exited_line.decode(), *argv] if stdin else argv
        self._id, self._response, self._raw = exec_open(executor.client(), container, command,
                                                        container_env(env, token), stdin=stdin)
        self._frames = Frames(self._raw, gather=not stdin)
        self._stderr = StderrLog()
        self._stderr_lines = _Lines(self._add_stderr)
        self._killed = False
        self._code: int | None = None
        self._pid = 0

    @property
    def pid(self) -> int:
        """The program's PID on the engine's host. Asked while attached (every kill is): once the connection is
        gone, podman soon reports Pid 0. Not asked up front: one API call less on every run's fixed cost."""
        if not self._pid:
            self._pid = exec_state(self._executor.client(), self._id)[2]
        return self._pid

    def _wait_code(self, timeout: float | None) -> int:
        if self._code is not None:
            return self._code
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            running, code, _ = exec_state(self._executor.client(), self._id)
            if not running:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.argv[0]} in container {self._container.name} still runs")
            time.sleep(0.01)
        if code is None or code < 0:
            code = -signal.SIGKILL  # killed by us, or its container went away (podman: -1, or no exec left)
        elif 128 < code <= 128 + 64:
            code = 128 - code  # the engine reports a signal's death as 128+N; the PostgreSQL clients never exit so
        if code != 0 and not self._killed and not self._container_running():
            self._stderr.add(f"container {self._container.name} stopped during the run".encode())
        self._code = code
        return code

    def _add_stderr(self, line: bytes) -> None:
        if line.startswith(self._exited_line + b" "):
            self.exited.set()
        else:
            self._stderr.add(line)

    def _container_running(self) -> bool:
        try:
            self._container.reload()
        except Exception:  # gone, or the API with it: not running either way
            return False
        return bool(self._container.status == "running")

    def _kill(self) -> None:
        if self._code is not None:
            return
        self._killed = True
        pid = 0
        with contextlib.suppress(Exception):  # the engine may be gone too: then the marker kill below tries
            pid = self.pid
        if pid and self._ours(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            return
        with contextlib.suppress(Exception):  # the container may be gone: then so is the program
            exec_run(self._container, ["sh", "-c", _KILL_BY_MARKER, "sh", self._marker])

    def _ours(self, pid: int) -> bool:
        """The exec's host PID is visible here and is this exec (a PID from another namespace is not ours)."""
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                return self._marker.encode() in environ.read().split(b"\0")
        except OSError:
            return False

    def _close_socket(self) -> None:
        with contextlib.suppress(OSError):
            self._response.close()
            self._raw.close()

    def stderr_tail(self) -> str:
        return self._stderr.text()


class DockerProcess(_Exec):
    """A program whose stdout we read, as from a pipe; stderr frames go to the tail as they pass."""

    def __init__(self, executor: DockerExecutor, argv: list[str], env: Mapping[str, str],
                 stdin: int | None = None) -> None:
        super().__init__(executor, argv, env, stdin=stdin is not None)
        self._pending = b""
        self._eof = False
        self._feeder: threading.Thread | None = None
        self._ahead = ReadAhead(self._frames, self._stderr_lines.feed) if stdin is None else None
        if stdin is not None:  # a pipe the caller writes: copy it into the exec, then EOF
            self._feeder = threading.Thread(target=self._copy_stdin, args=(os.dup(stdin),), daemon=True,
                                            name="exec-stdin")
            self._feeder.start()

    def _copy_stdin(self, fd: int) -> None:
        try:
            while not self.exited.is_set() and (block := os.read(fd, RECV)):
                self._raw.sendall(block)
        except OSError:
            pass  # the program exited (it read what it needed); its status says how
        finally:
            os.close(fd)  # the writer then meets a broken pipe, as with a local program that exited
            with contextlib.suppress(OSError):
                self._raw.shutdown(socket.SHUT_WR)

    def read(self, size: int) -> bytes:
        if not self._pending:
            if self._eof:
                return b""
            data = self._ahead.get() if self._ahead is not None else self._frames.stdout(size, self._stderr_lines.feed)
            if data is None:
                self._eof = True
                self._stderr_lines.end()
                return b""
            self._pending = data
        if len(self._pending) <= size:
            chunk, self._pending = self._pending, b""
        else:
            chunk, self._pending = self._pending[:size], self._pending[size:]
        return chunk

    def wait(self, timeout: float | None = None) -> int:
        return self._wait_code(timeout)

    def kill(self) -> None:
        self._kill()

    def close(self) -> None:
        if not self._eof:
            self._kill()
        with contextlib.suppress(Exception):
            self._wait_code(10)
        if self._ahead is not None:
            self._ahead.stop(timeout=5)
        self._close_socket()
        if self._feeder is not None:
            self._feeder.join(timeout=5)


class DockerFeeder(_Exec):
    """A program we write to; a thread drains its stdout and stderr frames into bounded tails."""

    def __init__(self, executor: DockerExecutor, argv: list[str], env: Mapping[str, str],
                 on_line: Callable[[bytes], None] | None = None) -> None:
        super().__init__(executor, argv, env, stdin=True)
        self._on_line = on_line
        self.stdout_lines = 0
        self._out: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._stdout_lines = _Lines(self._add_stdout)
        self._done = threading.Event()
        self._drain = threading.Thread(target=self._read, daemon=True, name="exec-out")
        self._drain.start()

    def _add_stdout(self, raw: bytes) -> None:
        self.stdout_lines += 1
        if self._on_line is not None:
            self._on_line(raw)
        self._out.append(raw.decode("utf-8", "replace").rstrip()[:_LINE_CHARS])

    def _read(self) -> None:
        try:
            while (frame := self._frames.next()) is not None:
                (self._stdout_lines if frame[0] == STDOUT else self._stderr_lines).feed(frame[1])
        finally:
            self._stdout_lines.end()
            self._stderr_lines.end()
            self._done.set()

    def write(self, data: bytes) -> bool:
        if self.exited.is_set() or self._done.is_set():
            return False  # it exited: its status says why
        try:
            self._raw.sendall(data)
        except OSError:
            return False
        return True

    def finish(self, timeout: float | None = None) -> int:
        with contextlib.suppress(OSError):
            self._raw.shutdown(socket.SHUT_WR)  # EOF on its stdin
        self._drain.join(timeout)
        code = self._wait_code(timeout)
        self._close_socket()
        return code

    def kill(self) -> None:
        self._kill()
        with contextlib.suppress(Exception):
            self.finish(timeout=10)

    def stdout_tail(self) -> str:
        return "\n".join(self._out)


class DockerExecutor:
    """Clients inside the database container. The Docker API is reached on first use, not before."""

    name = "docker"

    def __init__(self, container_name: str) -> None:
        self.container_name = container_name
        self._client: docker.DockerClient | None = None
        self._container: Container | None = None
        self._tools: dict[str, ClientTool] = {}
        self._lock = threading.Lock()

    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = docker_client()
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client, self._container = self._client, None, None
        if client is not None:
            client.close()

    def container(self) -> Container:
        if self._container is None:
            self._container = running_container(self.client(), self.container_name, SETTING)
        return self._container

    def find_client(self, program: str, server_major: int, server_version: str) -> ClientTool:
        """`program --version` inside the container; it must be at least the server's major."""
        tool = self._tools.get(program)
        if tool is None:
            code, out, _ = exec_run(self.container(), [program, "--version"])
            found = parse_version(program, out.decode("utf-8", "replace")) if code == 0 else None
            if found is None:
                raise ContainerMissing(f"{program} not found in container {self.container_name}: set {SETTING} to "
                                       "the PostgreSQL container, or OPENWATCH_BACKUP_EXECUTOR=local")
            tool = self._tools[program] = found
        if tool.major < server_major:
            raise ClientVersionMismatch(
                f"{program} {tool.version} in container {self.container_name} is older than the server "
                f"(PostgreSQL {server_version}); set {SETTING} to the server's own container")
        return tool

    def start(self, argv: list[str], env: Mapping[str, str], *, stdin: int | None = None) -> DockerProcess:
        return DockerProcess(self, argv, env, stdin)

    def feed(self, argv: list[str], env: Mapping[str, str], *,
             on_line: Callable[[bytes], None] | None = None) -> DockerFeeder:
        return DockerFeeder(self, argv, env, on_line)

    @contextlib.contextmanager
    def staged_file(self, text: str, name: str) -> Iterator[str]:
        """The file in a fresh folder under the container's /tmp, written through an exec's stdin (sh and cat:
        every PostgreSQL image has them) and removed after the block. Used for pg_restore lists only."""
        folder = f"/tmp/owb-{uuid.uuid4().hex}"  # noqa: S108 - in the container; mkdir refuses an existing one
        writer = self.feed(["sh", "-c", 'umask 077 && mkdir "$1" && cat > "$1/$2"', "sh", folder, name], {})
        writer.write(text.encode())
        if writer.finish(timeout=30) != 0:
            raise DockerUnavailable(f"cannot write {folder}/{name} in container {self.container_name} "
                                    f"({writer.stderr_tail().strip()[-200:]}); check that its /tmp is writable")
        try:
            yield f"{folder}/{name}"
        finally:
            with contextlib.suppress(Exception):
                exec_run(self.container(), ["rm", "-rf", folder])
