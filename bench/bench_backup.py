"""Time raw pg_dump and `openwatch-backup backup` on the same database, and check the speed/size targets.

    python bench/bench_backup.py --dsn postgresql://postgres@127.0.0.1:5432/ow_bench_1g [--runs 1] [--out-dir DIR]
        [--modes zstd,pg,none] [--baseline-cli PATH]

Rows: raw `pg_dump -Fc` (what the upgrade guide runs), raw `pg_dump -Fc -Z0` (the server's own speed), then
`openwatch-backup backup --json --kind full --compression MODE` for zstd, pg and none (`--modes`), and with
`--baseline-cli` another openwatch-backup (an older checkout, say) in zstd mode, interleaved with the rest, to
measure a change under the same load. A warm-up `pg_dump -Fc -Z0 > /dev/null` runs first so every timed run
sees a warm page cache (it cannot be dropped here), then one untimed backup per CLI caches its bytecode as an
install would. Every output file is deleted as soon as it is measured.
CPU s is user + system of the child and the children it waited for (wait4): the CLI with its pg_dump; the
server's own CPU is in no row. See bench/README.md.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

MIB = 1024 * 1024
MODES = ("zstd", "pg", "none")
FC, Z0 = "pg_dump -Fc", "pg_dump -Fc -Z0"


@dataclass
class Row:
    label: str
    walls: list[float]
    cpus: list[float]
    size_bytes: int
    rss_bytes: int | None  # ours: what the CLI reports for itself; raw pg_dump: measured by wait4
    rss_seen_bytes: int  # wait4's ru_maxrss for the child (and any children it waited for)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)


def timed(argv: list[str], stdout: IO[bytes] | int, env: dict[str, str]) -> tuple[float, int, int, bytes, float]:
    """Run argv; return (wall seconds, exit code, peak RSS bytes, stderr, CPU seconds). os.wait4 gives this
    child's own rusage, where getrusage(RUSAGE_CHILDREN) would mix in every earlier child's peak."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
        err.seek(0)
        return wall, proc.returncode, usage.ru_maxrss * 1024, err.read(), usage.ru_utime + usage.ru_stime


def raw_dump(args: argparse.Namespace, extra: list[str], out: Path | None) -> tuple[float, int, int, float]:
    """(wall, size, peak RSS, CPU) of pg_dump -Fc [extra] writing to `out` (or /dev/null)."""
    target = out or Path(os.devnull)
    with target.open("wb") as sink:
        wall, code, rss, err, cpu = timed([args.pg_dump, "-Fc", *extra, "-d", args.conninfo], sink, args.pg_env)
    if code != 0:
        sys.exit(f"pg_dump failed (exit {code}): {err.decode(errors='replace').strip()}")
    size = out.stat().st_size if out else 0
    if out:
        out.unlink()
    return wall, size, rss, cpu


def ours(args: argparse.Namespace, mode: str, work: Path, cli: str
         ) -> tuple[float, int, int | None, int, float] | None:
    """(wall, size, reported peak RSS, seen peak RSS, CPU) of one CLI backup, or None after printing why not."""
    backup_dir = Path(tempfile.mkdtemp(prefix=f"ours-{mode}-", dir=work))
    # Without PYTHONDONTWRITEBYTECODE (set in some shells, e.g. this project's sessions): otherwise every run
    # compiles the package's modules again, which an installed package never does (pip writes the bytecode).
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "OPENWATCH_DATABASE_URL": args.dsn, "OPENWATCH_BACKUP_DIR": str(backup_dir)}
    try:
        with tempfile.TemporaryFile() as out:
            argv = [cli, "backup", "--json", "--kind", "full", "--compression", mode]
            wall, code, seen, err, cpu = timed(argv, out, env)
            out.seek(0)
            stdout = out.read().decode(errors="replace")
        report = parse_report(stdout) if code == 0 else {}
    except (json.JSONDecodeError, OSError) as exc:
        print(f"  {mode}: could not run or parse the CLI: {exc}")
        return None
    finally:
        shutil.rmtree(backup_dir, ignore_errors=True)
    if code != 0 or report.get("status") != "succeeded":
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        print(f"  {mode}: openwatch-backup exit {code}, status {report.get('status')!r}: {' | '.join(tail)}")
        return None
    details = report.get("details") or {}
    return wall, int(report["size_bytes"]), details.get("peak_rss_bytes"), seen, cpu


def parse_report(stdout: str) -> dict[str, Any]:
    """The CLI's JSON object; tolerates stray lines before it (the contract says one object on stdout)."""
    try:
        return dict(json.loads(stdout))
    except json.JSONDecodeError:
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise
        return dict(json.loads(lines[-1]))


