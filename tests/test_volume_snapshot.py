"""Volume snapshots (kind `volume`) and their restore, against a real Docker Engine API (podman's).

The volume holds what a tar round trip gets wrong first: owners that are not root, modes (setuid, 0600, 0700
folders), relative/absolute/dangling symlinks, a hard link, empty folders, unicode names, a 1 MB random file.
Listings are taken from inside a container (find -printf: type, mode, uid, gid, size, link target, name), so
the comparison is of what a container sees in the volume, not of what our tar says.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, RunStatus, Trigger
from openwatch_backup.core.naming import VOLUME_PREFIX, family_prefix
from openwatch_backup.errors import ConfigError, ContainerMissing, RestoreRefused
from openwatch_backup.operations import kill_points
from openwatch_backup.service import BackupService
from tests.support.podman_lab import BUSYBOX_IMAGE, PodmanLab

pytestmark = pytest.mark.podman

VOLUME = "owb_app_data"
APP = "owb-app"  # a running container that mounts the volume, as openwatch-backend mounts app_data
POPULATE = r"""set -e; cd /vol
mkdir -p dir/sub emptydir/inner secret "ünï dir"
printf 'hello\n' > dir/a.txt; chmod 640 dir/a.txt; chown 10001:10001 dir/a.txt
printf 'x' > secret/key; chmod 600 secret/key; chown -R 999:998 secret; chmod 700 secret
printf '#!/bin/sh\n' > dir/sub/run.sh; chmod 4755 dir/sub/run.sh
ln -s dir/a.txt link-rel; ln -s /etc/passwd link-abs; ln -s missing dangling; ln dir/a.txt hardlink
chown -h 10001:10001 link-rel
printf 'u\n' > "héllo wörld ✓.txt"; chown 1234:4321 "héllo wörld ✓.txt"
head -c 1000000 /dev/urandom > big.bin; chmod 444 big.bin
touch -d '2020-01-02 03:04:05' dir/a.txt
"""
# busybox has no find -printf: stat each entry (raw mode in hex: type and permission bits, owner, size, the name
# quoted and, for a link, its target).
LISTING = "cd /vol && find . -mindepth 1 | sort | while IFS= read -r f; do stat -c '%f %u %g %s %N' \"$f\"; done"


def in_volume(podman: PodmanLab, volume: str, command: str) -> str:
    """A shell command's output, run in a container that mounts the volume read-only at /vol. The output goes
    to a file in a bind-mounted host folder: a container's logs (and exec_run's output) can come back short."""
    out = Path(tempfile.mkdtemp(prefix="owb-list-"))
    try:
        podman.run(BUSYBOX_IMAGE, command=["sh", "-c", f"({command}) > /out/text"], remove=True,
                   volumes={volume: {"bind": "/vol", "mode": "ro"}, str(out): {"bind": "/out", "mode": "rw"}})
        return (out / "text").read_text()
    finally:
        shutil.rmtree(out)


def listing(podman: PodmanLab, volume: str) -> list[str]:
    """What a container sees in the volume: one line per entry, sorted (sizes of folders left out)."""
    lines = []
    for line in in_volume(podman, volume, LISTING).splitlines():
        mode, uid, gid, size, rest = line.split(" ", 4)
        is_dir = int(mode, 16) & 0o170000 == 0o040000
        lines.append(" ".join((f"{int(mode, 16):o}", uid, gid, "-" if is_dir else size, rest)))
    return sorted(lines)


def checksums(podman: PodmanLab, volume: str) -> list[str]:
    return sorted(in_volume(podman, volume, "cd /vol && find . -type f -exec md5sum {} +")
                  .splitlines())


@pytest.fixture(scope="module")
def app_volume(podman: PodmanLab) -> Iterator[str]:
    client = podman.client()
    client.volumes.create(VOLUME)
    podman.run(BUSYBOX_IMAGE, command=["sh", "-c", POPULATE], remove=True, volumes={VOLUME: {"bind": "/vol"}})
    app = podman.run(BUSYBOX_IMAGE, command=["sleep", "3600"], name=APP, detach=True,
                     volumes={VOLUME: {"bind": "/openwatch/data"}})
    try:
        yield VOLUME
    finally:
        app.remove(force=True)
        client.volumes.get(VOLUME).remove(force=True)


@pytest.fixture
def service(podman: PodmanLab, openwatch_db: str, tmp_path: Path, make_service: Any,
            monkeypatch: pytest.MonkeyPatch) -> BackupService:
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    made: BackupService = make_service(openwatch_db, tmp_path / "backups", db_container=APP, volumes=VOLUME)
    return made


def snapshot(service: BackupService, volume: str, stop: list[str] | None = None) -> BackupRun:
    (run_id,) = service.request_volume_snapshots([volume], stop)
    return service.execute_backup(run_id)


def test_round_trip_into_a_new_volume(service: BackupService, podman: PodmanLab, app_volume: str,
                                      tmp_path: Path) -> None:
    before = listing(podman, app_volume)
    assert len(before) == 15
    assert "104755 0 0 10 ./dir/sub/run.sh" in before
    run = snapshot(service, app_volume)
    assert run.status == RunStatus.SUCCEEDED.value, run.error
    artifact = run.details["artifact"]
    assert artifact.startswith(f"volume_{app_volume}_")
    assert artifact.endswith(".tar.zst")
    assert family_prefix(artifact) == VOLUME_PREFIX
    path = tmp_path / "backups" / VOLUME_PREFIX / artifact
    assert path.stat().st_mode & 0o777 == 0o600
    # The operator's own tools read it: zstd -dc FILE | tar t
    names = subprocess.run(f"zstd -dc '{path}' | tar t", shell=True, check=True, capture_output=True).stdout
    assert "./héllo wörld ✓.txt".encode() in names.splitlines()
    assert run.details["volume"]["source"] == f"exec {APP}"
    assert run.details["volume"]["members"] == len(before) + 1  # every entry and "./"

    restored = service.restore_volume(str(run.id), volume=app_volume)
    assert restored.status == RunStatus.SUCCEEDED.value, restored.error
    new = restored.details["volume_restore"]["volume"]
    assert new.startswith(f"{app_volume}_restored_")
    try:
        assert listing(podman, new) == before
        assert checksums(podman, new) == checksums(podman, app_volume)
    finally:
        podman.client().volumes.get(new).remove(force=True)


def volume_runs(service: BackupService) -> list[BackupRun]:
    return service.list_runs(kind=BackupKind.VOLUME.value)


def is_running(podman: PodmanLab, name: str) -> bool:
    return bool(podman.client().containers.get(name).status == "running")


def helpers_left(podman: PodmanLab) -> list[str]:
    return [c.name for c in podman.client().containers.list(all=True, filters={"label": "openwatch-backup"})]


class FailingWriter:
    """A storage writer that fails after the first chunk: the snapshot fails while the containers are down."""

    def __init__(self, writer: Any) -> None:
        self._writer, self.key = writer, writer.key

    def write(self, data: bytes) -> int:
        from openwatch_backup.errors import StorageError

        self._writer.write(data)
        raise StorageError("injected: the backup disk is full")

    def commit(self) -> None:
        self._writer.commit()

    def abort(self) -> None:
        self._writer.abort()


@pytest.fixture
def bystander(podman: PodmanLab) -> Iterator[str]:
    """A running container that has nothing to do with the volume (as openwatch-celery-beat)."""
    container = podman.run(BUSYBOX_IMAGE, command=["sleep", "3600"], name="owb-beat", detach=True)
    try:
        yield "owb-beat"
    finally:
        container.remove(force=True)


def test_consistent_mode_stops_reads_through_a_helper_and_starts_them_again(
        service: BackupService, podman: PodmanLab, app_volume: str, bystander: str) -> None:
    run = snapshot(service, app_volume, stop=[bystander, APP])
    assert run.status == RunStatus.SUCCEEDED.value, run.error
    info = run.details["volume"]
    # APP, the only container that mounts it, was stopped: a helper from APP's image read it (nothing pulled).
    assert info["source"] == f"helper {BUSYBOX_IMAGE}"
    assert info["consistent"] is True
    assert info["stopped"] == [bystander, APP]
    assert 0 < info["downtime_seconds"] < 60
    assert run.details["restarted"] == [bystander, APP]
    assert run.details["restart_failed"] == []
    assert is_running(podman, APP)
    assert is_running(podman, bystander)
    assert helpers_left(podman) == []
    checked, result = service.verify(str(run.id))
    assert checked.status == RunStatus.SUCCEEDED.value, checked.error
    assert result is not None
    assert result.checks["members"] == info["members"] == 16


def test_consistent_mode_restarts_the_containers_when_the_snapshot_fails(
        service: BackupService, podman: PodmanLab, app_volume: str, bystander: str, tmp_path: Path) -> None:
    real_open = service.storage.open_writer
    service.storage.open_writer = lambda key: FailingWriter(real_open(key))  # type: ignore[method-assign]
    (run_id,) = service.request_volume_snapshots([app_volume], [bystander, APP])
    with pytest.raises(Exception, match="injected: the backup disk is full"):
        service.execute_backup(run_id)
    run = service.get_run(str(run_id))
    assert run.status == RunStatus.FAILED.value
    assert run.details["stopping"] == [bystander, APP]  # recorded before they were stopped
    assert run.details["restarted"] == [bystander, APP]
    assert run.details["downtime_seconds"] > 0
    assert is_running(podman, APP)
    assert is_running(podman, bystander)
    assert helpers_left(podman) == []
    assert list((tmp_path / "backups" / VOLUME_PREFIX).iterdir()) == []  # the partial file removed too


def test_the_sweeper_starts_what_a_dead_run_stopped(service: BackupService, podman: PodmanLab, app_volume: str,
                                                   bystander: str) -> None:
    (run_id,) = service.request_volume_snapshots([app_volume], [bystander], trigger=Trigger.SCHEDULE)
    service.recorder.claim(run_id)
    service.recorder.progress(run_id, "stopping", details={"stopping": [bystander]})  # the intent, recorded first
    podman.client().containers.get(bystander).stop(timeout=1)  # ... then the worker died with it stopped
    with service.engine.begin() as conn:
        conn.execute(update(BackupRun).where(BackupRun.id == run_id).values(
            heartbeat_at=datetime.now(UTC) - timedelta(days=1)))
    report = service.watchdog()
    assert report["abandoned"] == [str(run_id)]
    assert is_running(podman, bystander)
    run = service.get_run(str(run_id))
    assert run.status == RunStatus.ABANDONED.value
    assert run.details["restarted"] == [bystander]
    assert run.details["restarted_by"] == "sweeper"


def test_the_dispatcher_queues_one_run_per_volume_at_the_weekly_time(
        service: BackupService, app_volume: str) -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    service.settings_store.set("scheduler.seen.volume", {"expression": "0 3 * * 0", "since": saturday.isoformat()})
    assert "volume" not in [k for k, _ in service.dispatch_due(saturday + timedelta(hours=14, minutes=59))]
    queued = [(k, r) for k, r in service.dispatch_due(saturday + timedelta(hours=15, minutes=1)) if k == "volume"]
    assert len(queued) == 1
    run = service.get_run(str(queued[0][1]))
    assert (run.kind, run.trigger, run.details["request"]["volume"]) == ("volume", "schedule", "owb_app_data")
    assert "volume" not in [k for k, _ in service.dispatch_due(saturday + timedelta(hours=15, minutes=2))]  # once


def test_verify_fails_a_changed_snapshot(service: BackupService, app_volume: str, tmp_path: Path) -> None:
    run = snapshot(service, app_volume)
    path = tmp_path / "backups" / VOLUME_PREFIX / run.details["artifact"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    checked, result = service.verify(str(run.id))
    assert checked.status == RunStatus.FAILED.value
    assert result is not None
    assert result.reason == "checksum"


def test_refuses_to_stop_the_worker_running_it(service: BackupService, podman: PodmanLab, app_volume: str,
                                              bystander: str, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = podman.client().containers.get(bystander)
    monkeypatch.setenv("HOSTNAME", worker.id[:12])  # as docker and podman set it inside a container
    with pytest.raises(ConfigError) as refused:
        service.request_volume_snapshots([app_volume], [APP, bystander])
    assert refused.value.message == (f"{bystander} is the container running this snapshot: it cannot stop itself; "
                                     "take it out of OPENWATCH_BACKUP_VOLUME_STOP (or --stop); nothing was stopped")
    assert is_running(podman, APP)
    assert is_running(podman, bystander)
    assert volume_runs(service) == []


def test_missing_volume_and_container_are_one_line_and_nothing_is_queued(
        service: BackupService, podman: PodmanLab, app_volume: str) -> None:
    with pytest.raises(ContainerMissing) as missing:
        service.request_volume_snapshots(["owb_no_such_volume"])
    assert missing.value.message == ("volume owb_no_such_volume does not exist: set --volume to a name `docker "
                                     "volume ls` shows")
    with pytest.raises(ContainerMissing) as ghost:
        service.request_volume_snapshots([app_volume], ["owb-ghost", APP])
    assert ghost.value.message == ("container owb-ghost does not exist: set OPENWATCH_BACKUP_VOLUME_STOP (or --stop) "
                                   "to the name `docker ps` shows")
    assert missing.value.exit_status == ghost.value.exit_status == 3
    assert is_running(podman, APP)  # checked before anything stopped
    assert volume_runs(service) == []


def test_restore_in_place_is_refused_while_a_running_container_uses_the_volume(
        service: BackupService, podman: PodmanLab, app_volume: str) -> None:
    run = snapshot(service, app_volume)
    with pytest.raises(RestoreRefused) as refused:
        service.restore_volume(str(run.id), volume=app_volume, confirm=app_volume)
    assert refused.value.message == (f"volume {app_volume} is in use by running container(s) {APP}: stop them first "
                                     f"(docker stop {APP}), or restore into a new volume (drop --confirm); nothing "
                                     "was changed")
    assert [r.id for r in volume_runs(service)] == [run.id]  # no safety snapshot, no restore run
    assert service.list_runs(kind="restore") == []


def test_restore_in_place_takes_a_safety_snapshot_then_replaces_the_contents(
        service: BackupService, podman: PodmanLab, app_volume: str) -> None:
    before = listing(podman, app_volume)
    run = snapshot(service, app_volume)
    app = podman.client().containers.get(APP)
    app.stop(timeout=1)
    try:
        damage = "rm -rf /vol/dir; echo new > /vol/stray; chmod 777 /vol/secret"
        podman.run(BUSYBOX_IMAGE, command=["sh", "-c", damage], remove=True, volumes={app_volume: {"bind": "/vol"}})
        damaged = listing(podman, app_volume)
        assert damaged != before
        restored = service.restore_volume(str(run.id), volume=app_volume, confirm=app_volume)
        assert restored.status == RunStatus.SUCCEEDED.value, restored.error
        assert listing(podman, app_volume) == before  # the stray file gone, the removed folder back
        safety = service.get_run(restored.details["safety_snapshot"])
        assert safety.kind == BackupKind.VOLUME.value
        assert safety.status == RunStatus.SUCCEEDED.value
        assert helpers_left(podman) == []
    finally:
        app.start()


def test_restore_of_another_volume_name_or_into_an_existing_volume_is_refused(
        service: BackupService, app_volume: str) -> None:
    run = snapshot(service, app_volume)
    with pytest.raises(RestoreRefused, match=f"is a snapshot of volume {app_volume}, not other: give --volume "
                                             f"{app_volume}$"):
        service.restore_volume(str(run.id), volume="other")
    with pytest.raises(RestoreRefused, match=f"^volume {app_volume} already exists: name a new one with --into"):
        service.restore_volume(str(run.id), volume=app_volume, into=app_volume)
    assert service.list_runs(kind="restore") == []


def test_prune_keeps_volume_snapshots_for_4_weeks(podman: PodmanLab, openwatch_db: str, tmp_path: Path,
                                                  make_service: Any, app_volume: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman.socket_url)
    service = make_service(openwatch_db, tmp_path / "backups", db_container=APP, verified_floor=1)
    runs = []
    for days in (0, 20, 40):
        run = snapshot(service, app_volume)
        checked, _ = service.verify(str(run.id))
        assert checked.status == RunStatus.SUCCEEDED.value, checked.error
        with service.engine.begin() as conn:
            conn.execute(update(BackupRun).where(BackupRun.id == run.id).values(
                created_at=datetime.now(UTC) - timedelta(days=days)))
        runs.append(run)
    pruned = service.prune(apply=True)
    assert pruned.status == RunStatus.SUCCEEDED.value, pruned.error
    plan = {d["run"]: d["action"] for d in pruned.details["plan"]}
    assert [plan[str(r.id)] for r in runs] == ["keep", "keep", "delete"]
    left = sorted(p.name for p in (tmp_path / "backups" / VOLUME_PREFIX).iterdir())
    assert left == sorted(f"{r.details['artifact']}{suffix}" for r in runs[:2] for suffix in ("", ".manifest.json"))


def test_a_bad_volume_schedule_or_name_is_one_line() -> None:
    from openwatch_backup.settings import load_settings

    with pytest.raises(ConfigError, match=r"^OPENWATCH_BACKUP_VOLUME_SCHEDULE: is not a 5-field cron expression"):
        load_settings(database_url="postgresql://u@localhost/db", volume_schedule="weekly")
    with pytest.raises(ConfigError, match=r"^OPENWATCH_BACKUP_VOLUMES: 'a/b' is not a docker name"):
        load_settings(database_url="postgresql://u@localhost/db", volumes="openwatch_app_data,a/b")


def test_the_cli_backs_up_restores_and_names_a_missing_volume(service: BackupService, podman: PodmanLab,
                                                              app_volume: str, openwatch_db: str,
                                                              tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("openwatch-backup")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENWATCH_", "PG"))}
    env.update(OPENWATCH_DATABASE_URL=openwatch_db, OPENWATCH_BACKUP_DIR=str(tmp_path / "backups"),
               DOCKER_HOST=podman.socket_url, OPENWATCH_BACKUP_DB_CONTAINER=APP)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, timeout=120)

    missing = run("backup", "--kind", "volume", "--volume", "owb_nope")
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr == ("error: volume owb_nope does not exist: set --volume to a name `docker volume ls` "
                              "shows\n")
    taken = run("backup", "--kind", "volume", "--volume", app_volume, "--json")
    assert taken.returncode == 0, taken.stderr
    (backup,) = json.loads(taken.stdout)
    assert backup["kind"] == "volume"
    assert backup["status"] == "succeeded"
    restored = run("restore", backup["id"][:8], "--volume", app_volume, "--into", "owb_cli_copy")
    try:
        assert restored.returncode == 0, restored.stderr
        assert f"restored volume {app_volume} into owb_cli_copy" in restored.stdout
        assert listing(podman, "owb_cli_copy") == listing(podman, app_volume)
    finally:
        podman.client().volumes.get("owb_cli_copy").remove(force=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_stopped_run_starts_its_containers_again(service: BackupService, podman: PodmanLab, app_volume: str,
                                                   bystander: str, openwatch_db: str, tmp_path: Path,
                                                   sig: signal.Signals) -> None:
    """Cancelled while the containers are down (SIGTERM: the run's own finally starts them), or killed there
    (SIGKILL: `sweep` finds the dead CLI run and starts what it recorded)."""
    pause = tmp_path / "pause"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENWATCH_", "PG"))}
    env.update(OPENWATCH_DATABASE_URL=openwatch_db, OPENWATCH_BACKUP_DIR=str(tmp_path / "backups"),
               DOCKER_HOST=podman.socket_url, OPENWATCH_BACKUP_DB_CONTAINER=APP,
               **{kill_points.AT: "volume_stopped", kill_points.FILE: str(pause)})
    cli = str(Path(sys.executable).with_name("openwatch-backup"))
    child = subprocess.Popen([cli, "backup", "--kind", "volume", "--volume", app_volume, "--stop", bystander],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not pause.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert not is_running(podman, bystander)  # stopped, and the run paused right there
        child.send_signal(sig)
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    (run,) = volume_runs(service)
    if sig is signal.SIGTERM:
        assert child.returncode == 130
        assert run.status == RunStatus.CANCELLED.value
    else:
        assert not is_running(podman, bystander)  # nobody left to start it ...
        swept = subprocess.run([cli, "sweep", "--json"], env={**env, kill_points.AT: ""}, capture_output=True,
                               text=True, timeout=120)
        assert swept.returncode == 0, swept.stderr
        assert json.loads(swept.stdout)["abandoned"] == [str(run.id)]  # ... until the sweeper
        run = service.get_run(str(run.id))
        assert run.status == RunStatus.ABANDONED.value
    assert is_running(podman, bystander)
    assert run.details["restarted"] == [bystander]
    assert list((tmp_path / "backups" / VOLUME_PREFIX).glob("*.tar.zst")) == []
