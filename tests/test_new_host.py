"""The operator's worst night: the host is gone with its disk and its database; a bucket and the CLI are left.

Everything is the real CLI as a process, in the README's runbook order ("A new host, from the bucket alone"):
on the old host, `db upgrade`, a backup copied by `offsite RUN`, then one by `backup --offsite`. Then the host
is lost: its backup directory is
deleted and its database dropped. The new host has an empty backup directory and a new, empty database under the
same name (as a reinstalled OpenWatch has); there `db upgrade`, `catalog rebuild --from s3` and `list` bring the
catalog back, and `restore` brings back exactly the content the old database had at its newest backup.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from openwatch_backup import devstack
from openwatch_backup.devstack import PostgresHandle
from tests.support.moto_server import PREFIX
from tests.support.offsite import s3_env
from tests.support.restore_helpers import (
    Content,
    Tracker,
    cli_env,
    content,
    databases_named_after,
    dbname_of,
    run_cli,
)

pytestmark = [pytest.mark.slow]

# Catalog tables: their rows describe backups, not OpenWatch data (backup_runs' are never in a dump).
SKIP = ("public.backup_runs", "public.backup_copies")


@dataclass(frozen=True)
class NewHost:
    env: dict[str, str]  # the CLI's environment on the new host
    dbname: str  # the live database's name (the same as on the old host)
    run_id: str  # the newest backup
    older_id: str
    before: Content  # the old database at its newest backup
    bucket: str


def cli_ok(*args: str, env: dict[str, str]) -> str:
    done = run_cli(*args, env=env)
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def lose_the_host(pg: PostgresHandle, backup_dir: Path, dbname: str) -> None:
    """Disk and database gone; the new database server has an empty database under the same name."""
    shutil.rmtree(backup_dir)
    devstack.drop_database(pg, dbname)
    devstack.create_database(pg, dbname)


@pytest.fixture
def new_host(pg: PostgresHandle, openwatch_db: str, tmp_path: Path, moto_endpoint: str, bucket: str) -> NewHost:
    dbname = dbname_of(openwatch_db)
    old_dir = tmp_path / "old-host-backups"
    old = cli_env(openwatch_db, old_dir, **s3_env(moto_endpoint, bucket))
    cli_ok("db", "upgrade", env=old)
    older_id = json.loads(cli_ok("backup", "--json", env=old))["id"]
    cli_ok("offsite", older_id, env=old)
    run_id = json.loads(cli_ok("backup", "--offsite", "--json", env=old))["backup"]["id"]
    before = content(openwatch_db, skip=SKIP)

    lose_the_host(pg, old_dir, dbname)
    new_dir = tmp_path / "new-host-backups"  # never existed: the CLI makes it
    env = cli_env(openwatch_db, new_dir, **s3_env(moto_endpoint, bucket))
    return NewHost(env=env, dbname=dbname, run_id=run_id, older_id=older_id, before=before, bucket=bucket)


def rebuild(host: NewHost) -> None:
    cli_ok("db", "upgrade", env=host.env)
    rebuilt = cli_ok("catalog", "rebuild", "--from", "s3", env=host.env)
    assert rebuilt.splitlines() == ["2 run(s) recreated, 0 already present, 0 of pruned backups left for the next "
                                    "prune, 0 manifest(s) skipped"]


def test_a_new_host_gets_its_catalog_back_from_the_bucket(new_host: NewHost) -> None:
    cli_ok("db", "upgrade", env=new_host.env)
    assert json.loads(cli_ok("list", "--json", env=new_host.env)) == []

    rebuild(new_host)

    runs = json.loads(cli_ok("list", "--json", env=new_host.env))
    assert [(r["id"], r["kind"], r["status"]) for r in runs] == [
        (new_host.run_id, "full", "succeeded"), (new_host.older_id, "full", "succeeded")]
    assert all(r["artifact_location"].startswith(f"s3://{new_host.bucket}/{PREFIX}/postgres/") for r in runs)
    table = cli_ok("list", env=new_host.env)
    assert new_host.run_id[:8] in table
    assert new_host.older_id[:8] in table


def test_a_new_host_restores_into_a_new_database_from_the_bucket(new_host: NewHost, pg: PostgresHandle,
                                                                 make_database: Tracker) -> None:
    rebuild(new_host)
    inspect = make_database.track(f"{new_host.dbname}_inspect")

    cli_ok("restore", new_host.run_id[:8], "--into", inspect, env=new_host.env)

    assert content(pg.url_for(inspect), skip=SKIP) == new_host.before


def test_a_new_host_restores_its_live_database_from_the_bucket(new_host: NewHost, pg: PostgresHandle,
                                                               make_database: Tracker) -> None:
    rebuild(new_host)

    cli_ok("restore", new_host.run_id[:8], "--confirm", new_host.dbname, env=new_host.env)

    for kept in databases_named_after(pg, new_host.dbname):
        make_database.track(kept)  # the empty one, renamed *_pre_restore_*, is kept: dropped after the test
    assert content(new_host.env["OPENWATCH_DATABASE_URL"], skip=SKIP) == new_host.before
    cli_ok("verify", new_host.run_id[:8], env=new_host.env)
