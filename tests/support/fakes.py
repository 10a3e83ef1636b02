"""In-memory fakes of the service's ports (cosmicpython's FakeRepository style): the
service layer tested without a database or a broker. They keep the store's contract
(conditional transitions: a cancelled job never becomes succeeded), not its SQL."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from service.errors import DuplicateSubmission
from service.records import (
    ACTIVE_STATUSES,
    ADOPT,
    ANONYMOUS,
    CANCEL,
    CANCELLED,
    FAILED,
    KEY_CREATE,
    KEY_REVOKE,
    QUEUED,
    RUNNING,
    SUBMIT,
    SUCCEEDED,
    Adoption,
    ApiKey,
    AuditEntry,
    Job,
    ScenarioResult,
    utcnow,
)


class FakeStore:
    """`service.ports.JobStore`, `KeyStore` and `ProvenanceStore` over dicts."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.requests: dict[str, dict[str, Any]] = {}
        self.results: dict[tuple[str, int], list[dict[str, Any]]] = {}  # (job, scenario)
        self.comparisons: dict[str, dict[str, Any]] = {}
        self.scenarios: dict[str, list[ScenarioResult]] = {}
        self.keys: dict[str, tuple[ApiKey, str]] = {}  # id -> (key, token hash)
        self.adoption_rows: list[Adoption] = []  # oldest first
        self.audit: list[AuditEntry] = []  # oldest first

    def _audit(self, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
        entry = AuditEntry(len(self.audit) + 1, utcnow(), actor, action, target, details)
        self.audit.append(entry)

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
        if idempotency_key is not None and self.find_idempotent(idempotency_key) is not None:
            raise DuplicateSubmission("a job with this idempotency key exists")
        if request_body is not None:
            request_id = str(uuid.uuid4())
            self.requests[request_id] = request_body
        job = Job(
            str(uuid.uuid4()), kind, QUEUED, name[:200], request_id, utcnow(),
            None, None, None, None, 0, None, None, idempotency_key, request_hash, submitted_by,
        )  # fmt: skip
        self.jobs[job.id] = job
        self._audit(submitted_by, SUBMIT, job.id, {"kind": kind, "name": name[:200]})
        if comparison is not None:
            self.comparisons[job.id] = {"job_id": job.id, "rows": None, **comparison}
            self.scenarios[job.id] = [
                ScenarioResult(idx, scenario, QUEUED, None)
                for idx, scenario in enumerate(scenario_names)
            ]
        return job

    def find_idempotent(self, idempotency_key: str) -> Job | None:
        return next((j for j in self.jobs.values() if j.idempotency_key == idempotency_key), None)

    def get_job(self, job_id: str, kind: str | None = None) -> Job | None:
        job = self.jobs.get(job_id)
        return job if job is not None and kind in (None, job.kind) else None

    def job_status(self, job_id: str) -> str | None:
        job = self.jobs.get(job_id)
        return job.status if job else None

    def list_jobs(
        self, kind: str, *, offset: int, limit: int, status: str | None = None
    ) -> tuple[list[Job], int]:
        found = [j for j in self.jobs.values() if j.kind == kind and status in (None, j.status)]
        found.reverse()  # newest first (dicts keep insertion order)
        return found[offset : offset + limit], len(found)

    def request_body(self, request_id: str) -> dict[str, Any]:
        return self.requests[request_id]

    def _update(self, job_id: str, **values: Any) -> None:
        self.jobs[job_id] = replace(self.jobs[job_id], **values)

    def _owned(self, job_id: str, worker: str | None) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job.status == RUNNING and worker in (None, job.worker)

    def cancel_job(self, job_id: str, *, by: str = ANONYMOUS) -> Job | None:
        job = self.jobs.get(job_id)
        if job is not None and job.status in ACTIVE_STATUSES:
            self._update(job_id, status=CANCELLED, finished_at=utcnow())
            self._audit(by, CANCEL, job_id, {"kind": job.kind})
        return self.jobs.get(job_id)

    def claim_job(self, job_id: str, worker: str, *, stale_before: datetime | None = None) -> bool:
        job = self.jobs.get(job_id)
        if job is None:
            return False
        stale = (
            stale_before is not None
            and job.status == RUNNING
            and job.heartbeat_at is not None
            and job.heartbeat_at < stale_before
        )
        if job.status != QUEUED and not stale:
            return False
        now = utcnow()
        self._update(
            job_id,
            status=RUNNING,
            worker=worker,
            started_at=job.started_at or now,
            heartbeat_at=now,
            attempts=job.attempts + 1,
        )
        return True

    def heartbeat(self, job_id: str, worker: str | None) -> bool:
        if not self._owned(job_id, worker):
            return False
        self._update(job_id, heartbeat_at=utcnow())
        return True

    def set_progress(self, job_id: str, worker: str | None, progress: dict[str, Any]) -> None:
        if self._owned(job_id, worker):
            self._update(job_id, progress=progress, heartbeat_at=utcnow())

    def finish_job(
        self,
        job_id: str,
        worker: str | None,
        *,
        plans: Sequence[dict[str, Any]] = (),
        summary: dict[str, Any] | None = None,
    ) -> bool:
        if not self._owned(job_id, worker):
            return False
        self._update(job_id, status=SUCCEEDED, finished_at=utcnow(), error=None)
        if plans:
            self.results[(job_id, 0)] = sorted(plans, key=lambda plan: plan["rank"])
        if summary is not None:
            self.comparisons[job_id]["rows"] = summary
        return True

    def fail_job(self, job_id: str, worker: str | None, error: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.status not in ACTIVE_STATUSES or worker not in (None, job.worker):
            return False
        self._update(job_id, status=FAILED, finished_at=utcnow(), error=error)
        return True

    def plans(self, job_id: str, scenario: int = 0) -> list[dict[str, Any]]:
        return list(self.results.get((job_id, scenario), []))

    def plan(self, job_id: str, rank: int, scenario: int = 0) -> dict[str, Any] | None:
        return next((p for p in self.plans(job_id, scenario) if p["rank"] == rank), None)

    def comparison(self, job_id: str) -> dict[str, Any] | None:
        return self.comparisons.get(job_id)

    def scenario_results(self, job_id: str) -> list[ScenarioResult]:
        return list(self.scenarios.get(job_id, []))

    def save_scenario(
        self,
        job_id: str,
        idx: int,
        *,
        status: str,
        plans: Sequence[dict[str, Any]] = (),
        error: str | None = None,
    ) -> bool:
        if self.job_status(job_id) != RUNNING:
            return False
        rows = self.scenarios[job_id]
        rows[idx] = replace(rows[idx], status=status, error=error)
        self.results[(job_id, idx)] = sorted(plans, key=lambda plan: plan["rank"])
        return True

    # -- API keys ---------------------------------------------------------------------

    @staticmethod
    def _hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def add_key(
        self, *, key_id: str, name: str, role: str, token: str, by: str = ANONYMOUS
    ) -> ApiKey:
        key = ApiKey(key_id, name, role, utcnow(), None, None)
        self.keys[key_id] = (key, self._hash(token))
        self._audit(by, KEY_CREATE, key_id, {"name": name, "role": role})
        return key

    def find_key(self, token: str) -> ApiKey | None:
        wanted = self._hash(token)
        return next((key for key, hashed in self.keys.values() if hashed == wanted), None)

    def touch_key(self, key_id: str, older_than: timedelta) -> None:
        key, hashed = self.keys[key_id]
        now = utcnow()
        if key.last_used_at is None or key.last_used_at < now - older_than:
            self.keys[key_id] = (replace(key, last_used_at=now), hashed)

    def list_keys(self) -> list[ApiKey]:
        return [key for key, _ in self.keys.values()]

    def revoke_key(self, key_id: str, *, by: str = ANONYMOUS) -> bool:
        found = self.keys.get(key_id)
        if found is None or found[0].revoked_at is not None:
            return False
        self.keys[key_id] = (replace(found[0], revoked_at=utcnow()), found[1])
        self._audit(by, KEY_REVOKE, key_id, {"name": found[0].name})
        return True

    def any_active_key(self) -> bool:
        return any(key.active for key, _ in self.keys.values())

    # -- adoptions and audit ----------------------------------------------------------

    def adopt_plan(
        self, programme: str, job_id: str, rank: int, adopted_by: str
    ) -> tuple[Adoption, bool]:
        current = self.current_adoption(programme)
        if current is not None and (current.job_id, current.rank) == (job_id, rank):
            return current, False
        previous = None
        if current is not None:
            index = self.adoption_rows.index(current)
            self.adoption_rows[index] = replace(current, current=False)
            previous = {"job_id": current.job_id, "rank": current.rank}
        adoption = Adoption(
            len(self.adoption_rows) + 1, programme, job_id, rank, adopted_by, utcnow(), True
        )
        self.adoption_rows.append(adoption)
        self._audit(
            adopted_by, ADOPT, programme, {"job_id": job_id, "rank": rank, "previous": previous}
        )
        return adoption, True

    def current_adoption(self, programme: str) -> Adoption | None:
        return next((a for a in self.adoption_rows if a.programme == programme and a.current), None)

    def adoptions(self, programme: str, *, offset: int, limit: int) -> tuple[list[Adoption], int]:
        found = [a for a in reversed(self.adoption_rows) if a.programme == programme]
        return found[offset : offset + limit], len(found)

    def adoptions_of_job(self, job_id: str) -> list[Adoption]:
        return [a for a in reversed(self.adoption_rows) if a.job_id == job_id]

    def audit_entries(
        self, *, offset: int, limit: int, action: str | None = None
    ) -> tuple[list[AuditEntry], int]:
        found = [e for e in reversed(self.audit) if action in (None, e.action)]
        return found[offset : offset + limit], len(found)


class FakeQueue:
    """A `service.ports.Dispatch` that remembers what it was handed (or refuses)."""

    def __init__(self, *, down: bool = False) -> None:
        self.sent: list[str] = []
        self.down = down

    def __call__(self, job: Job) -> None:
        if self.down:
            raise ConnectionError("broker refused the connection")
        self.sent.append(job.id)
