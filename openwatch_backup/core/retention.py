"""Retention as a plan: which backups to keep, which to delete, and the reason for each (pure, stdlib only).

Order and age come from the catalog's recorded times (`created_at`), never from file names or mtimes; ties
are broken by run id, so the plan is the same whatever the files are called. Each kind of backup (full, plain,
schema, tables, config, volume) is planned on its own, with its family's policy and its own floor, so a
schema-only dump never stands in for a full one.

Rules no policy can override, per kind:
  - pinned backups are kept;
  - the newest verified backup is kept, and so are the newest `floor` verified ones: at least
    min(floor, number of verified backups) verified backups always remain;
  - only verified backups count: keep-last, versions and the daily/weekly/monthly tiers pick among verified
    backups; a backup that is not verified is kept by the age window only, or because it is newer than every
    verified backup (it may be about to verify);
  - only successful backups are planned. Failed runs' files are leftovers (core/prune_files.py);
  - a backup that names a file a kept backup also names is kept (checked last, after the size budget);
  - a backup the caller holds (`hold`: its off-site copy is not verified yet) is kept, whatever the rules say.
The size budget then deletes the oldest backups that no safety rule protects until what is kept fits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

KEEP, DELETE = "keep", "delete"
SUCCEEDED = "succeeded"
DATABASE, CONFIG, VOLUME = "database", "config", "volume"
FAMILY_OF_KIND: dict[str, str] = {"full": DATABASE, "plain": DATABASE, "schema": DATABASE, "tables": DATABASE,
                                  "config": CONFIG, "volume": VOLUME,
                                  # Redis snapshots are taken with the nightly dump: kept by the database's days
                                  # policy, planned as their own kind (their own floor of verified ones).
                                  "redis": DATABASE}
GIB = 1024**3


@dataclass(frozen=True)
class Policy:
    """One family's rules. Every rule keeps; what no rule keeps is deleted."""

    max_age: timedelta | None = None  # keep every backup younger than this
    age_label: str = ""  # "30 days", "4 weeks": for the reasons
    versions: int = 0  # keep the newest N verified backups ("10 versions" of config bundles)
    keep_last: int = 0
    keep_daily: int = 0  # the newest verified backup of each of the last N days that have one
    keep_weekly: int = 0
    keep_monthly: int = 0


@dataclass(frozen=True)
class RetentionConfig:
    policies: Mapping[str, Policy]  # by family
    floor: int = 3
    size_budget_bytes: int = 0  # 0: no budget

    def __post_init__(self) -> None:
        if self.floor < 1:
            raise ValueError(f"the verified floor must be at least 1, not {self.floor}")


@dataclass(frozen=True)
class ArtifactRecord:
    """One backup run as the catalog recorded it."""

    run_id: str
    kind: str
    created_at: datetime
    status: str
    verified: bool
    pinned: bool = False
    size: int = 0
    keys: tuple[str, ...] = ()
    hold: str = ""  # a reason outside the policy to keep it whatever the rules say ("off-site copy not verified")
    set_id: str = ""  # the nightly set it belongs to (service/sets.py): kept or deleted with its database backup


@dataclass(frozen=True)
class Decision:
    run_id: str
    kind: str
    created_at: datetime
    action: str  # KEEP or DELETE
    reason: str
    verified: bool
    pinned: bool
    size: int
    keys: tuple[str, ...]
    protected: bool = False  # kept by a safety rule (pinned, newest verified, floor): nothing deletes it

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run_id, "kind": self.kind, "created_at": self.created_at.isoformat(),
                "action": self.action, "reason": self.reason, "verified": self.verified, "pinned": self.pinned,
                "size_bytes": self.size, "keys": list(self.keys), "protected": self.protected}


@dataclass(frozen=True)
class PrunePlan:
    decisions: tuple[Decision, ...]
    now: datetime
    over_budget_bytes: int = 0  # what protected backups still hold beyond the budget (an alert, not a delete)
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def deletes(self) -> list[Decision]:
        return [d for d in self.decisions if d.action == DELETE]

    @property
    def keeps(self) -> list[Decision]:
        return [d for d in self.decisions if d.action == KEEP]

    @property
    def bytes_to_free(self) -> int:
        return sum(d.size for d in self.deletes)

    @property
    def bytes_kept(self) -> int:
        return sum(d.size for d in self.keeps)


def newest_first(records: Iterable[ArtifactRecord]) -> list[ArtifactRecord]:
    return sorted(records, key=lambda r: (r.created_at, r.run_id), reverse=True)


