"""Restore a config bundle into a NEW folder, or list its members. Live configuration is never overwritten.

The bundle's stored bytes are checked first (passphrase, key id, size, sha256, HMAC: config_verify.py), so a
damaged bundle or a wrong passphrase writes nothing. Then it is decrypted as a stream and extracted
(secrets/bundle_tar.extract_to: 0700 folder, each file its own mode, links as links) into a staging folder
beside the destination, `<DIR>.partial-<run>`, renamed to DIR only when every member is out. So DIR either
does not exist or holds the whole bundle:

- an error or SIGTERM/Ctrl-C: extract_to removes the staging folder; nothing new is left, the run ends
  failed or cancelled;
- SIGKILL (or a power cut) mid-extract: the staging folder stays, named `.partial-` so the operator sees it is
  partial (the run records it as details.restoring_to); DIR is not created, and `sweep` marks the run
  abandoned. Delete the partial folder and restore again.

The run is a `restore` run whose parent is the bundle's run, details {"config": true, "to", "members"}.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import artifact_key
from openwatch_backup.core.verify_result import VerifyResult
from openwatch_backup.errors import RestoreRefused
from openwatch_backup.operations.config_verify import CheckedBundle, bundle_integrity, decrypted
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.operations.kill_points import kill_point
from openwatch_backup.operations.lifecycle import record_failure
from openwatch_backup.operations.read_source import DETAILS_KEY as READ_FROM
from openwatch_backup.operations.read_source import Reading, choose_copy
from openwatch_backup.operations.remote_verify import located
from openwatch_backup.operations.verify import quick_verify
from openwatch_backup.secrets.bundle_tar import extract_to, list_members

STAGING_MARK = ".partial-"


def require_config(backup: BackupRun) -> None:
    if backup.kind != BackupKind.CONFIG.value:
        raise RestoreRefused(f"--to and --list are only for config bundles; backup {backup.id} is of kind "
                             f"{backup.kind}: restore it with --confirm DBNAME or --into NEWDB")


def check_destination(dest: Path) -> None:
    """A new folder, or an existing empty one; anything else is refused before the bundle is read."""
    if os.path.islink(dest):
        raise RestoreRefused(f"restore folder {dest} is a link: give a new folder")
    if dest.exists():
        if not dest.is_dir():
            raise RestoreRefused(f"restore folder {dest} exists and is not a folder: give a new folder")
        if any(dest.iterdir()):
            raise RestoreRefused(f"restore folder {dest} is not empty: give a new folder (configuration is never "
                                 "restored over existing files)")


def staging_folder(dest: Path, run_id: uuid.UUID) -> Path:
    return dest.with_name(f"{dest.name}{STAGING_MARK}{str(run_id)[:8]}")


def _checked(reading: Reading, backup: BackupRun) -> tuple[Manifest, CheckedBundle]:
    """Manifest, size and the bundle's integrity, or RestoreRefused with the verify reason. Reads, writes nothing."""
    result, manifest = quick_verify(reading.ctx, backup, read_content=False, missing=reading.missing)
    checked: CheckedBundle | VerifyResult = result
    if result.passed and manifest is not None:
        checked = bundle_integrity(reading.ctx, manifest, artifact_key(manifest.artifact), dict(result.checks))
    if isinstance(checked, VerifyResult):
        if reading.copy is CopyStorage.S3:
            checked = located(reading.ctx, backup, checked)
        raise RestoreRefused(f"backup {backup.id} failed verification ({checked.reason}): {checked.message}; "
                             "nothing was restored")
    assert manifest is not None
    return manifest, checked


def list_bundle(ctx: OperationContext, backup: BackupRun) -> list[str]:
    """The member names, after the same integrity checks as a restore. Nothing is written anywhere."""
    require_config(backup)
    reading = choose_copy(ctx, backup)
    manifest, checked = _checked(reading, backup)
    with reading.ctx.storage.open_reader(artifact_key(manifest.artifact)) as raw:
        return list_members(decrypted(raw, checked, manifest.artifact))


def run_config_restore(ctx: OperationContext, run_id: uuid.UUID, backup: BackupRun,
                       dest: Path, copy: CopyStorage | None = None) -> dict[str, Any] | None:
    """Carry out a queued config restore run; None when another delivery already claimed it. copy: read that
    copy (default: the local file while it is there, else the S3 object)."""
    if not ctx.recorder.claim(run_id):
        return None
    started = time.monotonic()
    try:
        require_config(backup)
        check_destination(dest)
        reading = choose_copy(ctx, backup, copy)
        ctx.recorder.progress(run_id, "verifying", details={READ_FROM: reading.copy.value})
        manifest, checked = _checked(reading, backup)
        staging = staging_folder(dest, run_id)
        # Recorded before it exists: after a SIGKILL, `show` names the partial folder to delete. (Any other end
        # removes the folder; the field then names where the run was extracting.)
        ctx.recorder.progress(run_id, "extracting", details={"restoring_to": str(staging)})
        kill_point("config_restore_extracting")
        ours = not os.path.lexists(staging)  # extract_to refuses a non-empty one: never remove what is not ours
        try:
            with reading.ctx.storage.open_reader(artifact_key(manifest.artifact)) as raw:
                extracted = extract_to(decrypted(raw, checked, manifest.artifact), staging)
            kill_point("config_restore_extracted")
            _move_into_place(staging, dest)
        except BaseException:
            if ours:  # extract_to removed it on its own errors; a stop after it returned (SIGTERM) did not
                shutil.rmtree(staging, ignore_errors=True)
            raise
        details = {"config": True, "to": str(dest), "members": len(extracted.restored),
                   "skipped": extracted.skipped, "backup_run": str(backup.id), READ_FROM: reading.copy.value,
                   "seconds": round(time.monotonic() - started, 3), "restoring_to": None}
        ctx.recorder.succeed(run_id, location=backup.artifact_location, size=backup.size_bytes,
                             sha256=backup.sha256, details=details)
        return details
    except BaseException as exc:
        record_failure(ctx, run_id, exc)
        raise


def _move_into_place(staging: Path, dest: Path) -> None:
    """One rename: DIR appears whole. rename(2) replaces an empty folder and refuses one someone filled meanwhile."""
    try:
        os.rename(staging, dest)
    except OSError as exc:
        raise RestoreRefused(f"restore folder {dest} cannot take the restored files ({exc.strerror}): it was "
                             "created or filled meanwhile; give a new folder") from None
