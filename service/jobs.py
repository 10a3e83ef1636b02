"""Jobs: submit, get, list and cancel allocations and comparisons; download a plan.

Everything here speaks domain objects and raises `RequestValidationError` (bad input,
naming every field) or a `service.errors.ServiceError`; the HTTP views translate those.
Jobs are stored through a `JobStore` and handed to workers through a `Dispatch`; the
workers run them with `service.execution.run_job`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from models.csvio import plan_to_csv_text
from models.plan import Plan
from models.request import AllocationRequest
from models.scenario import parse_scenarios
from models.schemas import (
    RequestValidationError,
    parse_stored_request,
    plan_from_dict,
    request_to_dict,
)
from service.differences import diff_pages, page_differences
from service.errors import (
    Conflict,
    DuplicateSubmission,
    IdempotencyMismatch,
    NotFound,
    ServiceUnavailable,
)
from service.ports import Dispatch, JobStore, Store
from service.records import (
    ALLOCATION,
    ANONYMOUS,
    CANCELLED,
    COMPARISON,
    FINAL_STATUSES,
    SUCCEEDED,
    Job,
)
from service.solving import parse_allocation

log = logging.getLogger(__name__)

# Beyond this a page number is a mistake or a probe: its offset would overflow a
# database's 64-bit integers long before any deployment held that many jobs.
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class Retry:
    """A client's `Idempotency-Key` and who sent it (key id, or "anonymous"): the same
    key from the same client with the same request answers with the same job."""

    key: str
    client: str = "anonymous"

    def scoped(self, kind: str) -> str:
        return _digest(f"{kind}\n{self.client}\n{self.key}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _body_hash(body: Any) -> str:
    return _digest(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str))


def _submit(
    store: JobStore,
    dispatch: Dispatch,
    kind: str,
    body: Any,
    retry: Retry | None,
    create: Callable[[str | None, str | None], Job],
) -> Job:
    """Create and dispatch a job, or answer a retry with the job it already made."""
    if retry is None:
        job = create(None, None)
    else:
        key, digest = retry.scoped(kind), _body_hash(body)
        existing = store.find_idempotent(key)
        if existing is not None:
            return _same_request(existing, digest)
        try:
            job = create(key, digest)
        except DuplicateSubmission:  # a concurrent retry stored it first
            existing = store.find_idempotent(key)
            assert existing is not None
            return _same_request(existing, digest)
    _dispatch(store, dispatch, job)
    return job


def _same_request(job: Job, digest: str) -> Job:
    if job.request_hash != digest:
        raise IdempotencyMismatch(
            f"this Idempotency-Key was used for a different request (job {job.id})",
            {"Idempotency-Key": ["already used with a different request body"]},
        )
    return job


# -- allocations ----------------------------------------------------------------------


def submit_allocation(
    store: JobStore,
    dispatch: Dispatch,
    request: AllocationRequest,
    retry: Retry | None = None,
    *,
    submitted_by: str = ANONYMOUS,
) -> Job:
    """Store the request as a queued job and hand it to the job runner (or, for a
    retry, return the job the first attempt made)."""
    body = request_to_dict(request)

    def create(key: str | None, digest: str | None) -> Job:
        return store.create_job(
            ALLOCATION,
            name=request.name,
            request_body=body,
            idempotency_key=key,
            request_hash=digest,
            submitted_by=submitted_by,
        )

    return _submit(store, dispatch, ALLOCATION, body, retry, create)


def _dispatch(store: JobStore, dispatch: Dispatch, job: Job) -> None:
    """Hand a stored job over; if that fails (broker down) the job must not sit queued
    forever looking accepted: it fails, and the client hears so."""
    try:
        dispatch(job)
    except Exception as error:
        log.exception("could not hand job %s to the job runner", job.id)
        # The key is released: the client was told the job was not accepted, so its retry
        # with the same Idempotency-Key must make a new job, not return this failed one.
        store.fail_job(
            job.id, None, f"could not reach the job queue: {error}", release_idempotency=True
        )
        raise ServiceUnavailable(
            "the job queue is unreachable; the job was not accepted, try again later"
        ) from error


def stored_request(store: JobStore, job: Job) -> AllocationRequest:
    """The request a job was submitted with (stored validated, partners inline)."""
    if job.request_id is None:
        raise RuntimeError(f"job {job.id} has no stored request")
    return parse_stored_request(store.request_body(job.request_id))


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "name": job.name,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "error": job.error,
        "progress": job.progress,
        "attempts": job.attempts,
        "submitted_by": job.submitted_by,
    }


def get_job(store: JobStore, job_id: str, kind: str) -> Job:
    job = store.get_job(job_id, kind)
    if job is None:
        raise NotFound(f"no {kind} with id {job_id!r}")
    return job


def get_allocation(store: JobStore, job_id: str) -> dict[str, Any]:
    """The job, with its plans (rank order) once it succeeded, or once a job cancelled
    while running has stored the best plans its engine had found."""
    job = get_job(store, job_id, ALLOCATION)
    view = job_view(job)
    if job.status == SUCCEEDED:
        view["plans"] = store.plans(job.id)
    elif job.status == CANCELLED:
        kept = store.plans(job.id)
        if kept:
            view["plans"] = kept
    return view


def allocation_request(store: JobStore, job_id: str) -> dict[str, Any]:
    """The request an allocation was submitted with, as stored (validated, partners
    inline)."""
    job = get_job(store, job_id, ALLOCATION)
    if job.request_id is None:
        raise NotFound(f"the allocation {job_id!r} has no stored request")
    return store.request_body(job.request_id)


def list_jobs(
    store: JobStore, kind: str, *, page: int, page_size: int, status: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """A page of job views (pages count from 1) and the total; NotFound past MAX_PAGE."""
    if not 1 <= page <= MAX_PAGE:
        raise NotFound(f"no page {page}: pages run from 1 to at most {MAX_PAGE}")
    jobs, total = store.list_jobs(
        kind, offset=(page - 1) * page_size, limit=page_size, status=status
    )
    return [job_view(job) for job in jobs], total


def cancel_job(store: Store, job_id: str, kind: str, *, by: str = ANONYMOUS) -> dict[str, Any]:
    """Cancel a queued or running job. Cancelling a cancelled job is a no-op; a job that
    already succeeded or failed cannot be cancelled (Conflict), and neither can a job
    whose plan was adopted."""
    get_job(store, job_id, kind)
    adopted = store.adoptions_of_job(job_id)
    if adopted:
        raise Conflict(
            f"a plan of this {kind} was adopted for programme {adopted[0].programme!r}; "
            "adopted jobs cannot be cancelled or deleted",
            {"job_id": ["adopted"]},
        )
    job = store.cancel_job(job_id, by=by)
    if job is None:
        raise NotFound(f"no {kind} with id {job_id!r}")
    if job.status != CANCELLED:
        raise Conflict(f"the {kind} already {job.status}; only queued or running jobs cancel")
    return job_view(job)


def plan_and_request(store: JobStore, job_id: str, rank: int) -> tuple[Plan, AllocationRequest]:
    """A succeeded allocation's plan of `rank` and the request it answers (for exports)."""
    job = get_job(store, job_id, ALLOCATION)
    if job.status not in (SUCCEEDED, CANCELLED):
        raise Conflict(f"the allocation is {job.status}; plans exist once it succeeded")
    if job.status == CANCELLED and not store.plans(job_id):
        raise Conflict(
            "the allocation was cancelled before its engine found a plan (or is still "
            "storing the one it had)"
        )
    stored = store.plan(job_id, rank)
    if stored is None:
        count = len(store.plans(job_id))
        raise NotFound(f"no plan of rank {rank}; this allocation has {count} plan(s)")
    return plan_from_dict(stored), stored_request(store, job)


