"""Time `GET /api/system/backups/runs` over a catalog of 10,000 backups (target: p95 under 50 ms).

    python bench/bench_api_list.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres] [--runs 10000]
                                   [--repeat 100] [--limit 50] [--via uvicorn|testclient] [--seed 1]

Makes a scratch catalog database beside `--dsn` (dropped at the end) and bulk-loads (COPY) `--runs` backup runs
with realistic details (log lines, request, artifact, row counts...), a verify for most of them, and a few
failed/abandoned runs. Serves the backup router (FastAPI + backups_router, standalone token auth) with uvicorn
on 127.0.0.1 (or drives it in-process with Starlette's TestClient) and times, client side:

- `first page`: GET runs?limit=50, `--repeat` times;
- `walk`: every page from the first to the last, following next_cursor;
- `filtered`: the first page with kind=verify, status=failed, kind=full&status=succeeded, and kind=drill (a kind
  with no runs: the worst case for a filter), `--repeat`/4 times each.

Prints p50/p95/p99 (ms) per group and over all requests, PASS/FAIL "p95 under 50 ms", and EXPLAIN ANALYZE of
the page query (first page, a deep cursor, a filter). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import uvicorn
from catalog_load import copy_runs  # bench/ is on sys.path when a bench script runs
from fastapi import FastAPI
from psycopg import sql

from openwatch_backup.api import TokenAuth, backups_router
from openwatch_backup.service import BackupService
from openwatch_backup.settings import load_settings

PREFIX = "/api/system/backups"
TARGET_MS = 50.0
MIN_REQUESTS = 200
KINDS = ["full"] * 70 + ["tables"] * 15 + ["schema"] * 10 + ["plain"] * 5
COLUMNS = ("id", "kind", "status", "trigger", "requested_by", "parent_id", "phase", "created_at", "started_at",
           "finished_at", "heartbeat_at", "bytes_done", "artifact_location", "size_bytes", "sha256", "details",
           "pinned", "error_code", "error")


def _stamp(when: datetime) -> str:
    return when.strftime("%H:%M:%S")


def make_rows(count: int, rng: random.Random) -> list[tuple[object, ...]]:
    """Backups every ~70 minutes back from now, most with a verify; details shaped like real runs'."""
    now = datetime.now(UTC)
    rows: list[tuple[object, ...]] = []
    for n in range(count):
        run_id = uuid.uuid4()
        kind = rng.choice(KINDS)
        created = now - timedelta(minutes=70 * (count - n)) + timedelta(seconds=rng.randint(-600, 600))
        started = created + timedelta(seconds=1)
        finished = started + timedelta(seconds=rng.randint(5, 300))
        roll = rng.random()
        status = "succeeded" if roll < 0.92 else ("failed" if roll < 0.98 else "abandoned")
        name = f"{'openwatch' if kind in ('full', 'plain') else kind}_{created:%Y%m%d_%H%M%S}.dump.zst"
        phases = ["queued (schedule)", "preflight", "canary", "dumping", "committing", "manifest", status]
        details: dict[str, Any] = {
            "log": [f"{_stamp(started)} {p}" for p in phases],
            "request": {"kind": kind, "tables": ["scans", "scan_findings"] if kind == "tables" else [],
                        "compression": "zstd"},
            "format": "custom", "wrapper": "zstd", "database": "openwatch", "server_version": "15.20",
            "pg_dump_version": "15.20", "package_version": "0.1.0", "openwatch_alembic_head": "035_merge_alerts",
            "artifact_in_progress": f"postgres/{name}", "estimate_bytes": rng.randint(10**8, 10**9),
        }
        size = sha = location = None
        if status == "succeeded":
            size = rng.randint(80, 320) * 1024 * 1024
            sha = secrets.token_hex(32)
            location = f"/openwatch/data/backups/postgres/{name}"
            details.update({"artifact": name, "bytes_in": size * 9, "seconds": rng.uniform(5, 300),
                            "row_counts": {"hosts": rng.randint(10, 5000), "scans": rng.randint(100, 90000),
                                           "users": rng.randint(2, 50), "scan_findings": rng.randint(10**5, 10**7)},
                            "canary_nonce": secrets.token_hex(16), "canary_included": True,
                            "manifest_sha256": secrets.token_hex(32), "peak_rss_bytes": rng.randint(5, 9) * 10**7})
        rows.append((run_id, kind, status, "schedule", None, None, "done", created, started, finished, finished,
                     size or 0, location, size, sha, json.dumps(details), status == "succeeded" and n % 997 == 0,
                     None if status == "succeeded" else "dump_failed",
                     None if status == "succeeded" else "pg_dump exited with status 1: connection reset"))
        if status == "succeeded" and rng.random() < 0.85:
            passed = rng.random() < 0.97
            vstart = finished + timedelta(seconds=2)
            vdetails = {"log": [f"{_stamp(vstart)} queued (schedule)", f"{_stamp(vstart)} quick",
                                f"{_stamp(vstart)} {'succeeded' if passed else 'failed'}"],
                        "request": {"deep": False}, "backup_run": str(run_id),
                        "verify": {"deep": False, "result": "passed" if passed else "failed",
                                   "checks": {"sha256": sha, "artifact": f"postgres/{name}", "size_bytes": size,
                                              "read_seconds": 1.5}, "reason": None if passed else "checksum",
                                   "message": "all checks passed" if passed else "sha256 differs"}}
            rows.append((uuid.uuid4(), "verify", "succeeded" if passed else "failed", "schedule",
                         "after backup", run_id, "done", vstart, vstart, vstart + timedelta(seconds=20),
                         vstart + timedelta(seconds=20), 0, None, None, None, json.dumps(vdetails), False,
                         None if passed else "verify_checksum", None if passed else "checksum differs"))
    return rows


