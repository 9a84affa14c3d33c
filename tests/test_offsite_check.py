"""`check`'s two off-site items against real PostgreSQL and moto's S3 over HTTP: skipped without a bucket; the
newest backup's S3 copy (none, copying, failed, verified); the last full re-read of an S3 copy (never, 100 days
ago, within 90 days)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.service import BackupService
from tests.support.offsite import s3_overrides
from tests.support.offsite_copies import backup_keys, copy_offsite, set_reverified

MakeService = Callable[..., BackupService]
NOT_CONFIGURED = "off-site storage is not configured"


def items(service: BackupService) -> dict[str, tuple[str, str, str]]:
    return {i.key: (i.status.value, i.detail, i.fix) for i in service.checklist()}


def full_backup(service: BackupService) -> BackupRun:
    run = service.backup(service.build_request(BackupKind.FULL, Compression.ZSTD))
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def offsite_service(openwatch_db: str, tmp_path: Path, make_service: MakeService, moto_endpoint: str,
                    bucket: str) -> BackupService:
    return make_service(openwatch_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket))


def test_without_a_bucket_both_items_skip(openwatch_db: str, tmp_path: Path, make_service: MakeService) -> None:
    service = make_service(openwatch_db, tmp_path / "backups")
    full_backup(service)

    found = items(service)

    assert found["offsite_copy"] == ("skip", NOT_CONFIGURED, "")
    assert found["offsite_accessible"] == ("skip", NOT_CONFIGURED, "")
    titles = {i.key: (i.title, i.cadence) for i in service.checklist()}
    assert titles["offsite_copy"] == ("Backup copied to off-site storage", "each backup")
    assert titles["offsite_accessible"] == ("Off-site backup accessibility verified", "quarterly")


def test_no_backup_yet(offsite_service: BackupService) -> None:
    found = items(offsite_service)

    assert found["offsite_copy"] == ("fail", "no successful backup to copy off-site",
                                     "run `openwatch-backup backup --offsite`")
    assert found["offsite_accessible"] == (
        "fail", "no off-site copy re-read and verified in 90 days (never re-read)",
        "copy a backup off-site (`openwatch-backup offsite RUN`), then run `openwatch-backup verify RUN --copy s3`")


def test_the_newest_backups_copy_in_each_state(offsite_service: BackupService) -> None:
    service = offsite_service
    run = full_backup(service)
    short = str(run.id)[:8]
    fix = f"run `openwatch-backup offsite {short}`"
    key, _ = backup_keys(run)
    location = service.require_offsite().location(key)
    assert location.startswith("s3://")

    assert items(service)["offsite_copy"] == ("fail", f"backup {short} ({run.details['artifact']}) has no off-site "
                                              "copy", fix)

    copy_offsite(service, run, verify=False)
    assert items(service)["offsite_copy"] == ("fail", f"backup {short}: its off-site copy is pending (not copied yet)",
                                              fix)

    assert service.copies.start_copying(run.id, CopyStorage.S3)
    status, detail, hint = items(service)["offsite_copy"]
    assert (status, hint) == ("fail", f"wait for the upload to finish, or {fix} again")
    assert detail.startswith(f"backup {short}: its off-site copy is copying (attempt 1, since ")

    error = f"{location}: could not connect to the endpoint http://127.0.0.1:9 (connection refused)"
    assert service.copies.failed(run.id, CopyStorage.S3, error)
    assert items(service)["offsite_copy"] == ("fail", f"backup {short}: its off-site copy failed: {error}", fix)

    assert run.sha256 is not None
    assert run.size_bytes is not None
    assert service.copies.verified(run.id, CopyStorage.S3, size=run.size_bytes, sha256=run.sha256)
    status, detail, hint = items(service)["offsite_copy"]
    assert (status, hint) == ("ok", "")
    assert detail.startswith(f"backup {short} verified at {location} ")
    assert detail.endswith(" h ago")

    # Retention removed the remote copy (S3's own age limit): the newest backup is no longer off-site.
    assert service.copies.deleted(run.id, CopyStorage.S3)
    assert items(service)["offsite_copy"] == ("fail", f"backup {short}: its off-site copy is deleted", fix)

    # A newer backup without its copy fails the item again, naming the newer one (the older copy does not count).
    newer = full_backup(service)
    assert items(service)["offsite_copy"] == (
        "fail", f"backup {str(newer.id)[:8]} ({newer.details['artifact']}) has no off-site copy",
        f"run `openwatch-backup offsite {str(newer.id)[:8]}`")


def test_the_last_remote_reread(offsite_service: BackupService, openwatch_db: str) -> None:
    service = offsite_service
    run = full_backup(service)
    short = str(run.id)[:8]
    copy_offsite(service, run)
    location = service.require_offsite().location(backup_keys(run)[0])
    reread_fix = f"run `openwatch-backup verify {short} --copy s3`"

    assert items(service)["offsite_accessible"] == (
        "fail", "no off-site copy re-read and verified in 90 days (never re-read)", reread_fix)

    assert run.sha256 is not None
    assert run.size_bytes is not None
    assert service.copies.reverified(run.id, CopyStorage.S3, size=run.size_bytes, sha256=run.sha256)
    set_reverified(openwatch_db, run, days_ago=100)
    assert items(service)["offsite_accessible"] == (
        "fail", "no off-site copy re-read and verified in 90 days (last one 100 days ago)", reread_fix)

    set_reverified(openwatch_db, run, days_ago=89)
    assert items(service)["offsite_accessible"] == ("ok", f"backup {short} re-read from {location} 89 days ago", "")

    # A re-read that then failed (the object was altered) does not count as accessible.
    assert service.copies.failed(run.id, CopyStorage.S3, f"{location} reads back with another sha256")
    assert items(service)["offsite_accessible"] == (
        "fail", f"no off-site copy re-read and verified in 90 days (backup {short}'s copy, re-read 89 days ago, "
        f"failed since: {location} reads back with another sha256)",
        "copy a backup off-site (`openwatch-backup offsite RUN`), then run `openwatch-backup verify RUN --copy s3`")

