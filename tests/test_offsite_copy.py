"""`offsite RUN`, `offsite test` and `backup --offsite`: a backup and its manifest copied to S3 and checked there,
as a recorded run linked to the backup, with the backup's s3 copy row verified.

Real PostgreSQL, moto's S3 server over HTTP, the real CLI as a process where the CLI is the subject."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.core.naming import manifest_key
from openwatch_backup.errors import ConfigError, RunNotFound, StorageBucketMissing
from openwatch_backup.service import BackupService
from tests.support.moto_server import open_uploads, stored
from tests.support.offsite import s3_env, s3_overrides
from tests.support.restore_helpers import cli_env, run_cli

pytestmark = [pytest.mark.slow]


def copy_rows(url: str) -> dict[tuple[str, str], tuple[str, int | None, str | None, str | None, str]]:
    """(run id, storage) -> (state, size, sha256, error, location), read straight from the catalog."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT run_id, storage, state, size_bytes, sha256, error, location "
                            "FROM backup_copies").fetchall()
    return {(str(r[0]), r[1]): (r[2], r[3], r[4], r[5], r[6]) for r in rows}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service(openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService], moto_endpoint: str,
            bucket: str) -> BackupService:
    return make_service(openwatch_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket))


def test_offsite_copies_the_artifact_and_manifest_and_verifies_the_copy(service: BackupService, tmp_path: Path,
                                                                          moto_endpoint: str, bucket: str) -> None:
    backup = service.backup(service.build_request())
    artifact = str(backup.details["artifact"])
    key = f"postgres/{artifact}"
    local = (tmp_path / "backups" / key).read_bytes()

    run = service.copy_offsite(str(backup.id))

    assert (run.kind, run.status, run.parent_id) == ("offsite", "succeeded", backup.id)
    body, metadata = stored(moto_endpoint, bucket, key)
    assert body == local
    assert metadata == {"sha256": backup.sha256}
    manifest, _ = stored(moto_endpoint, bucket, manifest_key(artifact))
    assert manifest == (tmp_path / "backups" / manifest_key(artifact)).read_bytes()
    location = f"s3://{bucket}/owb-test/{key}"
    assert copy_rows(service.settings.database_url)[(str(backup.id), "s3")] == \
        ("verified", len(local), backup.sha256, None, location)
    assert run.details["offsite"]["already_there"] is False
    assert run.details["offsite"]["bytes"] == len(local)
    assert run.artifact_location == location
    assert open_uploads(moto_endpoint, bucket) == []
    assert (tmp_path / "backups" / key).read_bytes() == local  # only ever read

    again = service.copy_offsite(str(backup.id))
    assert again.status == "succeeded"
    assert again.details["offsite"]["already_there"] is True
    assert again.details["offsite"]["bytes"] == 0
    assert copy_rows(service.settings.database_url)[(str(backup.id), "s3")][0] == "verified"


def test_offsite_refuses_what_cannot_be_copied_before_recording_a_run(openwatch_db: str, tmp_path: Path,
                                                                       make_service: Callable[..., BackupService],
                                                                       service: BackupService) -> None:
    backup = service.backup(service.build_request())
    verify, _ = service.verify(str(backup.id))
    with pytest.raises(RunNotFound) as info:
        service.copy_offsite(str(verify.id))
    assert info.value.message.startswith(f"run {verify.id} is not a successful backup (kind verify")
    off = make_service(openwatch_db, tmp_path / "backups")
    with pytest.raises(ConfigError) as config:
        off.copy_offsite(str(backup.id))
    assert config.value.message == ("off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET (and "
                                    "OPENWATCH_BACKUP_S3_ENDPOINT_URL for a store other than AWS S3)")
    assert service.list_runs(kind="offsite") == []


def test_offsite_of_a_backup_whose_local_file_is_gone_fails_the_copy(service: BackupService, tmp_path: Path,
                                                                      moto_endpoint: str, bucket: str) -> None:
    backup = service.backup(service.build_request())
    local = tmp_path / "backups" / "postgres" / str(backup.details["artifact"])
    local.unlink()
    with pytest.raises(Exception) as info:
        service.copy_offsite(str(backup.id))
    assert getattr(info.value, "message", "") == (f"{local} does not exist, so backup {str(backup.id)[:8]} cannot "
                                                  "be copied off-site from this host")
    run = service.list_runs(kind="offsite")[0]
    assert (run.status, run.error_code) == ("failed", "storage_object_missing")


