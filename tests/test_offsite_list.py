"""`list` and `show` show each backup's copies: a `copies` column (`local:verified s3:failed`), one line per copy
in `show`, and "copies" in --json exactly as the API gives them (catalog/copies.copy_to_dict). `list` reads them
with one more SELECT on its psycopg connection, and still lists a catalog from before backup_copies.

Real PostgreSQL and moto's S3 server over HTTP; the real CLI as a process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from openwatch_backup.catalog.copies import copy_to_dict
from openwatch_backup.core.copies import CopyStorage
from openwatch_backup.service import BackupService
from tests.support.offsite import s3_env, s3_overrides
from tests.support.restore_helpers import cli_env, run_cli

pytestmark = [pytest.mark.slow]


def test_list_and_show_show_the_copies(openwatch_db: str, tmp_path: Path, make_service: Callable[..., BackupService],
                                       moto_endpoint: str, bucket: str, aws_env: pytest.MonkeyPatch) -> None:
    service = make_service(openwatch_db, tmp_path / "backups", **s3_overrides(moto_endpoint, bucket))
    copied = service.backup(service.build_request())
    service.verify(str(copied.id))
    service.copy_offsite(str(copied.id))
    failing = service.backup(service.build_request())
    key = f"postgres/{failing.details['artifact']}"
    service.copies.record(failing.id, CopyStorage.S3, key=key, location=f"s3://{bucket}/owb-test/{key}")
    service.copies.start_copying(failing.id, CopyStorage.S3)
    service.copies.failed(failing.id, CopyStorage.S3, "cannot reach s3://x: connection refused")
    env = cli_env(openwatch_db, tmp_path / "backups") | s3_env(moto_endpoint, bucket)

    listed = run_cli("list", "--json", env=env)
    assert (listed.returncode, listed.stderr) == (0, "")
    runs = json.loads(listed.stdout)
    expected = {str(run_id): json.loads(json.dumps([copy_to_dict(c) for c in copies]))
                for run_id, copies in service.copies.of_runs(r.id for r in service.list_runs()).items()}
    assert {r["id"]: r["copies"] for r in runs} == expected
    assert [(c["storage"], c["state"]) for c in expected[str(copied.id)]] == [("local", "verified"),
                                                                              ("s3", "verified")]
    assert [(c["storage"], c["state"]) for c in expected[str(failing.id)]] == [("local", "pending"), ("s3", "failed")]
    assert all(r["copies"] == [] for r in runs if r["kind"] in ("verify", "offsite"))

    table = run_cli("list", env=env)
    assert table.returncode == 0, table.stderr
    lines = {line.split("│")[1].strip(): line for line in table.stdout.splitlines() if line.startswith("│")}
    assert "local:verified s3:verified" in lines[str(copied.id)[:8]]
    assert "local:pending s3:failed" in lines[str(failing.id)[:8]]

    shown = run_cli("show", str(failing.id), env=env)
    assert shown.returncode == 0, shown.stderr
    copy_lines = [line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("copy ")]
    assert copy_lines[0].startswith(f"copy local pending {tmp_path / 'backups' / key}, ")
    assert copy_lines[1] == (f"copy s3 failed s3://{bucket}/owb-test/{key}, 1 attempt(s), error: cannot reach "
                             "s3://x: connection refused")
    as_json = run_cli("show", str(copied.id), "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["copies"] == expected[str(copied.id)]


def test_list_works_on_a_catalog_from_before_backup_copies(openwatch_db: str, tmp_path: Path,
                                                           make_service: Callable[..., BackupService]) -> None:
    service = make_service(openwatch_db, tmp_path / "backups")
    backup = service.backup(service.build_request())
    service.db_downgrade("owb_0002")
    env = cli_env(openwatch_db, tmp_path / "backups")
    listed = run_cli("list", "--json", env=env)
    assert (listed.returncode, listed.stderr) == (0, "")
    assert [(r["id"], "copies" in r) for r in json.loads(listed.stdout)] == [(str(backup.id), False)]
    table = run_cli("list", env=env)
    assert table.returncode == 0, table.stderr
    assert "copies" not in table.stdout
