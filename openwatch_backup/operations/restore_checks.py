"""Check a restored database against its manifest: row counts, the canary nonce, OpenWatch's migration head.

Used by deep verify, the drill and every restore before anything is swapped into place.
"""

from __future__ import annotations

from typing import Any

from openwatch_backup.core.kinds import BackupKind
from openwatch_backup.core.manifest import Manifest
from openwatch_backup.core.verify_result import VerifyReason, VerifyResult, failed
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.source.connection import connect
from openwatch_backup.source.facts import alembic_head, row_counts, table_exists


def tables_to_count(manifest: Manifest) -> list[str]:
    """The counted tables this kind of backup carries data for."""
    if manifest.kind == BackupKind.SCHEMA.value:
        return []
    if manifest.kind == BackupKind.TABLES.value:
        return [t for t in manifest.row_counts if t in manifest.tables]
    return list(manifest.row_counts)


def check_restored(ctx: OperationContext, manifest: Manifest, dbname: str, checks: dict[str, Any],
                   *, deep: bool = True) -> VerifyResult:
    checks = dict(checks)
    with connect(ctx.target.with_dbname(dbname), ctx.redact) as conn:
        expected = {t: manifest.row_counts[t] for t in tables_to_count(manifest)}
        found = row_counts(conn, list(expected))
        checks["row_counts"] = found
        wrong = {t: (found.get(t), n) for t, n in expected.items() if found.get(t) != n}
        if wrong:
            detail = ", ".join(f"{t}: {got} restored, {want} in the manifest"
                               for t, (got, want) in sorted(wrong.items()))
            return failed(deep, VerifyReason.COUNTS, f"row counts differ ({detail})", checks)
        if manifest.canary_included:
            nonces = ([str(r[0]) for r in conn.execute("SELECT nonce FROM backup_canary")]
                      if table_exists(conn, "backup_canary") else [])
            checks["canary"] = "found" if nonces == [manifest.canary_nonce] else "absent"
            if nonces != [manifest.canary_nonce]:
                return failed(deep, VerifyReason.CANARY, f"the restored database does not hold this dump's canary "
                              f"(expected nonce {manifest.canary_nonce}, found {nonces or 'none'}): the file is not "
                              "the dump this run took", checks)
        if manifest.kind in (BackupKind.FULL.value, BackupKind.PLAIN.value):
            head = alembic_head(conn)
            checks["openwatch_alembic_head"] = head
            if head != manifest.openwatch_alembic_head:
                return failed(deep, VerifyReason.MIGRATION_HEAD, f"OpenWatch's migration head is {head} after the "
                              f"restore, the manifest says {manifest.openwatch_alembic_head}", checks)
    return VerifyResult(deep=deep, checks=checks)
