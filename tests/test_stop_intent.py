"""A volume run that stopped the database container holding the catalog, then died: the sweeper starts the
containers from the local intent file before it touches the catalog (which it could not reach otherwise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from openwatch_backup.errors import DatabaseUnavailable
from openwatch_backup.operations.stop_intent import StopIntent, intent_dir, orphaned
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings
from tests.podman_fixtures import RedisContainer
from tests.support.podman_lab import PodmanLab

DEAD_CATALOG = "postgresql://postgres@127.0.0.1:9/openwatch"  # nothing listens on port 9


def dead_owner() -> dict[str, object]:
    """What this_process() said in a process that has exited since."""
    code = "import json; from openwatch_backup.catalog.owner import this_process; print(json.dumps(this_process()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    owner: dict[str, object] = json.loads(out)
    return owner


def write_intent(backup_dir: Path, names: list[str], owner: dict[str, object]) -> Path:
    folder = intent_dir(backup_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4()}.json"
    path.write_text(json.dumps({"run": path.stem, "containers": names, "owner": owner}))
    return path


def test_an_intent_is_whole_private_fresh_and_gone_when_done(tmp_path: Path) -> None:
    intent = StopIntent(tmp_path, uuid.uuid4(), ["owb-db"]).__enter__()
    try:
        assert oct(intent.path.stat().st_mode & 0o777) == oct(0o600)
        assert oct(intent.path.parent.stat().st_mode & 0o777) == oct(0o700)
        assert json.loads(intent.path.read_text())["containers"] == ["owb-db"]
        assert orphaned(tmp_path, stale_after_seconds=60) == []  # its writer (this process) is alive
    finally:
        intent.done()
    assert not intent.path.exists()


def test_a_silent_intent_of_another_container_counts_as_orphaned(tmp_path: Path) -> None:
    owner = {**dead_owner(), "pid_ns": "pid:[another container]"}  # not provably gone: only silence tells
    path = write_intent(tmp_path, ["owb-db"], owner)
    assert orphaned(tmp_path, stale_after_seconds=60) == []
    old = time.time() - 120
    os.utime(path, (old, old))
    assert [p for p, _ in orphaned(tmp_path, stale_after_seconds=60)] == [path]


def test_the_sweeper_starts_them_before_it_needs_the_catalog(podman: PodmanLab, redis_container: RedisContainer,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    container = podman.client().containers.get(redis_container.name)
    container.stop(timeout=5)
    path = write_intent(tmp_path, [redis_container.name, "owb-no-such-container"], dead_owner())
    service = BackupService(load_settings(database_url=DEAD_CATALOG, dir=tmp_path))
    try:
        with pytest.raises(DatabaseUnavailable):
            service.watchdog()  # the catalog is unreachable (as when its database container is stopped)...
    finally:
        service.close()
    container.reload()
    assert container.status == "running"  # ...but the containers were started first
    assert not path.exists()


def test_with_the_catalog_up_and_nothing_abandoned_the_sweep_completes(
        podman: PodmanLab, redis_container: RedisContainer, openwatch_db: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, make_service) -> None:
    """The intent's run is unknown to this catalog and no run is abandoned: the sweep still ends normally (it once
    alerted through the other loop's variable, a NameError here) and starts the container."""
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    container = podman.client().containers.get(redis_container.name)
    container.stop(timeout=5)
    path = write_intent(tmp_path, [redis_container.name], dead_owner())
    service = make_service(openwatch_db, tmp_path)
    report = service.watchdog()
    assert report["abandoned"] == []
    container.reload()
    assert container.status == "running"
    assert not path.exists()
