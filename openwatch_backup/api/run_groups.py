"""GET /runs?group=sets: nightly sets as one row each, their member backups folded under them (`members`).

A member is a backup whose parent_id is its set and whose details carry the same `set_id` (service/sets.py); it
is left out of the top level wherever it falls, and shown under its set instead. Pages count top-level rows, so a
page of `limit` sets and runs reads on past the members it skips; the cursor is the last top-level row's, and a
member is always newer than its set (created after it), so no member is lost between pages.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from openwatch_backup.api.schemas import RunOut
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import RunStatus
from openwatch_backup.service import BackupService
from openwatch_backup.service.base import BACKUP_KINDS
from openwatch_backup.service.sets import SET_KIND, members


def is_set_member(run: BackupRun) -> bool:
    return run.kind in BACKUP_KINDS and run.parent_id is not None and \
        run.details.get("set_id") == str(run.parent_id)


def top_level_page(service: BackupService, *, limit: int, before: tuple[datetime, uuid.UUID] | None,
                   kind: str | None, status: str | None) -> tuple[list[BackupRun], bool]:
    """Up to `limit` runs that are not set members, newest first, and whether more follow."""
    found: list[BackupRun] = []
    cursor = before
    while True:
        batch = service.recorder.list(limit=limit + 1, before=cursor, kind=kind, status=status)
        for run in batch:
            if not is_set_member(run):
                found.append(run)
            if len(found) > limit:
                return found[:limit], True
        if len(batch) <= limit:
            return found, False
        cursor = (batch[-1].created_at, batch[-1].id)


Out = Callable[[BackupRun, list[Any] | None], RunOut]


def with_members(service: BackupService, runs: list[BackupRun], out: Out | None,
                 out_for: Callable[[list[BackupRun]], Out] | None = None) -> list[RunOut]:
    """The runs as RunOut, each set with its members (and their copies: one copies query for the whole page).
    `out_for(all runs shown)`: a shape that needs the whole page first (the list's retention words)."""
    grouped = {run.id: members(service, run.id) for run in runs if run.kind == SET_KIND}
    everything = [*runs, *(m for found in grouped.values() for m in found)]
    if out is None:
        assert out_for is not None
        out = out_for(everything)
    copies = service.copies.of_runs(r.id for r in everything)
    result = []
    for run in runs:
        item = out(run, copies.get(run.id))
        if run.id in grouped:
            item.members = [out(m, copies.get(m.id)) for m in grouped[run.id]]
            item.set_offsite = set_offsite(item.members)
        result.append(item)
    return result


def set_offsite(found: list[RunOut]) -> bool:
    """Off-site only when every succeeded member's S3 copy is verified (as service/sets.set_summary says)."""
    succeeded = [m for m in found if m.status == RunStatus.SUCCEEDED.value]
    return bool(succeeded) and all(any(c.storage == "s3" and c.state == "verified" for c in m.copies)
                                   for m in succeeded)
