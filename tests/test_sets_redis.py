"""The nightly set's Redis member (OPENWATCH_BACKUP_REDIS=on): a real redis-server in a podman container read
through the real Docker Engine API (podman's), the real catalog. The due schedule queues one set and no separate
snapshot; the set takes the dump and the snapshot as members pointing at it, each verified; a snapshot that
cannot be taken fails its member and so the set, whose dump still stands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.scheduling import next_fire
from openwatch_backup.service import BackupService
from openwatch_backup.service.sets import execute_set, request_set
from tests.podman_fixtures import RedisContainer
from tests.support.podman_lab import PodmanLab

pytestmark = pytest.mark.podman

FAMILY = {"full": "postgres", "redis": "redis"}


def _service(make_service: Callable[..., BackupService], url: str, tmp_path: Path, container: RedisContainer,
             monkeypatch: pytest.MonkeyPatch, podman: PodmanLab, name: str | None = None) -> BackupService:
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    return make_service(url, tmp_path / "backups", schedule="0 2 * * *", drill_schedule="0 4 * * 0", redis=True,
                        redis_url=container.url, redis_container=name or container.name)


def _members(service: BackupService, set_id: object) -> list[BackupRun]:
    return [r for r in service.recorder.list(limit=20, parent_id=set_id, oldest_first=True)  # type: ignore[arg-type]
            if r.kind in FAMILY]


def _files(service: BackupService) -> list[str]:
    root = service.settings.dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_nightly_set_takes_a_redis_snapshot_member(podman: PodmanLab, redis_container: RedisContainer,
                                                       openwatch_db: str, tmp_path: Path, make_service,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    client = redis.Redis(unix_socket_path=str(redis_container.socket))
    client.flushall()
    client.mset({f"scan:{i}": f"result {i}" for i in range(200)})
    client.close()
    service = _service(make_service, openwatch_db, tmp_path, redis_container, monkeypatch, podman)
    installed = datetime.now(UTC)
    assert service.dispatch_due(installed) == []
    nightly = next_fire("0 2 * * *", installed)

    [(kind, set_id)] = service.dispatch_due(nightly + timedelta(seconds=20))  # the set alone: no separate snapshot

    assert kind == "set"
    assert service.get_run(str(set_id)).details["planned"] == ["full", "redis"]
    done = execute_set(service, set_id)
    assert (done.kind, done.status, done.error, done.details["outcome"]) == ("set", "succeeded", None, "complete")
    members = _members(service, set_id)
    assert [(m.kind, m.status, m.parent_id, m.details["set_id"]) for m in members] == [
        ("full", "succeeded", set_id, str(set_id)), ("redis", "succeeded", set_id, str(set_id))]
    redis_run = members[1]
    manifest = Manifest.from_json((service.settings.dir / "redis" /
                                   f"{redis_run.details['artifact']}.manifest.json").read_bytes())
    assert manifest.set_id == str(set_id)
    assert manifest.redis is not None
    assert manifest.redis.keys == 200
    for member in members:
        [verify] = service.recorder.list(limit=5, kind="verify", parent_id=member.id)
        assert verify.status == "succeeded", verify.error
    assert _files(service) == sorted(f"{FAMILY[m.kind]}/{m.details['artifact']}{suffix}" for m in members
                                     for suffix in ("", ".manifest.json"))


def test_a_failed_snapshot_fails_the_set_and_keeps_its_dump(podman: PodmanLab, redis_container: RedisContainer,
                                                            openwatch_db: str, tmp_path: Path, make_service,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(make_service, openwatch_db, tmp_path, redis_container, monkeypatch, podman,
                       name="owb-no-such-redis")
    set_id, created = request_set(service, requested_by="test")
    assert created

    done = execute_set(service, set_id)

    members = _members(service, set_id)
    assert [(m.kind, m.status) for m in members] == [("full", "succeeded"), ("redis", "failed")]
    assert members[1].error == ("container owb-no-such-redis does not exist: set OPENWATCH_BACKUP_REDIS_CONTAINER "
                                "to the name `docker ps` shows")
    assert (done.status, done.error_code, done.details["outcome"]) == ("failed", "set_partial", "partial")
    assert done.error == f"set partial: redis {str(members[1].id)[:8]} failed"
    full = members[0]
    assert _files(service) == [f"postgres/{full.details['artifact']}",
                               f"postgres/{full.details['artifact']}.manifest.json"]
