"""A run as a list row: its columns and a small `summary` instead of the whole `details` (issue 14, item 8).

GET runs is polled every 2 to 15 seconds; a prune's plan or a backup's row counts and log would ride along each
time. The detail endpoint (GET runs/{id}) keeps everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from openwatch_backup.api.schemas import RetentionOut, RunSummaryOut
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.service import BackupService

RetentionMap = dict[str, RetentionOut]


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | uuid.UUID) and str(value) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def summary_of(run: Any, retention: RetentionMap | None = None) -> RunSummaryOut:
    details: dict[str, Any] = run.details or {}
    verify: dict[str, Any] = details["verify"] if isinstance(details.get("verify"), dict) else {}
    request: dict[str, Any] = details["request"] if isinstance(details.get("request"), dict) else {}
    deep = verify.get("deep", request.get("deep")) if run.kind == "verify" else None
    set_id = _text(details.get("set_id"))
    return RunSummaryOut(
        set_id=set_id if set_id and run.parent_id is not None and set_id == str(run.parent_id) else None,
        deep=bool(deep) if deep is not None else None,
        result=_text(verify.get("result")), reason=_text(verify.get("reason")), message=_text(verify.get("message")),
        backup_run=_text(details.get("backup_run")) or (str(run.parent_id) if run.kind in ("verify", "restore")
                                                         and run.parent_id else None),
        read_from=_text(details.get("read_from") or details.get("copy")),
        artifact=_text(details.get("artifact")),
        rate_bytes_per_s=_int(details.get("rate_bytes_per_s")), estimate_bytes=_int(details.get("estimate_bytes")),
        retention=(retention or {}).get(str(run.id)))


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def retention_map(service: BackupService, runs: Iterable[Any]) -> RetentionMap:
    """The newest finished prune plan's decision for each backup on the page: one query, no new planning (a plan
    needs the whole catalog; the prune panel plans on demand)."""
    wanted = {str(run.id) for run in runs}
    if not wanted:
        return {}
    plans = service.recorder.list(limit=1, kind="prune", status=RunStatus.SUCCEEDED.value)
    if not plans:
        return {}
    prune = plans[0]
    planned_at = _when(prune.details.get("planned_at")) or prune.created_at
    found: RetentionMap = {}
    for item in prune.details.get("plan") or []:
        if isinstance(item, dict) and str(item.get("run")) in wanted:
            found[str(item["run"])] = RetentionOut(action=str(item.get("action", "")),
                                                   reason=str(item.get("reason", "")),
                                                   protected=bool(item.get("protected")), prune_run=str(prune.id),
                                                   planned_at=planned_at)
    return found


__all__ = ["RetentionMap", "retention_map", "summary_of"]