def plan_csv(store: JobStore, job_id: str, rank: int, *, all_partners: bool = False) -> str:
    """A plan's allocations (every partner with `all_partners`) as CSV (docs/exports.md)."""
    plan, request = plan_and_request(store, job_id, rank)
    return plan_to_csv_text(plan, request, all_partners=all_partners)


# -- comparisons ----------------------------------------------------------------------


def submit_comparison(
    store: JobStore,
    dispatch: Dispatch,
    body: Mapping[str, Any],
    retry: Retry | None = None,
    *,
    submitted_by: str = ANONYMOUS,
) -> Job:
    """Validate a comparison (base and every scenario's changes) and queue it (or, for a
    retry, return the job the first attempt made).

    `body` has passed `api.schemas.ComparisonRequestSchema` (or the same shape).
    """
    base = body["base"]
    errors: dict[str, Any] = {}
    base_request: AllocationRequest | None = None
    base_allocation_id = None
    request_id = None
    if set(base) == {"allocation_id"}:
        base_allocation_id = str(base["allocation_id"])
        base_job = store.get_job(base_allocation_id, ALLOCATION)
        if base_job is None:
            errors["base"] = {"allocation_id": [f"no allocation with id {base_allocation_id!r}"]}
        elif base_job.status != SUCCEEDED:
            # The base row is that job's stored plan, never a re-solve: it must exist.
            message = (
                f"allocation {base_allocation_id!r} is {base_job.status}; a comparison can "
                "start from it once it has succeeded"
            )
            errors["base"] = {"allocation_id": [message]}
        else:
            base_request = stored_request(store, base_job)
            request_id = base_job.request_id
    else:
        try:
            base_request = parse_allocation(base)
        except RequestValidationError as error:
            errors["base"] = error.messages

    scenarios: list[dict[str, Any]] = []
    try:
        parsed = parse_scenarios(body["scenarios"], base_request)
        scenarios = [{"name": s.name, "changes": dict(s.changes)} for s in parsed]
    except RequestValidationError as error:
        errors.update(error.messages)
    if errors or base_request is None:
        raise RequestValidationError(errors, "invalid comparison")

    name = str(body.get("name") or base_request.name)
    request_body = None if request_id else request_to_dict(base_request)
    comparison = {"base_allocation_id": base_allocation_id, "scenarios": scenarios}

    def create(key: str | None, digest: str | None) -> Job:
        return store.create_job(
            COMPARISON,
            name=name,
            request_body=request_body,
            request_id=request_id,
            comparison=comparison,
            scenario_names=["base", *(s["name"] for s in scenarios)],
            idempotency_key=key,
            request_hash=digest,
            submitted_by=submitted_by,
        )

    submitted = {"name": name, "base": request_body or base_allocation_id, **comparison}
    return _submit(store, dispatch, COMPARISON, submitted, retry, create)


