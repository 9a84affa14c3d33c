"""Time `openwatch-backup verify`, `verify --deep` and `drill` against raw pg_restore of the same data.

    python bench/bench_verify.py --dsn postgresql://postgres@127.0.0.1:5432/ow_bench_1g [--runs 1] [--out-dir DIR]

One backup (`openwatch-backup backup --json`, zstd) is taken into a temporary folder, then each run times:
quick verify (MB/s of stored bytes), deep verify, drill, and the baseline: raw `pg_restore --no-owner
--no-privileges -d FRESH` of a `pg_dump -Fc -Z0` file (made once, not timed) into a database created and
dropped around each timing, plus `zstd -dc FILE.zst | pg_restore -d FRESH` when zstd is installed. The
target: drill within 1.15x raw pg_restore. Every file and database made here is removed; the catalog rows
written to the database's backup_runs stay. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

MB = 1000 * 1000
MIB = 1024 * 1024
RAW, RAW_ZSTD = "raw pg_restore", "zstd -dc | pg_restore"
QUICK, DEEP, DRILL = "verify (quick)", "verify --deep", "drill"
TARGET_RATIO = 1.15
# How a scratch database dropped under the restore by another session's sweep showed before commit 5c1901b
# (see bench/README.md): pg_restore loses its connection mid-statement. The stderr line the run keeps varies
# (the lost connection, or the statement it was running), so any pg_restore failure is retried; a real one
# repeats.
DROPPED_UNDER_US = ("pg_restore exited with status", "pg_restore was killed")
RETRIES = 2


@dataclass
class Row:
    label: str
    walls: list[float] = field(default_factory=list)
    inner: list[float] = field(default_factory=list)  # what the run itself recorded (read/restore/rto seconds)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)


class BenchError(Exception):
    """A step failed; the message says which and why."""


Completed = subprocess.CompletedProcess[bytes]


def run(argv: list[str], env: dict[str, str], *, stdin: Any = None, stdout: Any = subprocess.PIPE) -> tuple[
        float, Completed]:
    """(wall seconds, the finished process) of argv, stderr captured."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, check=False)
    return time.perf_counter() - started, done


def tail(data: bytes | None) -> str:
    lines = (data or b"").decode(errors="replace").strip().splitlines()
    return " | ".join(lines[-3:])


