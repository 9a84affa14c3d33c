"""Beat drives the config bundle's on-change check: a real worker and beat on a throwaway Redis and the real
PostgreSQL. The first tick takes the first bundle (trigger schedule); ticks within the interval take none; once
the interval has passed (the stored check time moved back an hour) a changed file takes exactly one more. A bundle
is followed by its verify and the prune, as a scheduled dump is."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.operations.config_schedule import CHECKED_KEY
from openwatch_backup.service import BackupService
from tests.celery_support import (  # noqa: F401 - fixtures
    Processes,
    all_runs,
    broker_url_fixture,
    describe_runs,
    module_redis_fixture,
    plugin_env,
    processes_fixture,
    wait_for,
    wait_for_run,
)

DISPATCHED = r"Task openwatch_backup\.dispatch\[[0-9a-f-]+\] succeeded"


def _bundles(service: BackupService) -> list[BackupRun]:
    return [r for r in all_runs(service) if r.kind == "config"]


def test_beat_takes_a_bundle_only_when_the_inputs_change(openwatch_db: str, tmp_path: Path, make_service,
                                                         broker_url: str, processes: Processes) -> None:
    backup_dir = tmp_path / "backups"
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "id_ed25519").write_text("sample key\n")
    passfile = tmp_path / "passphrase"
    passfile.write_text("a long sample passphrase for beat\n")
    passfile.chmod(0o600)
    settings = {"config_paths": str(keys), "passphrase_file": str(passfile), "config_env_snapshot": "false"}
    service = make_service(openwatch_db, backup_dir, **settings)
    # No database backup or drill comes due while the test runs: only the config check acts.
    env = plugin_env(openwatch_db, backup_dir, broker_url, schedule="0 0 1 1 *", drill_schedule="0 0 1 1 *",
                     heartbeat_seconds=1, OWB_TEST_DISPATCH_SECONDS=2, **settings)
    worker = processes.worker(env)
    processes.beat(env)

    def context() -> str:
        return describe_runs(service) + "\n" + processes.tails()

    first = wait_for(lambda: _bundles(service), timeout=30, what="beat to queue the first config bundle",
                     context=context, interval=0.05)[0]
    first = wait_for_run(service, first.id, "succeeded", timeout=60, context=processes.tails)
    assert (first.trigger, first.requested_by) == ("schedule", "celery-beat (first bundle)")
    # The database's chain: the bundle's verify, then retention (S3 is off here, so no off-site step).
    verify = wait_for(lambda: [r for r in all_runs(service) if r.kind == "verify" and r.parent_id == first.id],
                      timeout=30, what="the verify of the bundle", context=context)[0]
    verify = wait_for_run(service, verify.id, "succeeded", timeout=60, context=processes.tails)
    assert verify.trigger == "schedule"
    prune = wait_for(lambda: [r for r in all_runs(service) if r.kind == "prune"], timeout=30,
                     what="the prune after the bundle's verify", context=context)[0]
    prune = wait_for_run(service, prune.id, "succeeded", timeout=60, context=processes.tails)
    assert prune.trigger == "schedule"
    checked = service.settings_store.get(CHECKED_KEY)

    (keys / "known_hosts").write_text("host ssh-ed25519 AAAA\n")  # changed, but within the interval
    ticks = worker.count(DISPATCHED)
    worker.wait_for_log(DISPATCHED, timeout=30, count=ticks + 3)
    assert [r.id for r in _bundles(service)] == [first.id], describe_runs(service)
    assert service.settings_store.get(CHECKED_KEY) == checked

    # The interval has passed: the next tick checks, finds the change, and takes exactly one bundle.
    moved = {**checked, "at": (datetime.fromisoformat(checked["at"]) - timedelta(hours=1)).isoformat()}
    service.settings_store.set(CHECKED_KEY, moved, updated_by="test")
    second = wait_for(lambda: [r for r in _bundles(service) if r.id != first.id], timeout=30,
                      what="beat to queue a bundle of the changed inputs", context=context)[0]
    second = wait_for_run(service, second.id, "succeeded", timeout=60, context=processes.tails)
    assert second.requested_by == "celery-beat (changed)"
    assert second.details["inputs_digest"] != first.details["inputs_digest"]
    ticks = worker.count(DISPATCHED)
    worker.wait_for_log(DISPATCHED, timeout=30, count=ticks + 3)
    assert [r.id for r in _bundles(service)] == [first.id, second.id], describe_runs(service)
    assert not [r for r in all_runs(service) if r.kind not in ("config", "verify", "prune")]  # no dump, no drill
