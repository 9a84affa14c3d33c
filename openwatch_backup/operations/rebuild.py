"""Recreate catalog rows from the manifests in storage: the backup directory (after a restore replaced the
catalog) or the off-site bucket (a new host, where the bucket is all that is left).

A manifest is read from storage, where anyone who can write a file can put one, so each is checked before it
becomes a row, and one that fails a check is reported and skipped while the rest of the rebuild goes on:
  - it parses, with a version this package knows, a plain artifact file name, a UUID run id, ISO times;
  - it is stored beside its artifact (`<artifact>.manifest.json`), as every backup writes it;
  - its artifact belongs to no other run, in the catalog or earlier in this rebuild: two runs naming one file
    would let prune delete a kept backup's file along with the other run;
  - a run already in the catalog names the same artifact there;
  - it is a backup of the catalog's own database (`any_database` lifts this one);
  - its artifact is there, with the size the manifest says; in S3 also with our sha256 in its metadata, equal to
    the manifest's (the HEAD check an upload ends with: a copy that passes it is recorded `verified`).

Each row comes with the copy row of the storage it was found in, in the same transaction: local copies are
`pending` (a file found on disk is not checked yet; `verify` sets it), S3 copies `verified`. A run rebuilt from S3
gets no local copy row: no local file exists, and a `deleted` row would claim that retention removed one. A run
already in the catalog gets the copy row it lacks (an S3 rebuild on the host that made the backups adds their
S3 copies). A problem of the store itself (access denied, no bucket, unreachable, bad credentials) stops the
rebuild with its one line: it says nothing about the manifests, so it must never read as "0 runs".
"""

from __future__ import annotations

import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from openwatch_backup.catalog.copies import CopyStore
from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.catalog.recorder import catalog_errors
from openwatch_backup.core.copies import CopyState, CopyStorage
from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import FAMILY_PREFIXES, MANIFEST_SUFFIX, artifact_key, manifest_key
from openwatch_backup.errors import (
    ManifestError,
    StorageAccessDenied,
    StorageBucketMissing,
    StorageClockSkew,
    StorageCredentialsError,
    StorageError,
    StorageObjectMissing,
    StorageTLSError,
    StorageUnreachable,
)
from openwatch_backup.storage.base import Storage

if typing.TYPE_CHECKING:
    from openwatch_backup.storage.s3 import S3Storage  # only for the type: a local rebuild never imports boto3

BACKUP_KINDS = frozenset(k.value for k in BackupKind)
TRIGGERS = ("cli", "api", "schedule")
# Errors of the store, not of one manifest: skipping the manifest would hide them behind "0 runs recreated".
STORE_ERRORS = (StorageAccessDenied, StorageBucketMissing, StorageClockSkew, StorageCredentialsError,
                StorageTLSError, StorageUnreachable)


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


def read_manifest_at(storage: Storage, key: str) -> Manifest:
    manifest = Manifest.from_json(storage.read_bytes(key), source=key)
    if key != manifest_key(manifest.artifact):
        raise _Refused(f"it names the artifact {manifest.artifact} but is not stored beside it (as "
                       f"{manifest_key(manifest.artifact)}): openwatch-backup did not write it there")
    return manifest


def _check(manifest: Manifest, catalog: _Catalog, source_database: str, any_database: bool) -> None:
    """Raises _Refused unless the manifest of a run not in the catalog may become a row (its artifact aside)."""
    if manifest.kind not in BACKUP_KINDS:
        raise _Refused(f"its kind {manifest.kind!r} is not a database backup kind ({', '.join(sorted(BACKUP_KINDS))})")
    owner = catalog.owners.get(manifest.artifact)
    if owner is not None and owner != manifest.run_id:
        raise _Refused(f"its artifact {manifest.artifact} belongs to run {owner} already: two runs naming one file "
                       "would let prune delete a kept backup; remove the manifest that is not the backup's own")
    if manifest.database != source_database and not any_database:
        raise _Refused(f"it is a backup of database {manifest.database!r}, not of {source_database!r}; "
                       "`openwatch-backup catalog rebuild --any-database` adds it anyway")


