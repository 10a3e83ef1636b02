"""adopted plans per programme, the audit log, and who submitted each job

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Self-contained like 0001. The partial unique index (one current adoption per programme)
is supported by SQLite and PostgreSQL alike; ADD COLUMN needs no batch copy.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("submitted_by", sa.String(length=200), nullable=True))
    op.create_table(
        "adoptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("programme", sa.String(length=200), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("adopted_by", sa.String(length=200), nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_adoptions_job_id_jobs"),
        sa.PrimaryKeyConstraint("id", name="pk_adoptions"),
    )
    op.create_index("ix_adoptions_programme", "adoptions", ["programme"])
    op.create_index("ix_adoptions_job_id", "adoptions", ["job_id"])
    op.create_index(
        "uq_adoptions_current_programme",
        "adoptions",
        ["programme"],
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_action", "audit", ["action"])


def downgrade() -> None:
    op.drop_index("ix_audit_action", table_name="audit")
    op.drop_table("audit")
    op.drop_index("uq_adoptions_current_programme", table_name="adoptions")
    op.drop_index("ix_adoptions_job_id", table_name="adoptions")
    op.drop_index("ix_adoptions_programme", table_name="adoptions")
    op.drop_table("adoptions")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("submitted_by")
