"""A failing PostgreSQL client is described by its first error line, however long the echo after it.

pg_restore prints the failed statement after the `ERROR:` line ("Command was: CREATE TABLE ..." with one
line per column). For a wide table that echo is longer than the stderr tail we keep, and the stored error
used to be `pg_restore exited with status 1: );` (issue 9, failure 10).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.verify_result import VerifyReason
from openwatch_backup.executors.local import LocalExecutor, describe_exit
from tests.support.forge import replace_artifact

COLUMNS = 60  # OpenWatch's hosts has 42; either echoes more lines than the 40-line tail
TAIL_LINES = 40  # executors/local.py keeps this many lines of stderr


def _wide_table_archive(url: str) -> bytes:
    """`pg_dump -Fc -t wide` of a table whose columns have an enum type: the archive holds no type."""
    columns = ", ".join(f"c{i:02d} mood" for i in range(COLUMNS))
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TYPE mood AS ENUM ('ok', 'sad')")
        conn.execute(f"CREATE TABLE wide (id int PRIMARY KEY, {columns})")
        conn.execute("INSERT INTO wide (id, c00) VALUES (1, 'ok')")
    return subprocess.run(["pg_dump", "--format=custom", "--table=wide", "-d", url], capture_output=True,
                          check=True).stdout


def test_pg_restore_failure_keeps_its_first_error_line(make_database) -> None:
    archive = _wide_table_archive(make_database("wide"))
    empty = make_database("empty")
    argv = ["pg_restore", "--exit-on-error", "--no-owner", "--no-privileges", f"--dbname={empty}"]
    # What pg_restore prints in full: the error line, then more echo than the tail holds.
    full = subprocess.run(argv, input=archive, capture_output=True, check=False).stderr.decode().splitlines()
    error_at = [i for i, line in enumerate(full) if "ERROR:" in line]
    assert len(error_at) == 1
    assert len(full) - error_at[0] - 1 > TAIL_LINES  # a tail alone would have lost the error line

    feeder = LocalExecutor().feed(argv, {})
    assert feeder.write(archive)
    code = feeder.finish(timeout=60)

    assert code == 1
    assert describe_exit("pg_restore", code, feeder.stderr_tail()) == (
        'pg_restore exited with status 1: pg_restore: error: could not execute query: ERROR:  type "public.mood" '
        "does not exist")
    assert feeder.stderr_tail().splitlines()[-1].strip() == full[-1].strip()  # the tail is still the tail


def test_pg_dump_failure_names_its_error(make_database) -> None:
    """The reading side (pg_dump's stdout is ours): a dump of a missing table, pg_dump's own error line."""
    process = LocalExecutor().start(["pg_dump", "--format=custom", "--strict-names", "--table=nosuch",
                                     "-d", make_database("dump")], {})
    try:
        while process.read(1 << 16):
            pass
        code = process.wait(timeout=60)
    finally:
        process.close()

    assert describe_exit("pg_dump", code, process.stderr_tail()) == (
        'pg_dump exited with status 1: pg_dump: error: no matching tables were found for pattern "nosuch"')


def test_deep_verify_of_an_archive_without_its_types_stores_the_error_line(openwatch_db: str, tmp_path: Path,
                                                                          make_service) -> None:
    """The issue's case end to end: a `pg_dump -t` archive (what the tables kind used to write) of a wide table
    with an enum type; deep verify fails and the stored error names the missing type, not the echo's `);`."""
    service = make_service(openwatch_db, tmp_path / "backups")
    run = service.backup(service.build_request(BackupKind.TABLES, Compression.NONE))  # an unwrapped archive
    assert run.status == "succeeded", run.error
    forged = replace_artifact(service, run, _wide_table_archive(openwatch_db))

    verify_run, result = service.verify(str(forged.id), deep=True)

    assert result is not None
    message = (f"{forged.details['artifact']}: pg_restore exited with status 1: pg_restore: error: could not "
               'execute query: ERROR:  type "public.mood" does not exist')
    assert (result.reason, result.message) == (VerifyReason.UNREADABLE, message)
    assert (verify_run.status, verify_run.error) == ("failed", f"verify failed (unreadable): {message}")
