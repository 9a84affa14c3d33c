"""The backend API and the admin page, as one FastAPI router OpenWatch mounts under /api/system/backups.

    from openwatch_backup.api import backups_router
    router.include_router(backups_router(auth=..., celery_app=celery_app), prefix="/system/backups")

Without `auth` the router expects a bearer token from OPENWATCH_BACKUP_API_TOKEN (standalone use);
README shows OpenWatch's adapter (its users, the system:maintenance permission, its audit log).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from openwatch_backup.api.admin import admin_router
from openwatch_backup.api.auth import Auth, OpenWatchAuth, Principal, TokenAuth
from openwatch_backup.api.config import config_router
from openwatch_backup.api.context import ApiContext, Submit
from openwatch_backup.api.offsite import offsite_router
from openwatch_backup.api.page import page_router
from openwatch_backup.api.runs import runs_router
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

__all__ = ["Auth", "OpenWatchAuth", "Principal", "TokenAuth", "backups_router"]


def backups_router(*, auth: Auth | None = None, celery_app: Any = None, submit: Submit | None = None,
                   service_factory: Callable[[], BackupService] | None = None) -> APIRouter:
    """The router: runs, status, settings, prune, restore, download, the off-site test, config bundles, and the page
    at /ui.

    Runs the API starts go to OpenWatch's worker through `celery_app` (or any `submit(kind, run_id)`).
    """
    context: ApiContext

    def via_celery(kind: str, run_id: uuid.UUID) -> None:
        from openwatch_backup.tasks import submit as submit_task

        submit_task(celery_app, kind, run_id, context.service())

    if submit is None and celery_app is None:
        raise ValueError("backups_router needs celery_app= (OpenWatch's celery_app) or submit=")
    context = ApiContext(auth or TokenAuth(), service_factory or (lambda: BackupService(load_settings())),
                         submit or via_celery)
    router = APIRouter()
    router.include_router(runs_router(context))
    router.include_router(admin_router(context))
    router.include_router(offsite_router(context))
    router.include_router(config_router(context))
    router.include_router(page_router(context.auth))
    return router
