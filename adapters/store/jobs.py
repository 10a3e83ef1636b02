"""Jobs, their plans and comparisons in the database.

Jobs move queued → running → succeeded | failed | cancelled. Every transition is one
conditional UPDATE, so two workers (threads, processes or machines) can never both claim
a job, and a job cancelled while it runs never becomes succeeded: the worker's final
write only lands while the job is still `running` and still its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from adapters.store.database import Database
from adapters.store.provenance import record_audit
from adapters.store.tables import (
    comparison_scenarios_table,
    comparisons_table,
    jobs_table,
    plans_table,
    requests_table,
)
from service.errors import DuplicateSubmission
from service.records import (
    ACTIVE_STATUSES,
    ANONYMOUS,
    CANCEL,
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUBMIT,
    SUCCEEDED,
    Job,
    ScenarioResult,
    utcnow,
)


def job_from_row(row: sa.Row[Any]) -> Job:
    data = dict(row._mapping)
    data.pop("seq", None)
    return Job(**data)


class JobTables(Database):
    """The job half of the store (`service.ports.JobStore`)."""

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
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        submitted_by: str = ANONYMOUS,
    ) -> Job:
        """Store a new queued job (with its request, or its comparison, and its audit
        entry) in one transaction.

        The unique index on `idempotency_key` decides between concurrent retries: the
        loser's transaction rolls back whole and it hears DuplicateSubmission.
        """
        try:
            return self._insert_job(
                kind,
                name=name,
                request_body=request_body,
                request_id=request_id,
                comparison=comparison,
                scenario_names=scenario_names,
                idempotency=(idempotency_key, request_hash),
                submitted_by=submitted_by,
            )
        except sa.exc.IntegrityError:
            if idempotency_key is None or self.find_idempotent(idempotency_key) is None:
                raise
            raise DuplicateSubmission("a job with this idempotency key exists") from None

    def find_idempotent(self, idempotency_key: str) -> Job | None:
        query = sa.select(jobs_table).where(jobs_table.c.idempotency_key == idempotency_key)
        with self.read() as conn:
            row = conn.execute(query).one_or_none()
        return job_from_row(row) if row is not None else None

    def _insert_job(
        self,
        kind: str,
        *,
        name: str,
        request_body: dict[str, Any] | None,
        request_id: str | None,
        comparison: dict[str, Any] | None,
        scenario_names: Sequence[str],
        idempotency: tuple[str | None, str | None],
        submitted_by: str,
    ) -> Job:
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
                    idempotency_key=idempotency[0],
                    request_hash=idempotency[1],
                    submitted_by=submitted_by[:200],
                )
            )
            record_audit(conn, submitted_by, SUBMIT, job_id, {"kind": kind, "name": name[:200]})
            if comparison is not None:
                conn.execute(comparisons_table.insert().values(job_id=job_id, **comparison))
                for idx, scenario_name in enumerate(scenario_names):
                    conn.execute(
                        comparison_scenarios_table.insert().values(
                            job_id=job_id, idx=idx, name=scenario_name[:200], status=QUEUED
                        )
                    )
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).one()
        return job_from_row(row)

    def get_job(self, job_id: str, kind: str | None = None) -> Job | None:
        query = sa.select(jobs_table).where(jobs_table.c.id == job_id)
        if kind is not None:
            query = query.where(jobs_table.c.kind == kind)
        with self.read() as conn:
            row = conn.execute(query).one_or_none()
        return job_from_row(row) if row is not None else None

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
        return [job_from_row(row) for row in rows], int(total)

    def request_body(self, request_id: str) -> dict[str, Any]:
        with self.read() as conn:
            body: dict[str, Any] = conn.execute(
                sa.select(requests_table.c.body).where(requests_table.c.id == request_id)
            ).scalar_one()
        return body

    def cancel_job(self, job_id: str, *, by: str = ANONYMOUS) -> Job | None:
        """Cancel a queued or running job; returns the job afterwards (None: unknown).

        A job already finished keeps its status; the caller tells the client so. Only a
        cancellation that happened is audited (under `by`).
        """
        with self.write() as conn:
            result = conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, jobs_table.c.status.in_(ACTIVE_STATUSES))
                .values(status=CANCELLED, finished_at=utcnow())
            )
            if result.rowcount == 1:
                kind = conn.execute(
                    sa.select(jobs_table.c.kind).where(jobs_table.c.id == job_id)
                ).scalar_one()
                record_audit(conn, by, CANCEL, job_id, {"kind": kind})
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).one_or_none()
        return job_from_row(row) if row is not None else None

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


def _owned(job_id: str, worker: str | None) -> list[sa.ColumnElement[bool]]:
    """The job is running and, when `worker` is given, still that worker's."""
    where = [jobs_table.c.id == job_id, jobs_table.c.status == RUNNING]
    if worker is not None:
        where.append(jobs_table.c.worker == worker)
    return where