def _tier(records: Sequence[ArtifactRecord], count: int, bucket: Callable[[datetime], str],
          label: str) -> dict[str, str]:
    """The newest record of each of the `count` newest buckets that hold one (records newest first)."""
    kept: dict[str, str] = {}
    seen: set[str] = set()
    for record in records:
        if len(seen) >= count:
            break
        key = bucket(record.created_at)
        if key not in seen:
            seen.add(key)
            kept[record.run_id] = f"{label} {key}"
    return kept


def _day(when: datetime) -> str:
    return when.date().isoformat()


def _week(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def _month(when: datetime) -> str:
    return f"{when.year}-{when.month:02d}"


def _count_rules(policy: Policy, verified: Sequence[ArtifactRecord]) -> dict[str, str]:
    """Reasons to keep verified backups by count and tier, first rule first."""
    reasons: dict[str, str] = {}
    rules = [
        {r.run_id: f"newest {policy.versions} versions" for r in verified[:policy.versions]},
        {r.run_id: f"last {policy.keep_last}" for r in verified[:policy.keep_last]},
        _tier(verified, policy.keep_daily, _day, "daily"),
        _tier(verified, policy.keep_weekly, _week, "weekly"),
        _tier(verified, policy.keep_monthly, _month, "monthly"),
    ]
    for rule in rules:
        for run_id, reason in rule.items():
            reasons.setdefault(run_id, reason)
    return reasons


def _delete_reason(policy: Policy, record: ArtifactRecord) -> str:
    if policy.max_age is not None:
        reason = f"older than {policy.age_label}"
    elif policy.versions:
        reason = f"beyond the newest {policy.versions} versions"
    else:
        reason = "no retention rule keeps it"
    return reason if record.verified else f"{reason}, never verified"


def _decide(record: ArtifactRecord, action: str, reason: str, protected: bool = False) -> Decision:
    return Decision(run_id=record.run_id, kind=record.kind, created_at=record.created_at, action=action,
                    reason=reason, verified=record.verified, pinned=record.pinned, size=record.size,
                    keys=record.keys, protected=protected)


def _safety(kind: str, ordered: Sequence[ArtifactRecord], verified: Sequence[ArtifactRecord], floor: int,
            has_policy: bool) -> dict[str, str]:
    """What the safety rules keep, whatever the policy: pinned, the newest verified, the verified floor."""
    protected = {r.run_id: "pinned" for r in ordered if r.pinned}
    for position, record in enumerate(verified[:floor]):
        protected.setdefault(record.run_id, "newest verified backup" if position == 0 else f"verified floor ({floor})")
    if not has_policy:  # a kind this version has no policy for: never delete what it cannot judge
        for record in ordered:
            protected.setdefault(record.run_id, f"no retention policy for kind {kind}")
    return protected


def _plan_kind(kind: str, records: Sequence[ArtifactRecord], config: RetentionConfig,
               now: datetime) -> list[Decision]:
    ordered = newest_first(records)
    policy = config.policies.get(FAMILY_OF_KIND.get(kind, ""))
    verified = [r for r in ordered if r.verified]
    protected = _safety(kind, ordered, verified, config.floor, policy is not None)
    newest_verified = (verified[0].created_at, verified[0].run_id) if verified else None
    counted = _count_rules(policy, verified) if policy else {}
    decisions = []
    for record in ordered:
        if record.run_id in protected or policy is None:
            decisions.append(_decide(record, KEEP, protected[record.run_id], protected=True))
            continue
        reason: str | None = None
        if policy.max_age is not None and now - record.created_at <= policy.max_age:
            reason = f"within {policy.age_label}"
        elif record.run_id in counted:
            reason = counted[record.run_id]
        elif not record.verified and (newest_verified is None
                                      or (record.created_at, record.run_id) > newest_verified):
            reason = "not verified yet, newer than every verified backup"
        if reason is not None:
            decisions.append(_decide(record, KEEP, reason))
        elif record.hold:  # protected: the size budget may not take it either
            decisions.append(_decide(record, KEEP, record.hold, protected=True))
        else:
            decisions.append(_decide(record, DELETE, _delete_reason(policy, record)))
    return decisions


def _apply_budget(decisions: list[Decision], budget: int) -> tuple[list[Decision], int]:
    """Delete the oldest unprotected kept backups until the kept bytes fit the budget."""
    total = sum(d.size for d in decisions if d.action == KEEP)
    if budget <= 0 or total <= budget:
        return decisions, 0
    label = f"over size budget ({budget / GIB:g} GiB)"
    candidates = sorted((d for d in decisions if d.action == KEEP and not d.protected),
                        key=lambda d: (d.created_at, d.run_id))
    changed: dict[str, Decision] = {}
    for decision in candidates:
        if total <= budget:
            break
        if decision.size <= 0:
            continue
        changed[decision.run_id] = replace(decision, action=DELETE, reason=label)
        total -= decision.size
    return [changed.get(d.run_id, d) for d in decisions], max(0, total - budget)


def _keep_shared_files(decisions: list[Decision]) -> tuple[list[Decision], list[str]]:
    """A delete that names a file a kept backup also names becomes a keep: deleting it would take the kept
    backup's file (two runs naming one file come from a copied or forged manifest added by a rebuild)."""
    warnings: list[str] = []
    changed = True
    while changed:
        changed = False
        kept = {key: d.run_id for d in decisions if d.action == KEEP for key in d.keys}
        for position, decision in enumerate(decisions):
            shared = [key for key in decision.keys if key in kept] if decision.action == DELETE else []
            if shared:
                owner = kept[shared[0]]
                decisions[position] = replace(decision, action=KEEP, protected=True,
                                              reason=f"shares {shared[0]} with kept backup {owner[:8]}")
                warnings.append(f"{decision.kind} backup {decision.run_id[:8]} names {shared[0]}, a file of kept "
                                f"backup {owner[:8]}: kept, so that file stays; one of the two manifests is not "
                                "the backup's own")
                changed = True
    return decisions, warnings


def _follow_sets(decisions: list[Decision], set_of: Mapping[str, str]) -> list[Decision]:
    """A nightly set is kept or deleted as a unit, by the decision on its database backup: a kept set keeps every
    member (its config bundle too, whatever the 10 versions say); a deleted set's members go with it, except those
    a safety rule protects (pinned, newest verified, floor). A set without a planned database backup (its dump
    failed) leaves its members to their own rules."""
    leader: dict[str, Decision] = {}
    for decision in decisions:
        set_id = set_of.get(decision.run_id)
        if set_id and FAMILY_OF_KIND.get(decision.kind) == DATABASE and decision.kind != "redis":
            leader[set_id] = decision
    result = []
    for decision in decisions:
        set_id = set_of.get(decision.run_id, "")
        head = leader.get(set_id)
        if head is None or head.run_id == decision.run_id:
            result.append(decision)
        elif head.action == KEEP and decision.action == DELETE:
            result.append(replace(decision, action=KEEP, protected=True,
                                  reason=f"in set {set_id[:8]}, kept with its database backup {head.run_id[:8]}"))
        elif head.action == DELETE and decision.action == KEEP and not decision.protected:
            result.append(replace(decision, action=DELETE,
                                  reason=f"in set {set_id[:8]}, deleted with its database backup {head.run_id[:8]}"))
        else:
            result.append(decision)
    return result


def plan_retention(records: Iterable[ArtifactRecord], config: RetentionConfig, now: datetime) -> PrunePlan:
    """Keep or delete, with a reason, for every successful backup; failed runs are not planned."""
    by_kind: dict[str, list[ArtifactRecord]] = defaultdict(list)
    set_of: dict[str, str] = {}
    for record in records:
        if record.status == SUCCEEDED:
            by_kind[record.kind].append(record)
            if record.set_id:
                set_of[record.run_id] = record.set_id
    decisions: list[Decision] = []
    for kind in sorted(by_kind):
        decisions.extend(_plan_kind(kind, by_kind[kind], config, now))
    decisions, over = _apply_budget(decisions, config.size_budget_bytes)
    decisions = _follow_sets(decisions, set_of)
    decisions, warnings = _keep_shared_files(decisions)
    if over:
        warnings.append(f"backups that no rule may delete (pinned, newest verified, floor) hold {over} bytes more "
                        f"than the size budget of {config.size_budget_bytes / GIB:g} GiB")
    for kind, group in sorted(by_kind.items()):
        if not any(r.verified for r in group):
            warnings.append(f"no verified {kind} backup: nothing of this kind counts towards the floor")
    decisions.sort(key=lambda d: (d.created_at, d.run_id), reverse=True)
    return PrunePlan(tuple(decisions), now, over, tuple(warnings))
