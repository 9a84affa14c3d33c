"""Config bundle endpoints: GET config (the versions), POST config/backup ("Back up config now") and
GET config/{run_id}/download (the stored bundle as it is, still encrypted).

No answer carries the passphrase or a value from the environment: versions show the key id derived from the
passphrase, the settings show only which setting holds it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import StreamingResponse

from openwatch_backup.api.auth import Principal
from openwatch_backup.api.compressed import CompressedRoute
from openwatch_backup.api.context import ApiContext
from openwatch_backup.api.errors import translated
from openwatch_backup.api.runs import COMMON_RESPONSES, RunId, _out, conflict
from openwatch_backup.api.schemas import (
    CertificateOut,
    ConfigOut,
    ConfigStateOut,
    ConfigVersionOut,
    CopyOut,
    ErrorOut,
    RunOut,
    VerifyStateOut,
)
from openwatch_backup.catalog.copies import copy_to_dict
from openwatch_backup.core.kinds import BackupKind, Trigger
from openwatch_backup.errors import ConfigError
from openwatch_backup.service import BackupService
from openwatch_backup.service.config import (
    ConfigVersion,
    active_config_backup,
    bundle_download,
    config_versions,
    passphrase_state,
    record_download,
    require_passphrase,
)


def config_state(service: BackupService) -> ConfigStateOut:
    settings = service.settings
    state = passphrase_state(service)
    try:
        paths = [str(path) for path in settings.config_inputs()]
    except ConfigError:
        paths = []
    return ConfigStateOut(passphrase_set=state.set, passphrase_source=state.source, passphrase_problem=state.problem,
                          passphrase_warnings=list(state.warnings), paths=paths,
                          env_snapshot=settings.config_env_snapshot, cert_warn_days=settings.cert_warn_days,
                          versions_kept=settings.config_versions)


def _version_out(version: ConfigVersion, now: datetime, warn_days: int) -> ConfigVersionOut:
    run, details = version.run, version.run.details
    certificates = [CertificateOut(**cert, expiring=cert["days_left"] is not None and cert["days_left"] < warn_days)
                    for cert in version.certificates(now)]
    verify = version.verify
    members = details.get("members")
    return ConfigVersionOut(
        run_id=str(run.id), artifact=details.get("artifact"), trigger=run.trigger, requested_by=run.requested_by,
        created_at=run.created_at, finished_at=run.finished_at, size_bytes=run.size_bytes, sha256=run.sha256,
        key_id=details.get("key_id"), members=members if isinstance(members, int) else None,
        paths=[str(p) for p in details.get("paths") or []], env_snapshot=details.get("env_snapshot"),
        certificates=certificates,
        verify=VerifyStateOut(state=verify.state, run_id=verify.run_id, at=verify.at, reason=verify.reason,
                              message=verify.message) if verify else None,
        copies=[CopyOut.model_validate(copy_to_dict(c)) for c in version.copies], present=version.present)


def config_router(api: ApiContext) -> APIRouter:
    user = Depends(api.principal)
    router = APIRouter(tags=["Backups"], dependencies=[user], responses=COMMON_RESPONSES,
                       route_class=CompressedRoute)

    @router.get("/config", response_model=ConfigOut, summary="Config bundles as versions, newest first, and "
                                                            "whether a passphrase is set")
    def list_config() -> ConfigOut:
        with translated():
            service = api.service()
            state = config_state(service)
            now = datetime.now(UTC)
            versions = [_version_out(v, now, service.settings.cert_warn_days) for v in config_versions(service)]
            active = active_config_backup(service)
        return ConfigOut(**state.model_dump(), active=_out(active) if active else None, versions=versions)

    @router.post("/config/backup", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut,
                 responses={409: {"model": ErrorOut, "description": "A config backup is already queued or running"},
                            422: {"model": ErrorOut, "description": "No passphrase is set"}},
                 summary="Back up config now: .env, certificates and keys into an encrypted bundle")
    def start_config_backup(request: Request, principal: Principal = user) -> Any:
        with translated():
            service = api.service()
            require_passphrase(service)  # refused here, before anything is queued: the worker would only fail it
            backup_request = service.build_request(BackupKind.CONFIG)
            run, created = service.request_backup_once(backup_request, Trigger.API, requested_by=principal.name)
            api.auth.audit(request, principal, "config_backup_requested", {"run_id": str(run.id),
                                                                           "created": created})
            if not created:
                return conflict("a config backup", run)
            api.submit(run.kind, run.id)
            return _out(run)

    @router.get("/config/{run_id}/download", summary="Download a config bundle as stored (still encrypted)",
                response_class=StreamingResponse, responses={200: {"content": {"application/octet-stream": {}}}})
    def download_config(run_id: RunId, request: Request, principal: Principal = user) -> StreamingResponse:
        with translated():
            service = api.service()
            bundle = bundle_download(service, str(run_id))
            record_download(service, bundle, principal.name)
        api.auth.audit(request, principal, "config_download", {"run_id": str(run_id), "artifact": bundle.name,
                                                               "copy": bundle.copy})
        return StreamingResponse(bundle.chunks(), media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{bundle.name}"', "Content-Length": str(bundle.size),
            "X-Checksum-SHA256": str(bundle.run.sha256)})

    return router
