"""The embedded local stack for the demo and the tests: PostgreSQL, Redis and a seeded demo database.

Each `ensure_*` function reuses a server that already answers on its standard loopback port, and otherwise
starts a throwaway one that belongs to the caller: on a free port, bound to 127.0.0.1 only, its files under
`var_dir`, stopped (and its files removed) by `handle.stop()`, by leaving a `with handle:` block, or at the
latest when the Python process exits normally. A throwaway server records which process owns it; the next
`ensure_*` call with the same `var_dir` stops and removes throwaway servers whose owner has died (a killed
run), so nothing started here outlives its owner for long.

PostgreSQL refuses to run as root; as root the cluster is created and run as the `postgres` system user
(through `runuser`), in a folder that user owns.

Modules: `processes` (ports, pids, running commands as another user, waiting and killing), `postgres`
(server programs, handle, throwaway clusters), `databases` (create/drop, scratch names, orphans, the demo
database), `redis` (handle, throwaway servers), `errors` (DevstackError). Use the names re-exported here.
"""

from __future__ import annotations

from openwatch_backup.devstack.databases import (
    SCRATCH_PREFIX,
    create_database,
    database_exists,
    drop_database,
    drop_orphan_databases,
    ensure_demo_database,
    scratch_database_name,
)
from openwatch_backup.devstack.errors import DevstackError
from openwatch_backup.devstack.postgres import (
    DEFAULT_PG_PORT,
    PG_PACKAGES,
    PostgresHandle,
    ensure_postgres,
    find_pg_bin_dir,
    postgres_answers,
    postgres_from_url,
)
from openwatch_backup.devstack.processes import LOOPBACK, pick_free_port, port_is_open
from openwatch_backup.devstack.redis import (
    DEFAULT_REDIS_PORT,
    REDIS_PACKAGES,
    RedisHandle,
    ensure_redis,
    redis_answers,
)

__all__ = [
    "DEFAULT_PG_PORT",
    "DEFAULT_REDIS_PORT",
    "LOOPBACK",
    "PG_PACKAGES",
    "REDIS_PACKAGES",
    "SCRATCH_PREFIX",
    "DevstackError",
    "PostgresHandle",
    "RedisHandle",
    "create_database",
    "database_exists",
    "drop_database",
    "drop_orphan_databases",
    "ensure_demo_database",
    "ensure_postgres",
    "ensure_redis",
    "find_pg_bin_dir",
    "pick_free_port",
    "port_is_open",
    "postgres_answers",
    "postgres_from_url",
    "redis_answers",
    "scratch_database_name",
]
