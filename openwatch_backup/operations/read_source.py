"""The copy an operation reads a backup from, as a context whose `storage` is that copy's storage.

Verify, restore and drill read through `Reading.ctx`; everything else they do (the sweep of .partial files,
safety backups, the catalog) keeps the service's own context, whose storage is always the local one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyState, CopyStorage
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import artifact_key, manifest_key
from openwatch_backup.errors import StorageObjectMissing
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.presence import present_artifact
from openwatch_backup.storage.read_through import ReadThrough

DETAILS_KEY = "read_from"  # on verify, restore and drill runs: "local" or "s3"


@dataclass(frozen=True)
class Reading:
    ctx: OperationContext  # ctx.storage holds the copy to read
    copy: CopyStorage
    missing: str | None = None  # set when no copy holds the artifact: the one line that says where we looked


def _usable(ctx: OperationContext, backup: BackupRun, storage: CopyStorage) -> bool:
    """False when retention deleted this copy, or recorded its intent to (details.pruning_<storage>: the prune
    may have stopped with the files half gone; the next one finishes it)."""
    if f"pruning_{storage.value}" in backup.details:
        return False
    row = ctx.copies.get(backup.id, storage)
    return row is None or row.state != CopyState.DELETED.value


def choose_copy(ctx: OperationContext, backup: BackupRun, copy: CopyStorage | None = None) -> Reading:
    """The local file while it is there (and the catalog has not recorded it deleted), else the S3 object.
    copy forces one (ConfigError for S3 when off-site is off). Refuses a run that is not a present backup."""
    key = artifact_key(present_artifact(backup))
    through = ReadThrough(ctx.storage, ctx.offsite)
    try:
        source = through.source_for(key, copy=copy, local_usable=_usable(ctx, backup, CopyStorage.LOCAL),
                                    remote_usable=_usable(ctx, backup, CopyStorage.S3))
    except StorageObjectMissing as exc:
        return Reading(ctx=ctx, copy=CopyStorage.LOCAL, missing=exc.message)
    if source.storage is ctx.storage:
        return Reading(ctx=ctx, copy=source.copy)
    return Reading(ctx=dataclasses.replace(ctx, storage=source.storage), copy=source.copy)


def read_manifest(ctx: OperationContext, backup: BackupRun) -> Manifest | None:
    """The backup's manifest from the copy a restore would read (local first, else S3); None when no copy holds
    the artifact. For `show` and the service's manifest_of on a host whose local file is gone."""
    reading = choose_copy(ctx, backup)
    if reading.missing is not None:
        return None
    artifact = present_artifact(backup)
    return Manifest.from_json(reading.ctx.storage.read_bytes(manifest_key(artifact)), source=f"manifest of {artifact}")