def load() -> str:
    """1, 5 and 15-minute load averages: other work on the machine moves these timings."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def find_cli(explicit: str | None) -> str | None:
    if explicit:
        return explicit if shutil.which(explicit) else None
    beside = Path(sys.executable).with_name("openwatch-backup")  # the venv this script runs in
    return str(beside) if beside.exists() else shutil.which("openwatch-backup")


def database_size(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def report(rows: dict[str, Row]) -> None:
    fc, z0 = rows[FC], rows[Z0]
    print(f"\n{'':<22}{'wall s':>8}{'CPU s':>7}{'MiB':>9}{'RSS MiB':>9}{'seen':>7}{'vs -Z0':>8}{'speedup':>9}"
          f"{'size':>7}")
    for row in rows.values():
        rss = f"{row.rss_bytes / MIB:.1f}" if row.rss_bytes is not None else "?"
        print(f"{row.label:<22}{row.wall:>8.2f}{row.cpu:>7.2f}{row.size_bytes / MIB:>9.1f}{rss:>9}"
              f"{row.rss_seen_bytes / MIB:>7.1f}{row.wall / z0.wall:>7.2f}x{fc.wall / row.wall:>8.2f}x"
              f"{row.size_bytes / fc.size_bytes:>7.3f}")
    print("wall and CPU s are medians; CPU = user + system of the child and its waited-for children (not the server);\n"
          "vs -Z0 = wall / raw -Fc -Z0 wall; speedup = raw -Fc wall / wall; size = size / raw -Fc size;\n"
          "RSS = the CLI's own reported peak (raw rows: measured); seen = wait4 peak of the child tree.\n")

    ours_row = rows.get("ours zstd")
    checks: list[tuple[str, Callable[[Row], bool]]] = [
        # Issue 9's target for the CLI: start-up and fixed costs included, the CLI is no slower than raw -Z0.
        ("CLI backup (zstd) within 1.0x raw -Fc -Z0", lambda r: r.wall <= 1.0 * z0.wall),
        ("zstd wall within 1.15x of raw -Fc -Z0", lambda r: r.wall <= 1.15 * z0.wall),
        ("zstd at least 6x faster than raw -Fc", lambda r: fc.wall / r.wall >= 6),
        ("zstd output at most half of raw -Fc", lambda r: r.size_bytes <= fc.size_bytes / 2),
        ("zstd peak RSS under 150 MiB", lambda r: r.rss_bytes is not None and r.rss_bytes < 150 * MIB),
    ]
    if ours_row is None:
        print("targets not checked: no openwatch-backup zstd result")
    for name, ok in checks:
        verdict = "SKIP" if ours_row is None else "PASS" if ok(ours_row) else "FAIL"
        print(f"{verdict:<5} {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="libpq URL of the database to back up")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per row; the median wall is shown")
    parser.add_argument("--out-dir", type=Path, help="where outputs go while measured (default: a temp dir)")
    parser.add_argument("--pg-dump", default="pg_dump", help="pg_dump program (default: from PATH)")
    parser.add_argument("--cli", help="openwatch-backup program (default: beside this Python, then PATH)")
    parser.add_argument("--raw-only", action="store_true", help="measure raw pg_dump only, not openwatch-backup")
    parser.add_argument("--modes", default=",".join(MODES), help="compression modes of the CLI rows (default: all)")
    parser.add_argument("--baseline-cli", help="another openwatch-backup, timed in zstd mode in the same interleaving")
    args = parser.parse_args(argv)
    # The password, if any, goes to pg_dump through the environment, never argv (visible in ps).
    params = conninfo_to_dict(args.dsn)
    password = params.pop("password", None)
    args.conninfo = make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
    args.pg_env = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    args.cli = None if args.raw_only else find_cli(args.cli)
    modes = [m for m in args.modes.split(",") if m]
    if unknown := [m for m in modes if m not in MODES]:
        parser.error(f"--modes: {', '.join(unknown)} not among {', '.join(MODES)}")

    work = Path(tempfile.mkdtemp(prefix="owb-bench-", dir=args.out_dir))
    try:
        print(f"database {params.get('dbname')}: {database_size(args.dsn) / MIB:.1f} MiB; runs per row: {args.runs}; "
              f"cores: {os.cpu_count()}; load average at start: {load()}")
        if args.cli is None and not args.raw_only:
            print("openwatch-backup not found (install the package or pass --cli): only raw pg_dump is measured")
        print("warm-up: pg_dump -Fc -Z0 > /dev/null")
        raw_dump(args, ["-Z0"], None)
        clis = [(f"ours {mode}", mode, args.cli) for mode in modes] if args.cli else []
        if args.baseline_cli:
            clis.append(("baseline zstd", "zstd", args.baseline_cli))
        for cli in dict.fromkeys(cli for _, _, cli in clis):
            print(f"warm-up: {cli} backup (untimed; caches the package's bytecode)")
            ours(args, "zstd", work, cli)
        rows: dict[str, Row] = {}
        for _ in range(args.runs):
            for label, extra in ((FC, []), (Z0, ["-Z0"])):
                wall, size, rss, cpu = raw_dump(args, extra, work / "raw.dump")
                row = rows.setdefault(label, Row(label, [], [], size, rss, rss))
                row.walls.append(wall)
                row.cpus.append(cpu)
                row.rss_seen_bytes = max(row.rss_seen_bytes, rss)
                row.rss_bytes = row.rss_seen_bytes
                print(f"  {label}: {wall:.2f} s, {size / MIB:.1f} MiB")
            for label, mode, cli in clis:
                result = ours(args, mode, work, cli)
                if result is None:
                    continue
                wall, size, reported, seen, cpu = result
                row = rows.setdefault(label, Row(label, [], [], size, reported, seen))
                row.walls.append(wall)
                row.cpus.append(cpu)
                row.rss_seen_bytes = max(row.rss_seen_bytes, seen)
                if reported is not None:
                    row.rss_bytes = max(row.rss_bytes or 0, reported)
                print(f"  {label}: {wall:.2f} s, {size / MIB:.1f} MiB")
        report(rows)
        print(f"load average at end: {load()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
