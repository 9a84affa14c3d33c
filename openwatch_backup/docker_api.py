"""The one place that talks to the Docker Engine API (the docker SDK; podman's compatible API in the tests).

Every docker SDK error is translated here into our hierarchy with one line naming the fix, so executors,
Redis and volume snapshots never see a docker exception. The socket comes from DOCKER_HOST, else the default
unix socket; it is root-equivalent, so the README says who should get it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

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
    try:
        client = docker.DockerClient(base_url=url, timeout=TIMEOUT_SECONDS)
        client.ping()
    except DockerException as exc:
        raise DockerUnavailable(f"cannot reach the Docker API at {url} ({_reason(exc)}): mount the docker socket "
                                "into the worker (/var/run/docker.sock) or set DOCKER_HOST, or set "
                                "OPENWATCH_BACKUP_EXECUTOR=local") from None
    return client


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
