"""Time planning and applying a prune over a catalog of 10,000 backup runs (target: each under 2 s).

    python bench/bench_prune.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres] [--runs 10000] [--seed 1]

Makes a scratch catalog database (dropped at the end) holding a realistic mix: a backup every ~70 minutes for
about 16 months (full 70%, tables 15%, schema 10%, plain 5%; 6% failed, 2% abandoned), a verify run for most
successful backups (3% of verdicts failed), a few pinned backups, and in a temporary directory the artifact
and manifest of every successful backup plus some `.partial` leftovers and foreign files. Then it times
`BackupService.prune()` (the dry run: load, classify, plan, store the plan) and `prune(apply=True)` (the same
plus deleting thousands of files and stamping pruned_at), both as recorded runs, as the CLI and the Celery
task run them. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from catalog_load import copy_runs  # bench/ is on sys.path when a bench script runs
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

TARGET_SECONDS = 2.0
KINDS = ["full"] * 70 + ["tables"] * 15 + ["schema"] * 10 + ["plain"] * 5
COLUMNS = ("id", "kind", "status", "trigger", "parent_id", "phase", "created_at", "started_at", "finished_at",
           "size_bytes", "sha256", "details", "pinned", "error_code", "error")


def make_history(count: int, root: Path, rng: random.Random) -> list[tuple[object, ...]]:
    """Rows for backup_runs (backups, then verifies) and their files under root/postgres."""
    postgres = root / "postgres"
    postgres.mkdir(parents=True, mode=0o700)
    now = datetime.now(UTC)
    rows: list[tuple[object, ...]] = []
    for n in range(count):
        run_id = uuid.uuid4()
        kind = rng.choice(KINDS)
        created = now - timedelta(minutes=70 * (count - n)) + timedelta(seconds=rng.randint(-600, 600))
        finished = created + timedelta(seconds=rng.randint(5, 300))
        roll = rng.random()
        status = "succeeded" if roll < 0.92 else ("failed" if roll < 0.98 else "abandoned")
        name = f"{'openwatch' if kind in ('full', 'plain') else kind}_{created:%Y%m%d_%H%M%S}_{n}.dump.zst"
        details: dict[str, object] = {"artifact_in_progress": f"postgres/{name}"}
        size = None
        if status == "succeeded":
            details["artifact"] = name
            size = rng.randint(80, 320) * 1024 * 1024
            (postgres / name).write_bytes(b"x" * rng.randint(1, 64))
            (postgres / f"{name}.manifest.json").write_text(json.dumps({"run_id": str(run_id)}))
        elif rng.random() < 0.2:
            (postgres / f"{name}.partial").write_bytes(b"half")
        rows.append((run_id, kind, status, "schedule", None, "done", created, created, finished, size,
                     "0" * 64 if size else None, json.dumps(details), status == "succeeded" and n % 997 == 0,
                     None if status == "succeeded" else "dump_failed", None if status == "succeeded" else "x"))
        if status == "succeeded" and rng.random() < 0.85:
            passed = rng.random() < 0.97
            rows.append((uuid.uuid4(), "verify", "succeeded" if passed else "failed", "schedule", run_id, "done",
                         finished, finished, finished + timedelta(seconds=20), None, None, "{}", False,
                         None if passed else "verify_checksum", None if passed else "checksum differs"))
    for n in range(5):
        (postgres / f"operator_copy_{n}.sql").write_text("not ours\n")
    return rows


def timed_prune(service: BackupService, apply: bool) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    run = service.prune(apply=apply, requested_by="bench")
    seconds = time.perf_counter() - started
    if run.status != "succeeded":
        raise SystemExit(f"prune failed: {run.error}")
    return seconds, dict(run.details["summary"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="any database of the server; a scratch catalog database is created beside it")
    parser.add_argument("--runs", type=int, default=10_000, help="backup runs in the catalog")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    name = f"owb_bench_prune_{os.getpid()}"
    params = conninfo_to_dict(args.dsn)
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(**{**params, "dbname": name})
    url = f"postgresql://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:" \
          f"{params.get('port', 5432)}/{name}" if "password" not in params else url
    try:
        with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmp:
            root = Path(tmp) / "backups"
            with BackupService(load_settings(database_url=url, dir=root)) as service:
                service.db_upgrade()
                started = time.perf_counter()
                rows = make_history(args.runs, root, random.Random(args.seed))
                copy_runs(url, COLUMNS, rows)
                files = sum(1 for _ in (root / "postgres").iterdir())
                print(f"catalog: {len(rows)} runs ({args.runs} backups + verifies), {files} files; "
                      f"made in {time.perf_counter() - started:.1f} s", flush=True)
                plan_s, plan = timed_prune(service, apply=False)
                apply_s, applied = timed_prune(service, apply=True)
                again_s, again = timed_prune(service, apply=True)
        print(f"{'step':<28}{'seconds':>9}  result")
        print(f"{'plan (dry run)':<28}{plan_s:>9.3f}  keep {plan['backups_kept']}, delete {plan['backups_to_delete']}, "
              f"leftovers {plan['leftovers']}, foreign {plan['foreign']}")
        print(f"{'plan + apply':<28}{apply_s:>9.3f}  deleted {applied['backups_deleted']} backups, "
              f"{applied['files_deleted']} files")
        print(f"{'apply again (nothing left)':<28}{again_s:>9.3f}  deleted {again['files_deleted']} files")
        ok = plan_s < TARGET_SECONDS and apply_s < TARGET_SECONDS and again["files_deleted"] == 0
        print(f"{'PASS' if ok else 'FAIL'}: plan {plan_s:.2f} s and apply {apply_s:.2f} s, target under "
              f"{TARGET_SECONDS:g} s each over {args.runs} backup runs")
        return 0 if ok else 1
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    sys.exit(main())
