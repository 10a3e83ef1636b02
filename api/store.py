"""Persistence: SQLAlchemy tables and the repository every process shares.

Jobs move queued → running → succeeded | failed | cancelled. Every transition is one
conditional UPDATE, so two workers (threads, processes or machines) can never both claim
a job, and a job cancelled while it runs never becomes succeeded: the worker's final
write only lands while the job is still `running` and still its own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
ACTIVE_STATUSES = (QUEUED, RUNNING)
FINAL_STATUSES = (SUCCEEDED, FAILED, CANCELLED)

ALLOCATION = "allocation"
COMPARISON = "comparison"

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant shared by every Windmaker process: serialises concurrent migrations.
_PG_MIGRATION_LOCK = 0x57494E44


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


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    name: str
    request_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int
    error: str | None
    progress: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Job:
        data = dict(row._mapping)
        data.pop("seq", None)
        return cls(**data)


@dataclass(frozen=True)
class ScenarioResult:
    idx: int
    name: str
    status: str
    error: str | None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


_KEY_COLUMNS = [
    api_keys_table.c[name]
    for name in ("id", "name", "role", "created_at", "revoked_at", "last_used_at")
]


class Store:
    """The database behind one Windmaker deployment."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if migrate:
            self.migrate()

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock up front, so a
        read-then-write transaction can never deadlock against another writer."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.info["sqlite_begin"] = "BEGIN IMMEDIATE"
            with conn.begin():
                yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision; safe when several processes
        start together (they queue on a lock, the later ones find nothing to do)."""
        from alembic import command
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.write() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(sa.select(1))

    def dispose(self) -> None:
        self.engine.dispose()

    # -- jobs -------------------------------------------------------------------------

    def create_job(
        self,
        kind: str,
        *,
        name: str = "",
        request_body: dict[str, Any] | None = None,
        request_id: str | None = None,
        comparison: dict[str, Any] | None = None,
        scenario_names: Sequence[str] = (),
    ) -> Job:
        """Store a new queued job (with its request, or its comparison) in one transaction."""
        now = utcnow()
        job_id = str(uuid.uuid4())
        with self.write() as conn:
            if request_body is not None:
                request_id = str(uuid.uuid4())
                conn.execute(
                    requests_table.insert().values(id=request_id, body=request_body, created_at=now)
                )
            conn.execute(
                jobs_table.insert().values(
                    id=job_id,
                    kind=kind,
                    status=QUEUED,
                    name=name[:200],
                    request_id=request_id,
                    created_at=now,
                    attempts=0,
                )
            )
            if comparison is not None:
                conn.execute(comparisons_table.insert().values(job_id=job_id, **comparison))
                for idx, scenario_name in enumerate(scenario_names):
                    conn.execute(
                        comparison_scenarios_table.insert().values(
                            job_id=job_id, idx=idx, name=scenario_name[:200], status=QUEUED
                        )
                    )
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).one()
        return Job.from_row(row)

    def get_job(self, job_id: str, kind: str | None = None) -> Job | None:
        query = sa.select(jobs_table).where(jobs_table.c.id == job_id)
        if kind is not None:
            query = query.where(jobs_table.c.kind == kind)
        with self.read() as conn:
            row = conn.execute(query).one_or_none()
        return Job.from_row(row) if row is not None else None

    def job_status(self, job_id: str) -> str | None:
        with self.read() as conn:
            return conn.execute(
                sa.select(jobs_table.c.status).where(jobs_table.c.id == job_id)
            ).scalar_one_or_none()

    def list_jobs(
        self, kind: str, *, offset: int, limit: int, status: str | None = None
    ) -> tuple[list[Job], int]:
        """A page of jobs of one kind, newest first, and how many there are in all."""
        where = [jobs_table.c.kind == kind]
        if status is not None:
            where.append(jobs_table.c.status == status)
        with self.read() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(jobs_table).where(*where)
            ).scalar_one()
            rows = conn.execute(
                sa.select(jobs_table)
                .where(*where)
                .order_by(jobs_table.c.seq.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return [Job.from_row(row) for row in rows], int(total)

    def request_body(self, request_id: str) -> dict[str, Any]:
        with self.read() as conn:
            body: dict[str, Any] = conn.execute(
                sa.select(requests_table.c.body).where(requests_table.c.id == request_id)
            ).scalar_one()
        return body

    def cancel_job(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; returns the job afterwards (None: unknown).

        A job already finished keeps its status; the caller tells the client so.
        """
        with self.write() as conn:
            conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, jobs_table.c.status.in_(ACTIVE_STATUSES))
                .values(status=CANCELLED, finished_at=utcnow())
            )
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).one_or_none()
        return Job.from_row(row) if row is not None else None

    def claim_job(self, job_id: str, worker: str, *, stale_before: datetime | None = None) -> bool:
        """Take a queued job (or a running one whose worker went silent before
        `stale_before`) for `worker`. True when this worker now owns it."""
        claimable = jobs_table.c.status == QUEUED
        if stale_before is not None:
            claimable = sa.or_(
                claimable,
                sa.and_(jobs_table.c.status == RUNNING, jobs_table.c.heartbeat_at < stale_before),
            )
        now = utcnow()
        with self.write() as conn:
            result = conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, claimable)
                .values(
                    status=RUNNING,
                    worker=worker,
                    started_at=sa.func.coalesce(jobs_table.c.started_at, now),
                    heartbeat_at=now,
                    attempts=jobs_table.c.attempts + 1,
                )
            )
        return result.rowcount == 1

    def next_queued(self, limit: int = 5) -> list[str]:
        """The oldest queued jobs, candidates for `claim_job`."""
        with self.read() as conn:
            return list(
                conn.execute(
                    sa.select(jobs_table.c.id)
                    .where(jobs_table.c.status == QUEUED)
                    .order_by(jobs_table.c.seq)
                    .limit(limit)
                ).scalars()
            )

    def heartbeat(self, job_id: str, worker: str | None) -> bool:
        """Record that `worker` still runs the job; False when it no longer owns it
        (cancelled, or taken over after it was presumed dead). `worker=None` (Celery
        fan-out, where many tasks share a job) only needs the job to be running."""
        with self.write() as conn:
            result = conn.execute(
                jobs_table.update().where(*_owned(job_id, worker)).values(heartbeat_at=utcnow())
            )
        return result.rowcount == 1

    def set_progress(self, job_id: str, worker: str | None, progress: dict[str, Any]) -> None:
        with self.write() as conn:
            conn.execute(
                jobs_table.update()
                .where(*_owned(job_id, worker))
                .values(progress=progress, heartbeat_at=utcnow())
            )

    def requeue_stale(
        self, stale_after: timedelta, max_attempts: int
    ) -> tuple[list[str], list[str]]:
        """Put running jobs whose worker went silent back in the queue; a job that has
        already taken `max_attempts` workers down fails instead. Returns (requeued, failed)."""
        cutoff = utcnow() - stale_after
        stale = sa.and_(jobs_table.c.status == RUNNING, jobs_table.c.heartbeat_at < cutoff)
        with self.write() as conn:
            rows = conn.execute(
                sa.select(jobs_table.c.id, jobs_table.c.attempts).where(stale)
            ).all()
            requeued, failed = [], []
            for job_id, attempts in rows:
                if attempts >= max_attempts:
                    values: dict[str, Any] = {
                        "status": FAILED,
                        "finished_at": utcnow(),
                        "error": f"the job stopped {attempts} workers (crash or kill); given up",
                    }
                    failed.append(job_id)
                else:
                    values = {"status": QUEUED, "worker": None}
                    requeued.append(job_id)
                conn.execute(
                    jobs_table.update().where(jobs_table.c.id == job_id, stale).values(**values)
                )
        return requeued, failed

    def release_job(self, job_id: str, worker: str) -> bool:
        """Hand a running job back to the queue (graceful shutdown); the attempt it used
        does not count toward `max_attempts`."""
        with self.write() as conn:
            result = conn.execute(
                jobs_table.update()
                .where(*_owned(job_id, worker))
                .values(
                    status=QUEUED,
                    worker=None,
                    progress=None,
                    attempts=sa.func.max(jobs_table.c.attempts - 1, 0)
                    if self.is_sqlite
                    else sa.func.greatest(jobs_table.c.attempts - 1, 0),
                )
            )
        return result.rowcount == 1

    def finish_job(
        self,
        job_id: str,
        worker: str | None,
        *,
        plans: Sequence[dict[str, Any]] = (),
        summary: dict[str, Any] | None = None,
    ) -> bool:
        """Store the result and mark the job succeeded, atomically and only while it is
        still this worker's running job. False (nothing stored) when it was cancelled."""
        with self.write() as conn:
            result = conn.execute(
                jobs_table.update()
                .where(*_owned(job_id, worker))
                .values(status=SUCCEEDED, finished_at=utcnow(), error=None)
            )
            if result.rowcount != 1:
                return False  # cancelled or taken over: nothing was written
            if plans:
                conn.execute(plans_table.delete().where(plans_table.c.job_id == job_id))
                conn.execute(
                    plans_table.insert(),
                    [
                        {"job_id": job_id, "scenario": 0, "rank": plan["rank"], "plan": plan}
                        for plan in plans
                    ],
                )
            if summary is not None:
                conn.execute(
                    comparisons_table.update()
                    .where(comparisons_table.c.job_id == job_id)
                    .values(rows=summary)
                )
        return True

    def fail_job(self, job_id: str, worker: str | None, error: str) -> bool:
        where = [jobs_table.c.id == job_id, jobs_table.c.status.in_(ACTIVE_STATUSES)]
        if worker is not None:
            where.append(jobs_table.c.worker == worker)
        with self.write() as conn:
            result = conn.execute(
                jobs_table.update()
                .where(*where)
                .values(status=FAILED, finished_at=utcnow(), error=error[:10_000])
            )
        return result.rowcount == 1

    def plans(self, job_id: str, scenario: int = 0) -> list[dict[str, Any]]:
        with self.read() as conn:
            return list(
                conn.execute(
                    sa.select(plans_table.c.plan)
                    .where(plans_table.c.job_id == job_id, plans_table.c.scenario == scenario)
                    .order_by(plans_table.c.rank)
                ).scalars()
            )

    def plan(self, job_id: str, rank: int, scenario: int = 0) -> dict[str, Any] | None:
        with self.read() as conn:
            return conn.execute(
                sa.select(plans_table.c.plan).where(
                    plans_table.c.job_id == job_id,
                    plans_table.c.scenario == scenario,
                    plans_table.c.rank == rank,
                )
            ).scalar_one_or_none()

    # -- comparisons ------------------------------------------------------------------

    def comparison(self, job_id: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(
                sa.select(comparisons_table).where(comparisons_table.c.job_id == job_id)
            ).one_or_none()
        return dict(row._mapping) if row is not None else None

    def scenario_results(self, job_id: str) -> list[ScenarioResult]:
        table = comparison_scenarios_table
        with self.read() as conn:
            rows = conn.execute(
                sa.select(table.c.idx, table.c.name, table.c.status, table.c.error)
                .where(table.c.job_id == job_id)
                .order_by(table.c.idx)
            ).all()
        return [ScenarioResult(*row) for row in rows]

    def save_scenario(
        self,
        job_id: str,
        idx: int,
        *,
        status: str,
        plans: Sequence[dict[str, Any]] = (),
        error: str | None = None,
    ) -> bool:
        """Record one scenario's outcome while the comparison is still running."""
        table = comparison_scenarios_table
        with self.write() as conn:
            running = conn.execute(
                sa.select(jobs_table.c.status).where(jobs_table.c.id == job_id)
            ).scalar_one_or_none()
            if running != RUNNING:
                return False
            conn.execute(
                table.update()
                .where(table.c.job_id == job_id, table.c.idx == idx)
                .values(status=status, error=error, finished_at=utcnow())
            )
            conn.execute(
                plans_table.delete().where(
                    plans_table.c.job_id == job_id, plans_table.c.scenario == idx
                )
            )
            if plans:
                conn.execute(
                    plans_table.insert(),
                    [
                        {"job_id": job_id, "scenario": idx, "rank": plan["rank"], "plan": plan}
                        for plan in plans
                    ],
                )
        return True

    # -- API keys ---------------------------------------------------------------------

    def add_key(self, *, key_id: str, name: str, role: str, token_hash: str) -> ApiKey:
        now = utcnow()
        with self.write() as conn:
            conn.execute(
                api_keys_table.insert().values(
                    id=key_id, name=name, role=role, token_hash=token_hash, created_at=now
                )
            )
        return ApiKey(key_id, name, role, now, None, None)

    def find_key(self, token_hash: str) -> ApiKey | None:
        with self.read() as conn:
            row = conn.execute(
                sa.select(*_KEY_COLUMNS).where(api_keys_table.c.token_hash == token_hash)
            ).one_or_none()
        return ApiKey(*row) if row is not None else None

    def touch_key(self, key_id: str, older_than: timedelta) -> None:
        """Note a key's use, at most once per `older_than` so reads stay read-only."""
        now = utcnow()
        with self.write() as conn:
            conn.execute(
                api_keys_table.update()
                .where(
                    api_keys_table.c.id == key_id,
                    sa.or_(
                        api_keys_table.c.last_used_at.is_(None),
                        api_keys_table.c.last_used_at < now - older_than,
                    ),
                )
                .values(last_used_at=now)
            )

    def list_keys(self) -> list[ApiKey]:
        with self.read() as conn:
            rows = conn.execute(
                sa.select(*_KEY_COLUMNS).order_by(api_keys_table.c.created_at)
            ).all()
        return [ApiKey(*row) for row in rows]

    def revoke_key(self, key_id: str) -> bool:
        with self.write() as conn:
            result = conn.execute(
                api_keys_table.update()
                .where(api_keys_table.c.id == key_id, api_keys_table.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return result.rowcount == 1

    def any_active_key(self) -> bool:
        with self.read() as conn:
            return (
                conn.execute(
                    sa.select(api_keys_table.c.id)
                    .where(api_keys_table.c.revoked_at.is_(None))
                    .limit(1)
                ).first()
                is not None
            )


def _owned(job_id: str, worker: str | None) -> list[sa.ColumnElement[bool]]:
    """The job is running and, when `worker` is given, still that worker's."""
    where = [jobs_table.c.id == job_id, jobs_table.c.status == RUNNING]
    if worker is not None:
        where.append(jobs_table.c.worker == worker)
    return where


# Request threads, runner threads and their heartbeats all hold connections at once.
_POOL = {"pool_size": 10, "max_overflow": 20}


def _make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, **_POOL)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **_POOL
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (see `write`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if ":memory:" not in url and "mode=memory" not in url:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.info.pop("sqlite_begin", "BEGIN"))

    return engine


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def store_for(url: str) -> Store:
    """One migrated Store (engine and pool) per database URL per process."""
    with _stores_lock:
        if url not in _stores:
            _stores[url] = Store(url)
        return _stores[url]


def default_store() -> Store:
    """The store of the configured database (WINDMAKER_DATABASE_URL / DATABASE_URL)."""
    from api.config import load_config

    return store_for(load_config()["DATABASE_URL"])