def parse_report(stdout: bytes) -> dict[str, Any]:
    """The CLI's JSON object; tolerates stray lines before it (the contract says one object on stdout)."""
    text = stdout.decode(errors="replace")
    try:
        return dict(json.loads(text))
    except json.JSONDecodeError:
        start = text.find("\n{")
        if start < 0:
            raise
        return dict(json.loads(text[start + 1:]))


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.backup_dir = work / "backups"
        self.backup_dir.mkdir()
        params = conninfo_to_dict(args.dsn)
        password = params.pop("password", None)
        self.dbname = str(params.get("dbname") or "")
        self.params = {k: str(v) for k, v in params.items() if v is not None}
        # The password goes to the clients through the environment, never argv (visible in ps).
        self.pg_env = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
        self.cli_env = {**os.environ, "OPENWATCH_DATABASE_URL": args.dsn,
                        "OPENWATCH_BACKUP_DIR": str(self.backup_dir),
                        "OPENWATCH_BACKUP_OPENWATCH_BACKEND_DIR": "/nonexistent"}
        self.our_runs: list[str] = []  # run ids whose scratch databases must be gone at the end
        self.made_databases: list[str] = []

    # --- helpers -------------------------------------------------------------------------------------------
    def conninfo(self, dbname: str | None = None) -> str:
        return make_conninfo(**{**self.params, **({"dbname": dbname} if dbname else {})})

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.args.dsn, autocommit=True)

    def scratch_databases(self, *, test_databases: bool = False) -> list[str]:
        """owbscratch_* databases on the server (and, if asked, the owb_* databases of test sessions)."""
        pattern = "datname LIKE 'owbscratch\\_%'" + (" OR datname LIKE 'owb\\_%'" if test_databases else "")
        with self.admin() as conn:
            rows = conn.execute(f"SELECT datname FROM pg_database WHERE {pattern} ORDER BY 1")
            return [str(r[0]) for r in rows]

    def wait_for_quiet(self) -> None:
        """Wait (up to --quiet-wait s) until no other session's scratch or test database exists: another test
        run on the machine swings the timings by 2x (and, before commit 5c1901b, a drill or deep verify of
        another catalog dropped this run's scratch database; see bench/README.md)."""
        deadline = time.monotonic() + self.args.quiet_wait
        waited = time.monotonic()
        while (others := self.scratch_databases(test_databases=True)) and time.monotonic() < deadline:
            time.sleep(2)
        if others:
            print(f"  note: another session still uses the server ({len(others)} owb_/owbscratch_ databases); "
                  "going on")
        elif time.monotonic() - waited > 1:
            print(f"  (waited {time.monotonic() - waited:.0f} s for another session to finish)")

    def cli_retrying(self, *argv: str) -> tuple[float, dict[str, Any]]:
        """cli(), again (up to RETRIES times) when the scratch database was dropped under the restore."""
        for attempt in range(RETRIES + 1):
            self.wait_for_quiet()
            try:
                return self.cli(*argv)
            except BenchError as exc:
                if attempt == RETRIES or not any(sign in str(exc) for sign in DROPPED_UNDER_US):
                    raise
                print(f"  retry: {exc}")
        raise AssertionError("unreachable")

    def cli(self, *argv: str) -> tuple[float, dict[str, Any]]:
        wall, done = run([self.args.cli, *argv, "--json"], self.cli_env)
        try:
            report = parse_report(done.stdout) if done.stdout.strip() else {}
        except json.JSONDecodeError:
            report = {}
        if report.get("id"):
            self.our_runs.append(str(report["id"]))
        if done.returncode != 0 or report.get("status") != "succeeded":
            raise BenchError(f"openwatch-backup {' '.join(argv)}: exit {done.returncode}, status "
                             f"{report.get('status')!r}, {report.get('error') or tail(done.stderr)}")
        return wall, report

    def fresh_database(self) -> str:
        name = f"owbbench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        self.made_databases.append(name)
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self.made_databases:
            self.made_databases.remove(name)

    # --- steps ---------------------------------------------------------------------------------------------
    def setup(self) -> tuple[str, int, Path, Path | None]:
        """The plugin's tables, one backup, the baseline archive (and its zstd copy). None of it is timed."""
        revision = subprocess.run([self.args.cli, "db", "upgrade"], env=self.cli_env, capture_output=True,
                                  check=False)
        if revision.returncode != 0:
            raise BenchError(f"openwatch-backup db upgrade: exit {revision.returncode}: {tail(revision.stderr)}")
        print(f"setup: {revision.stdout.decode().strip()}")
        wall, backup = self.cli("backup", "--kind", "full", "--compression", "zstd")
        size = int(backup["size_bytes"])
        print(f"setup: openwatch-backup backup (zstd): {wall:.2f} s, {size / MIB:.1f} MiB, run {backup['id'][:8]}")

        raw = self.work / "raw.dump"
        wall, done = run([self.args.pg_dump, "-Fc", "-Z0", "-f", str(raw), "-d", self.conninfo()], self.pg_env)
        if done.returncode != 0:
            raise BenchError(f"pg_dump -Fc -Z0: exit {done.returncode}: {tail(done.stderr)}")
        print(f"setup: pg_dump -Fc -Z0 -f FILE: {wall:.2f} s, {raw.stat().st_size / MIB:.1f} MiB")
        packed: Path | None = None
        if self.args.zstd:
            packed = raw.with_name(raw.name + ".zst")
            wall, done = run([self.args.zstd, "-q", "-3", "-T0", str(raw), "-o", str(packed)], self.pg_env)
            if done.returncode != 0:
                raise BenchError(f"zstd: exit {done.returncode}: {tail(done.stderr)}")
            print(f"setup: zstd -3 -T0 FILE: {wall:.2f} s, {packed.stat().st_size / MIB:.1f} MiB")
        else:
            print("setup: zstd not found: the zstd -dc | pg_restore row is skipped")
        return str(backup["id"]), size, raw, packed

    def raw_restore(self, source: Path, unzstd: bool) -> float:
        """pg_restore of the file (or of `zstd -dc FILE` on its stdin) into a database made for it."""
        name = self.fresh_database()
        try:
            argv = [self.args.pg_restore, "--no-owner", "--no-privileges", "-d", self.conninfo(name)]
            if not unzstd:
                wall, done = run([*argv, str(source)], self.pg_env, stdout=subprocess.DEVNULL)
            else:
                started = time.perf_counter()
                with subprocess.Popen([self.args.zstd, "-dc", str(source)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE) as unpack:
                    _, done = run(argv, self.pg_env, stdin=unpack.stdout, stdout=subprocess.DEVNULL)
                    assert unpack.stdout is not None
                    unpack.stdout.close()
                    unpack_err = unpack.stderr.read() if unpack.stderr else b""
                wall = time.perf_counter() - started
                if unpack.returncode != 0:
                    raise BenchError(f"zstd -dc: exit {unpack.returncode}: {tail(unpack_err)}")
            if done.returncode != 0:
                raise BenchError(f"pg_restore: exit {done.returncode}: {tail(done.stderr)}")
            return wall
        finally:
            self.drop_database(name)


def report(rows: dict[str, Row], stored_bytes: int) -> int:
    raw = rows.get(RAW)
    print(f"\n{'':<24}{'wall s':>9}{'vs raw':>9}  recorded by the run")
    for row in rows.values():
        ratio = f"{row.wall / raw.wall:.2f}x" if raw and raw.walls else "-"
        inner = statistics.median(row.inner) if row.inner else None
        note = {QUICK: f"read {inner} s; {stored_bytes / MB / row.wall:.0f} MB/s of stored bytes (wall)",
                DEEP: f"restore {inner} s (into the scratch database)",
                DRILL: f"rto_seconds {inner} (verify + restore + checks)"}.get(row.label, "")
        print(f"{row.label:<24}{row.wall:>9.2f}{ratio:>9}  {note}")
    print("vs raw = wall / raw pg_restore wall (pg_restore of the -Z0 file into a fresh database).\n")
    drill = rows.get(DRILL)
    if raw is None or drill is None or not raw.walls or not drill.walls:
        print(f"SKIP  drill within {TARGET_RATIO}x raw pg_restore (a row is missing)")
        return 1
    ok = drill.wall <= TARGET_RATIO * raw.wall
    print(f"{'PASS' if ok else 'FAIL':<5} drill within {TARGET_RATIO}x raw pg_restore "
          f"({drill.wall:.2f} s vs {raw.wall:.2f} s: {drill.wall / raw.wall:.2f}x)")
    return 0 if ok else 1


def find_program(explicit: str | None, name: str, beside_python: bool = False) -> str | None:
    if explicit:
        return shutil.which(explicit)
    if beside_python:
        beside = Path(sys.executable).with_name(name)  # the venv this script runs in
        if beside.exists():
            return str(beside)
    return shutil.which(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="libpq URL of the database to back up, verify and drill")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per row; the median wall is shown")
    parser.add_argument("--out-dir", type=Path, help="where the backup and the baseline file go (default: temp)")
    parser.add_argument("--cli", help="openwatch-backup program (default: beside this Python, then PATH)")
    parser.add_argument("--pg-dump", default="pg_dump", help="pg_dump program (default: from PATH)")
    parser.add_argument("--pg-restore", default="pg_restore", help="pg_restore program (default: from PATH)")
    parser.add_argument("--quiet-wait", type=float, default=300,
                        help="seconds to wait, before each timed step, for other sessions' scratch/test databases "
                        "to go (default 300)")
    parser.add_argument("--zstd", default="zstd", help="zstd program (default: from PATH; skipped if absent)")
    args = parser.parse_args(argv)
    args.cli = find_program(args.cli, "openwatch-backup", beside_python=True)
    args.pg_dump, args.pg_restore = find_program(args.pg_dump, "pg_dump"), find_program(args.pg_restore, "pg_restore")
    args.zstd = find_program(args.zstd, "zstd")
    missing = [name for name, path in (("openwatch-backup", args.cli), ("pg_dump", args.pg_dump),
                                       ("pg_restore", args.pg_restore)) if path is None]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="owb-bench-verify-", dir=args.out_dir))
    bench = Bench(args, work)
    rows: dict[str, Row] = {label: Row(label) for label in (RAW, RAW_ZSTD, QUICK, DEEP, DRILL)}
    status = 1
    try:
        with bench.admin() as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        print(f"database {bench.dbname}: {(size[0] if size else 0) / MIB:.1f} MiB; runs per row: {args.runs}")
        with open("/proc/loadavg") as loadavg:
            print(f"load average: {' '.join(loadavg.read().split()[:3])}")
        backup_id, stored, raw, packed = bench.setup()
        for index in range(args.runs):
            print(f"run {index + 1}:")
            bench.wait_for_quiet()
            wall = bench.raw_restore(raw, unzstd=False)
            rows[RAW].walls.append(wall)
            print(f"  {RAW}: {wall:.2f} s")
            if packed is not None:
                bench.wait_for_quiet()
                wall = bench.raw_restore(packed, unzstd=True)
                rows[RAW_ZSTD].walls.append(wall)
                print(f"  {RAW_ZSTD}: {wall:.2f} s")
            bench.wait_for_quiet()
            wall, done = bench.cli("verify", backup_id)
            rows[QUICK].walls.append(wall)
            rows[QUICK].inner.append(done["details"]["verify"]["checks"]["read_seconds"])
            print(f"  {QUICK}: {wall:.2f} s ({stored / MB / wall:.0f} MB/s of stored bytes)")
            wall, done = bench.cli_retrying("verify", backup_id, "--deep")
            rows[DEEP].walls.append(wall)
            rows[DEEP].inner.append(done["details"]["verify"]["checks"]["restore_seconds"])
            checks = done["details"]["verify"]["checks"]
            print(f"  {DEEP}: {wall:.2f} s (read {checks.get('read_seconds')} s, restore "
                  f"{checks.get('restore_seconds')} s)")
            wall, done = bench.cli_retrying("drill")
            if done["parent_id"] != backup_id:
                raise BenchError(f"the drill used backup {done['parent_id']}, not this run's {backup_id}")
            rows[DRILL].walls.append(wall)
            rows[DRILL].inner.append(done["details"]["drill"]["rto_seconds"])
            checks = done["details"]["drill"]["verify"]["checks"]
            print(f"  {DRILL}: {wall:.2f} s (rto_seconds {done['details']['drill']['rto_seconds']}: read "
                  f"{checks.get('read_seconds')} s, restore {checks.get('restore_seconds')} s, the rest checks "
                  "and scratch database create/drop)")
        if packed is None:
            del rows[RAW_ZSTD]
        status = report(rows, stored)
    except (BenchError, OSError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 2
    finally:
        for name in list(bench.made_databases):
            bench.drop_database(name)
        shutil.rmtree(work, ignore_errors=True)
        ours = [name for name in bench.scratch_databases()
                if any(name.endswith("_" + uuid.UUID(r).hex[:12]) for r in bench.our_runs)]
        print(f"cleanup: removed {work}; scratch databases of this run left: {ours or 'none'}")
        if ours:
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
