"""Run endpoints: list, one run, its log, start a backup, verify, download, restore."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse

from openwatch_backup.api.auth import Principal
from openwatch_backup.api.compressed import CompressedRoute
from openwatch_backup.api.context import ApiContext
from openwatch_backup.api.errors import translated
from openwatch_backup.api.restore_checks import ALLOW_RESTORE_KEY, first_refusal, restore_checks
from openwatch_backup.api.run_groups import top_level_page, with_members
from openwatch_backup.api.schemas import (
    BackupIn,
    ErrorOut,
    LogOut,
    RestoreCheckItemOut,
    RestoreCheckOut,
    RestoreIn,
    RunOut,
    RunPage,
    ValidationErrorOut,
    VerifyIn,
)
from openwatch_backup.api.summaries import retention_map, summary_of
from openwatch_backup.catalog.copies import copy_to_dict
from openwatch_backup.catalog.models import BackupCopy
from openwatch_backup.catalog.serialize import run_to_dict
from openwatch_backup.core.kinds import BackupKind, Trigger
from openwatch_backup.core.naming import is_safe_name
from openwatch_backup.operations.restore import RestoreRequest
from openwatch_backup.operations.verify import backup_manifest_key
from openwatch_backup.service import BackupService
from openwatch_backup.service.config import require_passphrase

RunId = Annotated[uuid.UUID, Path(description="A run's id")]
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No or bad credentials"},
    403: {"model": ErrorOut, "description": "Not allowed"},
    404: {"model": ErrorOut, "description": "No such run (or its artifact is gone)"},
    422: {"model": ValidationErrorOut, "description": "A bad value"},
    503: {"model": ErrorOut, "description": "The database or the catalog is unavailable"},
}
_CHUNK = 1 << 20


def _out(run: Any, copies: list[BackupCopy] | None = None) -> RunOut:
    out = RunOut.model_validate(run_to_dict(run, [copy_to_dict(c) for c in copies or []]))
    out.summary = summary_of(run)
    return out


def _rows(service: BackupService, runs: list[Any]) -> Callable[[Any, list[BackupCopy] | None], RunOut]:
    """How a list shows a run: `details` left out (GET runs/{id} has them), its summary with retention's word."""
    retention = retention_map(service, runs)

    def row(run: Any, copies: list[BackupCopy] | None = None) -> RunOut:
        out = RunOut.model_validate({**run_to_dict(run, [copy_to_dict(c) for c in copies or []]), "details": None})
        out.summary = summary_of(run, retention)
        return out

    return row


def _with_copies(service: BackupService, runs: list[Any]) -> list[RunOut]:
    """The runs with their copies: one query for the whole page."""
    copies = service.copies.of_runs(run.id for run in runs)
    row = _rows(service, runs)
    return [row(run, copies.get(run.id)) for run in runs]


def conflict(what: str, active: Any | None) -> JSONResponse:
    """409 with the run already under way, so the caller can follow it instead of starting another."""
    detail = f"{what} is already {active.status} (run {active.id})" if active else f"{what} is already under way"
    body = ErrorOut(detail=detail, code="busy", run=_out(active) if active else None)
    return JSONResponse(body.model_dump(mode="json"), status_code=status.HTTP_409_CONFLICT)


