"""Recreate catalog rows from the manifests in storage (after a restore replaced the catalog)."""

from __future__ import annotations

import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects.postgresql import insert

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import catalog_errors
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import MANIFEST_SUFFIX
from openwatch_backup.errors import ManifestError
from openwatch_backup.operations.backup import POSTGRES_PREFIX
from openwatch_backup.storage.base import Storage


@dataclass
class RebuildReport:
    inserted: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # manifest key -> reason


def rebuild_catalog(storage: Storage, engine: Engine, database: str) -> RebuildReport:
    report = RebuildReport()
    table = typing.cast(Table, BackupRun.__table__)
    with catalog_errors(database), engine.connect() as conn:
        pruned = {str(i) for i in conn.execute(select(table.c.id).where(table.c.pruned_at.is_not(None))).scalars()}
    for obj in storage.list(POSTGRES_PREFIX):
        if not obj.key.endswith(MANIFEST_SUFFIX):
            continue
        try:
            manifest = Manifest.from_json(storage.read_bytes(obj.key), source=obj.key)
        except ManifestError as exc:
            report.skipped[obj.key] = exc.message
            continue
        if manifest.run_id in pruned:
            report.skipped[obj.key] = "its backup was pruned by retention; the next prune deletes this file"
            continue
        artifact_key = f"{POSTGRES_PREFIX}/{manifest.artifact}"
        if not storage.exists(artifact_key):
            report.skipped[obj.key] = f"its artifact {manifest.artifact} is missing"
            continue
        if storage.size(artifact_key) != manifest.size_bytes:
            report.skipped[obj.key] = (f"its artifact {manifest.artifact} is {storage.size(artifact_key)} bytes, "
                                       f"the manifest says {manifest.size_bytes}")
            continue
        row = {
            "id": uuid.UUID(manifest.run_id), "kind": manifest.kind, "status": "succeeded",
            "trigger": manifest.trigger if manifest.trigger in ("cli", "api", "schedule") else "cli",
            "phase": "done", "created_at": datetime.fromisoformat(manifest.created_at),
            "started_at": datetime.fromisoformat(manifest.created_at),
            "finished_at": datetime.fromisoformat(manifest.finished_at),
            "bytes_done": manifest.size_bytes, "artifact_location": storage.location(artifact_key),
            "size_bytes": manifest.size_bytes, "sha256": manifest.sha256,
            "details": {"rebuilt_from_manifest": True, "artifact": manifest.artifact, "format": manifest.format,
                        "wrapper": manifest.wrapper, "server_version": manifest.server_version,
                        "pg_dump_version": manifest.pg_dump_version, "database": manifest.database,
                        "openwatch_alembic_head": manifest.openwatch_alembic_head,
                        "row_counts": manifest.row_counts, "canary_nonce": manifest.canary_nonce,
                        "canary_included": manifest.canary_included, "request": {
                            "kind": manifest.kind, "compression": manifest.compression, "tables": manifest.tables}},
        }
        with catalog_errors(database), engine.begin() as conn:
            # RETURNING, not rowcount: psycopg 3 reports -1 for INSERT ... ON CONFLICT DO NOTHING.
            inserted = conn.execute(insert(table).values(**row).on_conflict_do_nothing(index_elements=["id"])
                                    .returning(table.c.id)).first()
        (report.inserted if inserted is not None else report.already_present).append(manifest.run_id)
    return report
