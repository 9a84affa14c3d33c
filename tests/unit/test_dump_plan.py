"""plan_dump: the exact pg_dump argv, storage wrapper and file extension for every kind and compression."""

from __future__ import annotations

import pytest

from openwatch_backup.core.dsn import parse_database_url
from openwatch_backup.core.dump_plan import name_pattern, plan_dump, system_table_problem
from openwatch_backup.core.kinds import DATABASE_KINDS, BackupKind, Compression

PG_DUMP = "/usr/lib/postgresql/16/bin/pg_dump"
TABLES = ["hosts", "public.scans"]
BASE = [PG_DUMP, "--no-password"]
CUSTOM = [*BASE, "--format=custom"]
PLAIN = [*BASE, "--format=plain"]
NO_RUNS = ["--exclude-table-data=backup_runs", "--exclude-table-data=backup_copies"]
CLEAN = ["--clean", "--if-exists"]
# The tables kind: every definition, and the data of all but the selected tables (and canary) left out.
LEAVE_OUT = ["public.backup_runs", "public.users", 'reports.Mixed Case "Table"']
PICKED = ['--exclude-table-data="public"."backup_runs"', '--exclude-table-data="public"."users"',
          '--exclude-table-data="reports"."Mixed Case ""Table"""']
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
    assert set(CASES) == {(m, k, c) for m in (15, 16) for k in DATABASE_KINDS for c in Compression}


@pytest.mark.parametrize(("major", "kind", "compression"), list(CASES), ids=lambda v: str(v))
def test_argv_wrapper_and_extension(major: int, kind: BackupKind, compression: Compression) -> None:
    argv, wrapper, extension = CASES[(major, kind, compression)]

    plan = plan_dump(PG_DUMP, major, kind, compression, tables=TABLES, leave_out=LEAVE_OUT)

    assert (plan.argv, plan.wrapper, plan.extension) == (argv, wrapper, extension)
    assert plan.format == ("custom" if kind in (F, T) else "plain")


@pytest.mark.parametrize(("kind", "tables", "excluded", "canary"), [
    (F, [], ["backup_runs", "backup_copies"], True),
    (P, [], ["backup_runs", "backup_copies"], True),
    (S, [], [], False),
    (T, TABLES, LEAVE_OUT, True),
])
def test_recorded_selection(kind: BackupKind, tables: list[str], excluded: list[str], canary: bool) -> None:
    plan = plan_dump(PG_DUMP, 15, kind, Z, tables=TABLES, leave_out=LEAVE_OUT)

    assert (plan.tables, plan.excluded_table_data, plan.canary_included) == (tables, excluded, canary)


def test_zstd_level_reaches_native_compression() -> None:
    assert plan_dump(PG_DUMP, 17, F, Z, zstd_level=19).argv == [*CUSTOM, "--compress=zstd:19", *NO_RUNS]


def test_snapshot_is_passed_through_right_after_the_format() -> None:
    plan = plan_dump(PG_DUMP, 15, T, N, tables=["hosts"], leave_out=["public.users"],
                     snapshot="00000003-0000001B-1")

    assert plan.argv == [*CUSTOM, "--snapshot=00000003-0000001B-1", "--compress=0",
                         '--exclude-table-data="public"."users"']


def test_tables_kind_never_restricts_the_schema() -> None:
    """`--table`/`-t` would dump no types, extensions or sequences: the archive could not be restored alone."""
    plan = plan_dump(PG_DUMP, 15, T, N, tables=["hosts"], leave_out=[])

    assert [arg for arg in plan.argv if arg.startswith(("-t", "--table", "--schema", "-n"))] == []
    assert plan.tables == ["hosts"]


def test_name_pattern_matches_exactly() -> None:
    # Quoted parts: no wildcard (`*`, `?`, `.`), case kept, embedded quotes doubled.
    assert name_pattern("public.scan_*") == '"public"."scan_*"'
    assert name_pattern('s.A "b"') == '"s"."A ""b"""'


@pytest.mark.parametrize(("name", "found_as"), [
    ("pg_catalog.pg_authid", None),
    ("PG_CATALOG.pg_authid", None),
    ("information_schema.sql_features", None),
    ("pg_toast.pg_toast_1260", None),
    ("pg_authid", "pg_catalog.pg_authid"),  # unqualified, found through the search path
])
def test_system_catalogs_are_refused_by_name(name: str, found_as: str | None) -> None:
    problem = system_table_problem(name, found_as)

    assert problem is not None
    assert problem.startswith(f"{name}{f' ({found_as})' if found_as else ''} is a PostgreSQL system catalog, "
                              "not an OpenWatch table")
    assert "\n" not in problem


@pytest.mark.parametrize(("name", "found_as"), [
    ("hosts", None), ("hosts", "public.hosts"), ("reports.awkward", None), ("pg_like_but_public", "public.pg_x"),
])
def test_openwatch_tables_pass(name: str, found_as: str | None) -> None:
    assert system_table_problem(name, found_as) is None


@pytest.mark.parametrize(("major", "kind", "compression"), list(CASES), ids=lambda v: str(v))
def test_no_argv_holds_the_password_or_the_connection(major: int, kind: BackupKind, compression: Compression) -> None:
    target = parse_database_url("postgresql://openwatch:Pa55word-xyz@db.internal:5432/openwatch")

    plan = plan_dump(PG_DUMP, major, kind, compression, tables=TABLES, leave_out=LEAVE_OUT,
                     snapshot="00000003-0000001B-1")

    assert target.password is not None
    assert [arg for arg in plan.argv if target.password in arg or "db.internal" in arg or "://" in arg] == []
