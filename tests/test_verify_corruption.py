"""Every way a backup can be damaged or forged fails verify with its own typed reason.

Quick verify catches what the file and its manifest can tell (missing, manifest, size, checksum,
unreadable); deep verify restores into a scratch database and catches what only the content can tell
(counts, canary, migration head), even when an attacker made file, manifest and catalog agree.
Each failure is a `failed` verify run with error_code `verify_<reason>`, and leaves no scratch database.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from openwatch_backup.catalog.models import BackupRun
from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.naming import manifest_name
from openwatch_backup.core.verify_result import VerifyReason, VerifyResult
from openwatch_backup.service import BackupService
from openwatch_backup.source.scratch import scratch_name
from tests.support.forge import (
    artifact_path,
    database_exists,
    edit_manifest_json,
    forge_manifest,
    manifest_path,
    read_manifest,
    replace_artifact,
    scratch_databases_of,
    update_catalog,
)

MakeService = Callable[..., BackupService]
OPENWATCH_HEAD = "035_merge_alerts"

FULL_ZSTD = (BackupKind.FULL, Compression.ZSTD)
FULL_PG = (BackupKind.FULL, Compression.PG)
FULL_NONE = (BackupKind.FULL, Compression.NONE)
PLAIN_ZSTD = (BackupKind.PLAIN, Compression.ZSTD)
PLAIN_PG = (BackupKind.PLAIN, Compression.PG)
PLAIN_NONE = (BackupKind.PLAIN, Compression.NONE)
TABLES_PG = (BackupKind.TABLES, Compression.PG)
FILE_MODES = [FULL_ZSTD, FULL_PG, FULL_NONE, PLAIN_ZSTD, PLAIN_NONE]
NOT_AN_ARCHIVE = ("pg_restore --list cannot read it (pg_restore: error: input file does not appear to be a valid "
                  "archive)")
NO_TRAILER = "pg_dump's plain output lacks its 'dump complete' trailer; the stream was cut short"


def _mode_id(mode: tuple[BackupKind, Compression]) -> str:
    return f"{mode[0]}-{mode[1]}"


@pytest.fixture
def service(openwatch_db: str, tmp_path: Path, make_service: MakeService) -> BackupService:
    return make_service(openwatch_db, tmp_path / "backups")


def take_backup(service: BackupService, mode: tuple[BackupKind, Compression]) -> BackupRun:
    run = service.backup(service.build_request(*mode))
    assert run.status == "succeeded", run.error
    return run


def verify(service: BackupService, backup: BackupRun, *, deep: bool = False) -> tuple[BackupRun, VerifyResult]:
    run, result = service.verify(str(backup.id), deep=deep)
    assert result is not None
    return run, result


def assert_passes(service: BackupService, backup: BackupRun, *, deep: bool = False) -> None:
    run, result = verify(service, backup, deep=deep)
    assert (run.status, result.reason) == ("succeeded", None), run.error


def assert_fails(service: BackupService, backup: BackupRun, reason: VerifyReason, message: str, *,
                 deep: bool = False, names: str | bool = True) -> dict[str, Any]:
    """Verify fails for `reason` with exactly `message`, recorded as a failed run linked to the backup, naming
    the file (`names`: True for the artifact's file name, or the name expected; deep failures always name the
    artifact first, so `message` is given without it), leaving no scratch database. Returns the recorded checks."""
    if deep:
        message = f"{backup.details['artifact']}: {message}"
        names = True
    run, result = verify(service, backup, deep=deep)
    assert (result.reason, result.deep, result.message) == (reason, deep, message)
    assert (run.kind, run.status, run.error_code, run.parent_id) == (
        "verify", "failed", f"verify_{reason.value}", backup.id)
    assert run.error == f"verify failed ({reason.value}): {message}"
    if names:
        assert (str(backup.details["artifact"]) if names is True else names) in run.error
    recorded = run.details["verify"]
    assert {k: v for k, v in recorded.items() if k != "checks"} == {
        "result": "failed", "reason": reason.value, "message": message, "deep": deep}
    assert recorded["checks"]["artifact"] == f"postgres/{backup.details['artifact']}"
    assert not database_exists(service.settings.database_url, scratch_name("verify", run.id))
    assert scratch_databases_of(service) == []
    checks: dict[str, Any] = recorded["checks"]
    return checks


def manifest_key(backup: BackupRun) -> str:
    return f"postgres/{manifest_name(str(backup.details['artifact']))}"


def noise(size: int = 200_000) -> bytes:
    return random.Random(size).randbytes(size)


# --- quick: the file ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", FILE_MODES, ids=_mode_id)
def test_truncated_artifact_fails_on_size(service: BackupService, mode: tuple[BackupKind, Compression]) -> None:
    backup = take_backup(service, mode)
    path = artifact_path(service, backup)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-100])

    message = f"{path.name} is {size - 100} bytes, the manifest says {size}"
    checks = assert_fails(service, backup, VerifyReason.SIZE, message)
    assert checks["size_bytes"] == size - 100


def test_deep_verify_stops_at_a_failed_quick_check(service: BackupService) -> None:
    backup = take_backup(service, FULL_ZSTD)
    path = artifact_path(service, backup)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-100])

    run, result = verify(service, backup, deep=True)

    assert (result.reason, result.deep) == (VerifyReason.SIZE, False)
    assert (run.status, run.error_code) == ("failed", "verify_size")
    assert run.error == f"verify failed (size): {path.name} is {size - 100} bytes, the manifest says {size}"
    assert run.details["request"] == {"deep": True}
    assert "scratch_database" not in run.details["verify"]["checks"]
    assert scratch_databases_of(service) == []


@pytest.mark.parametrize("mode", FILE_MODES, ids=_mode_id)
def test_one_flipped_byte_fails_on_checksum(service: BackupService, mode: tuple[BackupKind, Compression]) -> None:
    backup = take_backup(service, mode)
    path = artifact_path(service, backup)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    actual = hashlib.sha256(data).hexdigest()
    assert len(data) == backup.size_bytes
    assert actual != backup.sha256

    checks = assert_fails(service, backup, VerifyReason.CHECKSUM,
                          f"{path.name} has sha256 {actual}, the manifest says {backup.sha256}")
    assert (checks["sha256"], checks["size_bytes"]) == (actual, backup.size_bytes)


@pytest.mark.parametrize("mode", [FULL_ZSTD, PLAIN_NONE], ids=_mode_id)
def test_deleted_artifact_fails_as_missing(service: BackupService, mode: tuple[BackupKind, Compression]) -> None:
    backup = take_backup(service, mode)
    path = artifact_path(service, backup)
    path.unlink()

    assert_fails(service, backup, VerifyReason.MISSING, f"{path} does not exist")


def test_artifact_and_manifest_both_gone_is_missing(service: BackupService) -> None:
    backup = take_backup(service, FULL_NONE)
    artifact_path(service, backup).unlink()
    manifest_path(service, backup).unlink()

    assert_fails(service, backup, VerifyReason.MISSING, f"{artifact_path(service, backup)} does not exist")


# --- quick: the manifest ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [FULL_ZSTD, PLAIN_NONE], ids=_mode_id)
def test_missing_manifest_fails_on_manifest(service: BackupService, mode: tuple[BackupKind, Compression]) -> None:
    backup = take_backup(service, mode)
    path = manifest_path(service, backup)
    path.unlink()

    assert_fails(service, backup, VerifyReason.MANIFEST, f"the manifest {path} is missing", names=path.name)


def _hosts_plus_one(manifest: Manifest) -> dict[str, Any]:
    return {"row_counts": {**manifest.row_counts, "hosts": manifest.row_counts["hosts"] + 1}}


@pytest.mark.parametrize("edit", [
    _hosts_plus_one,
    lambda manifest: {"database": "someone_elses_database"},
    lambda manifest: {"openwatch_alembic_head": "999_from_the_future"},
    lambda manifest: {"canary_nonce": "0" * 32},
], ids=["row-count", "database", "alembic-head", "canary-nonce"])
def test_manifest_edited_after_the_backup_fails_on_manifest(service: BackupService,
                                                            edit: Callable[[Manifest], dict[str, Any]]) -> None:
    backup = take_backup(service, FULL_ZSTD)
    edit_manifest_json(service, backup, **edit(read_manifest(service, backup)))

    key = manifest_key(backup)
    assert_fails(service, backup, VerifyReason.MANIFEST, f"{key} was changed after the backup (its sha256 "
                 "differs from the one the catalog recorded)", names=key)


def test_manifest_that_is_not_json_fails_on_manifest(service: BackupService) -> None:
    backup = take_backup(service, FULL_ZSTD)
    manifest_path(service, backup).write_bytes(b'{"run_id": ')

    key = manifest_key(backup)
    run, result = verify(service, backup)
    assert (result.reason, run.status, run.error_code) == (VerifyReason.MANIFEST, "failed", "verify_manifest")
    assert result.message.startswith(f"{key} is not JSON (")
    assert result.message.endswith("); restore it from another copy")
    assert run.error == f"verify failed (manifest): {result.message}"
    assert scratch_databases_of(service) == []


def test_manifest_missing_a_field_fails_on_manifest(service: BackupService) -> None:
    backup = take_backup(service, PLAIN_NONE)
    path = manifest_path(service, backup)
    path.write_bytes(path.read_bytes().replace(b'"sha256"', b'"sha_256"'))

    key = manifest_key(backup)
    assert_fails(service, backup, VerifyReason.MANIFEST, f"{key} is not a valid manifest (sha256: Field required)",
                 names=key)


def test_manifest_of_another_run_fails_on_manifest_even_with_a_forged_digest(service: BackupService) -> None:
    backup = forge_manifest(service, take_backup(service, FULL_ZSTD), run_id=str(uuid.uuid4()))

    key = manifest_key(backup)
    assert_fails(service, backup, VerifyReason.MANIFEST, f"{key} describes another file than the catalog recorded "
                 "for this run (run id, size or sha256 differ)", names=key)


def test_manifest_and_its_digest_forged_but_not_the_catalogs_sha256_fails_on_manifest(
        service: BackupService) -> None:
    backup = take_backup(service, FULL_NONE)
    edit_manifest_json(service, backup, sha256="f" * 64)
    update_catalog(service, backup, details={
        "manifest_sha256": hashlib.sha256(manifest_path(service, backup).read_bytes()).hexdigest()})

    key = manifest_key(backup)
    assert_fails(service, backup, VerifyReason.MANIFEST, f"{key} describes another file than the catalog recorded "
                 "for this run (run id, size or sha256 differ)", names=key)


# --- quick: forged digests over bytes that are not a dump ---------------------------------------------


def _not_a_dump(mode: tuple[BackupKind, Compression]) -> bytes:
    """Random bytes, in the file's outer compression so that they decompress without error."""
    kind, compression = mode
    if compression is Compression.ZSTD:
        return zstandard.ZstdCompressor().compress(noise())
    if compression is Compression.PG and kind is BackupKind.PLAIN:
        return gzip.compress(noise())
    return noise()  # none, and pg-mode archives (gzip is inside the custom format, not around it)


