"""Retention per location, pure parts: a held backup (its off-site copy not verified) is kept whatever the rules
and the size budget say; which local files S3 holds; which S3 copies the off-site plan judges and which of them
count as verified there; the off-site policy's own age limit and no size budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openwatch_backup.catalog.prune_store import BackupRow
from openwatch_backup.core.retention import DATABASE, ArtifactRecord, Policy, RetentionConfig, plan_retention
from openwatch_backup.operations.prune_offsite import local_hold, remote_records, unfinished
from openwatch_backup.operations.retention_policy import effective_values, retention_config
from openwatch_backup.settings import load_settings

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def row(n: int, days: float = 40, *, s3: str | None = "verified", local: str | None = "verified",
        verified: bool = True, **extra: object) -> BackupRow:
    values: dict[str, object] = {
        "run_id": f"run-{n:04d}", "kind": "full", "status": "succeeded", "created_at": NOW - timedelta(days=days),
        "size": 100, "pinned": False, "pruned": False, "pruning": None, "artifact": f"openwatch_{n}.dump.zst",
        "in_progress": None, "verified": verified, "local_state": local, "s3_state": s3, **extra}
    return BackupRow(**values)  # type: ignore[arg-type]


def test_a_held_backup_is_kept_by_rules_and_budget_alike() -> None:
    def rec(n: int, days: float, hold: str = "") -> ArtifactRecord:
        return ArtifactRecord(f"run-{n}", "full", NOW - timedelta(days=days), "succeeded", True, size=100,
                              keys=(f"k{n}",), hold=hold)

    config = RetentionConfig({DATABASE: Policy(max_age=timedelta(days=7), age_label="7 days")}, floor=1,
                             size_budget_bytes=150)
    plan = plan_retention([rec(1, 1), rec(2, 2, "wait"), rec(3, 10, "wait"), rec(4, 20)], config, NOW)

    assert {d.run_id: (d.action, d.reason) for d in plan.decisions} == {
        "run-1": ("keep", "newest verified backup"), "run-2": ("delete", "over size budget (1.39698e-07 GiB)"),
        "run-3": ("keep", "wait"), "run-4": ("delete", "older than 7 days")}


@pytest.mark.parametrize(("s3", "verified", "held"), [
    ("verified", True, ""), ("deleted", True, ""),
    ("failed", True, "off-site copy not verified yet (s3: failed)"),
    ("pending", False, "off-site copy not verified yet (s3: pending)"),
    ("copying", True, "off-site copy not verified yet (s3: copying)"),
    (None, True, "off-site copy not verified yet (s3: not copied)"),
    (None, False, ""),  # never verified, never queued for a copy: no copy will come
])
def test_which_local_files_wait_for_their_off_site_copy(s3: str | None, verified: bool, held: str) -> None:
    assert local_hold(row(1, s3=s3, verified=verified)) == held


def test_the_off_site_plan_judges_live_s3_copies_and_counts_only_listed_verified_ones() -> None:
    rows = [row(1), row(2, s3="failed"), row(3, s3="deleted"), row(4, s3=None), row(5, s3="copying"),
            row(6, pruned=True), row(7, pruning="p"), row(8, pruning_s3="p"), row(9, verified=False), row(10)]
    present = {f"postgres/openwatch_{n}.dump.zst{suffix}" for n in (1, 2, 5, 9) for suffix in ("", ".manifest.json")}

    records, warnings = remote_records(rows, present)

    assert [(r.run_id, r.verified, r.hold, r.keys[0]) for r in records] == [
        ("run-0001", True, "", "postgres/openwatch_1.dump.zst"),
        ("run-0002", False, "", "postgres/openwatch_2.dump.zst"),
        ("run-0005", False, "being copied now", "postgres/openwatch_5.dump.zst"),
        ("run-0009", False, "", "postgres/openwatch_9.dump.zst"),
        ("run-0010", False, "", "postgres/openwatch_10.dump.zst")]
    assert warnings == ["full backup run-0010's s3 copy is recorded as verified but postgres/openwatch_10.dump.zst or "
                        "its manifest is not in the bucket"]


def test_a_stopped_copy_delete_is_found_until_its_row_says_deleted() -> None:
    rows = [row(1, pruning_local="p", local="verified"), row(2, pruning_local="p", local="deleted"),
            row(3, pruning_s3="p", s3="verified"), row(4, pruning_s3="p", s3="deleted"),
            row(5, pruning_s3="p", pruning="q"), row(6)]
    assert [(r.run_id, storage) for r, storage in unfinished(rows)] == [("run-0001", "local"), ("run-0003", "s3")]


def test_the_off_site_policy_has_its_own_age_and_no_size_budget() -> None:
    settings = load_settings(database_url="postgresql://u@h/d", retention_days=7, size_budget_gib=2)
    values, notes = effective_values(settings, {"retention.s3_days": 45})

    local, remote = retention_config(values), retention_config(values, remote=True)

    assert notes == []
    assert (local.policies[DATABASE].max_age, local.size_budget_bytes) == (timedelta(days=7), 2 * 1024**3)
    assert (remote.policies[DATABASE].max_age, remote.policies[DATABASE].age_label) == (timedelta(days=45), "45 days")
    assert (remote.size_budget_bytes, remote.floor) == (0, local.floor)
    assert settings.s3_retention_days == 30
