"""Failure is never success: every way a backup can break leaves a failed run, no file, no manifest."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.errors import ClientVersionMismatch, DumpFailed, InsufficientSpace, StorageError
from openwatch_backup.operations.backup import ProgressEvent
from openwatch_backup.service import BackupService
from tests.support.procs import children_named


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _only_run(service: BackupService):
    runs = service.list_runs()
    assert len(runs) == 1
    return runs[0]


def test_pg_dump_killed_mid_stream(bulky_db: str, tmp_path: Path, make_service) -> None:
    service = make_service(bulky_db, tmp_path / "b", heartbeat_seconds=0.01)
    killed: list[int] = []

    def kill_pg_dump(event: ProgressEvent) -> None:
        if event.phase == "dumping" and event.bytes_in and not killed:
            killed.extend(children_named(os.getpid(), "pg_dump"))
            assert killed, "pg_dump had already exited: the dump is too small for this test"
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    with pytest.raises(DumpFailed, match=r"^pg_dump was killed by SIGKILL"):
        service.backup(service.build_request(BackupKind.FULL, Compression.ZSTD), observer=kill_pg_dump)

    run = _only_run(service)
    assert (run.status, run.error_code, run.phase) == ("failed", "dump_failed", "dumping")
    assert run.error is not None
    assert run.error.startswith("pg_dump was killed by SIGKILL")
    assert run.bytes_done > 0  # it was interrupted mid-stream, not before
    assert _files(tmp_path / "b") == []
    assert children_named(os.getpid(), "pg_dump") == []


def test_pg_dump_error_exit_names_the_reason(openwatch_db: str, tmp_path: Path, make_service) -> None:
    service = make_service(openwatch_db, tmp_path / "b")
    request = service.build_request(BackupKind.TABLES, Compression.ZSTD, ["hosts", "no_such_table"])
    with pytest.raises(DumpFailed) as caught:
        service.backup(request)
    database = openwatch_db.rsplit("/", 1)[1]
    assert caught.value.message == (f"no table no_such_table in database {database}; the tables kind backs up "
                                    "tables named by --tables or OPENWATCH_BACKUP_TABLES, and each must exist")
    run = _only_run(service)
    assert (run.status, run.error_code, run.error) == ("failed", "dump_failed", caught.value.message)
    assert _files(tmp_path / "b") == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs: a real full disk, not a simulated one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_disk_full_mid_stream(bulky_db: str, small_disk: Path, make_service) -> None:
    # Estimate and reserve off, so preflight lets it start and the disk fills during the dump.
    service = make_service(bulky_db, small_disk / "b", free_space_factor=0, free_space_reserve_mib=0)
    with pytest.raises(InsufficientSpace, match=r"^the disk holding .* is full; free space or point "
                                                r"OPENWATCH_BACKUP_DIR elsewhere$"):
        service.backup(service.build_request(BackupKind.FULL, Compression.NONE))
    run = _only_run(service)
    assert (run.status, run.error_code) == ("failed", "insufficient_space")
    assert _files(small_disk / "b") == []
    assert children_named(os.getpid(), "pg_dump") == []


def test_preflight_refuses_when_space_is_short_before_any_file(bulky_db: str, small_disk: Path, make_service) -> None:
    service = make_service(bulky_db, small_disk / "b")
    with pytest.raises(InsufficientSpace, match=r"^only .* free at .*, and this backup needs about .*MiB \(database "
                                                r"owb_bulky_.* is .*\); free space, point OPENWATCH_BACKUP_DIR"):
        service.backup(service.build_request(BackupKind.FULL, Compression.ZSTD))
    run = _only_run(service)
    assert (run.status, run.error_code, run.phase) == ("failed", "insufficient_space", "preflight")
    assert _files(small_disk / "b") == []


def test_preflight_refuses_an_unwritable_target(openwatch_db: str, tmp_path: Path, make_service) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(readonly)], check=True)
    try:
        service = make_service(openwatch_db, readonly / "backups")
        with pytest.raises(StorageError, match=r"^cannot write .*/ro/backups/x \(Read-only file system\); make the "
                                               r"directory writable"):
            service.backup(service.build_request(BackupKind.FULL, Compression.ZSTD))
    finally:
        subprocess.run(["umount", "-l", str(readonly)], check=True)
    assert (_only_run(service).status, _only_run(service).error_code) == ("failed", "storage")


def test_a_backup_dir_that_cannot_exist_names_the_setting(openwatch_db: str, tmp_path: Path, make_service) -> None:
    """Any other OS error (here a file where a folder must be) still says what to set, in one line."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    service = make_service(openwatch_db, blocker / "backups")
    with pytest.raises(StorageError) as info:
        service.backup(service.build_request(BackupKind.FULL, Compression.ZSTD))
    assert info.value.message.endswith("; point OPENWATCH_BACKUP_DIR at a directory this user can create and write")
    assert "\n" not in info.value.message
    assert not blocker.is_dir()


def test_preflight_refuses_a_pg_dump_older_than_the_server(openwatch_db: str, tmp_path: Path, make_service) -> None:
    """No older PostgreSQL client is packaged here, so a stand-in reports version 14 the way pg_dump does."""
    bin_dir = tmp_path / "pg14"
    bin_dir.mkdir()
    stand_in = bin_dir / "pg_dump"
    stand_in.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 14.11'\n")
    stand_in.chmod(0o755)
    service = make_service(openwatch_db, tmp_path / "b", pg_bin_dir=bin_dir)
    with pytest.raises(ClientVersionMismatch) as caught:
        service.backup(service.build_request(BackupKind.FULL, Compression.ZSTD))
    assert caught.value.message.startswith(f"pg_dump 14.11 ({stand_in}) is older than the server (PostgreSQL 15.")
    assert caught.value.message.endswith("install a PostgreSQL 15 client (Debian/Ubuntu: apt-get install "
                                         "postgresql-client-15; UBI/RHEL: dnf install postgresql15) or set "
                                         "OPENWATCH_BACKUP_PG_BIN_DIR to its bin folder (no Docker API answers "
                                         "either, so the database container's own clients cannot stand in)")
    assert _files(tmp_path / "b") == []


def test_same_second_backups_get_distinct_names(openwatch_db: str, tmp_path: Path, make_service) -> None:
    service = make_service(openwatch_db, tmp_path / "b")
    runs = [service.backup(service.build_request(BackupKind.SCHEMA, Compression.NONE)) for _ in range(3)]
    names = [r.details["artifact"] for r in runs]
    assert len(set(names)) == 3
    assert all(r.status == "succeeded" for r in runs)