def _encode_cursor(created_at: datetime, run_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{run_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(run_id)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(422, detail="invalid cursor; pass next_cursor as it was given") from None


def runs_router(api: ApiContext) -> APIRouter:
    # Every route needs a caller (401/403 otherwise); mutating routes also take the principal to audit it.
    user = Depends(api.principal)
    router = APIRouter(tags=["Backups"], dependencies=[user], responses=COMMON_RESPONSES,
                       route_class=CompressedRoute)

    @router.get("/runs", response_model=RunPage, summary="List runs, newest first (summaries: details are null, "
                "GET runs/{id} has them)")
    def list_runs(limit: Annotated[int, Query(ge=1, le=200)] = 50,
                  cursor: Annotated[str | None, Query(max_length=200)] = None,
                  kind: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z]+$")] = None,
                  run_status: Annotated[str | None, Query(alias="status", max_length=16, pattern=r"^[a-z]+$")] = None,
                  parent: Annotated[uuid.UUID | None, Query(description="Only the runs of this parent: a backup's "
                                                            "verifies and restores, a set's members")] = None,
                  group: Annotated[Literal["sets"] | None, Query(
                      description="sets: a nightly set is one item with its member backups in `members`; the members "
                      "are not listed on their own (kind and status filter the top-level items)")] = None,
                  ) -> RunPage:
        before = _decode_cursor(cursor) if cursor else None
        with translated():
            service = api.service()
            if parent is not None:
                runs = service.recorder.list(limit=limit + 1, before=before, kind=kind, status=run_status,
                                             parent_id=parent)
                more = len(runs) > limit
                runs = runs[:limit]
                items = _with_copies(service, runs)
            elif group == "sets":
                runs, more = top_level_page(service, limit=limit, before=before, kind=kind, status=run_status)
                items = with_members(service, runs, None, lambda found: _rows(service, found))
            else:
                runs = service.recorder.list(limit=limit + 1, before=before, kind=kind, status=run_status)
                more = len(runs) > limit
                runs = runs[:limit]
                items = _with_copies(service, runs)
        following = _encode_cursor(runs[-1].created_at, runs[-1].id) if more and runs else None
        return RunPage(items=items, next_cursor=following)

    @router.get("/runs/{run_id}", response_model=RunOut, summary="One run with its details (a set with its members)")
    def get_run(run_id: RunId) -> RunOut:
        with translated():
            service = api.service()
            return with_members(service, [service.get_run(str(run_id))], _out)[0]

    @router.get("/runs/{run_id}/log", response_model=LogOut, summary="The tail of a run's log")
    def run_log(run_id: RunId, lines: Annotated[int, Query(ge=1, le=200)] = 50) -> LogOut:
        with translated():
            run = api.service().get_run(str(run_id))
        return LogOut(run_id=str(run.id), lines=[str(line) for line in run.details.get("log", [])][-lines:])

    @router.post("/runs", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut,
                 responses={409: {"model": ErrorOut, "description": "A backup is already queued or running"}},
                 summary="Back up now")
    def start_backup(body: BackupIn, request: Request, principal: Principal = user) -> Any:
        with translated():
            service = api.service()
            backup_request = service.build_request(body.kind, body.compression, body.tables)
            config = backup_request.kind is BackupKind.CONFIG
            if config:
                require_passphrase(service)  # as POST config/backup: refused before anything is queued
            run, created = service.request_backup_once(backup_request, Trigger.API, requested_by=principal.name)
            api.auth.audit(request, principal, "backup_requested", {"run_id": str(run.id), "created": created})
            if not created:
                return conflict("a config backup" if config else "a backup", run)
            api.submit(run.kind, run.id)
            return _out(run)

    @router.post("/runs/{run_id}/verify", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut,
                 summary="Verify a backup (quick, or deep: restore into a scratch database)")
    def start_verify(run_id: RunId, body: VerifyIn, request: Request, principal: Principal = user) -> RunOut:
        with translated():
            service = api.service()
            verify_id = service.request_verify(service.get_run(str(run_id)), deep=body.deep, trigger=Trigger.API,
                                               requested_by=principal.name)
            api.auth.audit(request, principal, "verify_requested", {"run_id": str(verify_id), "backup": str(run_id)})
            api.submit("verify", verify_id)
            return _out(service.get_run(str(verify_id)))

    @router.get("/runs/{run_id}/download", summary="Download a backup's artifact (streamed)",
                response_class=StreamingResponse, responses={200: {"content": {"application/octet-stream": {}}}})
    def download(run_id: RunId, request: Request, principal: Principal = user) -> StreamingResponse:
        with translated():
            service = api.service()
            run = service.get_run(str(run_id))
            key, _ = backup_manifest_key(run)
        name = str(run.details.get("artifact", ""))
        # The whole recorded name must be a plain file name: a catalog row is not trusted to build a path.
        if not is_safe_name(name) or run.pruned_at is not None or not service.storage.exists(key):
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"the artifact of run {run_id} is not in storage")
        api.auth.audit(request, principal, "download", {"run_id": str(run_id), "artifact": name})

        def chunks() -> Iterator[bytes]:
            with service.storage.open_reader(key) as reader:
                while chunk := reader.read(_CHUNK):
                    yield chunk

        return StreamingResponse(chunks(), media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(service.storage.size(key)),
            "X-Checksum-SHA256": str(run.sha256)})

    @router.get("/runs/{run_id}/restore/check", response_model=RestoreCheckOut,
                summary="What a restore of this backup needs, checked now (nothing is changed or queued)")
    def check_restore(run_id: RunId, mode: Literal["into", "replace"] = "into",
                      into: Annotated[str | None, Query(max_length=100, description="The new database's name "
                                                        "(mode into)")] = None,
                      terminate_connections: Annotated[bool, Query(description="Mode replace: sessions on the live "
                                                                   "database would be disconnected")] = False,
                      ) -> RestoreCheckOut:
        with translated():
            service = api.service()
            checks = restore_checks(service, service.get_run(str(run_id)), into=into if mode == "into" else None,
                                    terminate=terminate_connections)
            if mode == "into" and not into:
                checks = [c for c in checks if c.name != "target"]  # no name yet: the wizard asks for it next
        return RestoreCheckOut(backup_id=str(run_id), mode=mode, into=into if mode == "into" else None,
                               live_database=service.target.dbname, ok=all(c.ok for c in checks),
                               checks=[RestoreCheckItemOut(name=c.name, ok=c.ok, detail=c.detail) for c in checks])

    @router.post("/runs/{run_id}/restore", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut,
                 responses={403: {"model": ErrorOut}, 409: {"model": ErrorOut}},
                 summary="Restore a backup (only when restores are allowed in the settings)")
    def start_restore(run_id: RunId, body: RestoreIn, request: Request,
                      principal: Principal = user) -> RunOut:
        with translated():
            service = api.service()
            if not service.settings_store.get(ALLOW_RESTORE_KEY, False):
                raise HTTPException(status.HTTP_403_FORBIDDEN, detail="restores through the API are off; turn on "
                                    "\"allow restore\" in the backup settings first")
            live = service.target.dbname
            if body.into is None and body.confirm != live:
                raise HTTPException(status.HTTP_409_CONFLICT, detail=f"type the database name ({live}) to confirm")
            refusal = first_refusal(restore_checks(service, service.get_run(str(run_id)), into=body.into,
                                                   terminate=body.terminate_connections))
            if refusal is not None:  # what the background restore would refuse minutes later, refused now
                raise HTTPException(status.HTTP_409_CONFLICT, detail=refusal.detail,
                                    headers={"X-Error-Code": f"restore_{refusal.name}"})
            restore = RestoreRequest(into=body.into, confirm=body.confirm, safety_backup=body.safety_backup,
                                     terminate_connections=body.terminate_connections)
            restore_id = service.request_restore(str(run_id), restore, trigger=Trigger.API,
                                                 requested_by=principal.name)
            api.auth.audit(request, principal, "restore_requested", {"run_id": str(restore_id),
                                                                     "backup": str(run_id), "into": body.into})
            api.submit("restore", restore_id)
            return _out(service.get_run(str(restore_id)))

    return router


__all__ = ["ALLOW_RESTORE_KEY", "runs_router"]
