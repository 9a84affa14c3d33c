"""`verify --copy s3` and the drill's remote re-read catch a remote object that was truncated, altered or
deleted (moto over HTTP), fail the S3 copy's row with the reason, and leave the local copy alone."""

from __future__ import annotations

import hashlib

import pytest

from openwatch_backup.core.copies import CopyStorage
from tests.support.moto_server import PREFIX, raw_client
from tests.support.offsite_read import (  # noqa: F401 - s3lab_fixture is a fixture
    copy_offsite,
    copy_row,
    invoke,
    lab_env,
    local_paths,
    lose_local,
    object_key,
    remote_bytes,
    replace_remote,
    s3lab_fixture,
    sha256_of,
)
from tests.support.restore_helpers import Lab

pytestmark = pytest.mark.usefixtures("restore_env")




def _flipped(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0xFF
    return bytes(changed)


@pytest.mark.parametrize("damage", ["truncated", "altered"])
def test_verify_copy_s3_catches_a_changed_object(s3lab: Lab, moto_endpoint: str, bucket: str, damage: str) -> None:
    backup = s3lab.backup()
    verified = s3lab.service.verify(str(backup.id))[0]
    assert verified.details["read_from"] == "local"
    copy_offsite(s3lab, backup)
    original = remote_bytes(moto_endpoint, bucket, backup)
    body = original[:-1000] if damage == "truncated" else _flipped(original)
    replace_remote(moto_endpoint, bucket, backup, body)
    artifact, _ = local_paths(s3lab, backup)
    local_sha = sha256_of(artifact)
    location = f"s3://{bucket}/{PREFIX}/postgres/{artifact.name}"

    result = invoke(lab_env(s3lab, moto_endpoint, bucket), "verify", str(backup.id)[:8], "--copy", "s3")

    if damage == "truncated":
        reason, problem = "size", f"{artifact.name} is {len(body)} bytes, the manifest says {len(original)}"
    else:
        reason, problem = "checksum", (f"{artifact.name} has sha256 {hashlib.sha256(body).hexdigest()}, the "
                                       f"manifest says {backup.sha256}")
    line = f"verify failed ({reason}): {problem} (read from the S3 copy {location})"
    assert (result.exit_code, result.stdout, result.stderr) == (9, "", f"error: {line}\n")
    verify = s3lab.service.list_runs(kind="verify")[0]
    assert (verify.status, verify.error_code, verify.error) == ("failed", f"verify_{reason}", line)
    assert (verify.details["copy"], verify.details["request"]) == ("s3", {"deep": False, "copy": "s3"})
    remote = copy_row(s3lab, backup, CopyStorage.S3)
    assert remote is not None
    assert (remote.state, remote.error, remote.reverified_at) == ("failed", line, None)
    # The local copy is another copy: its row and its bytes are as the local verify left them.
    local = copy_row(s3lab, backup, CopyStorage.LOCAL)
    assert local is not None
    assert (local.state, local.error, sha256_of(artifact)) == ("verified", None, local_sha)


def test_verify_copy_s3_passes_and_records_the_reread(s3lab: Lab, moto_endpoint: str, bucket: str) -> None:
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)

    verify, result = s3lab.service.verify(str(backup.id), copy="s3")

    assert result is not None
    assert (result.passed, verify.status, verify.details["copy"]) == (True, "succeeded", "s3")
    assert result.checks["sha256"] == backup.sha256
    remote = copy_row(s3lab, backup, CopyStorage.S3)
    assert remote is not None
    assert (remote.state, remote.reverified_at is not None) == ("verified", True)
    local = copy_row(s3lab, backup, CopyStorage.LOCAL)
    assert local is not None
    assert local.state == "pending"  # the local file was not read


def test_a_metadata_sha256_that_disagrees_is_caught(s3lab: Lab, moto_endpoint: str, bucket: str) -> None:
    """Same bytes, but whoever rewrote the object left another sha256 in its metadata."""
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    body = remote_bytes(moto_endpoint, bucket, backup)
    wrong = hashlib.sha256(b"not this backup").hexdigest()
    raw_client(moto_endpoint).put_object(Bucket=bucket, Key=object_key(backup), Body=body, Metadata={"sha256": wrong})

    _, result = s3lab.service.verify(str(backup.id), copy="s3")

    assert result is not None
    location = f"s3://{bucket}/{object_key(backup)}"
    assert (str(result.reason), result.message) == (
        "checksum", f"{location} has metadata sha256 {wrong}, the manifest says {backup.sha256}")


