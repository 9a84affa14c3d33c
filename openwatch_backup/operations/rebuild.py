"""Recreate catalog rows from the manifests in storage (after a restore replaced the catalog).

A manifest is read from storage, where anyone who can write a file can put one, so each is checked before it
becomes a row, and one that fails a check is reported and skipped while the rest of the rebuild goes on:
  - it parses, with a version this package knows, a plain artifact file name, a UUID run id, ISO times;
  - it is stored beside its artifact (`<artifact>.manifest.json`), as every backup writes it;
  - its artifact belongs to no other run, in the catalog or earlier in this rebuild: two runs naming one file
    would let prune delete a kept backup's file along with the other run;
  - a run already in the catalog names the same artifact there;
  - it is a backup of the catalog's own database (`any_database` lifts this one);
  - its artifact is there, with the size the manifest says.
"""

from __future__ import annotations

import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import catalog_errors
from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import MANIFEST_SUFFIX, POSTGRES_PREFIX, artifact_key, manifest_key
from openwatch_backup.errors import ManifestError, StorageError
from openwatch_backup.storage.base import Storage

BACKUP_KINDS = frozenset(k.value for k in BackupKind)
TRIGGERS = ("cli", "api", "schedule")


@dataclass
class RebuildReport:
    inserted: list[str] = field(default_factory=list)  # run ids
    already_present: list[str] = field(default_factory=list)  # run ids
    pruned: list[str] = field(default_factory=list)  # manifest keys of pruned backups: the next prune deletes them
    skipped: dict[str, str] = field(default_factory=dict)  # manifest key -> why it was refused (a problem)


class _Refused(Exception):
    """This manifest does not become a row; the message says why."""


@dataclass
class _Catalog:
    artifacts: dict[str, str | None]  # run id -> its artifact
    pruned: set[str]  # run ids
    owners: dict[str, str]  # artifact -> the unpruned run that names it


def _load(engine: Engine, database: str) -> _Catalog:
    table = typing.cast(Table, BackupRun.__table__)
    query = select(table.c.id, table.c.kind, table.c.details["artifact"].astext, table.c.pruned_at.is_not(None))
    with catalog_errors(database), engine.connect() as conn:
        rows = [(str(i), k, a, bool(p)) for i, k, a, p in conn.execute(query).all()]
    return _Catalog(artifacts={i: a for i, _, a, _ in rows}, pruned={i for i, _, _, p in rows if p},
                    owners={a: i for i, k, a, p in rows if a and not p and k in BACKUP_KINDS})


def _read(storage: Storage, key: str) -> Manifest:
    manifest = Manifest.from_json(storage.read_bytes(key), source=key)
    if key != manifest_key(manifest.artifact):
        raise _Refused(f"it names the artifact {manifest.artifact} but is not stored beside it (as "
                       f"{manifest_key(manifest.artifact)}): openwatch-backup did not write it there")
    return manifest


def _check(storage: Storage, manifest: Manifest, catalog: _Catalog, source_database: str,
           any_database: bool) -> None:
    """Raises _Refused (or a storage error) unless the manifest of a run not in the catalog may become a row."""
    if manifest.kind not in BACKUP_KINDS:
        raise _Refused(f"its kind {manifest.kind!r} is not a database backup kind ({', '.join(sorted(BACKUP_KINDS))})")
    owner = catalog.owners.get(manifest.artifact)
    if owner is not None and owner != manifest.run_id:
        raise _Refused(f"its artifact {manifest.artifact} belongs to run {owner} already: two runs naming one file "
                       "would let prune delete a kept backup; remove the manifest that is not the backup's own")
    if manifest.database != source_database and not any_database:
        raise _Refused(f"it is a backup of database {manifest.database!r}, not of {source_database!r}; "
                       "`openwatch-backup catalog rebuild --any-database` adds it anyway")
    artifact = artifact_key(manifest.artifact)
    if not storage.exists(artifact):
        raise _Refused(f"its artifact {manifest.artifact} is missing")
    if storage.size(artifact) != manifest.size_bytes:
        raise _Refused(f"its artifact {manifest.artifact} is {storage.size(artifact)} bytes, "
                       f"the manifest says {manifest.size_bytes}")


def _row(storage: Storage, manifest: Manifest) -> dict[str, Any]:
    created = datetime.fromisoformat(manifest.created_at)
    return {
        "id": uuid.UUID(manifest.run_id), "kind": manifest.kind, "status": "succeeded",
        "trigger": manifest.trigger if manifest.trigger in TRIGGERS else "cli",
        "phase": "done", "created_at": created, "started_at": created,
        "finished_at": datetime.fromisoformat(manifest.finished_at),
        "bytes_done": manifest.size_bytes, "artifact_location": storage.location(artifact_key(manifest.artifact)),
        "size_bytes": manifest.size_bytes, "sha256": manifest.sha256,
        "details": {"rebuilt_from_manifest": True, "artifact": manifest.artifact, "format": manifest.format,
                    "wrapper": manifest.wrapper, "server_version": manifest.server_version,
                    "pg_dump_version": manifest.pg_dump_version, "database": manifest.database,
                    "openwatch_alembic_head": manifest.openwatch_alembic_head,
                    "row_counts": manifest.row_counts, "canary_nonce": manifest.canary_nonce,
                    "canary_included": manifest.canary_included, "request": {
                        "kind": manifest.kind, "compression": manifest.compression, "tables": manifest.tables}},
    }


def rebuild_catalog(storage: Storage, engine: Engine, database: str, source_database: str, *,
                    any_database: bool = False) -> RebuildReport:
    """Add a row for every acceptable manifest; `source_database` is the catalog's own database name (a manifest
    records the database it backs up). Catalog errors stop the rebuild; a bad manifest only skips itself."""
    report = RebuildReport()
    catalog = _load(engine, database)
    table = typing.cast(Table, BackupRun.__table__)
    keys = sorted(o.key for o in storage.list(POSTGRES_PREFIX) if o.key.endswith(MANIFEST_SUFFIX))
    for key in keys:
        try:
            manifest = _read(storage, key)
            if manifest.run_id in catalog.pruned:
                report.pruned.append(key)
                continue
            if manifest.run_id in catalog.artifacts:
                known = catalog.artifacts[manifest.run_id]
                if known != manifest.artifact:
                    raise _Refused(f"its run {manifest.run_id} is in the catalog with another artifact "
                                   f"({known or 'none'})")
                report.already_present.append(manifest.run_id)
                continue
            _check(storage, manifest, catalog, source_database, any_database)
        except (_Refused, ManifestError, StorageError) as exc:
            report.skipped[key] = str(exc) if isinstance(exc, _Refused) else exc.message
            continue
        try:
            with catalog_errors(database), engine.begin() as conn:
                conn.execute(insert(table).values(**_row(storage, manifest)))
        except IntegrityError as exc:  # a value the table's checks refuse, or a row inserted meanwhile
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "refused"
            report.skipped[key] = f"the catalog refused its row ({reason})"
            continue
        catalog.artifacts[manifest.run_id] = manifest.artifact
        catalog.owners[manifest.artifact] = manifest.run_id
        report.inserted.append(manifest.run_id)
    return report
