"""The retention planner on hand-made histories: the guide's defaults, keep-last, GFS tiers, the size budget,
config versions and volume weeks, and the safety rules that override all of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openwatch_backup.core.retention import (
    CONFIG,
    DATABASE,
    DELETE,
    GIB,
    KEEP,
    VOLUME,
    ArtifactRecord,
    Policy,
    PrunePlan,
    RetentionConfig,
    plan_retention,
)

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
DB = Policy(max_age=timedelta(days=30), age_label="30 days")
DEFAULTS = {DATABASE: DB, CONFIG: Policy(versions=10), VOLUME: Policy(max_age=timedelta(weeks=4), age_label="4 weeks")}


def record(n: int, days: float, *, kind: str = "full", verified: bool = True, status: str = "succeeded",
           pinned: bool = False, size: int = 100) -> ArtifactRecord:
    return ArtifactRecord(run_id=f"run-{n:04d}", kind=kind, created_at=NOW - timedelta(days=days), status=status,
                          verified=verified, pinned=pinned, size=size, keys=(f"postgres/f{n}", f"postgres/f{n}.m"))


def plan(records: list[ArtifactRecord], floor: int = 3, budget: int = 0, **database: object) -> PrunePlan:
    policies = dict(DEFAULTS)
    if database:
        policies[DATABASE] = Policy(**{"max_age": DB.max_age, "age_label": DB.age_label, **database})  # type: ignore[arg-type]
    return plan_retention(records, RetentionConfig(policies, floor=floor, size_budget_bytes=budget), NOW)


def actions(result: PrunePlan) -> dict[str, tuple[str, str]]:
    return {d.run_id: (d.action, d.reason) for d in result.decisions}


def test_the_guides_30_days() -> None:
    nightly = [record(day, day) for day in range(40)]

    result = actions(plan(nightly))

    assert result["run-0000"] == (KEEP, "newest verified backup")
    assert result["run-0001"] == result["run-0002"] == (KEEP, "verified floor (3)")
    assert all(result[f"run-{d:04d}"] == (KEEP, "within 30 days") for d in range(3, 31))
    assert all(result[f"run-{d:04d}"] == (DELETE, "older than 30 days") for d in range(31, 40))


def test_the_floor_keeps_backups_while_every_new_one_fails() -> None:
    """pgbackweb#121: age retention purged everything while backups kept failing."""
    old_good = [record(n, 100 + n) for n in range(5)]
    failing = [record(10 + n, n, status="failed") for n in range(40)]

    result = plan(old_good + failing)

    assert {d.run_id for d in result.decisions} == {r.run_id for r in old_good}  # failed runs are not planned
    assert [d.run_id for d in result.keeps] == ["run-0000", "run-0001", "run-0002"]
    assert [d.reason for d in result.deletes] == ["older than 30 days"] * 2


def test_unverified_backups_never_count_towards_the_floor() -> None:
    """cassandra-medusa#607: count retention that counted failed or empty backups."""
    verified = [record(n, 200 + n) for n in range(4)]
    unverified_newer = [record(10 + n, 50 + n, verified=False) for n in range(3)]
    unverified_older = [record(20, 300, verified=False)]

    result = actions(plan(verified + unverified_newer + unverified_older))

    assert [result[f"run-{n:04d}"][0] for n in range(4)] == [KEEP, KEEP, KEEP, DELETE]
    assert all(result[r.run_id] == (KEEP, "not verified yet, newer than every verified backup")
               for r in unverified_newer)
    assert result["run-0020"] == (DELETE, "older than 30 days, never verified")


def test_order_comes_from_recorded_times_not_names() -> None:
    """wal-g#636: ordering by name deleted the newest backups after pg_upgrade."""
    records = [record(n, days) for n, days in enumerate([90, 10, 80, 70, 95, 60])]
    renamed = [ArtifactRecord(r.run_id, r.kind, r.created_at, r.status, r.verified, r.pinned, r.size,
                              (f"postgres/zzz_{100 - i}",)) for i, r in enumerate(records)]

    kept = [d.run_id for d in plan(records).keeps]

    assert kept == ["run-0001", "run-0005", "run-0003"]  # 10, 60 and 70 days old: the newest three
    assert actions(plan(list(reversed(renamed)))) == actions(plan(records))


def test_pinned_backups_are_kept_whatever_their_age() -> None:
    records = [record(0, 1), record(1, 2), record(2, 3), record(3, 400, pinned=True, verified=False)]

    assert actions(plan(records))["run-0003"] == (KEEP, "pinned")


def test_keep_last() -> None:
    records = [record(n, 40 + n) for n in range(8)]

    result = actions(plan(records, keep_last=5))

    expected = [(KEEP, "last 5")] * 2 + [(DELETE, "older than 30 days")] * 3
    assert [result[f"run-{n:04d}"] for n in range(3, 8)] == expected


