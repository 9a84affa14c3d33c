"""Every kind in every compression mode, restored with the standard tools, equals its source."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from openwatch_backup.core.kinds import BackupKind, Compression
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.service import BackupService
from tests.support.dbcompare import reference_schema, schema_dump, sequence_values, table_fingerprints
from tests.support.restore import restore

CATALOG = "public.backup_runs"  # its rows are deliberately not in the dump (see dump_plan.py)
COPIES = "public.backup_copies"  # likewise: its rows point at the runs


@pytest.fixture
def service(openwatch_db: str, tmp_path: Path, make_service) -> BackupService:
    return make_service(openwatch_db, tmp_path / "backups")


def _backup(service: BackupService, kind: BackupKind, compression: Compression) -> tuple[Path, Manifest]:
    run = service.backup(service.build_request(kind, compression))
    assert run.status == "succeeded", run.error
    path = Path(run.artifact_location or "")
    manifest = service.manifest_of(run)
    assert manifest is not None
    assert path.stat().st_size == manifest.size_bytes == run.size_bytes
    return path, manifest


@pytest.mark.parametrize("compression", list(Compression))
@pytest.mark.parametrize("kind", [BackupKind.FULL, BackupKind.PLAIN])
def test_whole_database_round_trip(service: BackupService, openwatch_db: str, make_database, kind: BackupKind,
                                   compression: Compression) -> None:
    path, manifest = _backup(service, kind, compression)
    target = make_database("rt")
    restore(path, target)

    # The catalog's rows (runs, and each backup's copies) are never in a dump; everything else is.
    assert table_fingerprints(target, skip=(CATALOG, COPIES)) == \
        table_fingerprints(openwatch_db, skip=(CATALOG, COPIES))
    assert sequence_values(target) == sequence_values(openwatch_db)
    assert schema_dump(target) == reference_schema(openwatch_db, make_database("ref"))
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM backup_runs").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM backup_copies").fetchone() == (0,)
        assert conn.execute("SELECT nonce FROM backup_canary").fetchall() == [(manifest.canary_nonce,)]
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in manifest.row_counts}
    assert counts == manifest.row_counts
    assert set(manifest.row_counts) == {"hosts", "scans", "scan_findings", "users"}
    assert all(n > 0 for n in manifest.row_counts.values())


@pytest.mark.parametrize("compression", list(Compression))
def test_schema_only_round_trip(service: BackupService, openwatch_db: str, make_database,
                                compression: Compression) -> None:
    path, manifest = _backup(service, BackupKind.SCHEMA, compression)
    target = make_database("rt")
    restore(path, target)

    assert schema_dump(target) == reference_schema(openwatch_db, make_database("ref"))
    assert {count for count, _ in table_fingerprints(target).values()} == {0}
    assert manifest.canary_included is False


@pytest.mark.parametrize("compression", list(Compression))
def test_selected_tables_restore_into_emptied_tables(service: BackupService, openwatch_db: str, make_database,
                                                     pg, compression: Compression) -> None:
    """The guide's "Specific Table Backup" then "Restore a Single Table": data back into the same schema."""
    path, manifest = _backup(service, BackupKind.TABLES, compression)
    assert manifest.tables == ["hosts", "scans", "scan_findings"]
    source = table_fingerprints(openwatch_db, skip=(CATALOG,))

    service.close()  # its pooled connection would block CREATE DATABASE ... TEMPLATE
    target_name = make_database.track(make_database.new_name("rt"))
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        source_name = openwatch_db.rsplit("/", 1)[1]
        conn.execute(f'CREATE DATABASE "{target_name}" TEMPLATE "{source_name}"')
    target = pg.url_for(target_name)
    with psycopg.connect(target) as conn:
        conn.execute("TRUNCATE hosts, scans, scan_findings, backup_canary CASCADE")
    emptied = table_fingerprints(target, skip=(CATALOG,))
    assert emptied["public.scan_findings"][0] == 0  # the restore below has something to prove

    restore(path, target, extra=("--data-only", "--disable-triggers"))
    assert table_fingerprints(target, skip=(CATALOG,)) == source


def test_pg_mode_archive_reads_with_the_guides_command(service: BackupService) -> None:
    """The `pg` mode exists so the guide's `pg_restore --list FILE` works on the file as is."""
    path, _ = _backup(service, BackupKind.FULL, Compression.PG)
    listing = subprocess.run(["pg_restore", "--list", str(path)], capture_output=True, text=True, check=True)
    assert "TABLE DATA public scan_findings" in listing.stdout
    assert "Compression: gzip" in listing.stdout or "Compression: -1" in listing.stdout
