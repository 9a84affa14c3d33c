"""Build the pg_dump command line for a kind and a compression mode.

The argv is a list (never a shell string) and never holds a secret: the connection comes from the
child's environment (PGHOST, PGUSER, PGPASSWORD...), see core/dsn.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from openwatch_backup.core.kinds import BackupKind, Compression

CANARY_TABLE = "backup_canary"
CATALOG_TABLE = "backup_runs"
# pg_dump writes zstd inside a custom archive from PostgreSQL 16 on; before that -Z means gzip only.
NATIVE_ZSTD_MAJOR = 16


@dataclass(frozen=True)
class DumpPlan:
    argv: list[str]
    format: str  # "custom" or "plain"
    wrapper: str | None  # "zstd": we compress pg_dump's stdout; None: the bytes are stored as pg_dump wrote them
    extension: str
    tables: list[str]
    excluded_table_data: list[str]
    canary_included: bool


def plan_dump(
    pg_dump: str,
    pg_dump_major: int,
    kind: BackupKind,
    compression: Compression,
    *,
    zstd_level: int = 3,
    tables: list[str] | None = None,
    snapshot: str | None = None,
    canary_table: bool = True,
) -> DumpPlan:
    """The command that writes the dump to stdout, and how its bytes are to be stored."""
    archive = kind.is_archive
    argv = [pg_dump, "--no-password", "--format=custom" if archive else "--format=plain"]
    if snapshot:
        # Counts, canary and dump all see one snapshot, so the manifest describes exactly this dump.
        argv.append(f"--snapshot={snapshot}")
    wrapper: str | None = None
    if compression is Compression.ZSTD:
        if archive and pg_dump_major >= NATIVE_ZSTD_MAJOR:
            argv.append(f"--compress=zstd:{zstd_level}")
        else:
            argv.append("--compress=0")
            wrapper = "zstd"
    elif compression is Compression.PG:
        # Custom format compresses with gzip by default; plain needs a level to write gzip at all.
        if not archive:
            argv.append("--compress=6")
    else:
        argv.append("--compress=0")

    selected: list[str] = []
    excluded: list[str] = []
    canary = canary_table and kind is not BackupKind.SCHEMA
    if kind is BackupKind.TABLES:
        selected = list(tables or [])
        # strict-names: a table that does not exist fails the dump instead of silently dumping less.
        argv.append("--strict-names")
        argv += [f"--table={name}" for name in selected]
        if canary_table:  # absent before `db upgrade`; strict-names would then fail the whole dump
            argv.append(f"--table={CANARY_TABLE}")
    elif kind is BackupKind.SCHEMA:
        argv.append("--schema-only")
    else:
        # The catalog's rows describe backups, not OpenWatch data; restoring them would resurrect a
        # half-finished "running" row. The table itself stays in the dump; manifests rebuild its rows.
        excluded = [CATALOG_TABLE]
        argv += [f"--exclude-table-data={name}" for name in excluded]
    if kind is BackupKind.PLAIN:
        argv += ["--clean", "--if-exists"]

    if archive:
        extension = ".dump.zst" if wrapper else ".dump"
    else:
        extension = ".sql.zst" if wrapper else (".sql.gz" if compression is Compression.PG else ".sql")
    return DumpPlan(argv=argv, format="custom" if archive else "plain", wrapper=wrapper, extension=extension,
                    tables=selected, excluded_table_data=excluded, canary_included=canary)