def _copy_state(storage: Storage, where: CopyStorage, manifest: Manifest) -> CopyState:
    """The state of the copy this storage holds, or _Refused when its artifact is not the manifest's."""
    artifact = artifact_key(manifest.artifact)
    if where is CopyStorage.S3:
        return _s3_copy_state(typing.cast("S3Storage", storage), manifest)
    if not storage.exists(artifact):
        raise _Refused(f"its artifact {manifest.artifact} is missing")
    if storage.size(artifact) != manifest.size_bytes:
        raise _Refused(f"its artifact {manifest.artifact} is {storage.size(artifact)} bytes, "
                       f"the manifest says {manifest.size_bytes}")
    return CopyState.PENDING  # on disk, not read yet: verify reads it


def _s3_copy_state(storage: S3Storage, manifest: Manifest) -> CopyState:
    """One HEAD: the size, and the whole-file sha256 our upload puts in the metadata, against the manifest."""
    try:
        head = storage.head(artifact_key(manifest.artifact))
    except StorageObjectMissing:
        raise _Refused(f"its artifact {manifest.artifact} is missing") from None
    if head.size != manifest.size_bytes:
        raise _Refused(f"its artifact {manifest.artifact} is {head.size} bytes, the manifest says "
                       f"{manifest.size_bytes}")
    if head.sha256 is None:
        raise _Refused(f"its artifact {manifest.artifact} has no sha256 in its metadata, so `openwatch-backup "
                       "offsite` did not upload it; download it into OPENWATCH_BACKUP_DIR and run `openwatch-backup "
                       "catalog rebuild` to add it from there")
    if head.sha256 != manifest.sha256:
        raise _Refused(f"its artifact {manifest.artifact} has sha256 {head.sha256} in its metadata, the manifest "
                       f"says {manifest.sha256}")
    return CopyState.VERIFIED


def row_of_manifest(storage: Storage, manifest: Manifest) -> dict[str, Any]:
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
                        "kind": manifest.kind, "compression": manifest.compression, "tables": manifest.tables},
                    **_config_details(manifest), **_snapshot_details(manifest),
                    **({"set_id": manifest.set_id} if manifest.set_id else {}),
                    **({"adopted": manifest.adopted.model_dump()} if manifest.adopted else {})},
        **({"parent_id": uuid.UUID(manifest.set_id)} if manifest.set_id else {}),
    }


def _ensure_set(conn: Connection, table: Table, manifest: Manifest) -> None:
    """The nightly set a member names (service/sets.py), recreated once from its first member's manifest; the
    members then point at it again, so a catalog rebuilt on a new host still groups them."""
    if manifest.set_id is None:
        return
    created = datetime.fromisoformat(manifest.created_at)
    conn.execute(insert(table).values(
        id=uuid.UUID(manifest.set_id), kind="set", status="succeeded", phase="done",
        trigger=manifest.trigger if manifest.trigger in TRIGGERS else "cli", created_at=created,
        started_at=created, finished_at=datetime.fromisoformat(manifest.finished_at), bytes_done=0,
        details={"rebuilt_from_manifest": True}).on_conflict_do_nothing(index_elements=["id"]))


def _config_details(manifest: Manifest) -> dict[str, Any]:
    """What a config backup records beyond a dump's fields, from the manifest's config payload: the key id, the
    keyed inputs digest (the dispatcher's "did it change?") and the certificates (`check`'s expiry warning). A
    bundle's run rebuilt without them would be taken again at the next check and never warned about."""
    config = manifest.config
    if config is None:
        return {}
    return {"key_id": config.encryption.get("key_id"), "inputs_digest": config.inputs_digest,
            "members": config.members, "paths": config.paths, "env_snapshot": config.env_snapshot,
            "certificates": config.certificates,
            "request": {"kind": manifest.kind, "compression": "none", "tables": []}}


def _snapshot_details(manifest: Manifest) -> dict[str, Any]:
    """A Redis or volume snapshot's payload as its own run records it: restoring a rebuilt volume run needs the
    volume's name (operations/volume_restore.snapshot_volume), and `show` the rest."""
    if manifest.volume is not None:
        return {"volume": manifest.volume.model_dump(), "request": {
            "kind": manifest.kind, "compression": manifest.compression, "tables": [],
            "volume": manifest.volume.volume, "stop": []}}
    if manifest.redis is not None:
        return {"redis": manifest.redis.model_dump()}
    return {}