def test_cli_offsite_run_and_test(openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService],
                                  moto_endpoint: str, bucket: str, aws_env: pytest.MonkeyPatch) -> None:
    service = make_service(openwatch_db, tmp_path / "backups")
    backup = service.backup(service.build_request())
    env = cli_env(openwatch_db, tmp_path / "backups") | s3_env(moto_endpoint, bucket)

    done = run_cli("offsite", str(backup.id)[:8], env=env)
    assert done.returncode == 0, done.stderr
    location = f"s3://{bucket}/owb-test/postgres/{backup.details['artifact']}"
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"offsite copy of {str(backup.id)[:8]}: {location} copied and verified in ")

    again = run_cli("offsite", str(backup.id), "--json", env=env)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert (data["kind"], data["status"], data["parent_id"]) == ("offsite", "succeeded", str(backup.id))
    assert data["details"]["offsite"]["already_there"] is True

    probe = run_cli("offsite", "test", env=env)
    assert probe.returncode == 0, probe.stderr
    steps = probe.stdout.strip().splitlines()
    assert [s.split()[:2] for s in steps[:4]] == [["put", "ok"], ["head", "ok"], ["get", "ok"], ["delete", "ok"]]
    assert steps[4].startswith(f"s3://{bucket}/owb-test/.openwatch-probe-")

    down = env | {"OPENWATCH_BACKUP_S3_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"}
    failed = run_cli("offsite", "test", "--json", env=down)
    assert failed.returncode == 4, failed.stderr
    answer = json.loads(failed.stdout)
    assert answer["ok"] is False
    assert [(s["name"], s["ok"], s["code"]) for s in answer["steps"]] == [("put", False, "storage_unreachable")]

    missing = run_cli("offsite", "test", env=env | {"OPENWATCH_BACKUP_S3_BUCKET": "owb-no-such-bucket"})
    assert missing.returncode == 4, missing.stderr
    first = missing.stdout.splitlines()[0]
    assert first.startswith("put    FAILED [storage_no_bucket]: ")
    assert "owb-no-such-bucket" in first

    off = {k: v for k, v in env.items() if not k.startswith("OPENWATCH_BACKUP_S3_")}
    refused = run_cli("offsite", str(backup.id), env=off)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == ("error: off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET (and "
                              "OPENWATCH_BACKUP_S3_ENDPOINT_URL for a store other than AWS S3)\n")


def test_cli_backup_offsite_backs_up_verifies_and_copies(openwatch_db: str, tmp_path: Path,
                                                         make_service: Callable[..., BackupService],
                                                         moto_endpoint: str, bucket: str,
                                                         aws_env: pytest.MonkeyPatch) -> None:
    service = make_service(openwatch_db, tmp_path / "backups")
    env = cli_env(openwatch_db, tmp_path / "backups") | s3_env(moto_endpoint, bucket)

    off = {k: v for k, v in env.items() if not k.startswith("OPENWATCH_BACKUP_S3_")}
    refused = run_cli("backup", "--offsite", env=off)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET")
    assert service.list_runs() == []  # refused before backing up

    done = run_cli("backup", "--offsite", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    backup_id = data["backup"]["id"]
    assert (data["verify"]["kind"], data["verify"]["status"], data["verify"]["parent_id"]) == \
        ("verify", "succeeded", backup_id)
    assert (data["offsite"]["kind"], data["offsite"]["status"], data["offsite"]["parent_id"]) == \
        ("offsite", "succeeded", backup_id)
    artifact = data["backup"]["details"]["artifact"]
    body, metadata = stored(moto_endpoint, bucket, f"postgres/{artifact}")
    assert body == (tmp_path / "backups" / "postgres" / artifact).read_bytes()
    assert metadata == {"sha256": data["backup"]["sha256"]}
    copies = copy_rows(openwatch_db)
    assert copies[(backup_id, "local")][0] == "verified"
    assert copies[(backup_id, "s3")][0] == "verified"

    plain = run_cli("backup", "--offsite", env=env)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["backup", "quick", "offsite"]
    assert "copied and verified" in lines[2]
    assert [r.kind for r in service.list_runs()] == ["offsite", "verify", "full", "offsite", "verify", "full"]


def test_a_manifest_changed_after_the_backup_is_not_copied(service: BackupService, tmp_path: Path,
                                                           moto_endpoint: str, bucket: str) -> None:
    from openwatch_backup.errors import StorageIntegrityError
    from tests.support.moto_server import raw_client

    backup = service.backup(service.build_request())
    manifest = tmp_path / "backups" / manifest_key(str(backup.details["artifact"]))
    manifest.write_bytes(manifest.read_bytes().replace(b'"size_bytes"', b'"size_bytes" ', 1))
    with pytest.raises(StorageIntegrityError) as info:
        service.copy_offsite(str(backup.id))
    assert info.value.message == (f"{manifest} was changed after the backup (its sha256 differs from the one the "
                                  "catalog recorded); nothing is copied off-site")
    assert raw_client(moto_endpoint).list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert service.list_runs(kind="offsite")[0].status == "failed"


def test_a_bucket_setting_pointing_nowhere_leaves_a_verified_copy_verified(
        service: BackupService, openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService],
        moto_endpoint: str, bucket: str) -> None:
    """OPENWATCH_BACKUP_S3_BUCKET changed to a bucket that does not exist: the run fails with that one line, and the
    copy already verified in the real bucket is not demoted (an object HEAD's bare 404 looks like a lost object)."""
    backup = service.backup(service.build_request())
    assert service.copy_offsite(str(backup.id)).status == "succeeded"
    elsewhere = make_service(openwatch_db, tmp_path / "backups",
                             **s3_overrides(moto_endpoint, "owb-no-such-bucket"))

    with pytest.raises(StorageBucketMissing) as info:
        elsewhere.copy_offsite(str(backup.id))

    assert info.value.message == ("cannot reach bucket s3://owb-no-such-bucket: bucket 'owb-no-such-bucket' does not "
                                  f"exist at {moto_endpoint}; create it or fix OPENWATCH_BACKUP_S3_BUCKET")
    copy = service.copies.get(backup.id, CopyStorage.S3)
    assert copy is not None
    assert (copy.state, copy.error, copy.attempts) == ("verified", None, 1)
