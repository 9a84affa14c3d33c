"""backup_runs catalog and backup_canary

Revision ID: owb_0001
Revises:
Create Date: 2026-11-26

Existence-guarded like OpenWatch's own 2026 migrations: a table that is already there (created by an
earlier hand run, or a catalog restored with the database) is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "owb_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written as `= ANY (ARRAY[...::text])`, the form PostgreSQL prints back: an `IN (...)` over varchar is
# deparsed differently after every dump and restore, so schema comparisons would never settle.
STATUS_CHECK = ("status::text = ANY (ARRAY['queued', 'running', 'succeeded', 'failed', 'cancelled', "
                "'abandoned']::text[])")
TRIGGER_CHECK = "trigger::text = ANY (ARRAY['cli', 'api', 'schedule']::text[])"


def _has_table(name: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if not _has_table("backup_runs"):
        op.create_table(
            "backup_runs",
            sa.Column("id", sa.Uuid(), primary_key=True, server_default=sa.text("gen_random_uuid()")),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("trigger", sa.String(16), nullable=False),
            sa.Column("requested_by", sa.String(255)),
            sa.Column("parent_id", sa.Uuid(), sa.ForeignKey("backup_runs.id", ondelete="SET NULL",
                                                            name="fk_backup_runs_parent_id")),
            sa.Column("phase", sa.String(32)),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
            sa.Column("started_at", sa.DateTime(timezone=True)),
            sa.Column("finished_at", sa.DateTime(timezone=True)),
            sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
            sa.Column("bytes_done", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
            sa.Column("artifact_location", sa.Text()),
            sa.Column("size_bytes", sa.BigInteger()),
            sa.Column("sha256", sa.String(64)),
            sa.Column("details", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
            sa.Column("error_code", sa.String(64)),
            sa.Column("error", sa.Text()),
            # Names get the `ck_backup_runs_` prefix from the models' naming convention.
            sa.CheckConstraint(STATUS_CHECK, name="status"),
            sa.CheckConstraint(TRIGGER_CHECK, name="trigger"),
            sa.PrimaryKeyConstraint("id", name="pk_backup_runs"),
        )
        op.create_index("ix_backup_runs_created_at_id", "backup_runs",
                        [sa.text("created_at DESC"), sa.text("id DESC")])
        op.create_index("ix_backup_runs_kind_status", "backup_runs", ["kind", "status"])
    if not _has_table("backup_canary"):
        op.create_table(
            "backup_canary",
            sa.Column("run_id", sa.Uuid(), nullable=False),
            sa.Column("nonce", sa.String(64), nullable=False),
            sa.Column("written_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
            sa.PrimaryKeyConstraint("run_id", name="pk_backup_canary"),
        )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS backup_canary")
    op.execute("DROP TABLE IF EXISTS backup_runs")
