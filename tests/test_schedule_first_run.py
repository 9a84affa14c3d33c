"""A schedule waits for its time: beat's dispatcher queues nothing at an install's first ticks (no "scheduled"
backup, verify and prune in the first minute, no drill a minute later), the first scheduled backup comes at the
first fire time after the schedule was first seen, and the status's "next backup" is exactly that time.

The dispatcher is driven with explicit clock readings against the real catalog; tests/test_celery_beat.py runs
the same rule under a real beat and worker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from openwatch_backup.core.kinds import BackupKind, Trigger
from openwatch_backup.scheduling import SEEN_KEYS, next_fire
from openwatch_backup.service import BackupService

NIGHTLY, WEEKLY = "0 2 * * *", "0 4 * * 0"  # the defaults: the guide's 02:00, the Sunday drill


def _service(make_service, url: str, tmp_path: Path, **settings: object) -> BackupService:
    return make_service(url, tmp_path / "backups", schedule=NIGHTLY, drill_schedule=WEEKLY, **settings)


# The scheduled job is a nightly set by default (one run of kind set, service/sets.py); off, the plain dump.
@pytest.mark.parametrize(("nightly_set", "queued_as"), [(True, ("set", "set")), (False, ("backup", "full"))])
def test_a_fresh_install_waits_for_the_schedule(openwatch_db: str, tmp_path: Path, make_service, nightly_set: bool,
                                                queued_as: tuple[str, str]) -> None:
    service = _service(make_service, openwatch_db, tmp_path, nightly_set=nightly_set)
    # A backup taken by hand before beat's first tick: a drill would have something to drill.
    manual = service.backup(service.build_request(BackupKind.FULL))
    assert manual.status == "succeeded"
    installed = datetime.now(UTC)
    nightly, sunday = next_fire(NIGHTLY, installed), next_fire(WEEKLY, installed)
    # What the status says before beat ever ticked is what then happens.
    assert service.next_scheduled(installed) == {"backup": nightly, "drill": sunday}

    for seconds in (0, 2, 30, 60, 61, 119, 600):  # the first ticks: nothing, neither backup nor drill
        assert service.dispatch_due(installed + timedelta(seconds=seconds)) == [], seconds
    assert service.settings_store.get(SEEN_KEYS["backup"]) == {"expression": NIGHTLY, "since": installed.isoformat()}
    assert service.next_scheduled(installed + timedelta(seconds=600)) == {"backup": nightly, "drill": sunday}
    assert [r.trigger for r in service.recorder.list(limit=10)] == ["cli"]

    assert service.dispatch_due(nightly - timedelta(seconds=1)) == []
    [(kind, run_id)] = service.dispatch_due(nightly + timedelta(seconds=20))
    run = service.get_run(str(run_id))
    assert (kind, run.kind, run.trigger, run.status) == (*queued_as, "schedule", "queued")
    # Queued once; the next night is what the status says next (the run's own time counts from here on).
    assert service.dispatch_due(nightly + timedelta(seconds=80)) == []
    assert service.next_scheduled(run.created_at + timedelta(seconds=1))["backup"] == next_fire(NIGHTLY,
                                                                                                 run.created_at)


def test_a_changed_schedule_counts_from_the_change(openwatch_db: str, tmp_path: Path, make_service) -> None:
    service = _service(make_service, openwatch_db, tmp_path)
    start = datetime.now(UTC)
    assert service.dispatch_due(start) == []
    changed = start + timedelta(minutes=5)
    service.settings_store.set("schedule.backup", "* * * * *", updated_by="test")
    minute = next_fire("* * * * *", changed)
    assert service.next_scheduled(changed)["backup"] == minute  # before beat saw the change: the same answer
    assert service.dispatch_due(changed) == []
    assert service.dispatch_due(minute - timedelta(seconds=1)) == []
    [(kind, _)] = service.dispatch_due(minute + timedelta(seconds=1))
    assert kind == "set"


def test_an_upgrade_still_catches_up_a_missed_night(openwatch_db: str, tmp_path: Path, make_service) -> None:
    """An install whose beat already made scheduled backups (before the schedule was recorded as seen) keeps
    counting from its last one: a night missed while beat was down is still made up at the next tick."""
    service = _service(make_service, openwatch_db, tmp_path)
    old = service.backup(service.build_request(BackupKind.FULL), trigger=Trigger.SCHEDULE,
                         requested_by="celery-beat")
    with service.engine.begin() as conn:
        conn.execute(text("UPDATE backup_runs SET created_at = created_at - interval '2 days' WHERE id = :id"),
                     {"id": old.id})
    now = datetime.now(UTC)
    assert service.next_scheduled(now)["backup"] == now  # overdue: queued at the next tick
    [(kind, _)] = service.dispatch_due(now)  # the plain dump of the old version counts: the set is its successor
    assert kind == "set"
