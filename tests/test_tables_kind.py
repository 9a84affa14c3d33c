"""The `tables` kind on OpenWatch's real schema shape (issue 9, failure 10 and the tables bullet of 8).

The sample schema has what OpenWatch's head 035_merge_alerts has and `pg_dump -t` leaves out: enum-typed
columns (hosts.os_family is os_family_type), the extensions uuid-ossp (hosts.id's default) and btree_gist
(a GiST index on scans), a serial sequence (scan_findings.id) and views. A tables backup must restore into
an empty database (deep verify, `restore --into`), and `restore --table T --data-only` must touch only T.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.errors import ConfigError, DumpFailed
from openwatch_backup.operations.restore import RestoreRequest
from tests.support.dbcompare import sequence_values, table_fingerprints
from tests.support.restore_helpers import CANARY, CLI, Lab, cli_env, content, count

pytestmark = pytest.mark.usefixtures("restore_env")

SELECTED = ("public.hosts", "public.scans", "public.scan_findings")
HELD = (*SELECTED, CANARY)  # the tables whose rows a tables backup holds


def _listing(archive: Path) -> list[str]:
    return subprocess.run(["pg_restore", "--list", str(archive)], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def _catalog_facts(url: str) -> dict[str, object]:
    """What the schema needs besides tables: enum types, extensions, the column's type, sequences."""
    with psycopg.connect(url) as conn:
        enums = sorted(str(r[0]) for r in conn.execute("SELECT typname FROM pg_type WHERE typtype = 'e'"))
        extensions = sorted(str(r[0]) for r in conn.execute("SELECT extname FROM pg_extension"))
        os_family = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                                 "WHERE attrelid = 'hosts'::regclass AND attname = 'os_family'").fetchone()
        views = sorted(str(r[0]) for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'"))
    return {"enums": enums, "extensions": extensions, "os_family": os_family, "views": views}


def _owned_sequences(url: str, tables: tuple[str, ...]) -> set[str]:
    """The sequences behind the serial and identity columns of `tables`."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT pg_get_serial_sequence(attrelid::regclass::text, attname) FROM pg_attribute "
                            "WHERE attrelid = ANY(%s::regclass[]) AND attnum > 0 AND NOT attisdropped",
                            (list(tables),)).fetchall()
    return {str(r[0]) for r in rows if r[0] is not None}


def _indexes(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {f"{r[0]}.{r[1]}" for r in conn.execute("SELECT schemaname, indexname FROM pg_indexes WHERE "
                                                         "schemaname NOT IN ('pg_catalog', 'information_schema')")}


def _foreign_keys(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {str(r[0]) for r in conn.execute("SELECT conname FROM pg_constraint WHERE contype = 'f'")}


def test_the_sample_schema_has_what_pg_dump_t_leaves_out(lab: Lab) -> None:
    facts = _catalog_facts(lab.url)

    assert facts == {"enums": ["os_family_type", "remediation_status", "user_roles"],
                     "extensions": ["btree_gist", "plpgsql", "uuid-ossp"], "os_family": ("os_family_type",),
                     "views": ["compliance_framework_coverage", "host_compliance_summary"]}
    with psycopg.connect(lab.url) as conn:
        families = conn.execute("SELECT count(DISTINCT os_family), count(os_family) FROM hosts").fetchone()
        remediations = conn.execute("SELECT count(remediation_status) FROM scans").fetchone()
    assert families is not None
    assert families[0] > 1
    assert families[1] == count(lab.url, "hosts")
    assert remediations is not None
    assert remediations[0] > 0


def test_archive_holds_every_definition_and_only_the_selected_rows(lab: Lab) -> None:
    live = table_fingerprints(lab.url)
    backup = lab.backup(BackupKind.TABLES, Compression.NONE)  # an unwrapped archive: pg_restore reads the file
    manifest = lab.manifest(backup)
    listing = _listing(lab.artifact(backup))

    data = sorted(line.split()[-3] + "." + line.split()[-2] for line in listing if " TABLE DATA " in line)
    assert data == sorted(HELD)
    # Only the held tables' own sequences: a plain `pg_restore --data-only` sets no other sequence back.
    values = sorted(line.split()[-3] + "." + line.split()[-2] for line in listing if " SEQUENCE SET " in line)
    assert values == sorted(_owned_sequences(lab.url, HELD))
    assert "public.scan_findings_id_seq" in values
    for entry in (" TYPE public os_family_type ", " TYPE public remediation_status ", " EXTENSION - uuid-ossp",
                  " EXTENSION - btree_gist", " SEQUENCE public scan_findings_id_seq ",
                  " VIEW public host_compliance_summary ", " TABLE public users "):
        assert [line for line in listing if entry in line + " "], entry
    assert manifest.tables == ["hosts", "scans", "scan_findings"]
    sequences = set(sequence_values(lab.url))
    assert sorted(manifest.excluded_table_data) == sorted(
        (set(live) - set(HELD)) | (sequences - _owned_sequences(lab.url, HELD)))
    assert manifest.row_counts == {t.split(".")[1]: live[t][0] for t in (*SELECTED, "public.users")}


@pytest.mark.parametrize("compression", list(Compression))
def test_deep_verify_of_a_tables_backup_passes(lab: Lab, compression: Compression) -> None:
    backup = lab.backup(BackupKind.TABLES, compression)

    run, result = lab.service.verify(str(backup.id), deep=True)

    assert result is not None
    assert (run.status, run.error, result.passed) == ("succeeded", None, True)
    live = table_fingerprints(lab.url)
    assert result.checks["row_counts"] == {t.split(".")[1]: live[t][0] for t in SELECTED}
    assert result.checks["canary"] == "found"
    assert lab.leftovers() == []


def test_restore_into_equals_the_source_table_by_table(lab: Lab, make_database) -> None:
    backup = lab.backup(BackupKind.TABLES)
    source = table_fingerprints(lab.url)
    target = make_database.track(make_database.new_name("into"))

    run = lab.service.restore(str(backup.id), RestoreRequest(into=target))

    assert (run.status, run.error) == ("succeeded", None)
    url = lab.pg.url_for(target)
    restored = table_fingerprints(url)
    assert {t: restored[t] for t in HELD} == {t: source[t] for t in HELD}
    assert set(restored) == set(source)
    assert {t for t, (n, _) in restored.items() if n} == set(HELD)  # no other table's rows came along
    assert _catalog_facts(url) == _catalog_facts(lab.url)
    assert sequence_values(url)["public.scan_findings_id_seq"] == sequence_values(lab.url)[
        "public.scan_findings_id_seq"]
    # Post-data too (keys, indexes, the btree_gist index), except foreign keys: one from a held table to an
    # emptied one (hosts.created_by -> users) cannot be created.
    assert _indexes(url) == _indexes(lab.url)
    assert "public.idx_scans_host_started_gist" in _indexes(url)
    assert _foreign_keys(lab.url)
    assert _foreign_keys(url) == set()
    with psycopg.connect(url) as conn:  # the restored definitions work: defaults from the extension, enums
        row = conn.execute("INSERT INTO hosts (hostname, ip_address, os_family) VALUES ('new', '10.0.0.1', "
                           "'fedora') RETURNING id IS NOT NULL, os_family::text").fetchone()
    assert row == (True, "fedora")
    assert lab.leftovers() == []


def test_table_data_only_from_a_tables_backup_touches_only_that_table(lab: Lab) -> None:
    backup = lab.backup(BackupKind.TABLES)
    backed_up = table_fingerprints(lab.url)
    with psycopg.connect(lab.url) as conn:
        conn.execute("DELETE FROM scan_findings")  # a leaf table: nothing references it
        # Changes after the backup in tables the backup holds, and in one it does not: all must stay.
        conn.execute("UPDATE hosts SET description = 'changed after the backup'")
        conn.execute("INSERT INTO audit_logs (action, resource_type) VALUES ('after_backup', 'test')")
    before = content(lab.url)
    assert before.tables["public.scan_findings"][0] == 0

    run = lab.service.restore(str(backup.id), RestoreRequest(tables=("scan_findings",), data_only=True,
                                                             confirm=lab.name, safety_backup=False))

    assert (run.status, run.error) == ("succeeded", None)
    after = content(lab.url)
    assert after.tables["public.scan_findings"] == backed_up["public.scan_findings"]
    assert {t: f for t, f in after.tables.items() if t != "public.scan_findings"} == {
        t: f for t, f in before.tables.items() if t != "public.scan_findings"}
    assert after.sequences == before.sequences
    assert run.details["restore"]["row_counts_after"] == {"scan_findings": backed_up["public.scan_findings"][0]}


# --- system catalogs are refused --------------------------------------------------------------------------


def _files(lab: Lab) -> list[str]:
    folder = lab.backup_dir / "postgres"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize(("how", "name"), [
    ("flag", "pg_catalog.pg_authid"),
    ("env", "information_schema.sql_features"),
])
def test_cli_refuses_a_system_catalog_by_name(lab: Lab, how: str, name: str) -> None:
    env = cli_env(lab.url, lab.backup_dir)
    args = [str(CLI), "backup", "--kind", "tables"]
    if how == "flag":
        args += ["--tables", f"hosts,{name}"]
    else:
        env["OPENWATCH_BACKUP_TABLES"] = f"hosts,{name}"

    done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)

    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert f"{name} is a PostgreSQL system catalog, not an OpenWatch table" in done.stderr
    assert "Traceback" not in done.stderr
    assert lab.service.list_runs(kind="tables") == []
    assert _files(lab) == []


def test_an_unqualified_catalog_found_through_the_search_path_is_refused(lab: Lab) -> None:
    """`pg_authid` alone resolves to pg_catalog.pg_authid; only the database can tell, so the run refuses it."""
    with pytest.raises(ConfigError) as caught:
        lab.service.backup(lab.service.build_request(BackupKind.TABLES, Compression.ZSTD, ["hosts", "pg_authid"]))

    assert caught.value.message == (
        "pg_authid (pg_catalog.pg_authid) is a PostgreSQL system catalog, not an OpenWatch table; the tables kind "
        "backs up OpenWatch's own tables, e.g. hosts,scans,scan_findings")
    (run,) = lab.service.list_runs(kind="tables")
    assert (run.status, run.error_code, run.error) == ("failed", "config", caught.value.message)
    assert _files(lab) == []


def test_a_missing_table_fails_before_pg_dump_runs(lab: Lab) -> None:
    request = lab.service.build_request(BackupKind.TABLES, Compression.ZSTD, ["hosts", "no_such_table"])
    with pytest.raises(DumpFailed) as caught:
        lab.service.backup(request)

    assert caught.value.message == (f"no table no_such_table in database {lab.name}; the tables kind backs up "
                                    "tables named by --tables or OPENWATCH_BACKUP_TABLES, and each must exist")
    (run,) = lab.service.list_runs(kind="tables")
    assert (run.status, run.error_code, run.error) == ("failed", "dump_failed", caught.value.message)
    assert _files(lab) == []


def test_a_name_that_skipped_validation_fails_in_one_line(lab: Lab) -> None:
    """The service takes names as given (the CLI, the environment and the API check them first); a bad one
    still fails the run with one line, and nothing runs on the database."""
    skip = (CANARY, "public.backup_runs")  # the run writes its canary and its own row
    before = table_fingerprints(lab.url, skip=skip)
    request = lab.service.build_request(BackupKind.TABLES, Compression.ZSTD, ["hosts", "x; drop table hosts"])
    with pytest.raises(DumpFailed) as caught:
        lab.service.backup(request)

    assert caught.value.message == ("'x; drop table hosts' is not a table name (letters, digits, _ and one "
                                    "optional schema.)")
    assert table_fingerprints(lab.url, skip=skip) == before
    assert _files(lab) == []
