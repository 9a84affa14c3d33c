"""Build the pg_dump command line for a kind and a compression mode.

The argv is a list (never a shell string) and never holds a secret: the connection comes from the
child's environment (PGHOST, PGUSER, PGPASSWORD...), see core/dsn.py.

The `tables` kind is not `pg_dump -t`: that dumps no types, extensions or sequences the tables need, so
its archive cannot be restored into an empty database (OpenWatch's hosts.os_family is an enum). It dumps
the whole schema, like a full backup, and the data of the selected tables only: every other table's data,
and every sequence's value but those the selected tables own, is left out by name (`--exclude-table-data`),
from a list taken inside the dump's snapshot (source/facts.py). Restoring `--table T --data-only` still
touches only T; restoring into a new database gets every definition (operations/scratch_list.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from openwatch_backup.core.kinds import BackupKind, Compression

CANARY_TABLE = "backup_canary"
CATALOG_TABLE = "backup_runs"
COPIES_TABLE = "backup_copies"  # rows about backup_runs' rows: left out with them (a restore's FK would fail)
# pg_catalog holds pg_authid (role password hashes); pg_toast, pg_temp_N likewise are no OpenWatch tables.
# PostgreSQL reserves schema names starting with pg_ for the system.
_INFORMATION_SCHEMA = "information_schema"
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


def is_system_schema(schema: str) -> bool:
    schema = schema.lower()
    return schema == _INFORMATION_SCHEMA or schema.startswith("pg_")


def system_table_problem(name: str, found_as: str | None = None) -> str | None:
    """Why table `name` (as given: `table` or `schema.table`, unquoted) may not be backed up, or None.

    `found_as` is the `schema.table` the database resolved it to: an unqualified `pg_authid` is found in
    pg_catalog through the search path, which only the database can tell.
    """
    schema = (found_as or name).rpartition(".")[0]
    if schema and is_system_schema(schema):
        where = f" ({found_as})" if found_as and found_as != name else ""
        return (f"{name}{where} is a PostgreSQL system catalog, not an OpenWatch table; the tables kind backs "
                "up OpenWatch's own tables, e.g. hosts,scans,scan_findings")
    return None


def name_pattern(qualified: str) -> str:
    """A pg_dump pattern matching exactly `schema.table` (quoted: no wildcard, case kept)."""
    schema, _, table = qualified.partition(".")
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))


def plan_dump(
    pg_dump: str,
    pg_dump_major: int,
    kind: BackupKind,
    compression: Compression,
    *,
    zstd_level: int = 3,
    tables: list[str] | None = None,
    leave_out: list[str] | None = None,
    snapshot: str | None = None,
    canary_table: bool = True,
) -> DumpPlan:
    """The command that writes the dump to stdout, and how its bytes are to be stored.

    `leave_out` (kind tables): `schema.name` of every table (and sequence) whose data stays out, i.e. all but
    the selected tables, their sequences and the canary; source/facts.py's `tables_left_out` lists them.
    """
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
        # Every definition, and the data of the selected tables (and the canary) only; see the docstring.
        excluded = list(leave_out or [])
        argv += [f"--exclude-table-data={name_pattern(name)}" for name in excluded]
    elif kind is BackupKind.SCHEMA:
        argv.append("--schema-only")
    else:
        # The catalog's rows describe backups, not OpenWatch data; restoring them would resurrect a
        # half-finished "running" row. The table itself stays in the dump; manifests rebuild its rows. The
        # copies' rows go with the runs they point at.
        excluded = [CATALOG_TABLE, COPIES_TABLE]
        argv += [f"--exclude-table-data={name}" for name in excluded]
    if kind is BackupKind.PLAIN:
        argv += ["--clean", "--if-exists"]

    if archive:
        extension = ".dump.zst" if wrapper else ".dump"
    else:
        extension = ".sql.zst" if wrapper else (".sql.gz" if compression is Compression.PG else ".sql")
    return DumpPlan(argv=argv, format="custom" if archive else "plain", wrapper=wrapper, extension=extension,
                    tables=selected, excluded_table_data=excluded, canary_included=canary)
