"""Fail closed before any file is created: database answers, client new enough, target writable, space."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from openwatch_backup.core.kinds import Compression
from openwatch_backup.core.naming import POSTGRES_PREFIX
from openwatch_backup.core.units import human_bytes as human_bytes  # re-exported: checklist.py imports it here
from openwatch_backup.errors import InsufficientSpace
from openwatch_backup.executors.base import ClientTool
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.source.facts import ServerFacts, server_facts

MIB = 1 << 20


@dataclass(frozen=True)
class PreflightResult:
    facts: ServerFacts
    pg_dump: ClientTool
    needed_bytes: int
    free_bytes: int | None


def estimate_bytes(database_size: int, compression: Compression, factor: float, reserve: int) -> int:
    """pg_database_size counts indexes and free space a dump omits, so it over-estimates; compressed
    output is estimated at `factor` of it (OPENWATCH_BACKUP_FREE_SPACE_FACTOR), uncompressed at all of it
    unless the factor is set higher. `reserve` stays free for the rest of the machine."""
    share = max(1.0, factor) if compression is Compression.NONE and factor > 0 else factor
    return int(database_size * share) + reserve


def preflight(ctx: OperationContext, conn: psycopg.Connection, compression: Compression) -> PreflightResult:
    facts = server_facts(conn)
    pg_dump = ctx.executor.find_client("pg_dump", facts.major, facts.version)
    ctx.storage.check_writable()
    needed = estimate_bytes(facts.size_bytes, compression, ctx.settings.free_space_factor,
                            ctx.settings.free_space_reserve_mib * MIB)
    free = ctx.storage.free_bytes()
    if free is not None and free < needed:
        raise InsufficientSpace(
            f"only {human_bytes(free)} free at {ctx.storage.location(POSTGRES_PREFIX)}, and this backup needs about "
            f"{human_bytes(needed)} (database {facts.database} is {human_bytes(facts.size_bytes)}); free space, "
            "point OPENWATCH_BACKUP_DIR elsewhere, or lower OPENWATCH_BACKUP_FREE_SPACE_FACTOR")
    return PreflightResult(facts=facts, pg_dump=pg_dump, needed_bytes=needed, free_bytes=free)
