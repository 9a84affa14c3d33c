"""Beat drives the plugin: the dispatcher queues the scheduled backup, the backup queues its verify (and the
verify its prune), all recorded with trigger 'schedule'; a schedule changed in the database applies from its
next fire time, without restarting beat; and a fresh install queues nothing before its schedule's first time."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.scheduling import SEEN_KEYS, next_fire
from openwatch_backup.service import BackupService
from openwatch_backup.tasks import TASK_NAMES
from tests.celery_support import (  # noqa: F401 - fixtures
    CLI,
    Processes,
    all_runs,
    artifact_files,
    broker_url_fixture,
    describe_runs,
    files,
    module_redis_fixture,
    plugin_env,
    private_db_fixture,
    private_pg_fixture,
    process_env,
    processes_fixture,
    wait_for,
    wait_for_run,
)

DISPATCHED = r"Task openwatch_backup\.dispatch\[[0-9a-f-]+\] succeeded"


def _scheduled(service: BackupService, kind: str) -> list[BackupRun]:
    return [r for r in all_runs(service) if r.kind == kind and r.trigger == "schedule"]


def _settled(service: BackupService) -> bool:
    return all(r.status not in ("queued", "running") for r in all_runs(service))


def _start(processes: Processes, url: str, backup_dir: Path, broker_url: str, schedule: str = "* * * * *",
           **settings: object) -> None:
    env = plugin_env(url, backup_dir, broker_url, schedule=schedule, heartbeat_seconds=1,
                     OWB_TEST_DISPATCH_SECONDS=2, **settings)
    processes.worker(env)
    processes.beat(env)


def test_beat_backs_up_verifies_and_follows_schedule_changes(private_db: str, tmp_path: Path, make_service,
                                                             broker_url: str, processes: Processes) -> None:
    # A private server: the scheduled drill that follows the first backup sweeps scratch databases server-wide.
    backup_dir = tmp_path / "backups"
    service = make_service(private_db, backup_dir)
    # Installed two minutes ago: "* * * * *" has had a fire time since, so the first tick queues the backup.
    installed = datetime.now(UTC) - timedelta(minutes=2)
    service.settings_store.set(SEEN_KEYS["backup"], {"expression": "* * * * *", "since": installed.isoformat()})
    # The plain scheduled dump and its chain (nightly sets off); the set under beat is tests/test_sets_celery.py's.
    _start(processes, private_db, backup_dir, broker_url, nightly_set="off")

    def context() -> str:
        return describe_runs(service) + "\n" + processes.tails()

    # The first tick finds the fire time since the install passed: due now.
    worker = processes.started[0]
    for name in TASK_NAMES:  # the worker knows every task (the app both includes the module and installs it)
        assert f"  . {name}\n" in worker.log()
    first = wait_for(lambda: _scheduled(service, "full"), timeout=30, what="beat to queue a scheduled backup",
                     context=context, interval=0.02)[0]
    # While it is queued or running no second one can be queued; now, with beat running, store a schedule that
    # wins over the environment's "* * * * *" from the next tick on (checked below).
    service.settings_store.set("schedule.backup", "0 0 1 1 *", updated_by="test")
    first = wait_for_run(service, first.id, "succeeded", timeout=60, context=processes.tails)
    assert (first.kind, first.trigger, first.requested_by, first.error_code) == ("full", "schedule", "celery-beat",
                                                                                None)
    verify = wait_for(lambda: _scheduled(service, "verify"), timeout=30, what="the verify of the scheduled backup",
                      context=context)[0]
    verify = wait_for_run(service, verify.id, "succeeded", timeout=60, context=processes.tails)
    assert (verify.kind, verify.trigger, verify.parent_id) == ("verify", "schedule", first.id)
    # A scheduled backup that verified is followed by retention (nothing is old enough to go yet).
    prune = wait_for(lambda: _scheduled(service, "prune"), timeout=30, what="the prune after the verify",
                     context=context)[0]
    prune = wait_for_run(service, prune.id, "succeeded", timeout=60, context=processes.tails)
    assert (prune.trigger, prune.details["request"]) == ("schedule", {"apply": True})
    assert verify.finished_at is not None
    assert prune.created_at >= verify.finished_at
    assert files(backup_dir) == artifact_files(first)

    # The stored schedule wins: the first backup made to look 10 minutes old, "* * * * *" would queue another
    # at once; "0 0 1 1 *" does not.
    with service.engine.begin() as conn:
        conn.execute(text("UPDATE backup_runs SET created_at = created_at - interval '10 minutes' WHERE id = :id"),
                     {"id": first.id})
    ticks = worker.count(DISPATCHED)
    worker.wait_for_log(DISPATCHED, timeout=20, count=ticks + 3)
    assert [r.id for r in all_runs(service) if r.kind == "full"] == [first.id], describe_runs(service)

    # The operator's CLI stores another schedule; beat (never restarted) follows it from its next fire time (the
    # next minute), which the CLI names.
    env = {"OPENWATCH_DATABASE_URL": private_db, "OPENWATCH_BACKUP_DIR": str(backup_dir)}
    done = subprocess.run([str(CLI), "schedule", "--backup", "*/1 * * * *", "--json"], env=process_env(**env),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert '"source": "database"' in done.stdout
    changed_at = datetime.now(UTC)
    second = wait_for(lambda: [r for r in _scheduled(service, "full") if r.id != first.id], timeout=90,
                      what="beat to queue a backup under the new schedule", context=context)[0]
    assert second.created_at >= next_fire("*/1 * * * *", changed_at - timedelta(seconds=1))
    second = wait_for_run(service, second.id, "succeeded", timeout=60, context=processes.tails)
    second_verify = wait_for(lambda: [r for r in _scheduled(service, "verify") if r.parent_id == second.id],
                             timeout=30, what="the verify of the second backup", context=context)[0]
    second_verify = wait_for_run(service, second_verify.id, "succeeded", timeout=60, context=processes.tails)
    verified_at = second_verify.finished_at
    assert verified_at is not None
    wait_for(lambda: [r for r in _scheduled(service, "prune") if r.created_at >= verified_at],
             timeout=30, what="the prune after the second verify", context=context)
    wait_for(lambda: _settled(service), timeout=60, what="every run to finish", context=context)
    runs = all_runs(service)
    assert {r.trigger for r in runs} == {"schedule"}
    assert [r for r in runs if r.status != "succeeded"] == [], describe_runs(service)
    assert sorted(r.kind for r in runs if r.kind != "drill") == ["full", "full", "prune", "prune", "verify", "verify"]
    assert files(backup_dir) == sorted(artifact_files(first) + artifact_files(second))
    assert processes.started[1].running(), "beat was restarted or died"


def test_the_first_minute_after_install_queues_nothing(private_db: str, tmp_path: Path, make_service,
                                                       broker_url: str, processes: Processes) -> None:
    """Beat's first ticks after an install: no "scheduled" backup (nor its verify and prune), no drill, although a
    backup exists to drill; the status's next runs are the schedules' first times after the install."""
    backup_dir = tmp_path / "backups"
    soon = datetime.now(UTC) + timedelta(minutes=30)  # far enough that no fire time falls inside the test
    schedule, drill = f"{soon.minute} {soon.hour} * * *", f"{soon.minute} {soon.hour} * * {soon.isoweekday() % 7}"
    service = make_service(private_db, backup_dir, schedule=schedule, drill_schedule=drill)
    manual = service.backup(service.build_request())
    assert manual.status == "succeeded"
    before = datetime.now(UTC)
    _start(processes, private_db, backup_dir, broker_url, schedule=schedule, drill_schedule=drill)
    worker = processes.started[0]
    worker.wait_for_log(DISPATCHED, timeout=60, count=4)  # ticks every 2 s here; OpenWatch's beat every minute
    assert [(r.kind, r.trigger) for r in all_runs(service)] == [("full", "cli")], describe_runs(service)
    seen = {name: service.settings_store.get(key) for name, key in SEEN_KEYS.items()}
    assert seen.pop("volume") is None  # no Docker API here: the weekly volume schedule is not dispatched
    assert {name: value["expression"] for name, value in seen.items()} == {"backup": schedule, "drill": drill}
    since = datetime.fromisoformat(seen["backup"]["since"])
    assert before <= since <= datetime.now(UTC)
    assert service.next_scheduled() == {"backup": next_fire(schedule, since), "drill": next_fire(drill, since)}
    assert service.next_scheduled()["backup"] > datetime.now(UTC) + timedelta(minutes=25)