@pytest.mark.parametrize(("mode", "problem"), [
    (FULL_ZSTD, NOT_AN_ARCHIVE), (FULL_PG, NOT_AN_ARCHIVE), (FULL_NONE, NOT_AN_ARCHIVE),
    (PLAIN_ZSTD, NO_TRAILER), (PLAIN_PG, NO_TRAILER), (PLAIN_NONE, NO_TRAILER),
], ids=["full-zstd", "full-pg", "full-none", "plain-zstd", "plain-pg", "plain-none"])
def test_random_bytes_behind_a_forged_manifest_fail_as_unreadable(
        service: BackupService, mode: tuple[BackupKind, Compression], problem: str) -> None:
    backup = replace_artifact(service, take_backup(service, mode), _not_a_dump(mode))

    name = artifact_path(service, backup).name
    checks = assert_fails(service, backup, VerifyReason.UNREADABLE, f"{name}: {problem}")
    assert checks["sha256"] == backup.sha256  # the forgery passed the checksum: this is the content check


def test_truncated_zstd_frame_behind_a_forged_manifest_fails_as_unreadable(service: BackupService) -> None:
    original = take_backup(service, FULL_ZSTD)
    backup = replace_artifact(service, original, artifact_path(service, original).read_bytes()[:-1000])

    name = artifact_path(service, backup).name
    assert_fails(service, backup, VerifyReason.UNREADABLE,
                 f"{name}: the zstd stream ends before its frame does (truncated)")


