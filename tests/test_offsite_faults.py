"""Off-site copies under faults: the endpoint down, a part that keeps failing, a SIGKILL mid-upload.

Each ends with the copy `failed` (one line), no multipart upload left in moto (the writer aborts it, or the
sweeper does from the upload id the copy recorded), the local file untouched, and a later run that verifies.
Real PostgreSQL, moto's S3 server over HTTP with the fault proxy in front, the real CLI as a process for the kill.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.naming import manifest_key
from openwatch_backup.errors import StorageError
from openwatch_backup.operations.offsite_sweep import INTERRUPTED, offsite_to_retry
from openwatch_backup.service import BackupService
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.moto_server import open_uploads, stored
from tests.support.offsite import s3_env, s3_overrides
from tests.support.restore_helpers import cli_env, run_cli
from tests.support.restore_kill import start_paused, sweep_json

pytestmark = [pytest.mark.slow]


def local_file(backup_dir: Path, run: BackupRun) -> Path:
    return backup_dir / "postgres" / str(run.details["artifact"])


def verified_backup(service: BackupService) -> BackupRun:
    backup = service.backup(service.build_request())
    verify, _ = service.verify(str(backup.id))
    assert verify.status == "succeeded", verify.error
    return backup


def age_offsite_runs(url: str, by: timedelta) -> None:
    """As if the offsite runs had been asked for `by` ago (the retry waits stale_after_seconds after one)."""
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE backup_runs SET created_at = created_at - %s WHERE kind = 'offsite'", (by,))


def test_endpoint_down_fails_the_copy_keeps_the_file_and_the_retry_verifies(
        openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService], proxy: FaultProxy,
        moto_endpoint: str, bucket: str) -> None:
    service = make_service(openwatch_db, tmp_path / "backups", **s3_overrides(proxy.url, bucket))
    backup = verified_backup(service)
    local = local_file(tmp_path / "backups", backup)
    before = local.read_bytes()

    proxy.down = True
    with pytest.raises(StorageError) as info:
        service.copy_offsite(str(backup.id))
    run = service.list_runs(kind="offsite")[0]
    assert (run.status, run.error_code) == ("failed", "storage_unreachable")
    assert run.error == info.value.message
    assert "\n" not in info.value.message
    assert info.value.message.startswith(f"cannot look up s3://{bucket}/owb-test/postgres/")
    copy = service.copies.get(backup.id, CopyStorage.S3)
    assert copy is not None
    assert (copy.state, copy.error, copy.upload_id) == ("failed", run.error, None)
    assert local.read_bytes() == before  # the local file is kept, and still counts
    assert service.copies.get(backup.id, CopyStorage.LOCAL).state == "verified"  # type: ignore[union-attr]

    # The sweeper's retry: not at once (the endpoint gets time), then once the endpoint is back.
    assert offsite_to_retry(service.context) is None
    assert service.retry_offsite() is None
    age_offsite_runs(openwatch_db, timedelta(seconds=service.settings.stale_after_seconds + 1))
    proxy.down = False
    retry = service.retry_offsite()
    assert retry is not None
    assert service.retry_offsite() is None  # one queued already: not two
    done = service.execute_offsite(retry)
    assert (done.status, done.trigger, done.parent_id) == ("succeeded", "schedule", backup.id)
    body, metadata = stored(moto_endpoint, bucket, f"postgres/{backup.details['artifact']}")
    assert body == before
    assert metadata == {"sha256": backup.sha256}
    assert service.copies.get(backup.id, CopyStorage.S3).state == "verified"  # type: ignore[union-attr]
    assert service.retry_offsite() is None  # verified: nothing left to retry


def test_the_retry_is_bounded_by_attempts(openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService],
                                          moto_endpoint: str, bucket: str) -> None:
    service = make_service(openwatch_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket))
    assert service.retry_offsite() is None  # no backup yet
    backup = service.backup(service.build_request())
    assert service.retry_offsite() is None  # not verified: nothing is copied on the strength of an unchecked file
    service.verify(str(backup.id))
    service.copies.record(backup.id, CopyStorage.S3, key=f"postgres/{backup.details['artifact']}", location="x")
    with psycopg.connect(openwatch_db) as conn:
        conn.execute("UPDATE backup_copies SET state = 'failed', attempts = 5 WHERE storage = 's3'")
    assert service.retry_offsite() is None  # five attempts: the operator's turn (alerts and `check` say so)
    with psycopg.connect(openwatch_db) as conn:
        conn.execute("UPDATE backup_copies SET attempts = 4 WHERE storage = 's3'")
    assert service.retry_offsite() is not None
    off = make_service(openwatch_db, tmp_path / "backups")
    assert off.retry_offsite() is None  # off-site off: nothing to retry


def test_a_part_that_keeps_failing_aborts_the_upload(bulky_db: str, tmp_path: Path,
                                                     make_service: Callable[..., BackupService], proxy: FaultProxy,
                                                     moto_endpoint: str, bucket: str) -> None:
    service = make_service(bulky_db, tmp_path / "backups", **s3_overrides(proxy.url, bucket))
    backup = service.backup(service.build_request())
    assert backup.size_bytes is not None
    assert backup.size_bytes > 9 << 20
    before = hashlib.sha256(local_file(tmp_path / "backups", backup).read_bytes()).hexdigest()
    fault = proxy.add(Fault("PUT", "partNumber=2", action="respond", status=403, code="AccessDenied",
                            message="Access Denied", times=1000))
    with pytest.raises(StorageError):
        service.copy_offsite(str(backup.id))
    assert fault.hits >= 1
    run = service.list_runs(kind="offsite")[0]
    assert (run.status, run.error_code) == ("failed", "storage_access_denied")
    copy = service.copies.get(backup.id, CopyStorage.S3)
    assert copy is not None
    assert (copy.state, copy.error, copy.upload_id, copy.attempts) == ("failed", run.error, None, 1)
    assert open_uploads(moto_endpoint, bucket) == []
    assert hashlib.sha256(local_file(tmp_path / "backups", backup).read_bytes()).hexdigest() == before == backup.sha256
    proxy.faults.clear()
    assert service.copy_offsite(str(backup.id)).status == "succeeded"
    assert service.copies.get(backup.id, CopyStorage.S3).attempts == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("instant", ["offsite_upload_created", "offsite_uploading"])
def test_sigkill_mid_upload_leaves_an_upload_the_sweep_aborts(instant: str, bulky_db: str, tmp_path: Path,
                                                              make_service: Callable[..., BackupService],
                                                              moto_endpoint: str, bucket: str,
                                                              aws_env: pytest.MonkeyPatch) -> None:
    service = make_service(bulky_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket))
    backup = service.backup(service.build_request())
    before = local_file(tmp_path / "backups", backup).read_bytes()
    env = cli_env(bulky_db, tmp_path / "backups") | s3_env(moto_endpoint, bucket)

    paused = start_paused(["offsite", str(backup.id)], env, [instant], tmp_path / "marker")
    try:
        paused.wait_for(instant)
        copy = service.copies.get(backup.id, CopyStorage.S3)
        assert copy is not None
        assert copy.state == "copying"
        assert copy.upload_id is not None  # the intent, recorded before the first part
        assert open_uploads(moto_endpoint, bucket) == [f"owb-test/{copy.key}"]
        assert service.abort_interrupted_uploads() == []  # its run is alive: a sweep leaves the upload alone
        second = run_cli("offsite", str(backup.id), env=env)  # one upload of a backup at a time
        running = service.list_runs(kind="offsite")[0]
        assert (second.returncode, second.stderr) == (11, (
            f"error: offsite run {str(running.id)[:8]} of backup {str(backup.id)[:8]} is running already; wait for "
            f"it (`openwatch-backup show {str(running.id)[:8]}`), or run `openwatch-backup sweep` if its process was "
            "killed\n"))
        assert open_uploads(moto_endpoint, bucket) == [f"owb-test/{copy.key}"]
        paused.kill()
    finally:
        paused.stop()

    report = sweep_json(env)
    run = service.list_runs(kind="offsite")[0]
    assert str(run.id) in report["abandoned"]  # type: ignore[operator]
    assert report["aborted_uploads"] == [service.copies.get(backup.id, CopyStorage.S3).key]  # type: ignore[union-attr]
    assert open_uploads(moto_endpoint, bucket) == []
    copy = service.copies.get(backup.id, CopyStorage.S3)
    assert copy is not None
    assert (copy.state, copy.error, copy.upload_id) == ("failed", INTERRUPTED, None)
    assert local_file(tmp_path / "backups", backup).read_bytes() == before

    again = run_cli("offsite", str(backup.id), env=env)
    assert again.returncode == 0, again.stderr
    assert "copied and verified" in again.stdout
    body, _ = stored(moto_endpoint, bucket, copy.key)
    assert body == before
    assert service.copies.get(backup.id, CopyStorage.S3).state == "verified"  # type: ignore[union-attr]


def test_an_orphan_upload_over_an_hour_old_is_aborted_a_young_one_is_left(
        openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService], moto_endpoint: str,
        bucket: str) -> None:
    from openwatch_backup.operations.offsite_sweep import abort_interrupted_uploads
    from tests.support.moto_server import raw_client

    service = make_service(openwatch_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket))
    client = raw_client(moto_endpoint)
    client.create_multipart_upload(Bucket=bucket, Key="owb-test/postgres/orphan.dump.zst")
    client.create_multipart_upload(Bucket=bucket, Key="elsewhere/not-ours.dump")
    # moto reports one fixed start time for every upload: the sweep is told the time relative to it.
    initiated = client.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["Initiated"]
    young = initiated + timedelta(minutes=59)
    assert abort_interrupted_uploads(service.context, now=young) == []  # maybe someone is uploading it
    assert len(open_uploads(moto_endpoint, bucket)) == 2
    old = initiated + timedelta(hours=1, minutes=1)
    assert abort_interrupted_uploads(service.context, now=old) == ["postgres/orphan.dump.zst"]
    assert open_uploads(moto_endpoint, bucket) == ["elsewhere/not-ours.dump"]  # not under our prefix: not ours
    assert service.watchdog()["aborted_uploads"] == []


def test_sigkill_after_the_upload_completed_the_rerun_finds_the_object(bulky_db: str, tmp_path: Path,
                                                                       make_service: Callable[..., BackupService],
                                                                       moto_endpoint: str, bucket: str,
                                                                       aws_env: pytest.MonkeyPatch) -> None:
    service = make_service(bulky_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket))
    backup = service.backup(service.build_request())
    env = cli_env(bulky_db, tmp_path / "backups") | s3_env(moto_endpoint, bucket)
    paused = start_paused(["offsite", str(backup.id)], env, ["offsite_uploaded"], tmp_path / "marker")
    try:
        paused.wait_for("offsite_uploaded")
        copy = service.copies.get(backup.id, CopyStorage.S3)
        assert copy is not None
        assert (copy.state, copy.upload_id) == ("copying", None)  # complete: no upload left to abort
        paused.kill()
    finally:
        paused.stop()
    assert sweep_json(env)["abandoned"] == [str(service.list_runs(kind="offsite")[0].id)]
    assert open_uploads(moto_endpoint, bucket) == []
    assert service.copies.get(backup.id, CopyStorage.S3).state == "failed"  # type: ignore[union-attr]

    again = run_cli("offsite", str(backup.id), env=env)
    assert again.returncode == 0, again.stderr
    assert "already there and verified, nothing uploaded" in again.stdout
    body, metadata = stored(moto_endpoint, bucket, f"postgres/{backup.details['artifact']}")
    assert body == local_file(tmp_path / "backups", backup).read_bytes()
    assert metadata == {"sha256": backup.sha256}
    manifest, _ = stored(moto_endpoint, bucket, manifest_key(str(backup.details["artifact"])))
    assert manifest == (tmp_path / "backups" / manifest_key(str(backup.details["artifact"]))).read_bytes()
    assert service.copies.get(backup.id, CopyStorage.S3).state == "verified"  # type: ignore[union-attr]


def test_backups_made_before_s3_was_turned_on_are_copied_one_a_sweep_newest_first(
        openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService], moto_endpoint: str,
        bucket: str) -> None:
    before_s3 = make_service(openwatch_db, tmp_path / "backups")
    older, newer = verified_backup(before_s3), verified_backup(before_s3)
    service = make_service(openwatch_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket))

    order = []
    for _ in range(2):
        retry = service.retry_offsite()
        assert retry is not None
        assert service.retry_offsite() is None  # one at a time
        done = service.execute_offsite(retry)
        assert done.status == "succeeded", done.error
        order.append(done.parent_id)
    assert order == [newer.id, older.id]
    assert service.retry_offsite() is None  # every verified backup has left the host
    for backup in (older, newer):
        assert service.copies.get(backup.id, CopyStorage.S3).state == "verified"  # type: ignore[union-attr]


def test_sigterm_mid_upload_cancels_cleanly(bulky_db: str, tmp_path: Path, make_service: Callable[..., BackupService],
                                            moto_endpoint: str, bucket: str, aws_env: pytest.MonkeyPatch) -> None:
    """SIGTERM (docker stop, systemd) while the upload is open: exit 130 with one line, the run cancelled, the
    copy failed, the multipart upload aborted by the process itself (no sweep), the local file untouched."""
    service = make_service(bulky_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket))
    backup = service.backup(service.build_request())
    before = local_file(tmp_path / "backups", backup).read_bytes()
    env = cli_env(bulky_db, tmp_path / "backups") | s3_env(moto_endpoint, bucket)

    paused = start_paused(["offsite", str(backup.id)], env, ["offsite_upload_created"], tmp_path / "marker")
    try:
        paused.wait_for("offsite_upload_created")
        os.kill(paused.proc.pid, signal.SIGTERM)
        _, err = paused.proc.communicate(timeout=60)
    finally:
        paused.stop()

    assert (paused.proc.returncode, err.count("\n")) == (130, 1), err
    assert err.startswith("error: cancelled by SIGTERM"), err
    run = service.list_runs(kind="offsite")[0]
    assert (run.status, run.error_code) == ("cancelled", "cancelled")
    copy = service.copies.get(backup.id, CopyStorage.S3)
    assert copy is not None
    assert (copy.state, copy.upload_id) == ("failed", None)
    assert open_uploads(moto_endpoint, bucket) == []
    assert local_file(tmp_path / "backups", backup).read_bytes() == before
