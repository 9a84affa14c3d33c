"""A run as plain JSON-able data: what the CLI's --json prints and the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a RunRow (catalog/fast_list.py) serialises alike; `list` must not import SQLAlchemy
    from openwatch_backup.catalog.fast_list import RunRow
    from openwatch_backup.catalog.models import BackupRun


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_to_dict(run: BackupRun | RunRow, copies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`copies`: the run's copies as catalog/copies.copy_to_dict gives them; added as "copies" when given (the API
    passes them; `list --json` leaves them out unless its caller adds them: its fast path reads backup_runs alone)."""
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
    data: dict[str, Any] = {
        "id": str(run.id), "kind": run.kind, "status": run.status, "trigger": run.trigger,
        "requested_by": run.requested_by, "parent_id": str(run.parent_id) if run.parent_id else None,
        "phase": run.phase, "created_at": _iso(run.created_at), "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at), "heartbeat_at": _iso(run.heartbeat_at),
        "duration_seconds": round(duration, 3) if duration is not None else None,
        "bytes_done": run.bytes_done, "artifact_location": run.artifact_location, "size_bytes": run.size_bytes,
        "sha256": run.sha256, "pinned": run.pinned, "pruned_at": _iso(run.pruned_at), "details": run.details,
        "error_code": run.error_code,
        "error": run.error,
    }
    if copies is not None:
        data["copies"] = copies
    return data
