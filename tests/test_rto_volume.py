"""The volume-loss row of the RTO table, measured: the volume drill against a real Docker Engine API (podman's).

The newest verified snapshot is restored into a scratch volume, compared with its manifest and timed; the
scratch volume is gone afterwards whatever happened (passed, failed, cancelled, killed and swept).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus, Trigger
from openwatch_backup.errors import RunNotFound
from openwatch_backup.operations import kill_points
from openwatch_backup.operations.rto import DRILL_VOLUME
from openwatch_backup.operations.volume_drill import run_volume_drill
from openwatch_backup.service import BackupService
from tests.support.podman_lab import BUSYBOX_IMAGE, PodmanLab

pytestmark = pytest.mark.podman

VOLUME = "owb_rto_data"
APP = "owb-rto-app"
POPULATE = r"""set -e; cd /vol; mkdir -p a/b empty; printf 'hello\n' > a/one.txt; chown 10001:10001 a/one.txt
head -c 300000 /dev/urandom > a/b/big.bin; ln -s a/one.txt link; printf 'x' > .hidden"""


@pytest.fixture(scope="module")
def app_volume(podman: PodmanLab) -> Iterator[str]:
    client = podman.client()
    client.volumes.create(VOLUME)
    podman.run(BUSYBOX_IMAGE, command=["sh", "-c", POPULATE], remove=True, volumes={VOLUME: {"bind": "/vol"}})
    app = podman.run(BUSYBOX_IMAGE, command=["sleep", "3600"], name=APP, detach=True,
                     volumes={VOLUME: {"bind": "/data"}})
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


def scratch_volumes(podman: PodmanLab) -> list[str]:
    return sorted(v.name for v in podman.client().volumes.list() if v.name.startswith("owbscratch_"))


def helpers(podman: PodmanLab) -> list[str]:
    return [c.name for c in podman.client().containers.list(all=True, filters={"label": "openwatch-backup"})]


def verified_snapshot(service: BackupService) -> BackupRun:
    (run_id,) = service.request_volume_snapshots([VOLUME], [])
    run = service.execute_backup(run_id)
    assert run.status == RunStatus.SUCCEEDED.value, run.error
    verify, _ = service.verify(str(run.id))
    assert verify.status == RunStatus.SUCCEEDED.value, verify.error
    return run


def test_the_volume_drill_measures_and_leaves_nothing(service: BackupService, podman: PodmanLab,
                                                      app_volume: str) -> None:
    with pytest.raises(RunNotFound, match=r"^no verified volume snapshot to drill with: take one"):
        service.rto_drill("volume")
    assert service.recorder.list(kind=DRILL_VOLUME) == []  # refused before anything was recorded
    snapshot = verified_snapshot(service)
    run = service.rto_drill("volume")
    assert run is not None
    assert run.status == RunStatus.SUCCEEDED.value, run.error
    assert run.parent_id == snapshot.id
    rto = run.details["rto"]
    assert rto["scenario"] == "volume_loss"
    assert rto["scratch_volume"] == f"owbscratch_voldrill_{run.id.hex[:12]}"
    assert 0 < rto["restore_seconds"] <= rto["seconds"] < 120
    assert rto["target_seconds"] == 1800
    compare = rto["compare"]
    manifest = snapshot.details["volume"]
    assert compare["members"] == compare["manifest_members"] == manifest["members"] == 8  # . a a/b ... .hidden
    assert compare["tar_bytes"] == manifest["tar_bytes"]
    assert compare["data_bytes"] == compare["written_data_bytes"] == 300000 + 6 + 1
    assert run.details["scratch_volumes"] == []
    assert scratch_volumes(podman) == []
    assert helpers(podman) == []
    # Shown: check's item and the status row carry the measured figure.
    rows = {row.scenario.key: row for row in service.rto_table()}
    assert rows["volume_loss"].state == "ok"
    assert rows["volume_loss"].seconds == rto["seconds"]
    seconds = rto["seconds"]
    shown = f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    assert rows["volume_loss"].line == f"volume loss: restored in {shown} (target 15-30 min) 0.0 h ago"
    item = next(i for i in service.checklist() if i.key == "rto_volume_loss")
    assert (item.status.value, item.detail, item.fix) == ("ok", rows["volume_loss"].line, "")


def test_a_drill_over_its_target_fails_is_measured_and_removes_its_volume(
        service: BackupService, podman: PodmanLab, app_volume: str, openwatch_db: str, tmp_path: Path,
        make_service: Any) -> None:
    verified_snapshot(service)
    strict: BackupService = make_service(openwatch_db, tmp_path / "backups", db_container=APP, volumes=VOLUME,
                                         volume_rto_minutes=0.0001)
    run = strict.rto_drill("volume")
    assert run is not None
    assert run.status == RunStatus.FAILED.value
    assert run.error_code == "rto_exceeded"
    assert run.error is not None
    assert run.error.startswith("volume restore took ")
    assert run.error.endswith(" s, over the 0.0001 min objective (OPENWATCH_BACKUP_VOLUME_RTO_MINUTES)")
    assert scratch_volumes(podman) == []
    row = next(r for r in strict.rto_table() if r.scenario.key == "volume_loss")
    assert row.state == "warn"
    assert row.line.endswith("(target 0.0001 min) 0.0 h ago; over the 0.0001 min target")


def test_a_failed_restore_removes_the_scratch_volume(service: BackupService, podman: PodmanLab,
                                                      app_volume: str, tmp_path: Path) -> None:
    """The snapshot file is swapped for another tar after the verify: the write fails on its checksum."""
    snapshot = verified_snapshot(service)
    run_id, created = service.recorder.create_unless_active(DRILL_VOLUME, (DRILL_VOLUME,), Trigger.CLI.value,
                                                            "test", parent_id=snapshot.id)
    assert created
    artifact = tmp_path / "backups" / "volumes" / snapshot.details["artifact"]
    original = artifact.read_bytes()

    from openwatch_backup.operations import volume_drill

    real = volume_drill.quick_verify

    def verify_then_change(ctx: Any, run: BackupRun) -> Any:
        found = real(ctx, run)
        artifact.write_bytes(original[:-64] + bytes(64))  # changed between the verify and the write
        return found

    volume_drill.quick_verify = verify_then_change  # type: ignore[assignment]
    try:
        with pytest.raises(Exception) as raised:
            run_volume_drill(service.context, run_id, snapshot)
    finally:
        volume_drill.quick_verify = real
        artifact.write_bytes(original)
    run = service.get_run(str(run_id))
    assert run.status == RunStatus.FAILED.value
    assert "rto" not in run.details  # not a measurement
    assert run.details["scratch_volumes"] == []
    assert scratch_volumes(podman) == []
    assert helpers(podman) == []
    assert str(raised.value)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_killed_volume_drill_leaves_nothing_the_sweeper_does_not_remove(
        service: BackupService, podman: PodmanLab, app_volume: str, openwatch_db: str, tmp_path: Path,
        sig: signal.Signals) -> None:
    """Stopped between creating the scratch volume (and its helper) and writing it: SIGTERM ends the run
    (cancelled, its except removes them); SIGKILL leaves them for `sweep`, which removes exactly them."""
    verified_snapshot(service)
    pause = tmp_path / "pause"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENWATCH_", "PG"))}
    env.update(OPENWATCH_DATABASE_URL=openwatch_db, OPENWATCH_BACKUP_DIR=str(tmp_path / "backups"),
               DOCKER_HOST=podman.socket_url, OPENWATCH_BACKUP_DB_CONTAINER=APP, OPENWATCH_BACKUP_VOLUMES=VOLUME,
               **{kill_points.AT: "volume_drill_writing", kill_points.FILE: str(pause)})
    cli = str(Path(sys.executable).with_name("openwatch-backup"))
    child = subprocess.Popen([cli, "drill", "--scenario", "volume"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not pause.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (run,) = service.recorder.list(kind=DRILL_VOLUME)
        scratch = f"owbscratch_voldrill_{run.id.hex[:12]}"
        assert run.details["scratch_volumes"] == [scratch]  # recorded before it was created
        assert scratch_volumes(podman) == [scratch]
        assert len(helpers(podman)) == 1
        child.send_signal(sig)
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if sig is signal.SIGTERM:
        assert child.returncode == 130
        run = service.get_run(str(run.id))
        assert run.status == RunStatus.CANCELLED.value
    else:
        assert scratch_volumes(podman) == [scratch]  # nobody left to remove it ...
        swept = subprocess.run([cli, "sweep", "--json"], env={**env, kill_points.AT: ""}, capture_output=True,
                               text=True, timeout=120)
        assert swept.returncode == 0, swept.stderr
        report = json.loads(swept.stdout)
        assert report["abandoned"] == [str(run.id)]
        assert report["scratch_volumes"] == [scratch]  # ... until the sweeper
        assert service.get_run(str(run.id)).status == RunStatus.ABANDONED.value
    assert scratch_volumes(podman) == []
    assert helpers(podman) == []
    rows = {row.scenario.key: row for row in service.rto_table()}
    assert rows["volume_loss"].line == "volume loss: never measured (target 15-30 min)"


def test_the_schedule_queues_the_volume_drill_at_its_fire_time(service: BackupService, podman: PodmanLab,
                                                               app_volume: str, openwatch_db: str, tmp_path: Path,
                                                               make_service: Any) -> None:
    verified_snapshot(service)
    beat: BackupService = make_service(openwatch_db, tmp_path / "backups", db_container=APP, volumes=VOLUME,
                                       volume_drill_schedule="*/5 * * * *")
    now = datetime(2026, 12, 1, 1, 1, tzinfo=UTC)
    assert beat.dispatch_rto_drills(now) == []  # first seen: waits for its next fire time (01:05)
    queued = beat.dispatch_rto_drills(now + timedelta(minutes=5))
    assert [kind for kind, _ in queued] == [DRILL_VOLUME]  # no host drill: off-site storage is off
    assert beat.dispatch_rto_drills(now + timedelta(minutes=6)) == []  # 01:05 handled; next at 01:10
    run = beat.execute_volume_drill(queued[0][1])
    assert (run.status, run.trigger, run.requested_by) == (RunStatus.SUCCEEDED.value, "schedule", "celery-beat")
    assert scratch_volumes(podman) == []


def test_the_sweeper_removes_only_scratch_volumes_of_ended_runs(service: BackupService, podman: PodmanLab,
                                                               app_volume: str) -> None:
    """A running drill's scratch volume, one whose run this catalog does not know (another install's), and a
    volume of an ended run that a container of someone else's still uses are all left alone."""
    from openwatch_backup.operations.scratch_volumes import LABEL

    client = podman.client()
    ended, running = (service.recorder.create(DRILL_VOLUME, Trigger.CLI.value, "test") for _ in range(2))
    assert service.recorder.claim(ended)
    assert service.recorder.claim(running)
    service.recorder.finish_unsuccessfully(ended, RunStatus.ABANDONED, "abandoned", "no heartbeat")
    names = {"ended": f"owbscratch_voldrill_{ended.hex[:12]}", "running": f"owbscratch_voldrill_{running.hex[:12]}",
             "unknown": "owbscratch_voldrill_0123456789ab", "used": f"owbscratch_hostdrill_{ended.hex[:12]}_data"}
    for name in names.values():
        client.volumes.create(name, labels={LABEL: "test"})
    user = podman.run(BUSYBOX_IMAGE, command=["sleep", "3600"], name="owb-rto-user", detach=True,
                      volumes={names["used"]: {"bind": "/d"}})
    try:
        report = service.watchdog()
        assert report["scratch_volumes"] == [names["ended"]]
        assert scratch_volumes(podman) == sorted(v for k, v in names.items() if k != "ended")
    finally:
        user.remove(force=True)
        for key in ("running", "unknown", "used"):
            client.volumes.get(names[key]).remove(force=True)
    assert scratch_volumes(podman) == []