class Server:
    """uvicorn on 127.0.0.1 (a free port) in a thread.

    The socket is made with proto=IPPROTO_TCP on purpose: asyncio sets TCP_NODELAY on accepted connections only
    when the listening socket says IPPROTO_TCP, and `socket.socket(AF_INET, SOCK_STREAM)` says 0. Without it,
    Nagle holds uvicorn's body write until the client's delayed ACK of the headers: +40 ms on every request.
    """

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])),
                                       daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def summary(name: str, values: list[float]) -> str:
    return (f"{name:<28} {len(values):>5}  p50 {percentile(values, 50):7.2f}  p95 {percentile(values, 95):7.2f}  "
            f"p99 {percentile(values, 99):7.2f}  max {max(values):7.2f}")


def explain(url: str, cursor_at: tuple[datetime, uuid.UUID]) -> None:
    """EXPLAIN ANALYZE of the page query as the recorder sends it (first page, deep cursor, filters)."""
    queries = {
        "first page": ("SELECT * FROM backup_runs ORDER BY created_at DESC, id DESC LIMIT 51", ()),
        "deep cursor": ("SELECT * FROM backup_runs WHERE (created_at, id) < (%s, %s) "
                        "ORDER BY created_at DESC, id DESC LIMIT 51", cursor_at),
        "status=failed": ("SELECT * FROM backup_runs WHERE status = 'failed' "
                          "ORDER BY created_at DESC, id DESC LIMIT 51", ()),
        "kind=drill (none)": ("SELECT * FROM backup_runs WHERE kind = 'drill' "
                              "ORDER BY created_at DESC, id DESC LIMIT 51", ()),
    }
    with psycopg.connect(url) as conn:
        for name, (query, params) in queries.items():
            plan = [r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}", params).fetchall()]
            print(f"-- EXPLAIN ANALYZE {name}")
            for line in plan:
                if any(key in line for key in ("Scan", "Sort", "Limit", "Index Cond", "Filter", "Execution Time",
                                               "Rows Removed")):
                    print(f"   {line.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a postgresql:// URL of any database on the server (the catalog is made beside it)")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--via", choices=("uvicorn", "testclient"), default="uvicorn")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    name = f"owbbench_{uuid.uuid4().hex[:12]}"
    url = urlsplit(args.dsn)._replace(path=f"/{name}").geturl()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    service: BackupService | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="owb-bench-api-") as tmp:
            settings = load_settings(database_url=url, dir=Path(tmp))
            service = BackupService(settings)
            service.db_upgrade()
            started = time.perf_counter()
            rows = make_rows(args.runs, random.Random(args.seed))
            copy_runs(url, COLUMNS, rows, analyze=True)
            print(f"catalog {name}: {len(rows)} runs ({args.runs} backups) loaded in "
                  f"{time.perf_counter() - started:.1f} s")

            token = secrets.token_urlsafe(16)
            app = FastAPI()
            app.include_router(backups_router(auth=TokenAuth(token), submit=lambda _kind, _run_id: None,
                                              service_factory=lambda: service), prefix=PREFIX)
            headers = {"Authorization": f"Bearer {token}"}
            results = run_requests(app, headers, args, len(rows))
            first = results["first page"]
            walk = results["walk"]
            everything = [v for values in results.values() for v in values]
            print(f"\nGET {PREFIX}/runs via {args.via}, latency in ms (client side):")
            for group, values in results.items():
                print(summary(group, values))
            print(summary("all", everything))
            p95 = percentile(first + walk, 95)
            enough = len(first + walk) >= MIN_REQUESTS
            verdict = "PASS" if p95 < TARGET_MS and enough else "FAIL"
            print(f"\n{verdict}: p95 under {TARGET_MS:.0f} ms (first page + walk, {len(first + walk)} requests): "
                  f"{p95:.2f} ms" + ("" if enough else f"; too few requests (fewer than {MIN_REQUESTS})"))
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT created_at, id FROM backup_runs ORDER BY created_at DESC, id DESC "
                                   "OFFSET %s LIMIT 1", (len(rows) * 3 // 4,)).fetchone()
            assert row is not None
            print()
            explain(url, (row[0], row[1]))
            return 0 if verdict == "PASS" else 1
    finally:
        if service is not None:
            service.close()
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        print(f"dropped {name}")


def run_requests(app: FastAPI, headers: dict[str, str], args: argparse.Namespace,
                 total: int) -> dict[str, list[float]]:
    def timed(get: Callable[..., Any], params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        start = time.perf_counter()
        response = get(f"{PREFIX}/runs", params=params, headers=headers)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"GET runs {params} answered {response.status_code}: {response.text[:300]}")
        return elapsed, response.json()

    def measure(get: Callable[..., Any]) -> dict[str, list[float]]:
        for _ in range(20):  # warm-up: connection pool, first imports, PostgreSQL caches
            timed(get, {"limit": args.limit})
        results: dict[str, list[float]] = {"first page": [], "walk": [], "filtered": []}
        for _ in range(args.repeat):
            results["first page"].append(timed(get, {"limit": args.limit})[0])
        cursor: str | None = None
        seen: list[str] = []
        while True:
            params: dict[str, Any] = {"limit": args.limit}
            if cursor:
                params["cursor"] = cursor
            elapsed, body = timed(get, params)
            results["walk"].append(elapsed)
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        print(f"walk: {len(results['walk'])} pages, {len(seen)} runs, {len(set(seen))} distinct")
        if len(seen) != total or len(set(seen)) != total:
            raise SystemExit(f"the walk saw {len(seen)} runs ({len(set(seen))} distinct), the catalog has {total}")
        for filters in ({"kind": "verify"}, {"status": "failed"}, {"kind": "full", "status": "succeeded"},
                        {"kind": "drill"}):
            for _ in range(max(1, args.repeat // 4)):
                results["filtered"].append(timed(get, {"limit": args.limit, **filters})[0])
        return results

    if args.via == "testclient":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient
        with TestClient(app) as client:
            return measure(client.get)
    with Server(app) as server, httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
        return measure(client.get)


if __name__ == "__main__":
    sys.exit(main())
