"""backup_settings (schedule and retention changed at run time) and backup_runs.pinned/pruned_at

Revision ID: owb_0002
Revises: owb_0001
Create Date: 2026-11-26

`backup_settings` holds what an admin changes while OpenWatch runs (schedules, retention): beat's
dispatcher reads it on every tick, so a change needs no restart. Values are JSON; the environment
provides the defaults. `pinned` marks a backup "keep forever" for retention.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "owb_0002"
down_revision: str | None = "owb_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("backup_settings"):
        op.create_table(
            "backup_settings",
            sa.Column("key", sa.String(64), nullable=False),
            sa.Column("value", postgresql.JSONB(), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
            sa.Column("updated_by", sa.String(255)),
            sa.PrimaryKeyConstraint("key", name="pk_backup_settings"),
        )
    columns = {c["name"] for c in inspector.get_columns("backup_runs")}
    if "pinned" not in columns:
        op.add_column("backup_runs", sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()))
    if "pruned_at" not in columns:
        op.add_column("backup_runs", sa.Column("pruned_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.execute("ALTER TABLE backup_runs DROP COLUMN IF EXISTS pruned_at")
    op.execute("ALTER TABLE backup_runs DROP COLUMN IF EXISTS pinned")
    op.execute("DROP TABLE IF EXISTS backup_settings")
