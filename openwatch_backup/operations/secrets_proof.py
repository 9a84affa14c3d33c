"""The proof that the master key fits the data (issue 11, item 6): decrypt a sample of the restored credentials.

A database dump is useless for credentials without OPENWATCH_MASTER_KEY, and a backup that restores fine can
still hold credentials no surviving key opens. So after a scratch restore passed its checks (deep verify and
the drill), this takes the master key from the newest config bundle (operations/bundle_key.py) and decrypts up
to SAMPLE_SIZE stored values, OpenWatch's way (secrets/openwatch_crypto.py), from
hosts.encrypted_credentials, unified_credentials.encrypted_{password,private_key,passphrase} and
users.mfa_secret. A table or column an older schema lacks is left out.

Verdict: a key that fits decrypts every value it encrypted, so one value that does not decrypt is a mismatch
(reason `secrets_mismatch`). Legacy values that were never encrypted (base64 of plain JSON) are counted apart
and prove nothing. Skipped with the reason in checks, never failed: no encrypted value in the database, no
config bundle, a bundle that cannot be read (no or wrong passphrase, damaged: its own verify fails for that),
a bundle that holds no master key (the env snapshot off and no .env listed; the reason names both settings).
checks["secrets"] records the bundle run, the counts per column and how long it took; never a value.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from psycopg import sql

from openwatch_backup.core.verify_result import VerifyReason, VerifyResult, failed
from openwatch_backup.operations.bundle_key import BundleKey, BundleUnusable, master_key_from_newest_bundle
from openwatch_backup.operations.context import OperationContext
from openwatch_backup.secrets.openwatch_crypto import CredentialDecryptError, KeyRing, stored_blob
from openwatch_backup.source.connection import connect

SAMPLE_SIZE = 20
COLUMNS = (
    ("hosts", "encrypted_credentials"),
    ("unified_credentials", "encrypted_password"),
    ("unified_credentials", "encrypted_private_key"),
    ("unified_credentials", "encrypted_passphrase"),
    ("users", "mfa_secret"),
)
NO_BUNDLE = "no config bundle"
_PRESENT = """
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = 'public' AND (table_name, column_name) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""


def _sample(ctx: OperationContext, dbname: str) -> dict[str, list[Any]]:
    """{"table.column": its values}, SAMPLE_SIZE in all (or every one, when fewer), spread evenly over the
    columns this schema has: the columns with fewest values first, each taking all of its share or all it has."""
    with connect(ctx.target.with_dbname(dbname), ctx.redact) as conn:
        found = {tuple(r) for r in conn.execute(_PRESENT, ([t for t, _ in COLUMNS], [c for _, c in COLUMNS]))}
        counts = {(t, c): _scalar(conn, sql.SQL("SELECT count({c}) FROM public.{t}"), t, c)
                  for t, c in COLUMNS if (t, c) in found}
        values: dict[str, list[Any]] = {}
        left = SAMPLE_SIZE
        for i, (table, column) in enumerate(sorted(counts, key=lambda tc: counts[tc])):
            share = min(counts[(table, column)], left // (len(counts) - i))
            query = sql.SQL("SELECT {c} FROM public.{t} WHERE {c} IS NOT NULL ORDER BY random() LIMIT {n}")
            rows = [r[0] for r in conn.execute(query.format(c=sql.Identifier(column), t=sql.Identifier(table),
                                                            n=sql.Literal(share)))]
            values[f"{table}.{column}"] = rows
            left -= len(rows)
    return {f"{t}.{c}": values[f"{t}.{c}"] for t, c in COLUMNS if f"{t}.{c}" in values}  # in COLUMNS' order


def _scalar(conn: Any, query: sql.SQL, table: str, column: str) -> int:
    row = conn.execute(query.format(c=sql.Identifier(column), t=sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def prove_secrets(ctx: OperationContext, scratch_dbname: str, checks: dict[str, Any],
                  find_key: Callable[[OperationContext], BundleKey | None] = master_key_from_newest_bundle,
                  ) -> VerifyResult | None:
    """Adds checks["secrets"]; returns the failed result on a mismatch, None when it passed or was skipped.
    find_key: where the key comes from (recover: the bundle it restored)."""
    started = time.monotonic()
    values = _sample(ctx, scratch_dbname)
    blobs = {column: [stored_blob(v) for v in rows] for column, rows in values.items()}
    sampled = sum(1 for rows in blobs.values() for b in rows if b is not None)
    plaintext = sum(1 for rows in blobs.values() for b in rows if b is None)
    record: dict[str, Any] = {"sampled": sampled}
    if plaintext:
        record["not_encrypted"] = plaintext
    checks["secrets"] = record
    if sampled == 0:
        record["skipped"] = "no encrypted values in the database"
        return None
    try:
        found = find_key(ctx)
    except BundleUnusable as exc:
        record["skipped"] = exc.message
        return None
    if found is None:
        record["skipped"] = NO_BUNDLE
        return None
    record["bundle_run"] = str(found.run.id)
    if found.master_key is None:
        record["skipped"] = (f"config bundle {found.run.id} holds no OPENWATCH_MASTER_KEY (in neither openwatch.env "
                             "nor a .env): set OPENWATCH_BACKUP_ENV_FILE to OpenWatch's .env or turn on "
                             "OPENWATCH_BACKUP_CONFIG_ENV_SNAPSHOT, then `openwatch-backup backup --kind config`")
        return None
    record["key_member"] = found.member
    ring = KeyRing(found.master_key)
    columns: dict[str, dict[str, int]] = {}
    decrypted = 0
    for column, rows in blobs.items():
        opened = 0
        for blob in rows:
            if blob is None:
                continue
            try:
                ring.decrypt(blob)
                opened += 1
            except CredentialDecryptError:
                pass
        columns[column] = {"sampled": sum(1 for b in rows if b is not None), "decrypted": opened}
        decrypted += opened
    record.update(decrypted=decrypted, columns=columns, seconds=round(time.monotonic() - started, 3))
    if decrypted < sampled:
        return failed(True, VerifyReason.SECRETS_MISMATCH,
                      f"the master key in config bundle {found.run.id} decrypts {decrypted} of {sampled} encrypted "
                      "credentials sampled from the restored database: they were encrypted under another "
                      "OPENWATCH_MASTER_KEY; take a config backup (`openwatch-backup backup --kind config`) where "
                      "the worker runs with the key OpenWatch uses, and keep the bundle holding the old one", checks)
    return None
