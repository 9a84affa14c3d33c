"""Off-site endpoints: POST offsite/test, the page's "Test connection" (the CLI's `offsite test`).

The probe puts, heads, gets and deletes a small object under our prefix and says which step failed. Its answer
names the bucket's address and the failure's one line, never a credential (those are boto3's, from its chain).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from openwatch_backup.api.auth import Principal
from openwatch_backup.api.compressed import CompressedRoute
from openwatch_backup.api.context import ApiContext
from openwatch_backup.api.errors import translated
from openwatch_backup.api.runs import COMMON_RESPONSES
from openwatch_backup.api.schemas import ErrorOut, OffsiteOut, OffsiteTestOut, ProbeStepOut
from openwatch_backup.service import BackupService
from openwatch_backup.storage.probe import probe


def offsite_out(service: BackupService) -> OffsiteOut:
    settings = service.settings
    if not settings.s3_bucket:
        return OffsiteOut(configured=False)
    return OffsiteOut(configured=True, bucket=settings.s3_bucket, prefix=settings.s3_prefix,
                      region=settings.s3_region, endpoint=settings.s3_endpoint_url)


def offsite_router(api: ApiContext) -> APIRouter:
    user = Depends(api.principal)
    router = APIRouter(tags=["Backups"], dependencies=[user], responses=COMMON_RESPONSES,
                       route_class=CompressedRoute)

    @router.post("/offsite/test", response_model=OffsiteTestOut,
                 responses={422: {"model": ErrorOut, "description": "Off-site storage is not configured"}},
                 summary="Test the off-site connection: put, head, get and delete a probe object")
    def test_offsite(request: Request, principal: Principal = user) -> OffsiteTestOut:
        with translated():
            result = probe(api.service().require_offsite())
        failed = result.failed
        api.auth.audit(request, principal, "offsite_tested", {"ok": result.ok,
                                                              "failed_step": failed.name if failed else None})
        return OffsiteTestOut(ok=result.ok, location=result.location, summary=result.summary(),
                              steps=[ProbeStepOut(name=s.name, ok=s.ok, seconds=round(s.seconds, 3), code=s.code,
                                                  error=s.message) for s in result.steps])

    return router