def test_a_missing_remote_object_is_one_line(s3lab: Lab, moto_endpoint: str, bucket: str) -> None:
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    raw_client(moto_endpoint).delete_object(Bucket=bucket, Key=object_key(backup))

    result = invoke(lab_env(s3lab, moto_endpoint, bucket), "verify", str(backup.id)[:8], "--copy", "s3")

    line = f"verify failed (missing): s3://{bucket}/{object_key(backup)} does not exist"
    assert (result.exit_code, result.stdout, result.stderr) == (9, "", f"error: {line}\n")
    remote = copy_row(s3lab, backup, CopyStorage.S3)
    assert remote is not None
    assert (remote.state, remote.error) == ("failed", line)


def test_neither_copy_there_names_both_places(s3lab: Lab, moto_endpoint: str, bucket: str) -> None:
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    lose_local(s3lab, backup)
    raw_client(moto_endpoint).delete_object(Bucket=bucket, Key=object_key(backup))
    env = lab_env(s3lab, moto_endpoint, bucket)
    where = (f"{local_paths(s3lab, backup)[0]} does not exist, nor does its off-site copy "
             f"s3://{bucket}/{object_key(backup)}")

    verify = invoke(env, "verify", str(backup.id)[:8])
    restore = invoke(env, "restore", str(backup.id)[:8], "--into", "never_made")

    assert (verify.exit_code, verify.stderr) == (9, f"error: verify failed (missing): {where}\n")
    assert restore.stderr == f"error: backup {backup.id} failed verification (missing): {where}\n"
    assert restore.exit_code != 0
    for storage in CopyStorage:
        row = copy_row(s3lab, backup, storage)
        assert row is not None
        assert row.state == "failed"


def test_verify_copy_s3_without_a_bucket_is_a_config_error(lab: Lab) -> None:
    backup = lab.backup()

    result = invoke(lab_env(lab), "verify", str(backup.id)[:8], "--copy", "s3")

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("error: off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET (and "
                             "OPENWATCH_BACKUP_S3_ENDPOINT_URL for a store other than AWS S3)\n")
    assert lab.service.list_runs(kind="verify") == []  # refused before anything was recorded


def test_drill_fails_when_the_newest_remote_copy_was_altered(s3lab: Lab, moto_endpoint: str, bucket: str) -> None:
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    original = remote_bytes(moto_endpoint, bucket, backup)
    replace_remote(moto_endpoint, bucket, backup, _flipped(original))
    artifact, _ = local_paths(s3lab, backup)
    local_sha = sha256_of(artifact)

    run = s3lab.service.drill()

    info = run.details["drill"]
    assert (info["read_from"], info["verify"]["result"]) == ("local", "passed")  # the restore itself was fine
    assert (info["remote"]["backup_run"], info["remote"]["verify"]["reason"]) == (str(backup.id), "checksum")
    assert (run.status, run.error_code) == ("failed", "remote_checksum")
    assert run.error == (f"the off-site copy of backup {backup.id} failed its re-read: verify failed (checksum): "
                         f"{artifact.name} has sha256 {hashlib.sha256(_flipped(original)).hexdigest()}, the manifest "
                         f"says {backup.sha256} (read from the S3 copy s3://{bucket}/{object_key(backup)})")
    remote = copy_row(s3lab, backup, CopyStorage.S3)
    assert remote is not None
    assert remote.state == "failed"
    assert sha256_of(artifact) == local_sha
    assert s3lab.leftovers() == []


def test_restore_refuses_a_truncated_remote_copy_naming_it(s3lab: Lab, moto_endpoint: str, bucket: str) -> None:
    backup = s3lab.backup()
    copy_offsite(s3lab, backup)
    original = remote_bytes(moto_endpoint, bucket, backup)
    replace_remote(moto_endpoint, bucket, backup, original[:-1])
    lose_local(s3lab, backup)

    result = invoke(lab_env(s3lab, moto_endpoint, bucket), "restore", str(backup.id)[:8], "--into", "never_made")

    artifact = str(backup.details["artifact"])
    assert result.stderr == (f"error: backup {backup.id} failed verification (size): {artifact} is "
                             f"{len(original) - 1} bytes, the manifest says {len(original)} (read from the S3 copy "
                             f"s3://{bucket}/{object_key(backup)})\n")
    assert result.exit_code != 0
    assert s3lab.only_restore_run().details["read_from"] == "s3"
