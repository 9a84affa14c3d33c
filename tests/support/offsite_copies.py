"""An off-site copy of a backup made the plain way (copy_object + the manifest + the catalog row), for the tests of
what `check`, the API and the page show: they must not depend on the `offsite` command's own code."""

from __future__ import annotations

import psycopg

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.naming import artifact_key, manifest_key
from openwatch_backup.service import BackupService
from openwatch_backup.storage.copy import copy_object


def backup_keys(run: BackupRun) -> tuple[str, str]:
    artifact = str(run.details["artifact"])
    return artifact_key(artifact), manifest_key(artifact)


def copy_offsite(service: BackupService, run: BackupRun, *, verify: bool = True) -> str:
    """Upload the backup and its manifest to the off-site bucket and record the S3 copy (verified, or left
    pending); the artifact's key."""
    remote = service.require_offsite()
    key, manifest = backup_keys(run)
    assert run.sha256 is not None
    assert run.size_bytes is not None
    copy_object(service.storage, remote, key, sha256=run.sha256, size=run.size_bytes)
    remote.put_bytes(manifest, service.storage.read_bytes(manifest))
    service.copies.record(run.id, CopyStorage.S3, key=key, location=remote.location(key))
    if verify:
        assert service.copies.verified(run.id, CopyStorage.S3, size=run.size_bytes, sha256=run.sha256)
    return key


def set_reverified(url: str, run: BackupRun, days_ago: float) -> None:
    """The S3 copy's last full re-read, moved `days_ago` into the past (what a verify --copy s3 then wrote)."""
    with psycopg.connect(url) as conn:
        done = conn.execute("UPDATE backup_copies SET reverified_at = now() - make_interval(secs => %s) "
                            "WHERE run_id = %s AND storage = 's3'", (days_ago * 86400, run.id))
        assert done.rowcount == 1
