"""The one place that talks to the Docker Engine API (the docker SDK; podman's compatible API in the tests).

Every docker SDK error is translated here into our hierarchy with one line naming the fix, so executors,
Redis and volume snapshots never see a docker exception. The socket comes from DOCKER_HOST, else the default
unix socket; it is root-equivalent, so the README says who should get it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from openwatch_backup.errors import BackupError, ContainerMissing, DockerUnavailable

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
TIMEOUT_SECONDS = 60


def docker_url() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def docker_client() -> docker.DockerClient:
    """A client on DOCKER_HOST (or the default socket) that has answered a ping."""
    import docker  # 0.1 s; only the docker executor, Redis and volume snapshots need it
    from docker.errors import DockerException

    url = docker_url()
    unreachable = _unix_socket_problem(url)
    if unreachable:
        raise DockerUnavailable(f"cannot reach the Docker API at {url} ({unreachable}): mount the docker socket "
                                "into the worker (/var/run/docker.sock) or set DOCKER_HOST, or set "
                                "OPENWATCH_BACKUP_EXECUTOR=local")
    try:
        client = docker.DockerClient(base_url=url, timeout=TIMEOUT_SECONDS)
        client.ping()
    except DockerException as exc:
        raise DockerUnavailable(f"cannot reach the Docker API at {url} ({_reason(exc)}): mount the docker socket "
                                "into the worker (/var/run/docker.sock) or set DOCKER_HOST, or set "
                                "OPENWATCH_BACKUP_EXECUTOR=local") from None
    return client


def _unix_socket_problem(url: str) -> str | None:
    """Why a unix:// socket cannot be connected to, tried with a socket we close. The SDK's own unix
    connection leaks its socket when connect() fails (docker/transport/unixconn.py), so it never tries one
    that we already know is dead."""
    if not url.startswith("unix://"):
        return None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(5)
        probe.connect(url.removeprefix("unix://"))
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    finally:
        probe.close()
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def get_container(client: docker.DockerClient, name: str, setting: str) -> Container:
    """The container `name` (from `setting`); ContainerMissing naming the setting when there is none."""
    from docker.errors import NotFound

    with docker_errors(f"container {name}"):
        try:
            return client.containers.get(name)
        except NotFound:
            raise ContainerMissing(f"container {name} does not exist: set {setting} to the name `docker ps` "
                                   "shows") from None


@contextmanager
def docker_errors(what: str) -> Iterator[None]:
    """Any docker SDK or transport error inside becomes one line naming `what`; our own errors pass."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        yield
    except BackupError:
        raise
    except (DockerException, RequestException, ConnectionError) as exc:
        raise DockerUnavailable(f"{what}: the Docker API failed ({_reason(exc)}); check the docker daemon and "
                                "the worker's access to its socket") from None


ARCHIVE_CHUNK = 1 << 20


def stream_file(container: Container, path: str, what: str) -> tuple[int, Iterator[bytes]]:
    """One regular file of `container` as (its size, its bytes in chunks), out of get_archive's tar stream.

    The tar is read as a stream (tarfile "r|"): the member's bytes go straight to the caller, never to a disk
    here or a copy in the container. A missing path is ContainerMissing naming it; a cut stream, another tar
    layout or a size other than the one the API announced is DockerUnavailable naming `what`."""
    import tarfile
    from typing import IO, cast

    from docker.errors import NotFound

    with docker_errors(what):
        try:
            chunks, stat = container.get_archive(path, chunk_size=ARCHIVE_CHUNK)
        except NotFound:
            raise ContainerMissing(f"{what}: {path} does not exist in container {container.name}") from None
    if stat.get("mode", 0) & 0o20000000000 or not isinstance(stat.get("size"), int):  # os.ModeDir in Go's FileMode
        raise DockerUnavailable(f"{what}: {path} in container {container.name} is not a regular file")
    size: int = stat["size"]

    def member_bytes() -> Iterator[bytes]:
        with docker_errors(what):
            try:
                with tarfile.open(fileobj=cast(IO[bytes], _ChunkReader(iter(chunks))), mode="r|") as tar:
                    member = tar.next()
                    body = tar.extractfile(member) if member is not None and member.isfile() else None
                    if body is None or member is None:
                        raise DockerUnavailable(f"{what}: the archive of {path} holds no regular file")
                    if member.size != size:
                        raise DockerUnavailable(f"{what}: the archive of {path} holds {member.size} bytes, the "
                                                f"API announced {size}; run it again")
                    while chunk := body.read(ARCHIVE_CHUNK):
                        yield chunk
            except tarfile.TarError as exc:
                raise DockerUnavailable(f"{what}: the archive stream of {path} broke ({_reason(exc)}); run it "
                                        "again") from None

    return size, member_bytes()


