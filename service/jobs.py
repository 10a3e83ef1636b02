"""Jobs: submit, get, list and cancel allocations and comparisons; download a plan.

Everything here speaks domain objects and raises `RequestValidationError` (bad input,
naming every field) or a `service.errors.ServiceError`; the HTTP views translate those.
Jobs are stored through a `JobStore` and handed to workers through a `Dispatch`; the
workers run them with `service.execution.run_job`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from models.csvio import plan_to_csv_text
from models.request import AllocationRequest
from models.scenario import parse_scenarios
from models.schemas import RequestValidationError, parse_request, plan_from_dict, request_to_dict
from service.errors import Conflict, NotFound, ServiceUnavailable
from service.ports import Dispatch, JobStore
from service.records import ALLOCATION, CANCELLED, COMPARISON, FINAL_STATUSES, SUCCEEDED, Job
from service.solving import parse_allocation

log = logging.getLogger(__name__)


# -- allocations ----------------------------------------------------------------------


def submit_allocation(store: JobStore, dispatch: Dispatch, request: AllocationRequest) -> Job:
    """Store the request as a queued job and hand it to the job runner."""
    job = store.create_job(ALLOCATION, name=request.name, request_body=request_to_dict(request))
    _dispatch(store, dispatch, job)
    return job


def _dispatch(store: JobStore, dispatch: Dispatch, job: Job) -> None:
    """Hand a stored job over; if that fails (broker down) the job must not sit queued
    forever looking accepted: it fails, and the client hears so."""
    try:
        dispatch(job)
    except Exception as error:
        log.exception("could not hand job %s to the job runner", job.id)
        store.fail_job(job.id, None, f"could not reach the job queue: {error}")
        raise ServiceUnavailable(
            "the job queue is unreachable; the job was not accepted, try again later"
        ) from error


def stored_request(store: JobStore, job: Job) -> AllocationRequest:
    """The request a job was submitted with (stored validated, partners inline)."""
    if job.request_id is None:
        raise RuntimeError(f"job {job.id} has no stored request")
    return parse_request(store.request_body(job.request_id))


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
    }


def get_job(store: JobStore, job_id: str, kind: str) -> Job:
    job = store.get_job(job_id, kind)
    if job is None:
        raise NotFound(f"no {kind} with id {job_id!r}")
    return job


def get_allocation(store: JobStore, job_id: str) -> dict[str, Any]:
    """The job, with its plans (rank order) once it succeeded."""
    job = get_job(store, job_id, ALLOCATION)
    view = job_view(job)
    if job.status == SUCCEEDED:
        view["plans"] = store.plans(job.id)
    return view


def list_jobs(
    store: JobStore, kind: str, *, page: int, page_size: int, status: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    jobs, total = store.list_jobs(
        kind, offset=(page - 1) * page_size, limit=page_size, status=status
    )
    return [job_view(job) for job in jobs], total


def cancel_job(store: JobStore, job_id: str, kind: str) -> dict[str, Any]:
    """Cancel a queued or running job. Cancelling a cancelled job is a no-op; a job that
    already succeeded or failed cannot be cancelled (Conflict)."""
    get_job(store, job_id, kind)
    job = store.cancel_job(job_id)
    if job is None:
        raise NotFound(f"no {kind} with id {job_id!r}")
    if job.status != CANCELLED:
        raise Conflict(f"the {kind} already {job.status}; only queued or running jobs cancel")
    return job_view(job)


def plan_csv(store: JobStore, job_id: str, rank: int) -> str:
    """A plan's allocations as CSV (columns in docs/reference.md)."""
    job = get_job(store, job_id, ALLOCATION)
    if job.status != SUCCEEDED:
        raise Conflict(f"the allocation is {job.status}; plans exist once it succeeded")
    stored = store.plan(job_id, rank)
    if stored is None:
        count = len(store.plans(job_id))
        raise NotFound(f"no plan of rank {rank}; this allocation has {count} plan(s)")
    return plan_to_csv_text(plan_from_dict(stored), stored_request(store, job))


# -- comparisons ----------------------------------------------------------------------


def submit_comparison(store: JobStore, dispatch: Dispatch, body: Mapping[str, Any]) -> Job:
    """Validate a comparison (base and every scenario's changes) and queue it.

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

    job = store.create_job(
        COMPARISON,
        name=str(body.get("name") or base_request.name),
        request_body=None if request_id else request_to_dict(base_request),
        request_id=request_id,
        comparison={"base_allocation_id": base_allocation_id, "scenarios": scenarios},
        scenario_names=["base", *(s["name"] for s in scenarios)],
    )
    _dispatch(store, dispatch, job)
    return job


def get_comparison(store: JobStore, job_id: str) -> dict[str, Any]:
    """Status, per-scenario progress, and once done the rows (base first) and differences."""
    job = get_job(store, job_id, COMPARISON)
    view = job_view(job)
    comparison = store.comparison(job_id) or {}
    view["base_allocation_id"] = comparison.get("base_allocation_id")
    results = store.scenario_results(job_id)
    summary = comparison.get("rows")
    if job.status == SUCCEEDED and summary:
        view["scenarios"] = summary.get("scenarios", [])
        view["differences"] = summary.get("differences", [])
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
