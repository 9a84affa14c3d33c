"""Nightly sets (service/sets.py): the due schedule queues one set; it takes the dump, the config bundle when its
inputs changed, verifies each, copies each off-site (moto over HTTP); members point at the set by parent_id and by
their manifests' set_id; a prune keeps or deletes a set as a unit; `catalog rebuild` recreates the grouping; a kill
in the middle leaves a set the sweeper closes with the members that exist.

Real PostgreSQL, real files, real verifies, a real process SIGKILLed at a named instant."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.operations import kill_points
from openwatch_backup.scheduling import next_fire
from openwatch_backup.service import BackupService
from openwatch_backup.service.sets import execute_set, request_set, set_summary
from tests.support.offsite import s3_overrides
from tests.support.prune import Env, age, decisions, listing, make_env, sql

PASSPHRASE = "a long sample passphrase for the set test"


def config_settings(tmp_path: Path) -> dict[str, Any]:
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "id_ed25519").write_text("sample key, first version\n")
    (keys / "id_ed25519").chmod(0o600)
    passfile = tmp_path / "passphrase"
    passfile.write_text(PASSPHRASE + "\n")
    passfile.chmod(0o600)
    return {"config_paths": str(keys), "passphrase_file": passfile, "config_env_snapshot": False,
            "nightly_set": True}


def change_config(tmp_path: Path, text: str) -> None:
    (tmp_path / "keys" / "id_ed25519").write_text(text)


@pytest.fixture
def env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Env:
    return make_env(backup_env, make_service, monkeypatch, **config_settings(tmp_path))


def member_runs(env: Env, set_id: uuid.UUID) -> list[BackupRun]:
    return [r for r in env.service.recorder.list(limit=20, parent_id=set_id, oldest_first=True)
            if r.kind in ("full", "config", "redis")]


def keys_of(run: BackupRun) -> list[str]:
    family = "config" if run.kind == "config" else "postgres"
    artifact = f"{family}/{run.details['artifact']}"
    return [artifact, artifact + ".manifest.json"]


def take_set(env: Env) -> BackupRun:
    set_id, created = request_set(env.service, requested_by="test")
    assert created
    done = execute_set(env.service, set_id)
    assert (done.kind, done.status, done.error) == ("set", "succeeded", None)
    return done


@pytest.mark.slow
def test_the_nightly_schedule_takes_a_set_copied_off_site_together(
        backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, moto_endpoint: str, bucket: str) -> None:
    env = make_env(backup_env, make_service, monkeypatch, **config_settings(tmp_path),
                   **s3_overrides(moto_endpoint, bucket))
    installed = datetime.now(UTC)
    assert env.service.dispatch_due(installed) == []  # first sight: waits for the fire time
    nightly = next_fire("0 2 * * *", installed)
    queued = env.service.dispatch_due(nightly + timedelta(seconds=20))
    [set_id] = [run_id for kind, run_id in queued if kind == "set"]
    assert [kind for kind, _ in queued if kind in ("backup", "redis", "config")] == []  # all inside the set
    assert env.service.dispatch_due(nightly + timedelta(seconds=80)) == []  # queued once

    done = execute_set(env.service, set_id)

    assert (done.status, done.details["outcome"], done.trigger) == ("succeeded", "complete", "schedule")
    members = member_runs(env, set_id)
    assert [(m.kind, m.status, m.trigger) for m in members] == [("full", "succeeded", "schedule"),
                                                                ("config", "succeeded", "schedule")]
    assert set(done.details["members"]) == {str(m.id) for m in members}
    for member in members:
        assert member.details["set_id"] == str(set_id)
        manifest = json.loads((env.dir / keys_of(member)[1]).read_text())
        assert manifest["set_id"] == str(set_id)
        [verify] = env.service.recorder.list(limit=5, kind="verify", parent_id=member.id)
        assert verify.status == "succeeded", verify.error
        [offsite] = env.service.recorder.list(limit=5, kind="offsite", parent_id=member.id)
        assert offsite.status == "succeeded", offsite.error
    remote = env.service.require_offsite()
    assert sorted(o.key for o in remote.list("postgres")) + sorted(o.key for o in remote.list("config")) == \
        keys_of(members[0]) + keys_of(members[1])
    summary = set_summary(env.service, done)
    assert summary["offsite"] is True
    assert [(m["kind"], m["s3"]) for m in summary["members"]] == [("full", "verified"), ("config", "verified")]

    # The next night: nothing changed in the config, so the set is the dump alone; the off-site state follows the
    # copies: one member's copy deleted makes the set not off-site.
    second = take_set(env)
    assert [m.kind for m in member_runs(env, second.id)] == ["full"]
    assert second.details["skipped"] == {"config": "unchanged since the newest bundle"}
    sql(env.url, "UPDATE backup_copies SET state = 'failed' WHERE run_id = %s AND storage = 's3'", members[1].id)
    assert set_summary(env.service, done)["offsite"] is False


@pytest.mark.slow
def test_sets_are_pruned_as_a_unit(env: Env, tmp_path: Path) -> None:
    env.service.settings_store.set("retention.days", 30)
    env.service.settings_store.set("retention.verified_floor", 1)
    env.service.settings_store.set("retention.keep_daily", 0)
    old = take_set(env)
    change_config(tmp_path, "sample key, second version\n")
    kept = take_set(env)
    change_config(tmp_path, "sample key, third version\n")
    newest = take_set(env)
    old_members, kept_members, newest_members = (member_runs(env, s.id) for s in (old, kept, newest))
    assert [[m.kind for m in ms] for ms in (old_members, kept_members, newest_members)] == [["full", "config"]] * 3
    for member in old_members:
        age(env.url, member, 40)
    for member in kept_members:
        age(env.url, member, 1)

    run = env.service.prune(apply=True)  # config_versions 10 would keep every bundle: the old set's goes with it

    assert run.status == "succeeded", run.error
    plan = decisions(run)
    old_full, old_config = old_members
    assert plan[str(old_full.id)] == ("delete", "older than 30 days")
    assert plan[str(old_config.id)] == ("delete", f"in set {str(old.id)[:8]}, deleted with its database backup "
                                                  f"{str(old_full.id)[:8]}")
    left = [k for m in (*kept_members, *newest_members) for k in keys_of(m)]
    assert listing(env.dir) == sorted(left)

    # One version of bundles: the kept set's bundle stays with its set all the same.
    env.service.settings_store.set("retention.config_versions", 1)
    again = env.service.prune(apply=True)
    assert again.status == "succeeded", again.error
    kept_config = kept_members[1]
    assert decisions(again)[str(kept_config.id)] == (
        "keep", f"in set {str(kept.id)[:8]}, kept with its database backup {str(kept_members[0].id)[:8]}")
    assert listing(env.dir) == sorted(left)


@pytest.mark.slow
def test_rebuild_restores_the_sets(env: Env) -> None:
    done = take_set(env)
    members = member_runs(env, done.id)
    sql(env.url, "DELETE FROM backup_runs")

    report = env.service.rebuild_catalog()

    assert sorted(report.inserted) == sorted(str(m.id) for m in members)
    rebuilt = env.service.get_run(str(done.id))
    assert (rebuilt.kind, rebuilt.status, rebuilt.details) == ("set", "succeeded", {"rebuilt_from_manifest": True})
    again = member_runs(env, done.id)
    assert sorted(str(m.id) for m in again) == sorted(str(m.id) for m in members)
    assert all(m.details["set_id"] == str(done.id) for m in again)
    # The planner sees the grouping again: the config bundle follows its set's dump.
    plan = env.service.prune(apply=False)
    config = next(m for m in again if m.kind == "config")
    assert decisions(plan)[str(config.id)][0] == "keep"


RUN_SET = "import sys, uuid\n" \
          "from openwatch_backup.service import BackupService\n" \
          "from openwatch_backup.service.sets import execute_set\n" \
          "from openwatch_backup.settings import load_settings\n" \
          "with BackupService(load_settings()) as s:\n" \
          "    execute_set(s, uuid.UUID(sys.argv[1]))\n"


def _child_env(env: Env, tmp_path: Path, point: str, marker: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENWATCH_", "PG"))}
    return {**base, "OPENWATCH_DATABASE_URL": env.url, "OPENWATCH_BACKUP_DIR": str(env.dir),
            "OPENWATCH_BACKUP_PASSPHRASE_FILE": str(tmp_path / "passphrase"),
            "OPENWATCH_BACKUP_CONFIG_PATHS": str(tmp_path / "keys"), "OPENWATCH_BACKUP_CONFIG_ENV_SNAPSHOT": "off",
            "OPENWATCH_BACKUP_NIGHTLY_SET": "on", kill_points.AT: point, kill_points.FILE: str(marker)}


@pytest.mark.slow
@pytest.mark.parametrize(("point", "expected"), [
    ("set:member-created:full", {"full": "cancelled"}),
    ("set:before:config", {"full": "succeeded"}),
    ("set:member-created:config", {"full": "succeeded", "config": "cancelled"}),
])
def test_a_kill_mid_set_leaves_a_set_the_sweeper_closes(env: Env, tmp_path: Path,
                                                        make_service: Callable[..., BackupService],
                                                        point: str, expected: dict[str, str]) -> None:
    set_id, _ = request_set(env.service, requested_by="test")
    marker = tmp_path / "pause"
    child = subprocess.Popen([sys.executable, "-c", RUN_SET, str(set_id)], env=_child_env(env, tmp_path, point, marker),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (marker.exists() and marker.read_text() == point):
            if child.poll() is not None:
                pytest.fail(f"the set ended (exit {child.returncode}) before {point}: {child.communicate()}")
            assert time.monotonic() < deadline, f"the set did not reach {point}"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert env.service.get_run(str(set_id)).status == "running"  # nothing finished it: the sweeper's work

    sweeper = make_service(env.url, env.dir, stale_after_seconds=1, **config_settings(tmp_path))
    time.sleep(1.5)
    report = sweeper.watchdog()

    assert str(set_id) in report["abandoned"]
    assert report["closed_sets"] == [str(set_id)]
    closed = sweeper.get_run(str(set_id))
    assert {m["kind"]: m["status"] for m in closed.details["members"].values()} == expected
    assert closed.status == "abandoned"
    assert closed.details["outcome"] == "partial"
    assert {m.kind: m.status for m in member_runs(env, set_id)} == expected
    assert not [r for r in sweeper.recorder.list(limit=50) if r.status in ("queued", "running")]
    assert not [p for p in listing(env.dir) if p.endswith(".partial")]
    done = [m for m in member_runs(env, set_id) if m.status == "succeeded"]
    assert sorted(listing(env.dir)) == sorted(k for m in done for k in keys_of(m))
    assert sweeper.watchdog()["closed_sets"] == []  # closed once
