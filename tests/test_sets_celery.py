"""The nightly set under a real beat and worker (OpenWatch's app, a throwaway Redis, a private PostgreSQL server):
beat's tick queues one run of kind set (nightly sets are the default), the worker's `openwatch_backup.set` task
takes the dump and the config bundle as members pointing at the set, verifies each, and the scheduled prune
follows the set. Nothing else is queued by the schedule: the members are the set's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.operations.config_schedule import CHECKED_KEY
from openwatch_backup.scheduling import SEEN_KEYS
from tests.celery_support import (  # noqa: F401 - fixtures
    Processes,
    all_runs,
    broker_url_fixture,
    describe_runs,
    files,
    module_redis_fixture,
    plugin_env,
    private_db_fixture,
    private_pg_fixture,
    processes_fixture,
    wait_for,
    wait_for_run,
)

SET_DONE = r"Task openwatch_backup\.set\[[0-9a-f-]+\] succeeded"


def _config_settings(tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "id_ed25519").write_text("sample key for the set\n")
    (keys / "id_ed25519").chmod(0o600)
    passfile = tmp_path / "passphrase"
    passfile.write_text("a long sample passphrase for the nightly set\n")
    passfile.chmod(0o600)
    return {"config_paths": str(keys), "passphrase_file": str(passfile), "config_env_snapshot": "off"}


def _artifact_keys(run: BackupRun) -> list[str]:
    family = "config" if run.kind == "config" else "postgres"
    return [f"{family}/{run.details['artifact']}", f"{family}/{run.details['artifact']}.manifest.json"]


def test_beat_runs_a_nightly_set_end_to_end(private_db: str, tmp_path: Path, make_service, broker_url: str,
                                            processes: Processes) -> None:
    backup_dir = tmp_path / "backups"
    settings = _config_settings(tmp_path)
    service = make_service(private_db, backup_dir, **settings)  # nightly_set unset: the default is on
    assert service.settings.nightly_set is True
    now = datetime.now(UTC)
    # Installed two minutes ago, so "* * * * *" is due at beat's first tick; the hourly config check has just run
    # (nothing to do before the next hour), so the only bundle is the set's: the first one, as its inputs changed.
    service.settings_store.set(SEEN_KEYS["backup"], {"expression": "* * * * *",
                                                     "since": (now - timedelta(minutes=2)).isoformat()})
    service.settings_store.set(CHECKED_KEY, {"at": now.isoformat(), "outcome": "unchanged", "detail": "test"})
    env = plugin_env(private_db, backup_dir, broker_url, schedule="* * * * *", drill_schedule="0 0 1 1 *",
                     heartbeat_seconds=1, OWB_TEST_DISPATCH_SECONDS=2, **settings)
    worker = processes.worker(env)
    processes.beat(env)

    def context() -> str:
        return describe_runs(service) + "\n" + processes.tails()

    [queued] = wait_for(lambda: [r for r in all_runs(service) if r.kind == "set"], timeout=30,
                        what="beat to queue the nightly set", context=context, interval=0.02)
    # The next tick must not queue a second set a minute later: a schedule far away from now on.
    service.settings_store.set("schedule.backup", "0 0 1 1 *", updated_by="test")
    done = wait_for_run(service, queued.id, ("succeeded", "failed", "abandoned"), timeout=120,
                        context=processes.tails)

    assert (done.kind, done.status, done.error, done.trigger, done.requested_by) == (
        "set", "succeeded", None, "schedule", "celery-beat")
    assert done.details["planned"] == ["full", "config"]
    assert done.details["outcome"] == "complete"
    worker.wait_for_log(SET_DONE, timeout=30)
    members = [r for r in all_runs(service) if r.parent_id == done.id]
    assert [(m.kind, m.status, m.trigger, m.requested_by) for m in members] == [
        ("full", "succeeded", "schedule", f"set {str(done.id)[:8]}"),
        ("config", "succeeded", "schedule", f"set {str(done.id)[:8]}")]
    assert all(m.details["set_id"] == str(done.id) for m in members)
    assert set(done.details["members"]) == {str(m.id) for m in members}
    for member in members:  # each member verified, as part of the set
        verifies = [r for r in all_runs(service) if r.kind == "verify" and r.parent_id == member.id]
        assert [(v.status, v.trigger) for v in verifies] == [("succeeded", "schedule")], describe_runs(service)
    # The scheduled prune follows the set (queued by the set task once the set ended).
    prune = wait_for(lambda: [r for r in all_runs(service) if r.kind == "prune"], timeout=30,
                     what="the prune after the set", context=context)[0]
    prune = wait_for_run(service, prune.id, "succeeded", timeout=60, context=processes.tails)
    assert (prune.trigger, prune.requested_by) == ("schedule", f"after set {str(done.id)[:8]}")
    assert done.finished_at is not None
    assert prune.created_at >= done.finished_at
    # Nothing outside the set: no plain scheduled dump, no separate bundle; exactly the members' files.
    runs = all_runs(service)
    assert sorted(r.kind for r in runs) == ["config", "full", "prune", "set", "verify", "verify"], \
        describe_runs(service)
    assert [r for r in runs if r.status != "succeeded"] == [], describe_runs(service)
    assert files(backup_dir) == sorted(k for m in members for k in _artifact_keys(m))
    assert processes.started[1].running(), "beat died"
