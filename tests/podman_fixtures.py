"""Session fixtures on a real Docker Engine API (podman's `podman system service`, tests/support/podman_lab.py).

    podman           the lab: .client() (docker.DockerClient), .socket_url (for DOCKER_HOST), .sockets (a host
                     folder bind-mounted at /sockets in the containers), .run(image, ...)
    pg_container     PostgreSQL 15 in "owb-db" (data in the volume openwatch_postgres_data); .dsn (psycopg
                     keywords) and .url(dbname) reach it from the host through the socket in .sockets
    redis_container  redis in "owb-redis" (/data in the volume openwatch_redis_data); .socket, .url

Tests that use them carry the `podman` marker. They are skipped only when not root (podman needs it here);
as root a missing podman FAILS, because CI installs it (scripts/bootstrap).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.podman_lab import PG_IMAGE, REDIS_IMAGE, PodmanLab, missing_programs, wait_for

PG_NAME = "owb-db"
PG_VOLUME = "openwatch_postgres_data"
REDIS_NAME = "owb-redis"
REDIS_VOLUME = "openwatch_redis_data"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "podman: needs root and podman (a real Docker Engine API)")


@dataclass
class PgContainer:
    container: Any  # docker.models.containers.Container
    name: str
    volume: str
    sockets: Path
    dsn: dict[str, Any] = field(default_factory=dict)
    startup_seconds: float = 0.0

    def url(self, dbname: str = "postgres") -> str:
        """A URL for OPENWATCH_DATABASE_URL: the server in the container, through its socket on the host."""
        return f"postgresql://postgres@/{dbname}?host={self.sockets}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(dbname=dbname, autocommit=True, **self.dsn)


@dataclass
class RedisContainer:
    container: Any
    name: str
    volume: str
    socket: Path

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"


@pytest.fixture(scope="session")
def podman() -> Iterator[PodmanLab]:
    if os.geteuid() != 0:
        pytest.skip("needs root: podman's Docker API runs rootful here")
    missing = missing_programs()
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run scripts/bootstrap as root (apt-get install podman runc "
                    "busybox-static)", pytrace=False)
    lab = PodmanLab.create()
    print(f"\n[podman lab] {lab.root} ready in {lab.setup_seconds:.1f} s")
    try:
        yield lab
    finally:
        lab.close()
    assert lab.ip_forward_unchanged(), "a container got bridge networking: pass network_mode='none'"


@pytest.fixture(scope="session")
def pg_container(podman: PodmanLab) -> Iterator[PgContainer]:
    started = time.monotonic()
    container = podman.run(PG_IMAGE, name=PG_NAME, detach=True,
                           volumes={PG_VOLUME: {"bind": "/var/lib/postgresql/data", "mode": "rw"},
                                    str(podman.sockets): {"bind": "/sockets", "mode": "rw"}},
                           environment={"PGHOST": "/sockets", "PGUSER": "postgres"})
    pg = PgContainer(container, PG_NAME, PG_VOLUME, podman.sockets,
                     dsn={"host": str(podman.sockets), "port": 5432, "user": "postgres"})
    try:
        wait_for(lambda: pg.connect().close(), errors=(psycopg.OperationalError,))
        pg.startup_seconds = time.monotonic() - started
        yield pg
    finally:
        container.remove(force=True, v=True)


@pytest.fixture(scope="session")
def redis_container(podman: PodmanLab) -> Iterator[RedisContainer]:
    import redis

    container = podman.run(REDIS_IMAGE, name=REDIS_NAME, detach=True,
                           volumes={REDIS_VOLUME: {"bind": "/data", "mode": "rw"},
                                    str(podman.sockets): {"bind": "/sockets", "mode": "rw"}})
    ctr = RedisContainer(container, REDIS_NAME, REDIS_VOLUME, podman.sockets / "redis.sock")
    try:
        client = redis.Redis(unix_socket_path=str(ctr.socket))
        wait_for(client.ping, errors=(redis.ConnectionError, FileNotFoundError))
        client.close()
        yield ctr
    finally:
        container.remove(force=True, v=True)
