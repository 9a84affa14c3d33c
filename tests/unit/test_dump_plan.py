"""plan_dump: the exact pg_dump argv, storage wrapper and file extension for every kind and compression."""

from __future__ import annotations

import pytest

from openwatch_backup.core.dsn import parse_database_url
from openwatch_backup.core.dump_plan import plan_dump
from openwatch_backup.core.kinds import BackupKind, Compression

PG_DUMP = "/usr/lib/postgresql/16/bin/pg_dump"
TABLES = ["hosts", "public.scans"]
BASE = [PG_DUMP, "--no-password"]
CUSTOM = [*BASE, "--format=custom"]
PLAIN = [*BASE, "--format=plain"]
NO_RUNS = ["--exclude-table-data=backup_runs"]
CLEAN = ["--clean", "--if-exists"]
PICKED = ["--strict-names", "--table=hosts", "--table=public.scans", "--table=backup_canary"]
F, P, S, T = BackupKind.FULL, BackupKind.PLAIN, BackupKind.SCHEMA, BackupKind.TABLES
Z, G, N = Compression.ZSTD, Compression.PG, Compression.NONE

# (major, kind, compression) -> (argv, wrapper, extension)
CASES: dict[tuple[int, BackupKind, Compression], tuple[list[str], str | None, str]] = {
    (15, F, Z): ([*CUSTOM, "--compress=0", *NO_RUNS], "zstd", ".dump.zst"),
    (15, F, G): ([*CUSTOM, *NO_RUNS], None, ".dump"),
    (15, F, N): ([*CUSTOM, "--compress=0", *NO_RUNS], None, ".dump"),
    (15, P, Z): ([*PLAIN, "--compress=0", *NO_RUNS, *CLEAN], "zstd", ".sql.zst"),
    (15, P, G): ([*PLAIN, "--compress=6", *NO_RUNS, *CLEAN], None, ".sql.gz"),
    (15, P, N): ([*PLAIN, "--compress=0", *NO_RUNS, *CLEAN], None, ".sql"),
    (15, S, Z): ([*PLAIN, "--compress=0", "--schema-only"], "zstd", ".sql.zst"),
    (15, S, G): ([*PLAIN, "--compress=6", "--schema-only"], None, ".sql.gz"),
    (15, S, N): ([*PLAIN, "--compress=0", "--schema-only"], None, ".sql"),
    (15, T, Z): ([*CUSTOM, "--compress=0", *PICKED], "zstd", ".dump.zst"),
    (15, T, G): ([*CUSTOM, *PICKED], None, ".dump"),
    (15, T, N): ([*CUSTOM, "--compress=0", *PICKED], None, ".dump"),
    # From 16 on, a custom archive carries zstd inside it: no wrapper, a plain .dump for pg_restore.
    (16, F, Z): ([*CUSTOM, "--compress=zstd:3", *NO_RUNS], None, ".dump"),
    (16, F, G): ([*CUSTOM, *NO_RUNS], None, ".dump"),
    (16, F, N): ([*CUSTOM, "--compress=0", *NO_RUNS], None, ".dump"),
    (16, P, Z): ([*PLAIN, "--compress=0", *NO_RUNS, *CLEAN], "zstd", ".sql.zst"),
    (16, P, G): ([*PLAIN, "--compress=6", *NO_RUNS, *CLEAN], None, ".sql.gz"),
    (16, P, N): ([*PLAIN, "--compress=0", *NO_RUNS, *CLEAN], None, ".sql"),
    (16, S, Z): ([*PLAIN, "--compress=0", "--schema-only"], "zstd", ".sql.zst"),
    (16, S, G): ([*PLAIN, "--compress=6", "--schema-only"], None, ".sql.gz"),
    (16, S, N): ([*PLAIN, "--compress=0", "--schema-only"], None, ".sql"),
    (16, T, Z): ([*CUSTOM, "--compress=zstd:3", *PICKED], None, ".dump"),
    (16, T, G): ([*CUSTOM, *PICKED], None, ".dump"),
    (16, T, N): ([*CUSTOM, "--compress=0", *PICKED], None, ".dump"),
}


def test_every_kind_and_compression_is_covered() -> None:
    assert set(CASES) == {(m, k, c) for m in (15, 16) for k in BackupKind for c in Compression}


@pytest.mark.parametrize(("major", "kind", "compression"), list(CASES), ids=lambda v: str(v))
def test_argv_wrapper_and_extension(major: int, kind: BackupKind, compression: Compression) -> None:
    argv, wrapper, extension = CASES[(major, kind, compression)]

    plan = plan_dump(PG_DUMP, major, kind, compression, tables=TABLES)

    assert (plan.argv, plan.wrapper, plan.extension) == (argv, wrapper, extension)
    assert plan.format == ("custom" if kind in (F, T) else "plain")


@pytest.mark.parametrize(("kind", "tables", "excluded", "canary"), [
    (F, [], ["backup_runs"], True),
    (P, [], ["backup_runs"], True),
    (S, [], [], False),
    (T, TABLES, [], True),
])
def test_recorded_selection(kind: BackupKind, tables: list[str], excluded: list[str], canary: bool) -> None:
    plan = plan_dump(PG_DUMP, 15, kind, Z, tables=TABLES)

    assert (plan.tables, plan.excluded_table_data, plan.canary_included) == (tables, excluded, canary)


def test_zstd_level_reaches_native_compression() -> None:
    assert plan_dump(PG_DUMP, 17, F, Z, zstd_level=19).argv == [*CUSTOM, "--compress=zstd:19", *NO_RUNS]


def test_snapshot_is_passed_through_right_after_the_format() -> None:
    plan = plan_dump(PG_DUMP, 15, T, N, tables=["hosts"], snapshot="00000003-0000001B-1")

    assert plan.argv == [*CUSTOM, "--snapshot=00000003-0000001B-1", "--compress=0", "--strict-names",
                         "--table=hosts", "--table=backup_canary"]


def test_tables_kind_without_tables_still_dumps_the_canary_strictly() -> None:
    assert plan_dump(PG_DUMP, 15, T, N).argv == [*CUSTOM, "--compress=0", "--strict-names",
                                                 "--table=backup_canary"]


@pytest.mark.parametrize(("major", "kind", "compression"), list(CASES), ids=lambda v: str(v))
def test_no_argv_holds_the_password_or_the_connection(major: int, kind: BackupKind, compression: Compression) -> None:
    target = parse_database_url("postgresql://openwatch:Pa55word-xyz@db.internal:5432/openwatch")

    plan = plan_dump(PG_DUMP, major, kind, compression, tables=TABLES, snapshot="00000003-0000001B-1")

    assert target.password is not None
    assert [arg for arg in plan.argv if target.password in arg or "db.internal" in arg or "://" in arg] == []
