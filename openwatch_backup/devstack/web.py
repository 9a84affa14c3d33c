"""The embedded demo's web app: FastAPI with the backup router mounted where OpenWatch mounts it.

Standalone auth: the bearer token in OPENWATCH_BACKUP_API_TOKEN (the demo generates and prints one).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from openwatch_backup.api import backups_router
from openwatch_backup.devstack.celery_app import celery_app

PREFIX = "/api/system/backups"

app = FastAPI(title="OpenWatch backups (embedded demo)")
app.include_router(backups_router(celery_app=celery_app), prefix=PREFIX)


@app.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/ui")


@app.get("/health", include_in_schema=False)
def health() -> dict[str, str]:
    return {"status": "healthy"}
