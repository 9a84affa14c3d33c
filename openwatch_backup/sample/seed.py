"""Create the sample OpenWatch schema and fill it with realistic data of a chosen size.

Transactions: every step runs in `conn.transaction()`. On an idle connection (autocommit or not) each
batch commits as it goes, so a 1 GiB seed is not one huge transaction; inside a transaction the caller
already opened, the steps become savepoints and the caller's commit keeps them.

Rows are streamed with COPY from Python (see generate.py): one core generates while the server parses
on the other. 1 GiB took 41 s on two cores (PostgreSQL 15, indexes kept in place during the load).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any, LiteralString

import psycopg
from psycopg.rows import tuple_row

from openwatch_backup.sample.awkward import add_awkward_data
from openwatch_backup.sample.generate import Row, SampleData

__all__ = ["add_awkward_data", "create_schema", "is_seeded", "seed"]

MIB = 1024 * 1024
TABLES = (
    "users",
    "hosts",
    "scans",
    "scan_findings",
    "unified_credentials",
    "system_settings",
    "security_config",
    "audit_logs",
    "alembic_version",
)
_COLUMNS = {
    "users": "username, email, hashed_password, role, is_active, created_at, last_login, mfa_enabled, "
    "mfa_secret, backup_codes",
    "hosts": "id, hostname, ip_address, display_name, operating_system, os_family, os_version, status, port, "
    "username, auth_method, encrypted_credentials, description, environment, tags, owner, is_active, "
    "created_by, created_at, updated_at",
    "unified_credentials": "id, name, description, scope, target_id, username, auth_method, encrypted_password, "
    "encrypted_private_key, encrypted_passphrase, is_default, is_active, created_by, created_at, updated_at",
    "system_settings": "setting_key, setting_value, setting_type, description, created_by, created_at, "
    "modified_by, modified_at, is_secure",
    "security_config": "config_key, mfa_policy, fips_level, min_password_length, updated_at",
    "scans": "id, name, host_id, profile_id, status, progress, result_file, error_message, scan_options, "
    "started_by, started_at, completed_at, celery_task_id, remediation_status, scan_metadata",
    "scan_findings": "scan_id, rule_id, title, severity, status, detail, framework_section, created_at",
    "audit_logs": "user_id, action, resource_type, resource_id, ip_address, user_agent, details, timestamp",
}
_AUDIT_SHARE = 0.04  # of the data bytes; the rest, apart from a few small tables, is scan_findings
_CHUNK_LINES = 5000  # COPY lines per write(): large enough to amortise the call, small enough for memory


def create_schema(conn: psycopg.Connection[Any]) -> None:
    """Apply schema.sql (shipped as package data) to an empty database."""
    text = resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")
    with conn.transaction():
        conn.execute(text)  # our own file, not user input


def is_seeded(conn: psycopg.Connection[Any]) -> bool:
    """True if table public.hosts exists and has rows."""
    with conn.transaction():
        if not _scalar(conn, "SELECT (to_regclass('public.hosts') IS NOT NULL)::int"):
            return False
        return bool(_scalar(conn, "SELECT EXISTS (SELECT 1 FROM public.hosts)::int"))


def seed(conn: psycopg.Connection[Any], *, target_mib: float = 5.0, rng_seed: int = 1) -> dict[str, int]:
    """Fill the empty schema from `create_schema` until pg_database_size reaches about `target_mib`.

    An empty database already takes ~7.5 MiB, so below ~10 MiB the target cannot be met: then half the
    target is written as data. Returns {table: row count}. The same `rng_seed` gives the same rows.
    """
    data = SampleData(rng_seed)
    target = int(target_mib * MIB)
    start = _database_size(conn)
    budget = max(target - start, target // 2)
    n_hosts = max(5, min(2000, budget // (5 * MIB)))  # ~200 hosts per GiB, each scanned ~20 times
    with conn.transaction():
        _copy_rows(conn, "users", data.users(8 + n_hosts // 10))
        ids = conn.cursor(row_factory=tuple_row).execute("SELECT id FROM users ORDER BY id").fetchall()
        data.user_ids = [int(r[0]) for r in ids]
        _copy_rows(conn, "hosts", data.host_rows(n_hosts))
        _copy_rows(conn, "unified_credentials", data.credentials())
        _copy_rows(conn, "system_settings", data.settings())
        _copy_rows(conn, "security_config", data.security_config())

    def findings(n: int) -> int:
        scans, lines = data.scan_batch(n)
        _copy_rows(conn, "scans", scans)
        _copy_lines(conn, "scan_findings", lines)
        return len(lines)

    def audit(n: int) -> int:
        lines = data.audit_lines(n)
        _copy_lines(conn, "audit_logs", lines)
        return len(lines)

    _fill(conn, start + int(budget * (1 - _AUDIT_SHARE)), findings, bytes_per_row=1000)
    _fill(conn, start + budget, audit, bytes_per_row=400)
    with conn.transaction():
        conn.execute("ANALYZE")  # as autovacuum would have by now; keeps the planner sane for callers
        return {t: _scalar(conn, f"SELECT count(*) FROM {t}") for t in TABLES}


def _fill(conn: psycopg.Connection[Any], stop_at: int, write: Callable[[int], int], bytes_per_row: float) -> None:
    """Call write(rows) in batches until the database reaches stop_at bytes, at least once so that no table
    is left empty. Each batch is sized from the growth per row measured so far, so the last one lands close
    to the target instead of a whole batch past it."""
    size = _database_size(conn)
    while True:
        rows = int(min(max((stop_at - size) / bytes_per_row, 100), 40_000))
        with conn.transaction():
            written = write(rows)
        grown = _database_size(conn)
        if grown > size and written:
            bytes_per_row = (grown - size) / written
        size = grown
        if size >= stop_at:
            return


def _copy_rows(conn: psycopg.Connection[Any], table: LiteralString, rows: list[Row]) -> None:
    with conn.cursor().copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _copy_lines(conn: psycopg.Connection[Any], table: LiteralString, lines: list[str]) -> None:
    with conn.cursor().copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
        for i in range(0, len(lines), _CHUNK_LINES):
            copy.write("".join(lines[i : i + _CHUNK_LINES]))


def _database_size(conn: psycopg.Connection[Any]) -> int:
    with conn.transaction():
        return _scalar(conn, "SELECT pg_database_size(current_database())")


def _scalar(conn: psycopg.Connection[Any], query: LiteralString) -> int:
    row = conn.cursor(row_factory=tuple_row).execute(query).fetchone()
    return int(row[0]) if row else 0
