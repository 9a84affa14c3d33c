"""Properties of the retention planner over random histories: failed streaks, all-failed periods, pinned runs,
clock jumps (recorded times unrelated to insertion order and names), several kinds, random policies.

Whatever the history and the policy: the newest verified backup of each kind is kept, at least
min(floor, verified) verified backups of each kind are kept, pinned backups are kept, nothing that is not a
successful backup is planned, unverified backups never hold a count-based keep, the plan follows recorded
times and not names, and applying the plan then planning again deletes nothing more.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openwatch_backup.core.prune_files import (
    MANIFEST_SUFFIX,
    PARTIAL_SUFFIX,
    RunFiles,
    StoredFile,
    classify_files,
)
from openwatch_backup.core.retention import (
    CONFIG,
    DATABASE,
    DELETE,
    GIB,
    KEEP,
    SUCCEEDED,
    VOLUME,
    ArtifactRecord,
    Policy,
    PrunePlan,
    RetentionConfig,
    plan_retention,
)

BASE = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = ["full", "plain", "schema", "tables", "config", "volume"]
STATUSES = ["failed", "abandoned", "cancelled", "running", "queued"]
COUNT_REASONS = ("last ", "daily ", "weekly ", "monthly ", "newest ", "verified floor")


@dataclass(frozen=True)
class History:
    records: list[ArtifactRecord]
    config: RetentionConfig
    now: datetime


@st.composite
def configs(draw: st.DrawFn) -> RetentionConfig:
    tiers = {name: draw(st.integers(0, 6)) for name in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly")}
    days, weeks = draw(st.integers(1, 60)), draw(st.integers(1, 8))
    policies = {
        DATABASE: Policy(max_age=timedelta(days=days), age_label=f"{days} days", **tiers),
        CONFIG: Policy(versions=draw(st.integers(1, 12)), **tiers),
        VOLUME: Policy(max_age=timedelta(weeks=weeks), age_label=f"{weeks} weeks", **tiers),
    }
    budget = draw(st.one_of(st.just(0), st.integers(1, 40).map(lambda g: g * GIB // 4)))
    return RetentionConfig(policies, floor=draw(st.integers(1, 5)), size_budget_bytes=budget)


@st.composite
def histories(draw: st.DrawFn) -> History:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4, unique=True))
    count = draw(st.integers(0, 60))
    fail_rate = draw(st.sampled_from([0.0, 0.2, 0.6, 1.0]))
    # An all-failed period: every run recorded inside it failed (the disk was full, pg_dump was missing...).
    window_start, window_days = draw(st.integers(0, 300)), draw(st.integers(0, 120))
    rng = random.Random(draw(st.integers(0, 2**32)))
    records = []
    names = list(range(count))
    rng.shuffle(names)  # file names say nothing about time
    for n in range(count):
        # Recorded times in any order: runs inserted later may carry earlier times (clock jumps, rebuilds).
        hours = draw(st.integers(-48, 400 * 24)) if rng.random() < 0.3 else rng.randint(0, 400 * 24)
        created = BASE + timedelta(hours=hours)
        in_window = window_start <= hours / 24 < window_start + window_days
        failed = in_window or rng.random() < fail_rate
        status = rng.choice(STATUSES) if failed else SUCCEEDED
        verified = not failed and rng.random() < 0.7
        keys = () if failed and rng.random() < 0.8 else (f"postgres/b{names[n]}", f"postgres/b{names[n]}.m")
        records.append(ArtifactRecord(run_id=f"{rng.getrandbits(64):016x}", kind=rng.choice(kinds),
                                      created_at=created, status=status, verified=verified,
                                      pinned=rng.random() < 0.05, size=rng.randint(0, 3 * GIB), keys=keys))
    now = BASE + timedelta(days=draw(st.integers(0, 420)))  # may be before some recorded times
    return History(records, draw(configs()), now)


def by_kind(records: list[ArtifactRecord]) -> dict[str, list[ArtifactRecord]]:
    groups: dict[str, list[ArtifactRecord]] = defaultdict(list)
    for r in records:
        if r.status == SUCCEEDED:
            groups[r.kind].append(r)
    return groups


def check_safety(history: History, plan: PrunePlan) -> None:
    action = {d.run_id: d.action for d in plan.decisions}
    succeeded = [r for r in history.records if r.status == SUCCEEDED]
    assert sorted(action) == sorted(r.run_id for r in succeeded)  # each successful backup exactly once
    for kind, group in by_kind(history.records).items():
        verified = sorted((r for r in group if r.verified), key=lambda r: (r.created_at, r.run_id), reverse=True)
        if verified:
            assert action[verified[0].run_id] == KEEP, f"newest verified {kind} deleted"
        kept_verified = [r for r in verified if action[r.run_id] == KEEP]
        assert len(kept_verified) >= min(history.config.floor, len(verified)), f"{kind} below the floor"
    for record in succeeded:
        if record.pinned:
            assert action[record.run_id] == KEEP
    for decision in plan.decisions:
        source = next(r for r in history.records if r.run_id == decision.run_id)
        assert decision.verified == source.verified
        if not source.verified and decision.action == KEEP:
            assert not decision.reason.startswith(COUNT_REASONS), decision.reason  # never counted
            assert decision.reason != "newest verified backup"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_safety_rules_always_hold(history: History) -> None:
    check_safety(history, plan_retention(history.records, history.config, history.now))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_prune_is_idempotent(history: History) -> None:
    first = plan_retention(history.records, history.config, history.now)
    deleted = {d.run_id for d in first.deletes}
    remaining = [r for r in history.records if r.run_id not in deleted]

    second = plan_retention(remaining, history.config, history.now)

    assert second.deletes == []
    assert {d.run_id: d.action for d in second.decisions} == {d.run_id: d.action for d in first.keeps}
    check_safety(History(remaining, history.config, history.now), second)


@settings(max_examples=200, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_the_plan_follows_recorded_times_not_names_or_order(history: History, rng: random.Random) -> None:
    shuffled = list(history.records)
    rng.shuffle(shuffled)
    # Random names, still one per run (two runs naming one file is a different rule: kept files stay).
    renamed = [replace(r, keys=tuple(f"postgres/{rng.getrandbits(32):08x}_{n}{k[-2:]}" for k in r.keys))
               for n, r in enumerate(shuffled)]

    first = plan_retention(history.records, history.config, history.now)
    second = plan_retention(renamed, history.config, history.now)

    assert [(d.run_id, d.action, d.reason) for d in second.decisions] == \
        [(d.run_id, d.action, d.reason) for d in first.decisions]


@settings(max_examples=200, deadline=None)
@given(histories())
def test_deletions_are_only_successful_backups(history: History) -> None:
    plan = plan_retention(history.records, history.config, history.now)
    statuses = {r.run_id: r.status for r in history.records}

    assert all(statuses[d.run_id] == SUCCEEDED for d in plan.decisions if d.action == DELETE)
    assert all(not d.protected for d in plan.deletes)


# --- files ------------------------------------------------------------------------------------------------------


@st.composite
def stores(draw: st.DrawFn) -> tuple[list[StoredFile], list[RunFiles]]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    runs, files = [], []
    for n in range(draw(st.integers(0, 30))):
        status = rng.choice([SUCCEEDED, SUCCEEDED, *STATUSES])
        key = f"postgres/a{n}.dump.zst"
        run = RunFiles(f"r{n}", status, key if status == SUCCEEDED else None, key, pruned=rng.random() < 0.2,
                       pruning=f"p{n}" if rng.random() < 0.1 else None)
        runs.append(run)
        for suffix in ("", MANIFEST_SUFFIX, PARTIAL_SUFFIX):
            if rng.random() < 0.6:
                files.append(StoredFile(key + suffix, 1))
    for n in range(draw(st.integers(0, 10))):  # other people's files, an unknown backup, a manifest alone
        files.append(StoredFile(rng.choice([f"postgres/x{n}", f"postgres/u{n}.dump", f"postgres/u{n}.dump"
                                            + MANIFEST_SUFFIX, f"postgres/x{n}" + PARTIAL_SUFFIX]), 1))
    return sorted(set(files), key=lambda f: f.key), runs


@settings(max_examples=300, deadline=None)
@given(stores(), st.sampled_from(["known", "unknown", "unreadable"]))
def test_files_of_kept_or_running_backups_and_foreign_files_are_never_deleted(
        store: tuple[list[StoredFile], list[RunFiles]], manifests: str) -> None:
    files, runs = store

    def manifest_run(key: str) -> str | None:
        return {"known": key.split("/")[1].split(".")[0].replace("a", "r"), "unknown": "elsewhere",
                "unreadable": None}[manifests]

    report = classify_files(files, runs, manifest_run)

    deletable = {n.key for n in report.leftovers + report.stale}
    protected = {k for r in runs if r.status in (SUCCEEDED, "running", "queued") and not r.pruned
                 for k in r.keys}
    protected |= {f"{r.in_progress_key}{PARTIAL_SUFFIX}" for r in runs if r.status in ("running", "queued")}
    assert not deletable & protected
    assert not deletable & {n.key for n in report.foreign + report.left_alone}
    named = {k for r in runs for k in r.keys}
    assert all(n.key.endswith((PARTIAL_SUFFIX, MANIFEST_SUFFIX)) or n.key in named for n in report.leftovers)
    assert {n.key for n in report.foreign} <= {f.key for f in files} - named
