"""Create a sample OpenWatch database of a given size, for the backup benchmarks (see bench/README.md).

    python bench/generate_db.py --dsn postgresql://postgres@127.0.0.1:5432/postgres --name ow_bench_1g \
        --size-mib 1024 [--force]

--dsn points at any database of the server (it is only used to create the new one).
"""

from __future__ import annotations

import argparse
import sys
import time

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

try:
    from openwatch_backup.sample import create_schema, seed
except ImportError as exc:  # a source tree that was never `pip install -e .`-ed
    sys.exit(f"cannot import openwatch_backup ({exc}): run `pip install -e .` or set PYTHONPATH to the repo root")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="libpq URL of the server's maintenance database")
    parser.add_argument("--name", required=True, help="name of the database to create")
    parser.add_argument("--size-mib", type=float, default=1024.0, help="target pg_database_size (default 1024)")
    parser.add_argument("--seed", type=int, default=1, help="random seed: same seed, same rows (default 1)")
    parser.add_argument("--force", action="store_true", help="drop the database first if it exists")
    args = parser.parse_args(argv)

    with psycopg.connect(args.dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.name,)).fetchone()
        if exists and not args.force:
            print(f"database {args.name!r} already exists; pass --force to drop and recreate it", file=sys.stderr)
            return 2
        if exists:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(args.name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.name)))

    started = time.perf_counter()
    with psycopg.connect(make_conninfo(args.dsn, dbname=args.name), autocommit=True) as conn:
        create_schema(conn)
        counts = seed(conn, target_mib=args.size_mib, rng_seed=args.seed)
        elapsed = time.perf_counter() - started
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    size = int(row[0]) if row else 0

    for table, count in counts.items():
        print(f"  {table:<22} {count:>12,} rows")
    print(f"database {args.name}: pg_database_size {size / 2**20:.1f} MiB (target {args.size_mib:g} MiB), "
          f"created and seeded in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
