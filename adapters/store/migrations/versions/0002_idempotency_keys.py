"""jobs remember the client's Idempotency-Key and a hash of what it submitted

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Self-contained like 0001. Plain ADD COLUMN and CREATE UNIQUE INDEX work on SQLite and
PostgreSQL alike, so no batch (table copy) is needed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("idempotency_key", sa.String(length=64), nullable=True))
    op.add_column("jobs", sa.Column("request_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_jobs_idempotency_key", "jobs", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_jobs_idempotency_key", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("request_hash")
        batch.drop_column("idempotency_key")
