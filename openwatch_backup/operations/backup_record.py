"""The end of every backup, whatever its family: the manifest beside the committed file, then the catalog row;
or, on any failure, nothing half done (the partial file aborted, a committed file without its record deleted)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import artifact_key as key_of
from openwatch_backup.core.naming import manifest_key as manifest_key_of
from openwatch_backup.errors import StorageError
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.lifecycle import record_failure
from openwatch_backup.storage.base import ArtifactWriter


def open_new_artifact(ctx: OperationContext, name_of: Callable[[int], str], what: str) -> tuple[str, ArtifactWriter]:
    """A writer on the first free name, name_of(0), name_of(1), ... (`_2`, `_3`: runs started in the same second);
    a name is free when neither its file nor its manifest exists in its family's folder."""
    for attempt in range(100):
        name = name_of(attempt)
        if ctx.storage.exists(key_of(name)) or ctx.storage.exists(manifest_key_of(name)):
            continue
        return name, ctx.storage.open_writer(key_of(name))
    raise StorageError(f"100 {what} named {name_of(0)} already exist")


def record_backup(ctx: OperationContext, run_id: uuid.UUID, *, artifact_key: str, manifest_key: str,
                  manifest: Manifest, details: dict[str, Any], bytes_done: int,
                  after_manifest: Callable[[], None] | None = None) -> None:
    """Write the manifest, then mark the run succeeded with its local copy (one transaction). A member of a nightly
    set names its set in the manifest (service/sets.py), so a rebuilt catalog still groups it."""
    set_id = ctx.recorder.get(str(run_id)).details.get("set_id")
    if set_id and manifest.set_id is None:
        manifest = manifest.model_copy(update={"set_id": str(set_id)})
    manifest_bytes = manifest.to_json()
    ctx.storage.put_bytes(manifest_key, manifest_bytes)
    if after_manifest is not None:
        after_manifest()
    # The catalog keeps the manifest's own digest, so verify notices a manifest edited afterwards.
    details["manifest_sha256"] = hashlib.sha256(manifest_bytes).hexdigest()
    ctx.recorder.succeed(run_id, location=ctx.storage.location(artifact_key), size=manifest.size_bytes,
                         bytes_done=bytes_done, sha256=manifest.sha256, details=details, local_copy=artifact_key)


def undo_backup(ctx: OperationContext, run_id: uuid.UUID, exc: BaseException, writer: ArtifactWriter | None,
                artifact_key: str | None) -> None:
    """A backup that did not finish: its partial file aborted, or its committed file deleted when the manifest
    or the record failed (not on Ctrl-C/exit, when the sweeper decides), and the failure recorded."""
    if writer is not None:
        writer.abort()
    elif artifact_key is not None and not isinstance(exc, KeyboardInterrupt | SystemExit):
        ctx.storage.delete(artifact_key)
    record_failure(ctx, run_id, exc)
