"""backup_copies: each backup's copies (local file, off-site S3 object), with a state each

Revision ID: owb_0003
Revises: owb_0002
Create Date: 2026-11-30

Backups made before this revision get their local copy here: `deleted` when retention took the files,
`verified` when a verify of the backup succeeded, `pending` otherwise. Existence-guarded like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "owb_0003"
down_revision: str | None = "owb_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STORAGE_CHECK = "storage::text = ANY (ARRAY['local', 's3']::text[])"
STATE_CHECK = "state::text = ANY (ARRAY['pending', 'copying', 'verified', 'failed', 'deleted']::text[])"
BACKUP_KINDS = "('full', 'plain', 'schema', 'tables')"
BACKFILL_NEEDS = {"kind", "status", "details", "artifact_location", "size_bytes", "sha256", "parent_id",
                  "finished_at", "pruned_at"}


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("backup_copies"):
        return
    op.create_table(
        "backup_copies",
        sa.Column("id", sa.Uuid(), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("storage", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger()),
        sa.Column("sha256", sa.String(64)),
        sa.Column("upload_id", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        sa.Column("reverified_at", sa.DateTime(timezone=True)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_backup_copies"),
        sa.ForeignKeyConstraint(["run_id"], ["backup_runs.id"], name="fk_backup_copies_run_id", ondelete="CASCADE"),
        sa.UniqueConstraint("run_id", "storage", name="uq_backup_copies_run_id_storage"),
        sa.CheckConstraint(STORAGE_CHECK, name="ck_backup_copies_storage"),
        sa.CheckConstraint(STATE_CHECK, name="ck_backup_copies_state"),
    )
    op.create_index("ix_backup_copies_storage_state", "backup_copies", ["storage", "state"])
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("backup_runs")}
    if not columns >= BACKFILL_NEEDS:  # a hand-made backup_runs (see 0001) has no backups to describe
        return
    op.execute(f"""
        INSERT INTO backup_copies (run_id, storage, state, key, location, size_bytes, sha256, created_at, updated_at,
                                   verified_at, deleted_at)
        SELECT r.id, 'local',
               CASE WHEN r.pruned_at IS NOT NULL THEN 'deleted' WHEN v.finished_at IS NOT NULL THEN 'verified'
                    ELSE 'pending' END,
               'postgres/' || (r.details->>'artifact'), r.artifact_location, r.size_bytes, r.sha256,
               r.finished_at, now(), v.finished_at, r.pruned_at
        FROM backup_runs r
        LEFT JOIN LATERAL (SELECT max(finished_at) AS finished_at FROM backup_runs c
                           WHERE c.parent_id = r.id AND c.kind = 'verify' AND c.status = 'succeeded') v ON true
        WHERE r.kind IN {BACKUP_KINDS} AND r.status = 'succeeded' AND r.details ? 'artifact'
          AND r.artifact_location IS NOT NULL
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS backup_copies")
