"""Nightly sets: the scheduled job's database dump, the config bundle when its inputs changed, and the Redis
snapshot when OPENWATCH_BACKUP_REDIS is on, grouped under one run of kind `set`.

Membership: each member is a backup run whose parent_id is the set's run and whose details (and manifest) carry
`set_id`. parent_id is used elsewhere only as "the backup this verify/offsite/restore/drill is of", and every such
query filters by its own kind (verify, offsite, ...), so a backup pointing at its set is never mistaken for one; the
manifest's `set_id` is what `catalog rebuild` recreates the grouping from on a new host.

Kill safety (DESIGN.md decision 11): a member row is one INSERT (parent_id, set_id and request together), created
right before it is executed; the set holds its own heartbeat while it works. A kill leaves the set running with a
stale heartbeat: the sweeper marks it abandoned like any run, its running member abandoned by the member's own
heartbeat, and `close_dead_sets` cancels a member created but never claimed and records which members exist.

The set is "off-site" only when every succeeded member's S3 copy is verified (`set_summary`, computed from the
copies, never stored: a later retry of one member's copy completes the set).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from openwatch_backup.core.kinds import BackupKind, RunStatus, Trigger
from openwatch_backup.errors import BackupError
from openwatch_backup.operations.heartbeat import heartbeat
from openwatch_backup.operations.kill_points import kill_point

if TYPE_CHECKING:
    from openwatch_backup.catalog.models import BackupRun
    from openwatch_backup.service import BackupService

log = logging.getLogger(__name__)

SET_KIND = "set"
PARTIAL = "partial"  # details.outcome of a set with some members failed: the set run itself is failed


def planned_kinds(service: BackupService) -> list[str]:
    """What a set taken now is made of, in order: the database dump, the config bundle (only if changed, decided
    when it is reached) when a passphrase is set, Redis when enabled."""
    from openwatch_backup.operations.config_schedule import passphrase_set

    kinds = [service.settings.kind.value]
    if passphrase_set(service.context):
        kinds.append(BackupKind.CONFIG.value)
    if service.settings.redis:
        kinds.append(BackupKind.REDIS.value)
    return kinds


def request_set(service: BackupService, trigger: Trigger = Trigger.SCHEDULE,
                requested_by: str | None = None) -> tuple[uuid.UUID, bool]:
    """Queue a set unless one is queued or running (then that one, created False)."""
    return service.recorder.create_unless_active(SET_KIND, (SET_KIND,), trigger.value, requested_by,
                                                 details={"planned": planned_kinds(service)})


def members(service: BackupService, set_id: uuid.UUID) -> list[BackupRun]:
    """The set's member backups, oldest first (parent_id = the set; verify/offsite runs of the set are none)."""
    from openwatch_backup.service.base import BACKUP_KINDS

    runs = service.recorder.list(limit=20, parent_id=set_id, oldest_first=True)
    return [r for r in runs if r.kind in BACKUP_KINDS]


def _config_changed(service: BackupService) -> tuple[bool, str]:
    from openwatch_backup.operations import config_schedule as on_change

    found = on_change.compare(service.context)
    return found.take, found.detail


def _take_member(service: BackupService, set_run: BackupRun, kind: str) -> BackupRun:
    """Create one member (one INSERT), back it up, verify it when verify_after_backup. A failure is recorded on
    the member and returned with it; it does not stop the set."""
    request = service.build_request(BackupKind(kind))
    member_id = service.recorder.create(kind, set_run.trigger, f"set {str(set_run.id)[:8]}", parent_id=set_run.id,
                                        details={"request": request.as_details(), "set_id": str(set_run.id)})
    kill_point(f"set:member-created:{kind}")
    try:
        member = service.execute_backup(member_id)
    except BackupError:
        return service.recorder.get(str(member_id))
    if member.status == RunStatus.SUCCEEDED.value and service.settings.verify_after_backup:
        try:
            service.verify(str(member.id), trigger=Trigger(set_run.trigger),
                           requested_by=f"set {str(set_run.id)[:8]}")
        except BackupError as exc:
            log.error("set %s: verify of %s failed: %s", set_run.id, member.id, exc.message)
    return member


def _copy_offsite(service: BackupService, set_run: BackupRun, done: list[BackupRun]) -> None:
    """Each succeeded member's off-site copy, as part of the set (a failed copy is retried by the sweeper)."""
    for member in done:
        if member.status != RunStatus.SUCCEEDED.value:
            continue
        kill_point(f"set:offsite:{member.kind}")
        try:
            service.copy_offsite(str(member.id), trigger=Trigger(set_run.trigger),
                                 requested_by=f"set {str(set_run.id)[:8]}")
        except BackupError as exc:
            log.error("set %s: off-site copy of %s failed: %s", set_run.id, member.id, exc.message)


