"""The guide's RTO table, row by row: each scenario's last measured recovery time against its target.

Three rows are measured by drills (recorded runs): database corruption by `drill` (kind drill), volume loss by
the volume drill (kind drill_volume), host failure by the full-system drill (kind drill_host). Container restart
is stated, not measured: Docker's restart policies bring a container back, which is orchestration's job.
`check` and GET /status show one line per row; a row never measured, measured too long ago
(OPENWATCH_BACKUP_RTO_MAX_AGE_DAYS) or over its target warns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.operations.context import OperationContext

DRILL_VOLUME = "drill_volume"
DRILL_HOST = "drill_host"
RTO_KEY = "rto"  # details[RTO_KEY] of a drill_volume / drill_host run whose recovery completed
SCAN = 50  # recent runs of a drill kind looked at for the newest measurement
CONTAINER_NOTE = ("stated, not measured: Docker restart policies (restart: unless-stopped) restart a failed "
                  "container; that is orchestration's, not a backup's")

Age = Callable[[datetime | None, datetime], str]


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    guide: str  # the guide's RTO as written
    verb: str
    run_kind: str | None  # None: stated, not measured
    setting: str | None  # the settings field holding the target in minutes

    def target_minutes(self, ctx: OperationContext) -> float | None:
        return float(getattr(ctx.settings, self.setting)) if self.setting else None

    def target_text(self, ctx: OperationContext) -> str:
        """The guide's range while the target is its upper end; the configured minutes otherwise."""
        minutes = self.target_minutes(ctx)
        upper = self.guide.split("-")[-1].split()[0]
        if minutes is None or upper == f"{minutes:g}":
            return self.guide
        return f"{minutes:g} min"


SCENARIOS = (
    Scenario("container_restart", "container restart", "< 2 min", "", None, None),
    Scenario("database_corruption", "database corruption", "15-30 min", "restored", "drill", "rto_minutes"),
    Scenario("host_failure", "host failure", "30-60 min", "recovered", DRILL_HOST, "host_rto_minutes"),
    Scenario("volume_loss", "volume loss", "15-30 min", "restored", DRILL_VOLUME, "volume_rto_minutes"),
)


@dataclass(frozen=True)
class Measurement:
    scenario: Scenario
    state: str  # ok, warn, stated
    line: str
    seconds: float | None = None
    run: BackupRun | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario.key, "state": self.state, "line": self.line, "seconds": self.seconds,
                "guide_rto": self.scenario.guide, "run_id": str(self.run.id) if self.run else None,
                "measured_at": self.run.finished_at.isoformat() if self.run and self.run.finished_at else None}


def measured_seconds(run: BackupRun) -> float | None:
    """The recovery time a finished drill measured; None when its recovery did not complete (a failed check,
    a kill): only a completed recovery, within the target or over it, is a measurement."""
    if run.status == RunStatus.SUCCEEDED.value or run.error_code == "rto_exceeded":
        info = run.details.get("drill") if run.kind == "drill" else run.details.get(RTO_KEY)
        seconds = (info or {}).get("rto_seconds") if run.kind == "drill" else (info or {}).get("seconds")
        return float(seconds) if seconds is not None else None
    return None


def last_measurement(ctx: OperationContext, kind: str) -> tuple[BackupRun, float] | None:
    for run in ctx.recorder.list(limit=SCAN, kind=kind, finished_only=True):
        seconds = measured_seconds(run)
        if seconds is not None:
            return run, seconds
    return None


def duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def measure(ctx: OperationContext, scenario: Scenario, now: datetime, age: Age) -> Measurement:
    target = f"(target {scenario.target_text(ctx)})"
    if scenario.run_kind is None:
        return Measurement(scenario, "stated", f"{scenario.name}: {CONTAINER_NOTE} {target}")
    found = last_measurement(ctx, scenario.run_kind)
    if found is None:
        return Measurement(scenario, "warn", f"{scenario.name}: never measured {target}")
    run, seconds = found
    line = f"{scenario.name}: {scenario.verb} in {duration(seconds)} {target} {age(run.finished_at, now)}"
    problems = []
    minutes = scenario.target_minutes(ctx) or 0
    if seconds > minutes * 60:
        problems.append(f"over the {minutes:g} min target")
    limit = ctx.settings.rto_max_age_days
    if run.finished_at is None or (now - run.finished_at).total_seconds() > limit * 86400:
        problems.append(f"older than {limit:g} days")
    if problems:
        return Measurement(scenario, "warn", f"{line}; {', '.join(problems)}", seconds, run)
    return Measurement(scenario, "ok", line, seconds, run)


def rto_table(ctx: OperationContext, now: datetime, age: Age) -> list[Measurement]:
    return [measure(ctx, scenario, now, age) for scenario in SCENARIOS]


FIXES = {"database_corruption": "run `openwatch-backup drill`",
         "host_failure": "run `openwatch-backup drill --scenario host`",
         "volume_loss": "run `openwatch-backup drill --scenario volume`"}


def rto_items(ctx: OperationContext, now: datetime, age: Age) -> list[tuple[str, str, str, str, str]]:
    """(key, title, status, detail, fix) per row, for the checklist: ok, warn, or skip for the stated row."""
    items = []
    for found in rto_table(ctx, now, age):
        status = {"ok": "ok", "warn": "warn", "stated": "skip"}[found.state]
        fix = FIXES.get(found.scenario.key, "") if found.state == "warn" else ""
        items.append((f"rto_{found.scenario.key}", f"Recovery time measured: {found.scenario.name}", status,
                      found.line, fix))
    return items
