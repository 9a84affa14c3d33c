"""`restore --table T --data-only` checks what it restores (issue 9, failure 3).

As found: another run's artifact moved over the file while the restore took its safety backup was
committed into the live database with exit 0; `--table nonexistent` reported success after restoring
nothing; `--table 'x; drop table hosts'` gave a traceback after a safety backup and pg_restore had run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.errors import RestoreRefused
from openwatch_backup.operations.restore import RestoreRequest
from tests.support.procs import children_named
from tests.support.restore_helpers import CANARY, CATALOG, Lab, cli_env, content, count, run_cli
from tests.support.restore_kill import run_row, start_paused, wait_for_children_gone

pytestmark = pytest.mark.usefixtures("restore_env")

MARK = "written after backup A"


def _audit_marks(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM audit_logs WHERE action = %s", (MARK,)).fetchone()
    assert row is not None
    return int(row[0])


def test_another_runs_artifact_moved_over_the_file_is_rolled_back(lab: Lab, tmp_path: Path) -> None:
    backup_a = lab.backup()
    with psycopg.connect(lab.url) as conn:
        conn.execute("INSERT INTO audit_logs (action, resource_type) VALUES (%s, 'test')", (MARK,))
    backup_b = lab.backup()  # its audit_logs holds the extra row: restoring it instead of A would show
    with psycopg.connect(lab.url) as conn:
        conn.execute("DELETE FROM audit_logs")
    lab.service.recorder.release_connections()

    cli = start_paused(["restore", str(backup_a.id), "--table", "audit_logs", "--data-only", "--confirm", lab.name],
                       cli_env(lab.url, lab.backup_dir), ["safety_backup"], tmp_path / "pause")
    try:
        cli.wait_for("safety_backup")
        forged = lab.artifact(backup_a).with_name("forged.tmp")
        shutil.copyfile(lab.artifact(backup_b), forged)
        os.replace(forged, lab.artifact(backup_a))  # B's bytes under A's name, as the repro did
        cli.resume()
        code, out, err = cli.finish()
    finally:
        cli.stop()

    restore = lab.only_restore_run()
    assert (code, out) == (8, "")
    assert err == f"error: {restore.error}\n"
    assert restore.error is not None
    assert restore.error.startswith(
        f"{backup_a.details['artifact']} is not the file this backup wrote (sha256 {backup_b.sha256}, manifest "
        f"{backup_a.sha256}); the restore was rolled back, nothing changed")
    assert (restore.status, restore.error_code) == ("failed", "restore_failed")
    assert count(lab.url, "audit_logs") == 0  # neither B's rows nor A's: rolled back
    assert _audit_marks(lab.url) == 0


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_kill_before_the_commit_leaves_the_table_as_it_was(lab: Lab, tmp_path: Path, how: signal.Signals) -> None:
    backup = lab.backup()
    with psycopg.connect(lab.url) as conn:
        conn.execute("DELETE FROM audit_logs")
    lab.service.recorder.release_connections()
    cli = start_paused(["restore", str(backup.id), "--table", "audit_logs", "--data-only", "--confirm", lab.name,
                        "--no-safety-backup"], cli_env(lab.url, lab.backup_dir), ["table_before_commit"],
                       tmp_path / "pause")
    try:
        cli.wait_for("table_before_commit")  # every row sent, the hash matched, no COMMIT yet
        clients = children_named(cli.proc.pid, "psql") + children_named(cli.proc.pid, "pg_restore")
        assert children_named(cli.proc.pid, "psql"), "no psql holding the open transaction"
        if how == signal.SIGKILL:
            cli.kill()
        else:
            cli.proc.send_signal(how)
            code, _, err = cli.finish(timeout=60)
            assert (code, err.count("\n")) == (130, 1), err
        wait_for_children_gone(clients)
    finally:
        cli.stop()
    assert count(lab.url, "audit_logs") == 0
    if how == signal.SIGTERM:
        run = lab.only_restore_run()
        assert (run.status, run.error_code) == ("cancelled", "cancelled")


def _listed_rows(archive_text: str) -> list[str]:
    """Table names of the TABLE DATA lines ("12; 0 1 TABLE DATA <schema> <name, may hold spaces> <owner>")."""
    names = set()
    for line in archive_text.splitlines():
        if " TABLE DATA " in line:
            schema_name_owner = line.split(" TABLE DATA ", 1)[1]
            names.add(schema_name_owner.split(" ", 1)[1].rsplit(" ", 1)[0])
    return sorted(names)


@pytest.mark.parametrize("name", ["nonexistent", "x; drop table hosts", "public.audit_logs"])
def test_table_names_are_checked_against_the_backup_before_any_work(lab: Lab, name: str) -> None:
    backup = lab.backup()
    before = content(lab.url, skip=(CATALOG,))

    with pytest.raises(RestoreRefused) as caught:
        lab.service.restore(str(backup.id), RestoreRequest(tables=("audit_logs", name), data_only=True,
                                                           confirm=lab.name))

    # pg_restore reads the zstd-wrapped file through zstd here: the listing the check must agree with.
    unzstd = subprocess.run(["zstd", "-dc", str(lab.artifact(backup))], capture_output=True, check=True).stdout
    held = _listed_rows(subprocess.run(["pg_restore", "--list"], input=unzstd, capture_output=True,
                                       check=True).stdout.decode())
    shown = ", ".join(held[:20]) + (f" and {len(held) - 20} more (`pg_restore --list` shows them)"
                                    if len(held) > 20 else "")
    assert caught.value.message == (f"backup {backup.id} holds no table {name!r} (rows); it holds {shown}; "
                                    "give bare table names as listed")
    assert "\n" not in caught.value.message
    assert lab.safety_runs() == []  # refused before the safety backup
    assert content(lab.url, skip=(CATALOG,)) == before
    run = lab.only_restore_run()
    assert (run.status, run.error_code, run.phase) == ("failed", "restore_refused", "guards")


def test_cli_unknown_table_exits_10_with_one_line(lab: Lab) -> None:
    backup = lab.backup()
    before = content(lab.url, skip=(CATALOG, CANARY))

    done = run_cli("restore", str(backup.id), "--table", "x; drop table hosts", "--data-only", "--confirm", lab.name,
                   env=cli_env(lab.url, lab.backup_dir))

    run = lab.only_restore_run()
    assert (done.returncode, done.stdout) == (10, "")
    assert done.stderr == f"error: {run.error}\n"
    assert run.error is not None
    assert run.error.startswith(f"backup {backup.id} holds no table 'x; drop table hosts'")
    assert content(lab.url, skip=(CATALOG, CANARY)) == before
    assert lab.safety_runs() == []
    assert run_row(lab.url, str(run.id))[:2] == ("failed", "restore_refused")