def test_corrupt_zstd_block_behind_a_forged_manifest_fails_as_unreadable(service: BackupService) -> None:
    original = take_backup(service, PLAIN_ZSTD)
    data = bytearray(artifact_path(service, original).read_bytes())
    data[len(data) // 2] ^= 0xFF
    backup = replace_artifact(service, original, bytes(data))

    name = artifact_path(service, backup).name
    run, result = verify(service, backup)
    assert (result.reason, run.status, run.error_code) == (VerifyReason.UNREADABLE, "failed", "verify_unreadable")
    assert result.message.startswith(f"{name}: cannot decompress: ")
    assert run.error == f"verify failed (unreadable): {result.message}"
    assert scratch_databases_of(service) == []


@pytest.mark.parametrize(("mode", "damage"), [
    (FULL_ZSTD, lambda data: data + b"junk"),
    (PLAIN_ZSTD, lambda data: data + b"junk"),
    (FULL_ZSTD, lambda data: data[:-4]),
    (PLAIN_PG, lambda data: data + b"junk"),
    (PLAIN_PG, lambda data: data[:-8]),
], ids=["zstd-archive-appended", "zstd-plain-appended", "zstd-last-4-bytes-cut", "gzip-plain-appended",
        "gzip-plain-size-trailer-cut"])
def test_damage_at_the_end_of_the_compressed_stream_fails_quick_verify(
        service: BackupService, mode: tuple[BackupKind, Compression], damage: Callable[[bytes], bytes]) -> None:
    original = take_backup(service, mode)
    backup = replace_artifact(service, original, damage(artifact_path(service, original).read_bytes()))

    run, result = verify(service, backup)

    assert (run.status, result.reason) == ("failed", VerifyReason.UNREADABLE)
    assert result.message.startswith(f"{artifact_path(service, backup).name}: ")


# --- deep: what only a restore can tell ---------------------------------------------------------------


@pytest.mark.parametrize("mode", [FULL_ZSTD, PLAIN_NONE, TABLES_PG], ids=_mode_id)
def test_dump_of_another_database_behind_forged_manifest_and_catalog_fails_on_canary(
        service: BackupService, make_service: MakeService, make_database: Any, openwatch_template: str,
        tmp_path: Path, mode: tuple[BackupKind, Compression]) -> None:
    mine = take_backup(service, mode)
    other_service = make_service(make_database("ow", template=openwatch_template), tmp_path / "other")
    other = take_backup(other_service, mode)
    theirs = artifact_path(other_service, other).read_bytes()
    assert theirs != artifact_path(service, mine).read_bytes()
    nonce, their_nonce = mine.details["canary_nonce"], other.details["canary_nonce"]
    assert nonce
    assert their_nonce
    assert nonce != their_nonce

    # Their bytes under my name, and my manifest and catalog row rewritten to describe them.
    forged = replace_artifact(service, mine, theirs)
    assert (forged.size_bytes, forged.sha256) == (other.size_bytes, other.sha256)
    assert read_manifest(service, forged).canary_nonce == nonce
    assert_passes(service, forged)  # every quick check is fooled

    checks = assert_fails(service, forged, VerifyReason.CANARY, "the restored database does not hold this dump's "
                          f"canary (expected nonce {nonce}, found {[their_nonce]}): the file is not the dump this "
                          "run took", deep=True, names=False)
    assert checks["canary"] == "absent"
    assert checks["row_counts"] == {t: n for t, n in mine.details["row_counts"].items()
                                    if mode[0] is not BackupKind.TABLES or t != "users"}
    assert checks["scratch_database"] == scratch_name("verify", service.list_runs(kind="verify")[0].id)


@pytest.mark.parametrize("mode", [FULL_ZSTD, PLAIN_PG, TABLES_PG], ids=_mode_id)
def test_forged_row_counts_fail_deep_verify_on_counts(service: BackupService,
                                                      mode: tuple[BackupKind, Compression]) -> None:
    original = take_backup(service, mode)
    counts = read_manifest(service, original).row_counts
    backup = forge_manifest(service, original, row_counts={**counts, "scans": counts["scans"] + 7})
    assert_passes(service, backup)

    checks = assert_fails(service, backup, VerifyReason.COUNTS, f"row counts differ (scans: {counts['scans']} "
                          f"restored, {counts['scans'] + 7} in the manifest)", deep=True, names=False)
    assert checks["row_counts"]["scans"] == counts["scans"]
    assert "canary" not in checks  # counts are checked first


@pytest.mark.parametrize("mode", [FULL_NONE, PLAIN_ZSTD], ids=_mode_id)
def test_forged_migration_head_fails_deep_verify_on_migration_head(
        service: BackupService, mode: tuple[BackupKind, Compression]) -> None:
    backup = forge_manifest(service, take_backup(service, mode), openwatch_alembic_head="036_forged")
    assert_passes(service, backup)

    checks = assert_fails(service, backup, VerifyReason.MIGRATION_HEAD, f"OpenWatch's migration head is "
                          f"{OPENWATCH_HEAD} after the restore, the manifest says 036_forged", deep=True, names=False)
    assert (checks["openwatch_alembic_head"], checks["canary"]) == (OPENWATCH_HEAD, "found")


@pytest.mark.parametrize("mode", [FULL_NONE, FULL_PG], ids=_mode_id)
def test_truncated_archive_behind_a_forged_manifest_fails_deep_verify_as_unreadable(
        service: BackupService, mode: tuple[BackupKind, Compression]) -> None:
    """`pg_restore --list` reads only the archive's table of contents; the restore reads the data."""
    original = take_backup(service, mode)
    backup = replace_artifact(service, original, artifact_path(service, original).read_bytes()[:-1000])

    assert_fails(service, backup, VerifyReason.UNREADABLE, "pg_restore exited with status 1: pg_restore: error: "
                 "could not read from input file: end of file", deep=True, names=False)


def _with_bad_sql(data: bytes) -> bytes:
    at = data.index(b"\nCREATE TABLE")
    return data[:at] + b"\nTHIS IS NOT SQL;\n" + data[at:]


def test_plain_dump_whose_sql_fails_fails_deep_verify_as_unreadable(service: BackupService) -> None:
    original = take_backup(service, PLAIN_NONE)
    backup = replace_artifact(service, original, _with_bad_sql(artifact_path(service, original).read_bytes()))
    assert_passes(service, backup)  # header and trailer are intact

    run, result = verify(service, backup, deep=True)

    assert (result.reason, result.deep, run.status, run.error_code) == (
        VerifyReason.UNREADABLE, True, "failed", "verify_unreadable")
    # ON_ERROR_STOP; the message keeps psql's ERROR line, not a trailing LINE/caret line
    assert result.message.startswith(f"{backup.details['artifact']}: psql exited with status 3: ERROR:  syntax error")
    assert run.error == f"verify failed (unreadable): {result.message}"
    assert "restore_seconds" not in result.checks
    assert scratch_databases_of(service) == []


def _forge_counts(service: BackupService, backup: BackupRun) -> BackupRun:
    counts = read_manifest(service, backup).row_counts
    return forge_manifest(service, backup, row_counts={**counts, "hosts": counts["hosts"] + 1})


@pytest.mark.parametrize("forge", [
    _forge_counts,
    lambda service, backup: forge_manifest(service, backup, openwatch_alembic_head="036_forged"),
    lambda service, backup: forge_manifest(service, backup, canary_nonce="0" * 32),
    lambda service, backup: replace_artifact(service, backup, artifact_path(service, backup).read_bytes()[:-1000]),
], ids=["counts", "migration-head", "canary", "restore-fails"])
def test_deep_failure_message_names_the_file(service: BackupService,
                                             forge: Callable[[BackupService, BackupRun], BackupRun]) -> None:
    backup = forge(service, take_backup(service, FULL_NONE))

    run, result = verify(service, backup, deep=True)

    assert run.status == "failed"
    assert result.deep
    assert str(backup.details["artifact"]) in result.message


def test_failed_sql_names_the_error(service: BackupService) -> None:
    original = take_backup(service, PLAIN_NONE)
    backup = replace_artifact(service, original, _with_bad_sql(artifact_path(service, original).read_bytes()))

    run, result = verify(service, backup, deep=True)

    assert run.error_code == "verify_unreadable"
    assert 'syntax error at or near "THIS"' in result.message
