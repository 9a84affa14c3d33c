"""The dispatcher with nightly sets (the default): a drill due at the same tick as the set waits until the set is
done, so it drills the set's dump rather than the night before's (as a drill waits for a plain scheduled dump).
Real catalog, real dump."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.scheduling import SEEN_KEYS
from openwatch_backup.service.sets import execute_set

NIGHTLY = "0 2 * * *"


def test_a_drill_due_with_the_set_waits_for_its_dump(openwatch_db: str, tmp_path: Path, make_service) -> None:
    service = make_service(openwatch_db, tmp_path / "backups", schedule=NIGHTLY, drill_schedule=NIGHTLY)
    earlier = service.backup(service.build_request(BackupKind.FULL))  # a backup a drill could take at once
    assert earlier.status == "succeeded", earlier.error
    # Both schedules first seen two days ago: both overdue now (real time: the set's own creation counts next).
    now = datetime.now(UTC)
    for name in ("backup", "drill"):
        service.settings_store.set(SEEN_KEYS[name], {"expression": NIGHTLY,
                                                     "since": (now - timedelta(days=2)).isoformat()})
    [(kind, set_id)] = service.dispatch_due(now)
    assert kind == "set"
    assert service.dispatch_due(now + timedelta(seconds=1)) == []  # queued set: the drill waits
    done = execute_set(service, set_id)
    assert done.status == "succeeded", done.error
    [dump] = [r for r in service.recorder.list(limit=10, parent_id=set_id) if r.kind == "full"]

    [(kind, drill_id)] = service.dispatch_due(datetime.now(UTC))

    assert kind == "drill"
    assert service.get_run(str(drill_id)).parent_id == dump.id  # the set's dump, not the earlier backup
