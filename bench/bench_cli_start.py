"""Time the CLI's start-up: `openwatch-backup --help` (target 0.15 s) and `list` of a page of runs (target 0.3 s).

    python bench/bench_cli_start.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres] [--runs 20] [--cli PATH]

Makes a catalog database beside `--dsn` (`db upgrade`, then 50 runs of every kind and status, so that `list`
prints a full default page; dropped at the end) and times, as real processes, interleaved `--runs` times each
(wall time from spawn to exit, output to a pipe):

- `python -c pass`: the interpreter alone (the floor of every row; it includes the venv's site-packages);
- `python -c "import typer"`: the CLI framework alone;
- `python -c "import psycopg"` and `python -c "import rich.console, rich.table"`: what `list` adds to `--help`
  (the driver of its one SELECT, and the table's renderer);
- `openwatch-backup --help`;
- `openwatch-backup list` (the table of 50 runs) and `list --json` (the environment, one SELECT, no SQLAlchemy or
  pydantic: catalog/fast_list.py).

Prints the median, p90 and minimum wall time and the median CPU time (user + system, from wait4) per row, and
PASS/FAIL for `--help` and `list` (median wall) against the targets. The minimum is the run other work disturbed
least: on a shared machine, the nearest to a quiet one. The machine's load average is printed too: on a busy
machine every row grows, the baseline included; the CPU column grows much less. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.types.json
from psycopg import sql

TARGETS = {"--help": 0.15, "list": 0.30}


def _cli_path(given: str | None) -> Path:
    if given:
        return Path(given)
    beside = Path(sys.executable).with_name("openwatch-backup")
    if beside.exists():
        return beside
    raise SystemExit("openwatch-backup not found beside this Python; pass --cli PATH")


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _add_runs(url: str, count: int) -> None:
    """`count` runs a day apart: every kind and status, sizes, errors, a pinned and a pruned backup."""
    kinds = ("full", "verify", "plain", "full", "schema", "tables", "prune", "drill")
    statuses = ("succeeded", "succeeded", "failed", "succeeded", "abandoned", "running", "queued", "cancelled")
    with psycopg.connect(url) as conn:
        for i in range(count):
            kind, status = kinds[i % len(kinds)], statuses[i % len(statuses)]
            done = status in ("succeeded", "failed", "abandoned", "cancelled")
            size = 1_000_000 * (i + 1) if status == "succeeded" and kind != "verify" else None
            conn.execute(
                "INSERT INTO backup_runs (kind, status, trigger, created_at, started_at, finished_at, size_bytes, "
                "artifact_location, details, error_code, error, pinned, pruned_at) VALUES (%s, %s, 'schedule', "
                "now() - make_interval(days => %s), now() - make_interval(days => %s), "
                "CASE WHEN %s THEN now() - make_interval(days => %s) + interval '73 seconds' END, %s, %s, %s, %s, "
                "%s, %s, CASE WHEN %s THEN now() END)",
                (kind, status, count - i, count - i, done, count - i, size,
                 f"/backups/postgres/run{i}.dump.zst" if size else None,
                 psycopg.types.json.Jsonb({"artifact": f"postgres/run{i}.dump.zst"} if size else {}),
                 "dump_failed" if status == "failed" else None,
                 "pg_dump exited 1: could not connect to the server" if status == "failed" else None,
                 i % 10 == 3, i % 10 == 0 and size is not None))


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one run; cpu is the child's user + system time, which load inflates far less."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    errors = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {errors}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cli", default=None)
    args = parser.parse_args()
    cli = str(_cli_path(args.cli))
    name = f"owb_bench_cli_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        # Bytecode is cached as after a normal install (PYTHONDONTWRITEBYTECODE would compile every module on
        # every start, which no installed CLI does).
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PG", "OPENWATCH_")) and k != "PYTHONDONTWRITEBYTECODE"}
        env.update({"OPENWATCH_DATABASE_URL": _with_database(args.dsn, name),
                    "OPENWATCH_BACKUP_DIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / name)})
        subprocess.run([cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        _add_runs(env["OPENWATCH_DATABASE_URL"], 50)
        rows: dict[str, list[str]] = {
            "python -c pass": [sys.executable, "-c", "pass"],
            'python -c "import typer"': [sys.executable, "-c", "import typer"],
            'python -c "import psycopg"': [sys.executable, "-c", "import psycopg"],
            '... "import rich.console, rich.table"': [sys.executable, "-c", "import rich.console, rich.table"],
            "--help": [cli, "--help"],
            "list": [cli, "list"],
            "list --json": [cli, "list", "--json"],
        }
        wall: dict[str, list[float]] = {row: [] for row in rows}
        cpu: dict[str, list[float]] = {row: [] for row in rows}
        for argv in rows.values():  # warm the page cache and the .pyc files
            _time(argv, env)
        for _ in range(args.runs):
            for row, argv in rows.items():
                took, used = _time(argv, env)
                wall[row].append(took)
                cpu[row].append(used)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    load = os.getloadavg()
    print(f"{args.runs} runs each, {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"| {'command':<38} | median wall s | p90 wall s | min wall s | median cpu s | target |")
    print(f"|{'-' * 40}|---------------|------------|------------|--------------|--------|")
    verdicts = []
    for row, values in wall.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else values[0]
        target = TARGETS.get(row)
        shown = f"{target:.2f}" if target else ""
        print(f"| {row:<38} | {median:13.3f} | {p90:10.3f} | {min(values):10.3f} | {statistics.median(cpu[row]):12.3f} "
              f"| {shown:>6} |")
        if target:
            verdicts.append(f"{'PASS' if median <= target else 'FAIL'} {row}: median {median:.3f} s "
                            f"(target {target:.2f} s)")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
