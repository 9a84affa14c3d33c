"""The checklist's three config-bundle items: a passphrase is set, a verified bundle exists, no certificate in the
newest bundle expires soon.

They read the settings and the catalog only (the certificates come from the newest bundle's run details, which
its manifest holds too): `check` must stay fast and never decrypt anything. A certificate that expires within
cert_warn_days is a `warn` item (it passes: the exit status and `healthy` are unchanged) whose fix says what to
renew; one already expired fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, RunStatus
from openwatch_backup.errors import ConfigError
from openwatch_backup.operations.config_schedule import CHECKED_KEY, PROBLEM
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.presence import is_present
from openwatch_backup.secrets import passphrase as passphrases
from openwatch_backup.secrets.certificates import expiring

KEY_TITLE = "Config bundle passphrase set"
BUNDLE_TITLE = "Config bundle (.env, keys, certificates) taken and verified"
CERTS_TITLE = "TLS certificates in the newest config bundle are not about to expire"
BUNDLE_SCAN = 50  # succeeded bundles looked at for a verified one (retention keeps 10)
UNSET = "no passphrase set (see the passphrase item)"
TAKE = "run `openwatch-backup backup --kind config`"

Age = Callable[[datetime | None, datetime], str]
Found = tuple[str, str, str]  # (status, detail, fix)


def passphrase_item(ctx: OperationContext) -> tuple[Found, bool]:
    """(status, detail, fix) of the passphrase item, and whether a usable passphrase is set."""
    try:
        found = passphrases.required(ctx.settings)
    except ConfigError as exc:  # none set (the line names OPENWATCH_BACKUP_PASSPHRASE_FILE), or unreadable
        return ("fail", exc.message, f"set {passphrases.FILE_SETTING} (a file, mode 600, holding the passphrase on "
                                     "its first line), then restart the worker"), False
    detail = f"set ({found.source})"
    if found.warnings:
        detail += f"; warning: {found.warnings[0]}"
    return ("ok", detail, ""), True


def _verified(ctx: OperationContext, bundle: BackupRun) -> BackupRun | None:
    runs = ctx.recorder.list(limit=1, kind="verify", parent_id=bundle.id, status=RunStatus.SUCCEEDED.value)
    return runs[0] if runs else None


def present_bundles(ctx: OperationContext) -> list[BackupRun]:
    """Succeeded config bundles still stored (not pruned, nor being pruned), newest first."""
    runs = ctx.recorder.list(limit=BUNDLE_SCAN, kind=BackupKind.CONFIG.value, status=RunStatus.SUCCEEDED.value)
    return [r for r in runs if is_present(r)]


def _last_check_problem(store_value: Any) -> str | None:
    if isinstance(store_value, dict) and store_value.get("outcome") == PROBLEM:
        return f"the on-change check at {store_value.get('at')} could not read the inputs: " \
               f"{store_value.get('detail')}"
    return None


def bundle_item(ctx: OperationContext, bundles: list[BackupRun], has_passphrase: bool, now: datetime, age: Age,
                last_check: Any = None) -> Found:
    """The newest verified bundle and its age; failing when none, or when the last on-change check could not read
    the inputs (a missing path: the dispatcher alerts once per interval, this says it until it is fixed)."""
    if not has_passphrase:
        return "skip", UNSET, ""
    problem = _last_check_problem(last_check)
    if problem is not None:
        return "fail", problem, "fix the path or OPENWATCH_BACKUP_CONFIG_PATHS; the next check takes a bundle"
    if not bundles:
        return "fail", "no config bundle yet", TAKE
    for bundle in bundles:
        verify = _verified(ctx, bundle)
        if verify is not None:
            newer = bundles.index(bundle)
            note = f"; {newer} newer not verified yet" if newer else ""
            return "ok", f"{bundle.details.get('artifact')} taken {age(bundle.finished_at, now)}, verified " \
                         f"{age(verify.finished_at, now)}{note}", ""
    newest = bundles[0]
    return "fail", f"no verified config bundle ({newest.details.get('artifact')}, the newest, was taken " \
                   f"{age(newest.finished_at, now)} and never verified)", \
        f"run `openwatch-backup verify {str(newest.id)[:8]}`"


def _when(cert: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(cert["not_after"]))


def certificates_item(ctx: OperationContext, bundles: list[BackupRun], now: datetime) -> Found:
    """The certificates the newest bundle recorded: failing when one has expired, a warning within
    cert_warn_days (naming subject, member and date), ok otherwise."""
    if not bundles:
        return "skip", "no config bundle yet", ""
    newest = bundles[0]
    certs = [c for c in newest.details.get("certificates") or [] if isinstance(c, dict) and c.get("not_after")]
    if not certs:
        return "ok", f"no certificate in {newest.details.get('artifact')}", ""
    days = ctx.settings.cert_warn_days
    soon = sorted(expiring(certs, now, days), key=lambda c: str(c["not_after"]))
    if not soon:
        first = min(certs, key=_when)
        return "ok", f"{len(certs)} certificate(s), the first to expire: {first['subject']} ({first['member']}) on " \
                     f"{_when(first).date().isoformat()}", ""
    cert = dict(soon[0])
    more = f" (and {len(soon) - 1} more)" if len(soon) > 1 else ""
    when = _when(cert)
    what = f"{cert['subject']} ({cert['member']})"
    fix = f"renew the certificate in {cert['member']}; the next on-change check takes a new bundle"
    if when <= now:
        return "fail", f"{what} expired on {when.date().isoformat()}{more}", fix
    left = math.ceil((when - now).total_seconds() / 86400)  # 9 days 23 h: "in 10 day(s)"
    return "warn", f"{what} expires on {when.date().isoformat()}, in {left} day(s){more}", fix


def config_items(ctx: OperationContext, last_check: Any, now: datetime, age: Age) -> list[tuple[str, str, Found]]:
    """(key, title, (status, detail, fix)) of the three items, in the checklist's order."""
    passphrase, usable = passphrase_item(ctx)
    bundles = present_bundles(ctx)
    return [("config_passphrase", KEY_TITLE, passphrase),
            ("config_bundle", BUNDLE_TITLE, bundle_item(ctx, bundles, usable or bool(bundles), now, age, last_check)),
            ("certificates", CERTS_TITLE, certificates_item(ctx, bundles, now))]


__all__ = ["CHECKED_KEY", "config_items"]