def execute_set(service: BackupService, set_id: uuid.UUID) -> BackupRun:
    """Carry out a queued set; a second delivery finds it claimed and returns it as it is."""
    recorder = service.recorder
    if not recorder.claim(set_id):
        return recorder.get(str(set_id))
    set_run = recorder.get(str(set_id))
    done: list[BackupRun] = []
    skipped: dict[str, str] = {}
    try:
        with heartbeat(recorder, set_id, service.settings.heartbeat_seconds):
            for kind in set_run.details.get("planned", []):
                kill_point(f"set:before:{kind}")
                if kind == BackupKind.CONFIG.value:
                    take, why = _config_changed(service)
                    if not take:
                        skipped[kind] = why
                        continue
                recorder.progress(set_id, f"member {kind}")
                done.append(_take_member(service, set_run, kind))
            if service.settings.s3_bucket:
                recorder.progress(set_id, "offsite")
                _copy_offsite(service, set_run, [recorder.get(str(m.id)) for m in done])
    except BaseException as exc:
        code = exc.code if isinstance(exc, BackupError) else "set_failed"
        recorder.finish_unsuccessfully(set_id, RunStatus.FAILED, code, f"set stopped: {exc}",
                                       details=_member_details(service, set_id, skipped))
        raise
    return _close(service, set_id, skipped)


def _member_details(service: BackupService, set_id: uuid.UUID, skipped: dict[str, str]) -> dict[str, Any]:
    found = members(service, set_id)
    return {"members": {str(m.id): {"kind": m.kind, "status": m.status} for m in found}, "skipped": skipped}


def _close(service: BackupService, set_id: uuid.UUID, skipped: dict[str, str]) -> BackupRun:
    details = _member_details(service, set_id, skipped)
    failed = [f"{m['kind']} {i[:8]} {m['status']}" for i, m in details["members"].items()
              if m["status"] != RunStatus.SUCCEEDED.value]
    if failed:
        service.recorder.finish_unsuccessfully(set_id, RunStatus.FAILED, "set_partial",
                                               f"set partial: {', '.join(failed)}",
                                               details={**details, "outcome": PARTIAL})
    else:
        service.recorder.succeed(set_id, location=None, size=None, sha256=None,
                                 details={**details, "outcome": "complete"})
    return service.recorder.get(str(set_id))


def close_dead_sets(service: BackupService) -> list[str]:
    """The sweeper's part (after abandoned runs were marked): a set abandoned (its process died) gets its members
    recorded; a member created but never claimed is cancelled, so no one runs it outside its set later. A set
    `catalog rebuild` recreated gets the status its members say (settle_rebuilt_sets)."""
    closed = settle_rebuilt_sets(service)
    for set_run in service.recorder.list(limit=20, kind=SET_KIND, status=RunStatus.ABANDONED.value):
        if "members" in set_run.details:
            continue
        for member in members(service, set_run.id):
            if member.status == RunStatus.QUEUED.value:
                service.recorder.finish_unsuccessfully(member.id, RunStatus.CANCELLED, "set_abandoned",
                                                       f"its set {str(set_run.id)[:8]} was abandoned before it ran",
                                                       only_if=RunStatus.QUEUED)
        details = _member_details(service, set_run.id, {})
        details["outcome"] = PARTIAL if details["members"] else "empty"
        service.recorder.add_details(set_run.id, details)
        closed.append(str(set_run.id))
    return closed


def settle_rebuilt_sets(service: BackupService, scan: int = 500) -> list[str]:
    """`catalog rebuild` recreates a set from its members' manifests and inserts it succeeded, whatever became of
    the members with no manifest (failed, or their files gone). Every set takes the database dump first, so a
    rebuilt set whose members hold no database dump did not succeed: failed, set_incomplete. The members found are
    recorded either way, once (a set with them recorded is settled). What the manifests cannot tell (a Redis or
    config member that failed beside a good dump) stays unknown: outcome "rebuilt", not "complete"."""
    from openwatch_backup.service.base import DATABASE_KIND_NAMES

    settled = []
    for set_run in service.recorder.list(limit=scan, kind=SET_KIND, status=RunStatus.SUCCEEDED.value):
        if not set_run.details.get("rebuilt_from_manifest") or "members" in set_run.details:
            continue
        details = {**_member_details(service, set_run.id, {}), "outcome": "rebuilt"}
        found = sorted(m["kind"] for m in details["members"].values())
        if any(kind in DATABASE_KIND_NAMES for kind in found):
            service.recorder.add_details(set_run.id, details)
        else:
            service.recorder.finish_unsuccessfully(
                set_run.id, RunStatus.FAILED, "set_incomplete", f"set incomplete: rebuilt from manifests with no "
                f"database dump among its members ({', '.join(found) or 'none'})",
                details={**details, "outcome": PARTIAL}, only_if=RunStatus.SUCCEEDED)
        settled.append(str(set_run.id))
    return settled


def set_summary(service: BackupService, set_run: BackupRun) -> dict[str, Any]:
    """What GET /runs and `show` say of a set: its members with their statuses, and whether it is off-site (every
    succeeded member's S3 copy verified)."""
    found = members(service, set_run.id)
    by_run = service.copies.of_runs([m.id for m in found])
    copies = {str(m.id): {c.storage: c.state for c in by_run.get(m.id, [])} for m in found}
    succeeded = [m for m in found if m.status == RunStatus.SUCCEEDED.value]
    offsite = bool(succeeded) and all(copies[str(m.id)].get("s3") == "verified" for m in succeeded)
    return {"members": [{"id": str(m.id), "kind": m.kind, "status": m.status,
                         "s3": copies[str(m.id)].get("s3")} for m in found], "offsite": offsite}
