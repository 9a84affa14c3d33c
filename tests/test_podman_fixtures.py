"""The podman lab itself: the API answers, the two service containers serve through the socket folder, and
every container runs without a network namespace (the teardown then checks the host's ip_forward)."""

from __future__ import annotations

import pytest
import redis

from tests.podman_fixtures import PgContainer, RedisContainer
from tests.support.podman_lab import PodmanLab

pytestmark = pytest.mark.podman


def test_lab_serves_pg_and_redis(podman: PodmanLab, pg_container: PgContainer,
                                 redis_container: RedisContainer) -> None:
    print(f"lab {podman.setup_seconds:.1f} s, pg container {pg_container.startup_seconds:.1f} s")
    client = podman.client()
    names = sorted(c.name for c in client.containers.list())
    assert names == ["owb-db", "owb-redis"]
    for container in client.containers.list():
        assert container.attrs["HostConfig"]["NetworkMode"] == "none"
    with pg_container.connect() as conn:
        assert conn.execute("select current_setting('server_version_num')::int / 10000").fetchone() == (15,)
    r = redis.Redis(unix_socket_path=str(redis_container.socket))
    try:
        assert r.ping() is True
    finally:
        r.close()
    result = pg_container.container.exec_run(["pg_dump", "--version"])
    assert result.exit_code == 0
    assert b"(PostgreSQL) 15" in result.output
