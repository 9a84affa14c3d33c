"""Shared by the prune tests: a service over a fresh sample database, backups aged by editing the catalog's
recorded times, and the exact listing of the backup directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.service import BackupService


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def sql(url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)


def age(url: str, run: BackupRun, days: float) -> None:
    """Move a run's recorded creation time back (order and age come from the catalog, never from names)."""
    sql(url, "UPDATE backup_runs SET created_at = now() - make_interval(secs => %s) WHERE id = %s",
        days * 86400, run.id)


def decisions(run: BackupRun) -> dict[str, tuple[str, str]]:
    return {d["run"]: (d["action"], d["reason"]) for d in run.details["plan"]}


@dataclass
class Env:
    url: str
    dir: Path
    service: BackupService

    def backup(self, kind: BackupKind = BackupKind.FULL, *, verify: bool = True, days: float = 0) -> BackupRun:
        run = self.service.backup(self.service.build_request(kind, Compression.ZSTD))
        assert run.status == "succeeded"
        if verify:
            checked, _ = self.service.verify(str(run.id))
            assert checked.status == "succeeded"
        if days:
            age(self.url, run, days)
        return self.service.get_run(str(run.id))

    def run(self, run: BackupRun) -> BackupRun:
        return self.service.get_run(str(run.id))

    def keys(self, run: BackupRun) -> list[str]:
        artifact = f"postgres/{run.details['artifact']}"
        return [artifact, artifact + ".manifest.json"]


def make_env(backup_env: Any, make_service: Callable[..., BackupService], monkeypatch: pytest.MonkeyPatch,
             **settings: Any) -> Env:
    """backup_env's database and folder, no other OPENWATCH_* or PG* variable, the plugin's tables."""
    for name in list(os.environ):
        if name.startswith("PG") or (name.startswith("OPENWATCH_") and name not in (
                "OPENWATCH_DATABASE_URL", "OPENWATCH_BACKUP_DIR")):
            monkeypatch.delenv(name)
    return Env(backup_env.url, backup_env.dir, make_service(backup_env.url, backup_env.dir, **settings))
