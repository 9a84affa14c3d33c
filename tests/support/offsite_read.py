"""A restore lab whose backups also live in moto's S3, and ways to lose or damage one copy.

Backups reach the bucket through the real `offsite` path (service.copy_offsite): the artifact streamed up,
the manifest beside it, the S3 copy row verified.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from openwatch_backup.catalog.models import BackupCopy, BackupRun
from openwatch_backup.cli import app
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.naming import manifest_name
from openwatch_backup.devstack import PostgresHandle
from tests.support.moto_server import PREFIX, raw_client
from tests.support.offsite import s3_env, s3_overrides
from tests.support.restore_helpers import (
    CANARY,
    CATALOG,
    DatabaseFactory,
    Lab,
    ServiceFactory,
    open_lab,
    track_leftovers,
)

# Catalog tables: their rows describe backups and change with every run, they are not OpenWatch data.
SKIP = (CATALOG, "public.backup_copies")
SKIP_CANARY = (*SKIP, CANARY)


def copy_offsite(lab: Lab, backup: BackupRun) -> None:
    run = lab.service.copy_offsite(str(backup.id))
    assert run.status == "succeeded", run.error
    row = copy_row(lab, backup, CopyStorage.S3)
    assert row is not None
    assert row.state == "verified"


def copy_row(lab: Lab, backup: BackupRun, storage: CopyStorage) -> BackupCopy | None:
    return lab.service.copies.get(backup.id, storage)


def local_paths(lab: Lab, backup: BackupRun) -> tuple[Path, Path]:
    artifact = str(backup.details["artifact"])
    return lab.backup_dir / "postgres" / artifact, lab.backup_dir / "postgres" / manifest_name(artifact)


def lose_local(lab: Lab, backup: BackupRun) -> None:
    """The local file and its manifest deleted by hand: the catalog still thinks they are there."""
    for path in local_paths(lab, backup):
        path.unlink()


def files_in(folder: Path) -> list[str]:
    """Every file below the backup folder: a read from S3 must leave none (no temporary copy)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def object_key(backup: BackupRun) -> str:
    return f"{PREFIX}/postgres/{backup.details['artifact']}"


def remote_bytes(endpoint: str, bucket: str, backup: BackupRun) -> bytes:
    body: bytes = raw_client(endpoint).get_object(Bucket=bucket, Key=object_key(backup))["Body"].read()
    return body


def replace_remote(endpoint: str, bucket: str, backup: BackupRun, body: bytes) -> None:
    """Put other bytes under the object's key, keeping our sha256 metadata: only a re-read can tell."""
    raw_client(endpoint).put_object(Bucket=bucket, Key=object_key(backup), Body=body,
                                    Metadata={"sha256": str(backup.sha256)})


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lab_env(lab: Lab, endpoint: str | None = None, bucket: str | None = None) -> dict[str, Any]:
    """The lab's settings as the CLI's environment (CliRunner sets them for one call)."""
    env = {"OPENWATCH_DATABASE_URL": lab.url, "OPENWATCH_BACKUP_DIR": str(lab.backup_dir),
           "OPENWATCH_BACKUP_OPENWATCH_BACKEND_DIR": str(lab.backup_dir.parent / "no-backend")}
    if endpoint is not None and bucket is not None:
        env.update(s3_env(endpoint, bucket))
    return env


def invoke(env: dict[str, Any], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture(name="s3lab")
def s3lab_fixture(pg: PostgresHandle, openwatch_db: str, make_database: DatabaseFactory, make_service: ServiceFactory,
                  tmp_path: Path, moto_endpoint: str, bucket: str) -> Iterator[Lab]:
    """The restore tests' lab with off-site copies on, against the session's moto."""
    bench = open_lab(pg, openwatch_db, tmp_path / "backups", make_service, **s3_overrides(moto_endpoint, bucket))
    yield bench
    track_leftovers(bench, make_database)
