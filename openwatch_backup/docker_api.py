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
