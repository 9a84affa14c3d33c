"""What every endpoint shares: one BackupService (built on first use, never at import), auth, task submission."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from fastapi import Request

from openwatch_backup.api.auth import Auth, Principal
from openwatch_backup.service import BackupService

Submit = Callable[[str, uuid.UUID], None]


class ApiContext:
    def __init__(self, auth: Auth, service_factory: Callable[[], BackupService], submit: Submit) -> None:
        self.auth = auth
        self._factory = service_factory
        self._submit = submit
        self._service: BackupService | None = None
        self._lock = threading.Lock()

    def service(self) -> BackupService:
        """One service (one connection pool) for the process; endpoints run in FastAPI's thread pool."""
        with self._lock:
            if self._service is None:
                self._service = self._factory()
            return self._service

    def principal(self, request: Request) -> Principal:
        return self.auth.authenticate(request)

    def submit(self, kind: str, run_id: uuid.UUID) -> None:
        self._submit(kind, run_id)
