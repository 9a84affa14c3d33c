"""Sweep zstd levels and worker threads on the real backup stream, to choose the defaults by measurement.

    python bench/bench_zstd_sweep.py --dsn postgresql://postgres@127.0.0.1:5432/ow_bench_450 [--runs 3]
        [--levels 1,2,3] [--threads 0,1,2,4]

Each combination streams `pg_dump -Fc -Z0` through the package's own `core.pipeline.pump` (zstd + sha256) into
a discarding sink, exactly as a backup does, so pg_dump, the server and zstd compete for the cores as they do in
production. A raw `pg_dump -Fc -Z0 > /dev/null` row is the baseline of the same run. Rows are interleaved
`--runs` times and the median wall is shown, so load from other processes hits every row alike.

threads: zstandard's `threads` parameter as the pipeline passes it: 0 here means the package default
(`core.pipeline.zstd_threads(0)`: one worker per core); -1 is shown as "inline" (compression on the calling
thread, no workers). CPU s is this process's user+system time (zstd and hashing); pg_dump's is not in it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO

import psycopg
import zstandard
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from openwatch_backup.core.pipeline import pump, zstd_threads

MIB = 1024 * 1024


class Discard:
    """A sink that keeps nothing (the file system is not what is measured here)."""

    def write(self, data: bytes) -> int:
        return len(data)


@dataclass
class Row:
    label: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    size: int = 0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dump_argv(args: argparse.Namespace) -> list[str]:
    return [args.pg_dump, "-Fc", "-Z0", "-d", args.conninfo]


def raw(args: argparse.Namespace) -> float:
    started = time.perf_counter()
    subprocess.run(dump_argv(args), stdout=subprocess.DEVNULL, env=args.env, check=True)
    return time.perf_counter() - started


def streamed(args: argparse.Namespace, level: int, threads: int) -> tuple[float, float, int]:
    """(wall, CPU seconds of this process, compressed bytes) of pg_dump -Z0 | pump(level, threads)."""
    started, cpu = time.perf_counter(), cpu_seconds()
    with subprocess.Popen(dump_argv(args), stdout=subprocess.PIPE, env=args.env) as proc:
        assert proc.stdout is not None
        # pump's threads=0 means "one per core"; the inline mode (no worker threads) is zstandard's threads=0,
        # which pump cannot express, so -1 here maps to it through a direct parameter.
        if threads >= 0:
            size = pump(proc.stdout, Discard(), zstd_level=level, threads=threads).bytes_out
        else:
            size = inline(proc.stdout, level)
        if proc.wait() != 0:
            sys.exit(f"pg_dump failed with exit {proc.returncode}")
    return time.perf_counter() - started, cpu_seconds() - cpu, size


def inline(source: IO[bytes], level: int) -> int:
    """zstd on the calling thread (zstandard's threads=0), with the sha256 the pipeline also computes."""
    digest = hashlib.sha256()
    size = 0
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True).compressobj()
    while chunk := source.read(1 << 20):
        out = compressor.compress(chunk)
        digest.update(out)
        size += len(out)
    tail = compressor.flush()
    digest.update(tail)
    return size + len(tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--levels", default="1,2,3")
    parser.add_argument("--threads", default="-1,1,2,4", help="-1 inline (no workers), N workers, 0 the default")
    parser.add_argument("--pg-dump", default="pg_dump")
    args = parser.parse_args(argv)
    params = conninfo_to_dict(args.dsn)
    password = params.pop("password", None)
    args.conninfo = make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
    args.env = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    levels = [int(x) for x in args.levels.split(",")]
    threads = [int(x) for x in args.threads.split(",")]

    with psycopg.connect(args.dsn) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    print(f"database {params.get('dbname')}: {(row[0] if row else 0) / MIB:.0f} MiB; cores: {os.cpu_count()}; "
          f"package default threads: {zstd_threads(0)}; runs: {args.runs}; "
          f"load before: {os.getloadavg()[0]:.2f}")
    raw(args)  # warm the page cache
    rows: dict[str, Row] = {}
    for _ in range(args.runs):
        rows.setdefault("raw -Fc -Z0", Row("raw -Fc -Z0")).walls.append(raw(args))
        for level in levels:
            for count in threads:
                label = f"zstd-{level} {'inline' if count < 0 else f'{count} workers'}"
                wall, cpu, size = streamed(args, level, count)
                entry = rows.setdefault(label, Row(label))
                entry.walls.append(wall)
                entry.cpus.append(cpu)
                entry.size = size
    base = statistics.median(rows["raw -Fc -Z0"].walls)
    # The minimum and maximum beside the median: under load one slow run moves a median of three a lot.
    print(f"\n{'':<24}{'wall s':>8}{'min':>7}{'max':>7}{'vs -Z0':>8}{'CPU s':>8}{'MiB':>8}")
    for entry in rows.values():
        wall = statistics.median(entry.walls)
        cpu_text = f"{statistics.median(entry.cpus):.2f}" if entry.cpus else "-"
        size_text = f"{entry.size / MIB:.1f}" if entry.size else "-"
        print(f"{entry.label:<24}{wall:>8.2f}{min(entry.walls):>7.2f}{max(entry.walls):>7.2f}{wall / base:>7.2f}x"
              f"{cpu_text:>8}{size_text:>8}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