def list_manifests(storage: Storage, where: CopyStorage) -> list[str]:
    """Manifest keys of every family (dumps under postgres/, config bundles under config/)."""
    keys: list[str] = []
    for prefix in FAMILY_PREFIXES:
        try:
            objects = storage.list(prefix)
        except StorageAccessDenied:
            if where is not CopyStorage.S3:
                raise
            bucket = typing.cast("S3Storage", storage).config.bucket
            raise StorageAccessDenied(
                f"cannot list the backups in {storage.location(prefix)}/: access denied; these credentials "
                f"lack s3:ListBucket on bucket {bucket!r}, which `catalog rebuild --from s3` needs to find the "
                "manifests (nothing was added)") from None
        keys += [o.key for o in objects if o.key.endswith(MANIFEST_SUFFIX)]
    return sorted(keys)


def _record_copy(copies: CopyStore, storage: Storage, where: CopyStorage, manifest: Manifest, state: CopyState,
                 conn: Connection | None = None) -> None:
    """The copy row (left as it is if the run has one for this storage already)."""
    key = artifact_key(manifest.artifact)
    copies.record(uuid.UUID(manifest.run_id), where, key=key, location=storage.location(key), state=state,
                  size=manifest.size_bytes, sha256=manifest.sha256, conn=conn)


def rebuild_catalog(storage: Storage, engine: Engine, database: str, source_database: str, *, copies: CopyStore,
                    where: CopyStorage = CopyStorage.LOCAL, any_database: bool = False) -> RebuildReport:
    """Add a row for every acceptable manifest in `storage` (which is `where`: local or S3), each with its copy row;
    `source_database` is the catalog's own database name (a manifest records the database it backs up). Catalog
    and store errors stop the rebuild; a bad manifest only skips itself."""
    report = RebuildReport()
    catalog = _load(engine, database)
    table = typing.cast(Table, BackupRun.__table__)
    for key in list_manifests(storage, where):
        try:
            manifest = read_manifest_at(storage, key)
            if manifest.run_id in catalog.pruned:
                report.pruned.append(key)
                continue
            if manifest.run_id in catalog.artifacts:
                known = catalog.artifacts[manifest.run_id]
                if known != manifest.artifact:
                    raise _Refused(f"its run {manifest.run_id} is in the catalog with another artifact "
                                   f"({known or 'none'})")
                _add_copy_to_known_run(copies, storage, where, manifest)
                report.already_present.append(manifest.run_id)
                continue
            _check(manifest, catalog, source_database, any_database)
            state = _copy_state(storage, where, manifest)
        except STORE_ERRORS:
            raise
        except (_Refused, ManifestError, StorageError) as exc:
            report.skipped[key] = str(exc) if isinstance(exc, _Refused) else exc.message
            continue
        try:
            with catalog_errors(database), engine.begin() as conn:
                _ensure_set(conn, table, manifest)
                conn.execute(insert(table).values(**row_of_manifest(storage, manifest)))
                _record_copy(copies, storage, where, manifest, state, conn)
        except IntegrityError as exc:  # a value the table's checks refuse, or a row inserted meanwhile
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "refused"
            report.skipped[key] = f"the catalog refused its row ({reason})"
            continue
        catalog.artifacts[manifest.run_id] = manifest.artifact
        catalog.owners[manifest.artifact] = manifest.run_id
        report.inserted.append(manifest.run_id)
    return report


def _add_copy_to_known_run(copies: CopyStore, storage: Storage, where: CopyStorage, manifest: Manifest) -> None:
    """A run the catalog has gets the copy row of this storage if it lacks one. In S3 a copy that fails the HEAD
    check is refused (the skip says why); a local file that is gone or of another size just gets no row, as the
    rebuild always reported such a run `already present` (verify reports the file)."""
    try:
        state = _copy_state(storage, where, manifest)
    except _Refused:
        if where is CopyStorage.S3:
            raise
        return
    _record_copy(copies, storage, where, manifest, state)