class _ChunkReader:
    """A file-like read() over the API's chunk iterator, for tarfile's stream mode (which reads ~10 KiB at a time:
    a position into the current chunk, so no chunk is copied per read)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            rest = self._buffer[self._position:] + b"".join(self._chunks)
            self._buffer, self._position = b"", 0
            return rest
        while len(self._buffer) - self._position < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer = self._buffer[self._position:] + chunk
            self._position = 0
        data = self._buffer[self._position:self._position + size]
        self._position += len(data)
        return data


# --- Volumes (operations/volume_snapshot.py, volume_restore.py): what they need of the API, nothing pulled.
EXEC_READ_TIMEOUT = 300  # seconds without a byte from tar before the read is given up


def docker_configured() -> bool:
    """DOCKER_HOST is set or the default socket exists: the scheduled volume snapshot is for such installs."""
    return bool(os.environ.get("DOCKER_HOST")) or os.path.exists(DEFAULT_SOCKET.removeprefix("unix://"))


def get_volume(client: docker.DockerClient, name: str, setting: str) -> None:
    """ContainerMissing naming `setting` when the volume `name` does not exist."""
    from docker.errors import NotFound

    with docker_errors(f"volume {name}"):
        try:
            client.volumes.get(name)
        except NotFound:
            raise ContainerMissing(f"volume {name} does not exist: set {setting} to a name `docker volume ls` "
                                   "shows") from None


def volume_exists(client: docker.DockerClient, name: str) -> bool:
    from docker.errors import NotFound

    with docker_errors(f"volume {name}"):
        try:
            client.volumes.get(name)
        except NotFound:
            return False
    return True


def volume_users(client: docker.DockerClient, name: str) -> list[tuple[Container, str]]:
    """Every container, running or not, that mounts the volume `name`, with where it mounts it."""
    found = []
    with docker_errors(f"the containers that mount volume {name}"):
        for container in client.containers.list(all=True):
            for mount in container.attrs.get("Mounts") or []:
                if mount.get("Type") == "volume" and mount.get("Name") == name:
                    found.append((container, str(mount.get("Destination"))))
    return found


class ExecStream:
    """A program exec'd in a container whose stdout is read as a file (read(size)); stderr is kept apart.

    Frames of the hijacked exec socket are parsed here (8-byte headers: stream, length) with a timeout, which
    the SDK's frames_iter lacks. close() ends the program when it is still running (its host PID leads a process
    group) and returns its exit status."""

    def __init__(self, container: Container, argv: list[str], what: str, user: str = "0") -> None:
        self.what = what
        api = container.client.api
        self._api = api
        with docker_errors(what):
            self._id = api.exec_create(container.id, argv, stdout=True, stderr=True, user=user)["Id"]
            self._io = api.exec_start(self._id, socket=True)
        self._sock = getattr(self._io, "_sock", self._io)
        self._sock.settimeout(EXEC_READ_TIMEOUT)
        self._frames = bytearray()
        self._out = bytearray()
        self._eof = False
        self.stderr = bytearray()

    def _fill(self) -> None:
        try:
            data = self._sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            raise DockerUnavailable(f"{self.what}: no output for {EXEC_READ_TIMEOUT} s; check the container") from None
        if not data:
            self._eof = True
            return
        self._frames += data
        while len(self._frames) >= 8:
            size = int.from_bytes(self._frames[4:8], "big")
            if len(self._frames) < 8 + size:
                break
            target = self._out if self._frames[0] == 1 else self.stderr
            target += self._frames[8:8 + size]
            del self._frames[:8 + size]
        del self.stderr[:-4096]  # the tail is enough for an error line

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._out) < size):
            self._fill()
        cut = len(self._out) if size < 0 else min(size, len(self._out))
        data = bytes(self._out[:cut])
        del self._out[:cut]
        return data

    def close(self, wait: float = 10) -> int | None:
        """End the exec (killing it if it still runs) and return its exit status (None: unknown)."""
        import signal
        import time
        from contextlib import suppress

        with docker_errors(self.what):
            info = self._api.exec_inspect(self._id)
            if info.get("Running") and info.get("Pid"):
                # The engine on this host: its PID is ours to see. A remote engine: closing the socket makes
                # tar meet a broken pipe.
                with suppress(OSError):
                    os.killpg(int(info["Pid"]), signal.SIGKILL)
            with suppress(OSError):
                self._io.close()
                self._sock.close()
            deadline = time.monotonic() + wait
            while True:
                info = self._api.exec_inspect(self._id)
                if not info.get("Running") or time.monotonic() > deadline:
                    return None if info.get("Running") else int(info.get("ExitCode") or 0)
                time.sleep(0.02)


def helper_container(client: docker.DockerClient, image: str, volume: str, mount: str, *, read_only: bool,
                     entrypoint: list[str] | None = None) -> Container:
    """A container made (not started) from a local image with the volume mounted: no pull, no network, root
    (to read and write every owner's files), labelled so an operator sees what left it."""
    with docker_errors(f"a helper container from {image} for volume {volume}"):
        return client.containers.create(image, entrypoint=entrypoint or ["sleep"], command=["86400"] if
                                        entrypoint is None else [], user="0", network_mode="none", init=True,
                                        labels={"openwatch-backup": "volume-helper"},
                                        volumes={volume: {"bind": mount, "mode": "ro" if read_only else "rw"}})


def remove_container(container: Container) -> None:
    """Remove a helper container whatever state it is in; a failure here must not hide the run's own outcome."""
    from contextlib import suppress

    from docker.errors import DockerException
    from requests.exceptions import RequestException

    with suppress(DockerException, RequestException, ConnectionError):
        container.remove(force=True)


# --- exec (executors/docker.py): a program in a container, its streams on one hijacked socket --------------

def running_container(client: docker.DockerClient, name: str, setting: str) -> Container:
    """get_container, refusing one that exists but is not running (an exec needs a running container)."""
    container = get_container(client, name, setting)
    if container.status != "running":
        raise ContainerMissing(f"container {name} is {container.status}, not running: start it (docker start "
                               f"{name}) or set {setting} to the running database container")
    return container


def exec_open(client: docker.DockerClient, container: Container, argv: list[str], env: dict[str, str], *,
              stdin: bool) -> tuple[str, Any, socket.socket]:
    """Start argv in the container; (exec id, the response holding the socket open, the raw socket). The socket
    carries stdin (write; shutdown(SHUT_WR) is EOF) and multiplexed stdout/stderr frames (read)."""
    with docker_errors(f"docker exec {argv[0]} in container {container.name}"):
        exec_id = client.api.exec_create(container.id, argv, stdin=stdin, stdout=True, stderr=True,
                                         environment=env)["Id"]
        response = client.api.exec_start(exec_id, socket=True)
    raw: socket.socket = getattr(response, "_sock", response)  # SocketIO over a unix socket; the socket itself
    raw.settimeout(None)  # a dump may be silent for minutes (a lock wait); cancelling kills, not a timeout
    return exec_id, response, raw


def exec_state(client: docker.DockerClient, exec_id: str) -> tuple[bool, int | None, int]:
    """(running, exit code, host pid) of an exec; (False, None, 0) once the engine forgot it."""
    from docker.errors import NotFound

    with docker_errors("docker exec inspect"):
        try:
            info = client.api.exec_inspect(exec_id)
        except NotFound:
            return False, None, 0
    return bool(info.get("Running")), info.get("ExitCode"), int(info.get("Pid") or 0)


def exec_run(container: Container, argv: list[str], env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """A short command in the container: (exit code, stdout, stderr)."""
    with docker_errors(f"docker exec {argv[0]} in container {container.name}"):
        result = container.exec_run(argv, environment=env, demux=True)
    out, err = result.output if result.output else (None, None)
    return int(result.exit_code if result.exit_code is not None else -1), out or b"", err or b""