def get_comparison(
    store: JobStore, job_id: str, *, diff_page: int = 1, diff_page_size: int | None = None
) -> dict[str, Any]:
    """Status, per-scenario progress, and once done the rows (base first) and differences:
    every changed partner, or with `diff_page_size` one page of each scenario's list
    (`diff_page` counts from 1; NotFound past the last page)."""
    job = get_job(store, job_id, COMPARISON)
    view = job_view(job)
    comparison = store.comparison(job_id) or {}
    view["base_allocation_id"] = comparison.get("base_allocation_id")
    results = store.scenario_results(job_id)
    summary = comparison.get("rows")
    if job.status == SUCCEEDED and summary:
        view["scenarios"] = summary.get("scenarios", [])
        differences = summary.get("differences", [])
        if diff_page_size is not None:
            pages = diff_pages(differences, diff_page_size)
            if not 1 <= diff_page <= pages:
                message = f"no page {diff_page}: the differences fill {pages} page(s)"
                raise NotFound(message, {"diff_page": [message]})
            differences = page_differences(differences, diff_page, diff_page_size)
            view["diff_page"] = {"page": diff_page, "page_size": diff_page_size, "pages": pages}
        view["differences"] = differences
    else:
        view["scenarios"] = [
            {"name": r.name, "status": r.status, "error": r.error, "kpis": None, "plan": None}
            for r in results
        ]
    done = sum(r.status in FINAL_STATUSES for r in results)
    if job.status not in FINAL_STATUSES or view["progress"] is None:
        view["progress"] = {
            **(view["progress"] or {}),
            "scenarios_done": done,
            "scenarios_total": len(results),
        }
    return view


def finished_comparison(store: JobStore, job_id: str) -> tuple[dict[str, Any], AllocationRequest]:
    """A succeeded comparison's view (`get_comparison`) and its base request (for exports)."""
    view = get_comparison(store, job_id)
    if view["status"] != SUCCEEDED:
        raise Conflict(f"the comparison is {view['status']}; exports exist once it succeeded")
    return view, stored_request(store, get_job(store, job_id, COMPARISON))
