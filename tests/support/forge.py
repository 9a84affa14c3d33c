"""Damage and forge backups the way a failing disk, a careless operator or an attacker would.

Everything here changes real files in the backup directory and real rows in the catalog (plain SQL on
the service's own database); nothing of the package is patched.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import manifest_name
from openwatch_backup.service import BackupService
from openwatch_backup.source.scratch import run_prefix_of


def artifact_path(service: BackupService, run: BackupRun) -> Path:
    return service.settings.dir / "postgres" / str(run.details["artifact"])


def manifest_path(service: BackupService, run: BackupRun) -> Path:
    return service.settings.dir / "postgres" / manifest_name(str(run.details["artifact"]))


def read_manifest(service: BackupService, run: BackupRun) -> Manifest:
    return Manifest.from_json(manifest_path(service, run).read_bytes())


def edit_manifest_json(service: BackupService, run: BackupRun, **changes: Any) -> None:
    """Change fields in the manifest's JSON and nothing else (the catalog still has the old digest)."""
    path = manifest_path(service, run)
    data = json.loads(path.read_bytes())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2) + "\n")


def update_catalog(service: BackupService, run: BackupRun, **columns: Any) -> None:
    """UPDATE backup_runs SET <columns> WHERE id = run.id; a `details` value is merged into the JSON."""
    assignments, values = [], []
    for column, value in columns.items():
        if column == "details":
            assignments.append("details = details || %s")
            values.append(Jsonb(value))
        else:
            assignments.append(f"{column} = %s")
            values.append(value)
    with psycopg.connect(service.settings.database_url) as conn:
        updated = conn.execute(f"UPDATE backup_runs SET {', '.join(assignments)} WHERE id = %s",
                               [*values, run.id]).rowcount
    assert updated == 1, f"run {run.id} is not in the catalog"


def forge_manifest(service: BackupService, run: BackupRun, **changes: Any) -> BackupRun:
    """Rewrite the manifest with `changes` and make the catalog agree with it everywhere (size, sha256 and
    the manifest's own digest), so that every consistency check between the two passes. The updated run."""
    manifest = read_manifest(service, run).model_copy(update=changes)
    raw = manifest.to_json()
    manifest_path(service, run).write_bytes(raw)
    update_catalog(service, run, sha256=manifest.sha256, size_bytes=manifest.size_bytes,
                   details={"manifest_sha256": hashlib.sha256(raw).hexdigest()})
    return service.get_run(str(run.id))


def replace_artifact(service: BackupService, run: BackupRun, data: bytes, **changes: Any) -> BackupRun:
    """Put `data` in place of the run's artifact and forge manifest and catalog to describe it."""
    artifact_path(service, run).write_bytes(data)
    return forge_manifest(service, run, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), **changes)


def scratch_databases(url: str) -> list[str]:
    """Every `owbscratch_*` database on the server of `url`."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'owbscratch\\_%' ORDER BY 1")
        return [str(r[0]) for r in rows]


def scratch_databases_of(service: BackupService) -> list[str]:
    """The `owbscratch_*` databases that belong to a run of this service's catalog.

    Other test sessions may share the server (and their scratch databases come and go), so a test asserts
    on the ones its own runs could have made rather than on every scratch database of the server.
    """
    with psycopg.connect(service.settings.database_url) as conn:
        prefixes = {r[0].hex[:12] for r in conn.execute("SELECT id FROM backup_runs")}
    return [name for name in scratch_databases(service.settings.database_url) if run_prefix_of(name) in prefixes]


def database_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


# Two package bugs (pinned by strict-xfail tests in tests/test_drill_check.py) make CPython warn when a
# LocalFeeder is collected: its stdout/stderr pipes are never closed, and quick verify of an artifact that
# does not decompress never finishes its `pg_restore --list`. Test modules that verify add these filters,
# or pytest's filterwarnings=error fails them on the leak rather than on what they check.


def plant_manifest(service: BackupService, run: BackupRun, file_name: str, **changes: Any) -> Path:
    """Write a copy of the run's manifest JSON, with `changes`, as postgres/<file_name> (beside, or in place of,
    the real one), the way an attacker or a careless `cp` would. Its artifact is still the run's file."""
    data = json.loads(manifest_path(service, run).read_bytes())
    data.update(changes)
    path = service.settings.dir / "postgres" / file_name
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
