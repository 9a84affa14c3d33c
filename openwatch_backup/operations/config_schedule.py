"""On change: whether the dispatcher takes a config bundle now (the guide's "config: on change, 10 versions").

Every `config_check_minutes` (default 60) the dispatcher computes the keyed digest of what a bundle taken now
would hold (names, modes, contents: operations/config_backup.inputs_fingerprint) and compares it with the newest
succeeded config run's `inputs_digest`. Only a difference, or no bundle yet, queues a bundle. The digest is keyed
with the passphrase (secrets/bundle_digest.py) and lives only on the run; nothing here stores one.

The time of the last check is stored (backup_settings `config.checked_at`, with its outcome), so the check runs
once per interval and not on every dispatcher tick, whatever the outcome. That is also what bounds the alerts:
  - no passphrase set: no check, no run, no alert; `check` and the status say why;
  - a listed path missing, or a passphrase file that cannot be read: one alert (log + webhook) per interval,
    never a failed run per tick; the stored outcome carries the line, and the next interval tries again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from openwatch_backup.catalog.settings_store import SettingsStore
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.errors import ConfigError
from openwatch_backup.operations.config_backup import inputs_fingerprint
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.secrets import passphrase as passphrases

CHECKED_KEY = "config.checked_at"  # {"at": iso time, "outcome": ..., "detail": one line}
DUE, UNCHANGED, CHANGED, FIRST = "due", "unchanged", "changed", "first bundle"
NO_PASSPHRASE, PROBLEM = "no passphrase", "problem"


@dataclass(frozen=True)
class ConfigCheck:
    """What one check found. `take` says whether a bundle is to be queued."""

    outcome: str  # FIRST, CHANGED, UNCHANGED, NO_PASSPHRASE, PROBLEM
    detail: str
    take: bool = False

    def as_stored(self, at: datetime) -> dict[str, Any]:
        return {"at": at.isoformat(), "outcome": self.outcome, "detail": self.detail}


def interval(ctx: OperationContext) -> timedelta:
    return timedelta(minutes=ctx.settings.config_check_minutes)


def last_check(store: SettingsStore) -> tuple[datetime | None, dict[str, Any]]:
    """When the dispatcher last checked (None: never) and what it stored then."""
    stored = store.get(CHECKED_KEY)
    if not isinstance(stored, dict) or not isinstance(stored.get("at"), str):
        return None, {}
    try:
        return datetime.fromisoformat(stored["at"]), stored
    except ValueError:
        return None, {}  # written around us: counts as never checked


def passphrase_set(ctx: OperationContext) -> bool:
    """Whether a passphrase is named at all (a file that cannot be read still counts: the check says why)."""
    return ctx.settings.passphrase_file is not None or ctx.settings.passphrase is not None


def next_check(ctx: OperationContext, store: SettingsStore, now: datetime) -> datetime | None:
    """When the dispatcher checks next: the last check plus the interval, or now when that has come (beat's
    next tick). None without a passphrase: nothing is checked then."""
    if not passphrase_set(ctx):
        return None
    checked, _ = last_check(store)
    return now if checked is None else max(checked + interval(ctx), now)


def is_due(ctx: OperationContext, store: SettingsStore, now: datetime) -> bool:
    checked, _ = last_check(store)
    return checked is None or now - checked >= interval(ctx) or checked > now  # a clock set back: check again


def newest_digest(ctx: OperationContext) -> str | None:
    """The keyed inputs digest of the newest succeeded config bundle (None: no bundle yet)."""
    runs = ctx.recorder.list(limit=1, kind=BackupKind.CONFIG.value, status=RunStatus.SUCCEEDED.value)
    if not runs:
        return None
    digest = runs[0].details.get("inputs_digest")
    return str(digest) if digest else ""  # a bundle without one (rebuilt by hand): differs, so one is taken


def compare(ctx: OperationContext) -> ConfigCheck:
    """Fingerprint the inputs now and compare; a missing path or an unreadable passphrase file is a PROBLEM
    carrying its one line (never raised: the dispatcher's other work goes on)."""
    try:
        passphrase = passphrases.configured(ctx.settings)
        if passphrase is None:
            return ConfigCheck(NO_PASSPHRASE, f"no passphrase for config bundles is set: set "
                                              f"{passphrases.FILE_SETTING}; no config bundle is taken")
        ctx.redact.add(passphrase.value.decode("utf-8", "surrogateescape"))
        current = inputs_fingerprint(ctx, passphrase.value)
    except ConfigError as exc:
        return ConfigCheck(PROBLEM, exc.message)
    except OSError as exc:  # a file vanished or became unreadable between the listing and the read
        return ConfigCheck(PROBLEM, f"config inputs cannot be read ({exc.strerror or exc}: {exc.filename}); fix "
                                    "the path or its permissions")
    previous = newest_digest(ctx)
    if previous is None:
        return ConfigCheck(FIRST, "no config bundle yet", take=True)
    if previous != current:
        return ConfigCheck(CHANGED, "the configuration changed since the newest bundle", take=True)
    return ConfigCheck(UNCHANGED, "unchanged since the newest bundle")
