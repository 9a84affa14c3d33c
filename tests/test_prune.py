"""Prune on real storage and a real catalog: the files left are exactly the plan's, pruned backups are refused
and skipped, and a prune that stops part-way is finished by the next one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.prune_store import PruneStore
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.errors import DumpFailed, RunNotFound, StorageError
from openwatch_backup.service import BackupService
from tests.support.prune import Env, decisions, listing, make_env, sql

pytestmark = [pytest.mark.slow,  # verify leaks pg_restore's pipes (pinned by an xfail in test_drill_check.py)
              pytest.mark.filterwarnings("ignore:unclosed file <_io.Buffered:ResourceWarning")]


@pytest.fixture
def env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch) -> Env:
    return make_env(backup_env, make_service, monkeypatch)


@dataclass
class History:
    newest: BackupRun  # verified, 2 days old
    floor: list[BackupRun]  # verified, 35 and 40 days old
    old_verified: BackupRun  # verified, 50 days: beyond the floor, older than 30 days -> delete
    pinned: BackupRun  # verified, 60 days, pinned -> keep
    old_unverified: BackupRun  # 45 days, never verified -> delete
    fresh_unverified: BackupRun  # today, not verified -> keep (within 30 days)
    schema: BackupRun  # the only (verified) schema backup, 90 days: its kind's newest verified -> keep
    failed: BackupRun  # a failed tables run: no files, not in the plan
    foreign: str
    partial: str
    orphan_manifest: str


@pytest.fixture
def history(env: Env) -> History:
    """A catalog worth pruning, its runs made in an order unrelated to their (edited) recorded times."""
    pinned = env.backup(days=60)
    fresh = env.backup(verify=False)
    old_verified = env.backup(days=50)
    newest = env.backup(days=2)
    floor = [env.backup(days=35), env.backup(days=40)]
    old_unverified = env.backup(verify=False, days=45)
    schema = env.backup(BackupKind.SCHEMA, days=90)
    with pytest.raises(DumpFailed):
        env.service.backup(env.service.build_request(BackupKind.TABLES, Compression.ZSTD, ["nosuchtable"]))
    failed = env.service.list_runs(limit=1, kind="tables")[0]
    env.service.pin(str(pinned.id))
    postgres = env.dir / "postgres"
    (postgres / "notes.txt").write_text("the operator's own file\n")
    (postgres / "openwatch_20200101_000000.dump.zst.partial").write_bytes(b"half a dump")
    orphan = postgres / "openwatch_20200102_000000.dump.zst.manifest.json"
    orphan.write_text(json.dumps({"run_id": str(failed.id)}))
    return History(newest, floor, old_verified, env.run(pinned), old_unverified, fresh, schema, failed,
                   "postgres/notes.txt", "postgres/openwatch_20200101_000000.dump.zst.partial",
                   "postgres/" + orphan.name)


def test_dry_run_changes_nothing_and_stores_the_plan(env: Env, history: History) -> None:
    before = listing(env.dir)

    run = env.service.prune()

    assert run.status == "succeeded"
    assert listing(env.dir) == before
    h = history
    assert decisions(run) == {
        str(h.newest.id): ("keep", "newest verified backup"),
        str(h.floor[0].id): ("keep", "verified floor (3)"),
        str(h.floor[1].id): ("keep", "verified floor (3)"),
        str(h.old_verified.id): ("delete", "older than 30 days"),
        str(h.pinned.id): ("keep", "pinned"),
        str(h.old_unverified.id): ("delete", "older than 30 days, never verified"),
        str(h.fresh_unverified.id): ("keep", "within 30 days"),
        str(h.schema.id): ("keep", "newest verified backup"),
    }
    assert [n["key"] for n in run.details["leftovers"]] == [h.partial, h.orphan_manifest]
    assert [(n["key"], n["reason"]) for n in run.details["foreign"]] == [(h.foreign, "not ours: left alone")]
    summary = run.details["summary"]
    assert (summary["apply"], summary["backups_to_delete"], summary["backups_deleted"], summary["leftovers"],
            summary["files_deleted"]) == (False, 2, 0, 2, 0)
    assert run.details["deleted"] == []
    assert all(env.run(r).pruned_at is None for r in (h.old_verified, h.old_unverified))


def test_apply_leaves_exactly_the_planned_files(env: Env, history: History) -> None:
    before = listing(env.dir)
    plan = env.service.prune()
    planned = {k for d in plan.details["plan"] if d["action"] == "delete" for k in d["keys"]}
    planned |= {n["key"] for n in plan.details["leftovers"]}
    sizes = {k: (env.dir / k).stat().st_size for k in planned}

    run = env.service.prune(apply=True)

    assert run.status == "succeeded"
    assert decisions(run) == decisions(plan)
    assert listing(env.dir) == sorted(set(before) - planned)
    assert sorted(run.details["deleted"]) == sorted(planned)
    assert history.foreign in listing(env.dir)
    for gone in (history.old_verified, history.old_unverified):
        row = env.run(gone)
        assert row.pruned_at is not None
        assert row.status == "succeeded"  # the row stays as history
        assert row.details["pruning"] == str(run.id)  # the prune that took it
    summary = run.details["summary"]
    assert (summary["backups_deleted"], summary["files_deleted"]) == (2, 6)
    assert summary["bytes_freed"] == sum(sizes.values())

    again = env.service.prune(apply=True)  # idempotent on real storage
    assert again.details["deleted"] == []
    assert listing(env.dir) == sorted(set(before) - planned)


def test_pruned_backups_are_refused_and_skipped(env: Env, history: History) -> None:
    env.service.prune(apply=True)
    gone = history.old_verified

    for attempt in (lambda: env.service.verify(str(gone.id)), lambda: env.service.pin(str(gone.id))):
        with pytest.raises(RunNotFound, match="pruned"):
            attempt()
    assert env.service.manifest_of(env.run(gone)) is None
    assert env.service.drill().parent_id == history.fresh_unverified.id  # the newest unpruned full backup
    report = env.service.rebuild_catalog()
    assert report.inserted == []


def test_check_reports_retention(env: Env, history: History) -> None:
    def item() -> Any:
        return next(i for i in env.service.checklist() if i.key == "retention_applied")

    assert (item().status.value, item().fix) == ("fail", "run `openwatch-backup prune --apply`")
    env.service.prune()
    assert item().detail == "no applied prune in 2 days (never applied)"  # a dry run applies nothing
    env.service.prune(apply=True)
    ok = item()
    assert ok.status.value == "ok"
    assert ok.detail.startswith("applied 0.0 h ago: 2 backup(s) and 6 file(s) deleted, ")


# --- crash safety --------------------------------------------------------------------------------------------


@pytest.fixture
def one_to_prune(env: Env, make_service: Callable[..., BackupService]) -> tuple[Env, BackupRun, BackupRun]:
    """Floor 1: an old verified backup the plan deletes, and a new one it keeps."""
    env.service = make_service(env.url, env.dir, verified_floor=1)
    old = env.backup(days=40)
    new = env.backup()
    return env, old, new


def test_a_crash_after_deleting_files_is_completed_by_the_next_prune(
        one_to_prune: tuple[Env, BackupRun, BackupRun], monkeypatch: pytest.MonkeyPatch) -> None:
    env, old, new = one_to_prune

    def crash(*args: Any) -> None:
        raise KeyboardInterrupt("killed between the deletes and pruned_at")

    with monkeypatch.context() as patch:
        patch.setattr(PruneStore, "mark_pruned", crash)
        with pytest.raises(KeyboardInterrupt):
            env.service.prune(apply=True)
    crashed = env.service.list_runs(limit=1, kind="prune")[0]
    assert crashed.status == "cancelled"
    assert sorted(crashed.details["deleted"]) == sorted(env.keys(old))
    row = env.run(old)
    assert (row.pruned_at, row.details["pruning"]) == (None, str(crashed.id))
    assert listing(env.dir) == sorted(env.keys(new))

    dry = env.service.prune()
    assert [r["action"] for r in dry.details["repairs"]] == ["complete"]
    assert env.run(old).pruned_at is None  # a dry run repairs nothing

    run = env.service.prune(apply=True)

    assert run.status == "succeeded"
    assert [(r["run"], r["action"]) for r in run.details["repaired"]] == [(str(old.id), "complete")]
    row = env.run(old)
    assert (row.pruned_at is not None, row.details["pruning"]) == (True, str(crashed.id))
    assert str(old.id) not in decisions(run)
    assert listing(env.dir) == sorted(env.keys(new))


def test_a_crash_before_deleting_releases_the_backup_for_the_next_plan(
        one_to_prune: tuple[Env, BackupRun, BackupRun], monkeypatch: pytest.MonkeyPatch) -> None:
    env, old, new = one_to_prune
    def broken_disk(key: str) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(env.service.storage, "delete", broken_disk)
        with pytest.raises(StorageError, match=r"^cannot delete .* \(Input/output error\); fix its permissions"):
            env.service.prune(apply=True)
    failed = env.service.list_runs(limit=1, kind="prune")[0]
    assert (failed.status, failed.error_code, failed.details["deleted"]) == ("failed", "storage", [])
    assert env.run(old).details["pruning"] == str(failed.id)
    assert listing(env.dir) == sorted(env.keys(old) + env.keys(new))

    run = env.service.prune(apply=True)

    assert [r["action"] for r in run.details["repaired"]] == ["release"]
    assert decisions(run)[str(old.id)] == ("delete", "older than 30 days")
    assert env.run(old).pruned_at is not None
    assert listing(env.dir) == sorted(env.keys(new))


def test_files_of_a_pruned_backup_are_deleted_by_the_next_prune(
        one_to_prune: tuple[Env, BackupRun, BackupRun]) -> None:
    env, old, new = one_to_prune
    sql(env.url, "UPDATE backup_runs SET pruned_at = now() WHERE id = %s", old.id)

    dry = env.service.prune()
    assert sorted(n["key"] for n in dry.details["stale"]) == sorted(env.keys(old))
    rebuilt = env.service.rebuild_catalog()  # a pruned backup's manifest is no problem to report, nor a row
    assert (rebuilt.pruned, rebuilt.skipped, rebuilt.inserted) == ([env.keys(old)[1]], {}, [])

    run = env.service.prune(apply=True)

    assert sorted(run.details["deleted"]) == sorted(env.keys(old))
    assert listing(env.dir) == sorted(env.keys(new))


def test_a_backup_pinned_after_planning_is_not_deleted(
        one_to_prune: tuple[Env, BackupRun, BackupRun], monkeypatch: pytest.MonkeyPatch) -> None:
    env, old, _ = one_to_prune
    real = PruneStore.mark_pruning

    def pin_first(self: PruneStore, run_ids: list[str], prune_run: uuid.UUID) -> list[str]:
        env.service.pin(str(old.id))  # the operator pins it while the prune plans
        return real(self, run_ids, prune_run)

    monkeypatch.setattr(PruneStore, "mark_pruning", pin_first)
    run = env.service.prune(apply=True)

    assert decisions(run)[str(old.id)][0] == "delete"  # planned before the pin...
    assert run.details["summary"]["backups_deleted"] == 0  # ...but the conditional mark skipped it
    assert env.run(old).pruned_at is None
    assert all((env.dir / k).exists() for k in env.keys(old))