def test_gfs_tiers_keep_the_newest_of_each_day_week_and_month() -> None:
    every_12_hours = [record(n, n / 2) for n in range(400)]  # 200 days, two backups a day

    result = plan(every_12_hours, floor=1, keep_daily=7, keep_weekly=4, keep_monthly=6)

    reasons = {d.run_id: d.reason for d in result.keeps}
    kept_beyond_30_days = sorted(d.created_at.strftime("%Y-%m") for d in result.keeps
                                 if d.reason.startswith("monthly"))
    assert kept_beyond_30_days == ["2026-06", "2026-07", "2026-08", "2026-09"]  # Nov, Oct: younger reasons won
    monthly = [d for d in result.decisions if d.reason.startswith("monthly")]
    assert all(d.created_at.day == {6: 30, 7: 31, 8: 31, 9: 30}[d.created_at.month] and d.created_at.hour == 14
               for d in monthly)  # the newest backup of each month
    assert not any(r.startswith(("daily", "weekly")) for r in reasons.values())  # all within 30 days anyway
    assert len(result.keeps) == 61 + 4


def test_gfs_counts_only_days_that_have_a_verified_backup() -> None:
    records = [record(n, 100 + 10 * n) for n in range(6)] + [record(50 + n, 40 + n, verified=False)
                                                            for n in range(5)]

    result = actions(plan(records, floor=1, keep_daily=3))

    # Day one is the newest verified backup's own (2026-08-18); the days of the unverified ones do not count.
    assert [result[f"run-{n:04d}"][1] for n in range(4)] == ["newest verified backup", "daily 2026-08-08",
                                                           "daily 2026-07-29", "older than 30 days"]


def test_size_budget_deletes_the_oldest_unprotected_first() -> None:
    records = [record(n, n, size=GIB) for n in range(10)]

    result = plan(records, budget=5 * GIB)

    assert [d.run_id for d in result.keeps] == [f"run-{n:04d}" for n in range(5)]
    assert {d.reason for d in result.deletes} == {"over size budget (5 GiB)"}
    assert result.over_budget_bytes == 0


def test_size_budget_never_deletes_protected_backups_and_says_so() -> None:
    records = [record(0, 0, size=3 * GIB), record(1, 1, size=3 * GIB), record(2, 2, size=3 * GIB),
               record(3, 50, size=3 * GIB, pinned=True), record(4, 5, size=GIB)]

    result = plan(records, budget=4 * GIB)

    assert [d.run_id for d in result.deletes] == ["run-0004"]
    assert result.over_budget_bytes == 8 * GIB
    assert result.warnings[0].startswith("backups that no rule may delete (pinned, newest verified, floor) hold")


def test_config_bundles_keep_ten_versions() -> None:
    bundles = [record(n, n * 7, kind="config") for n in range(15)]

    result = actions(plan(bundles))

    assert [result[f"run-{n:04d}"][1] for n in range(3, 10)] == ["newest 10 versions"] * 7
    assert [result[f"run-{n:04d}"] for n in range(10, 15)] == [(DELETE, "beyond the newest 10 versions")] * 5


def test_volume_snapshots_keep_four_weeks() -> None:
    weekly = [record(n, n * 7 + 1, kind="volume") for n in range(10)]

    result = actions(plan(weekly))

    assert result["run-0003"] == (KEEP, "within 4 weeks")
    assert [result[f"run-{n:04d}"] for n in range(4, 10)] == [(DELETE, "older than 4 weeks")] * 6


def test_each_kind_has_its_own_floor() -> None:
    """A schema-only dump never stands in for a full one."""
    records = [record(0, 1, kind="schema"), record(1, 2, kind="schema"), record(2, 3, kind="schema"),
               record(3, 100), record(4, 101), record(5, 102), record(6, 103)]

    result = actions(plan(records))

    assert [result[f"run-{n:04d}"][0] for n in range(3, 7)] == [KEEP, KEEP, KEEP, DELETE]


def test_an_unknown_kind_is_kept() -> None:
    assert actions(plan([record(0, 999, kind="secrets", verified=False)]))["run-0000"] == (
        KEEP, "no retention policy for kind secrets")


def test_the_floor_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetentionConfig(DEFAULTS, floor=0)


# --- two runs naming one file (a copied or forged manifest that a rebuild let in) ------------------------------


def test_a_delete_that_names_a_kept_backups_file_becomes_a_keep() -> None:
    kept = record(1, 1)
    forged = ArtifactRecord(run_id="run-0099", kind="full", created_at=NOW - timedelta(days=61), status="succeeded",
                            verified=False, size=100, keys=kept.keys)
    other = record(2, 70, verified=False)  # deleted as usual: it shares nothing

    result = plan([kept, forged, other])

    by_run = {d.run_id: (d.action, d.reason) for d in result.decisions}
    assert by_run == {"run-0001": (KEEP, "newest verified backup"),
                      "run-0099": (KEEP, "shares postgres/f1 with kept backup run-0001"),
                      "run-0002": (DELETE, "older than 30 days, never verified")}
    assert [d.run_id for d in result.deletes] == ["run-0002"]
    assert ("full backup run-0099 names postgres/f1, a file of kept backup run-0001: kept, so that file stays; "
            "one of the two manifests is not the backup's own") in result.warnings


def test_the_size_budget_never_deletes_a_file_a_kept_backup_names() -> None:
    newest = record(1, 1, size=100)
    copy = ArtifactRecord(run_id="run-0050", kind="full", created_at=NOW - timedelta(days=2), status="succeeded",
                          verified=True, size=100, keys=newest.keys)

    result = plan([newest, copy], floor=1, budget=150)

    assert result.deletes == []
    assert {d.run_id: d.reason for d in result.decisions}["run-0050"] == (
        "shares postgres/f1 with kept backup run-0001")
