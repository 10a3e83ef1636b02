"""Adopting plans and reading the audit log.

A programme is named by its requests' `name`. Adopting a plan of a succeeded allocation
makes it the programme's current plan; earlier adoptions stay in its history. A job whose
plan was ever adopted is protected: it cannot be cancelled (`service.jobs.cancel_job`),
and the database refuses to delete it under its adoptions.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from models.schemas import RequestValidationError
from service.errors import Conflict, NotFound
from service.jobs import MAX_PAGE, get_job
from service.ports import Store
from service.records import ALLOCATION, AUDIT_ACTIONS, SUCCEEDED, Adoption, AuditEntry


def adoption_view(adoption: Adoption) -> dict[str, Any]:
    return {
        "programme": adoption.programme,
        "job_id": adoption.job_id,
        "rank": adoption.rank,
        "adopted_by": adoption.adopted_by,
        "adopted_at": adoption.adopted_at,
        "current": adoption.current,
    }


def adopt(store: Store, job_id: str, rank: int, *, by: str) -> tuple[dict[str, Any], bool]:
    """Make plan `rank` of a succeeded allocation its programme's adopted plan. Returns
    the adoption (with the plan) and whether it is new: re-adopting the current plan
    changes nothing."""
    job = get_job(store, job_id, ALLOCATION)
    if job.status != SUCCEEDED:
        raise Conflict(
            f"the allocation is {job.status}; only a succeeded allocation's plan can be adopted",
            {"job_id": [f"status is {job.status}"]},
        )
    plan = store.plan(job_id, rank)
    if plan is None:
        count = len(store.plans(job_id))
        raise NotFound(
            f"no plan of rank {rank}; this allocation has {count} plan(s)",
            {"rank": [f"no such plan (1 to {count})"]},
        )
    programme = job.name
    if not programme:
        raise Conflict(
            "the allocation's request has no name, so it belongs to no programme; "
            "submit it with a `name` to adopt its plans",
            {"name": ["empty: the programme is named by the request's name"]},
        )
    adoption, created = store.adopt_plan(programme, job_id, rank, by)
    return {**adoption_view(adoption), "plan": plan}, created


def adopted(store: Store, programme: str) -> dict[str, Any]:
    """The programme's adopted plan, with who adopted it and when."""
    adoption = store.current_adoption(programme)
    if adoption is None:
        raise NotFound(f"programme {programme!r} has no adopted plan")
    plan = store.plan(adoption.job_id, adoption.rank)
    return {**adoption_view(adoption), "plan": plan}


def _offset(page: int, page_size: int) -> int:
    if not 1 <= page <= MAX_PAGE:
        raise NotFound(f"no page {page}: pages run from 1 to at most {MAX_PAGE}")
    return (page - 1) * page_size


def history(
    store: Store, programme: str, *, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the programme's adoptions, newest first (the current one, if any,
    first of all), and how many there are (none for a programme never adopted)."""
    items, total = store.adoptions(programme, offset=_offset(page, page_size), limit=page_size)
    return [adoption_view(item) for item in items], total


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return asdict(entry)


def audit_log(
    store: Store, *, page: int, page_size: int, action: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """A page of the audit log, newest first, optionally of one action only."""
    if action is not None and action not in AUDIT_ACTIONS:
        message = f"unknown action {action!r}; known: {', '.join(AUDIT_ACTIONS)}"
        raise RequestValidationError({"action": [message]}, "invalid audit query")
    entries, total = store.audit_entries(
        offset=_offset(page, page_size), limit=page_size, action=action
    )
    return [audit_view(entry) for entry in entries], total
