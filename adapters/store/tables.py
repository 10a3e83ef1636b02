"""The tables every Windmaker process shares (SQLAlchemy Core). The schema itself is made
by the Alembic migrations in `adapters/store/migrations`; these definitions must match
them (tests/integration/test_store.py checks that a migrated database has every table)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

requests_table = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("body", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

jobs_table = sa.Table(
    "jobs",
    metadata,
    # seq orders jobs by submission even when two share a timestamp.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("request_id", sa.String(36), sa.ForeignKey("requests.id"), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
    sa.Column("worker", sa.String(200), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("progress", JSONType, nullable=True),
    sa.Column("idempotency_key", sa.String(64), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("submitted_by", sa.String(200), nullable=True),
    sa.Index("ix_jobs_idempotency_key", "idempotency_key", unique=True),
)

plans_table = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    # 0 for an allocation; a comparison's scenario index (0 is the base).
    sa.Column("scenario", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("plan", JSONType, nullable=False),
    sa.UniqueConstraint("job_id", "scenario", "rank", name="uq_plans_job_scenario_rank"),
)

comparisons_table = sa.Table(
    "comparisons",
    metadata,
    sa.Column(
        "job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("base_allocation_id", sa.String(36), nullable=True),
    sa.Column("scenarios", JSONType, nullable=False),  # as submitted: [{"name", "changes"}]
    # The finished comparison: {"scenarios": rows (base first), "differences": [...]}.
    sa.Column("rows", JSONType, nullable=True),
)

comparison_scenarios_table = sa.Table(
    "comparison_scenarios",
    metadata,
    sa.Column(
        "job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
)

api_keys_table = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
)

adoptions_table = sa.Table(
    "adoptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("programme", sa.String(200), nullable=False, index=True),
    # No cascade: a job whose plan was ever adopted cannot be deleted under its history.
    sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("adopted_by", sa.String(200), nullable=False),
    sa.Column("adopted_at", UTCDateTime(), nullable=False),
    sa.Column("is_current", sa.Boolean, nullable=False, server_default=sa.false()),
    # At most one current adoption per programme, whatever races the writers run.
    sa.Index(
        "uq_adoptions_current_programme",
        "programme",
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    ),
)

audit_table = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(32), nullable=False, index=True),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("details", JSONType, nullable=False),
)
