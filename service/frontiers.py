"""Budget frontiers (docs/insight.md): one resource's budget swept over a list of points, each
point solved as the base request with that budget, reported in budget order.

A frontier is stored as a job of kind `frontier` in the comparison tables: each point is
a scenario whose changes set the swept budget (`point_scenarios`), so the job runner runs
and resumes points exactly as it does comparison scenarios — in parallel in a thread pool
in-process (`solve_points`), or one Celery task per point (the comparison fan-out). Points
are solved without the re-solving parts of the explanation (`explain=False`).

Monotone by construction (`frontier_points`): a plan that fits a budget also fits any
larger one (budgets only loosen; `max_share` caps grow with the budget), so walking the
points in budget order, a point whose own solve came back worse than the previous point's
plan takes that plan instead (`carried_from` says so), once the exact checker confirms it
holds at the larger budget. A base given by `allocation_id` reuses that job's stored plans
for the point at the base budget: the 1.0 point *is* the base plan, never a re-solve.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from models.check import check_plan
from models.plan import Plan
from models.request import AllocationRequest
from models.schemas import RequestValidationError, plan_from_dict, plan_to_dict, request_to_dict
from service import solving
from service.comparisons import (
    PreparedScenario,
    ScenarioOutcome,
    error_text,
    prepare_scenarios,
    solve_scenario,
)
from service.explain import plan_key, rebuild
from service.ports import Dispatch, JobStore
from service.records import (
    ALLOCATION,
    ANONYMOUS,
    FINAL_STATUSES,
    FRONTIER,
    RUNNING,
    SUCCEEDED,
    Job,
)

MAX_POINTS = 25
MAX_WORKERS = 4
StopCheck = Callable[[], bool]


def frontier_budgets(
    base: AllocationRequest,
    resource: str,
    *,
    budgets: Sequence[float] | None = None,
    multipliers: Sequence[float] | None = None,
) -> list[float]:
    """The swept budgets in increasing order; RequestValidationError naming the field."""
    errors: dict[str, Any] = {}
    names = [r.name for r in base.resources]
    if resource not in names:
        errors["resource"] = [f"unknown resource {resource!r} (known: {', '.join(names)})"]
    if (budgets is None) == (multipliers is None):
        errors["_schema"] = ["give exactly one of budgets or multipliers"]
    values = list(budgets if budgets is not None else multipliers or [])
    field = "budgets" if budgets is not None else "multipliers"
    if not 1 <= len(values) <= MAX_POINTS:
        errors[field] = [f"between 1 and {MAX_POINTS} values"]
    elif any(not isinstance(v, int | float) or isinstance(v, bool) or v <= 0 for v in values):
        errors[field] = ["every value must be a positive number"]
    if not errors and multipliers is not None and base.resource(resource).budget is None:
        errors["multipliers"] = [f"resource {resource!r} has no budget to multiply"]
    if errors:
        raise RequestValidationError(errors, "invalid frontier")
    current = base.resource(resource).budget
    points = [float(v) * current for v in values] if multipliers is not None else values  # type: ignore[operator]
    return sorted({float(v) for v in points})


def point_name(resource: str, budget: float) -> str:
    return f"{resource}={budget:.17g}"


def point_scenarios(resource: str, budgets: Sequence[float]) -> list[dict[str, Any]]:
    return [
        {"name": point_name(resource, b), "changes": {"budgets": {resource: b}}} for b in budgets
    ]


def prepare_points(base: AllocationRequest, spec: Mapping[str, Any]) -> list[PreparedScenario]:
    """The point requests of a stored frontier, in budget order (no separate base row)."""
    return prepare_scenarios(base, spec["scenarios"])[1:]


# -- submitting -------------------------------------------------------------------------


def submit_frontier(
    store: JobStore, dispatch: Dispatch, body: Mapping[str, Any], *, submitted_by: str = ANONYMOUS
) -> Any:
    """Validate a frontier request and queue it as a job of kind `frontier`."""
    from service.jobs import _dispatch

    base, request_id, base_allocation_id = _base_request(store, body.get("base"))
    resource = str(body.get("resource", ""))
    budgets = frontier_budgets(
        base, resource, budgets=body.get("budgets"), multipliers=body.get("multipliers")
    )
    scenarios = point_scenarios(resource, budgets)
    job = store.create_job(
        FRONTIER,
        name=str(body.get("name") or base.name),
        request_body=None if request_id else request_to_dict(base),
        request_id=request_id,
        comparison={"base_allocation_id": base_allocation_id, "scenarios": scenarios},
        scenario_names=[s["name"] for s in scenarios],
        submitted_by=submitted_by,
    )
    _dispatch(store, dispatch, job)
    return job


def _base_request(store: JobStore, base: Any) -> tuple[AllocationRequest, str | None, str | None]:
    """(request, stored request id, allocation id) of a base: a request or an allocation."""
    from service.jobs import stored_request

    if isinstance(base, Mapping) and set(base) == {"allocation_id"}:
        allocation_id = str(base["allocation_id"])
        job = store.get_job(allocation_id, ALLOCATION)
        if job is None:
            message = f"no allocation with id {allocation_id!r}"
            raise RequestValidationError({"base": {"allocation_id": [message]}}, "invalid frontier")
        return stored_request(store, job), job.request_id, allocation_id
    try:
        return solving.parse_allocation(base), None, None
    except RequestValidationError as error:
        raise RequestValidationError({"base": error.messages}, "invalid frontier") from None


def swept_resource(spec: Mapping[str, Any]) -> str:
    """The resource a stored frontier sweeps (every point changes only its budget)."""
    return str(next(iter(spec["scenarios"][0]["changes"]["budgets"])))


# -- solving ----------------------------------------------------------------------------


def solve_point(
    item: PreparedScenario,
    *,
    base_plans: Sequence[Plan] | None = None,
    base_budget: float | None = None,
    resource: str | None = None,
    should_stop: StopCheck | None = None,
) -> ScenarioOutcome:
    """One point: the base job's plans at the base budget, else a solve."""
    request = item.request
    at_base = (
        request is not None
        and resource is not None
        and request.resource(resource).budget == base_budget
    )
    if base_plans and at_base:
        return ScenarioOutcome(item.name, request, list(base_plans), None)
    return solve_scenario(
        item, solve=partial(solving.solve_request, explain=False), should_stop=should_stop
    )


def solve_points(
    points: Sequence[PreparedScenario],
    *,
    skip: Sequence[int] = (),
    on_outcome: Callable[[int, ScenarioOutcome], object] | None = None,
    should_stop: StopCheck | None = None,
    **point_options: Any,
) -> list[ScenarioOutcome | None]:
    """Solve every point not in `skip`, in parallel threads; `on_outcome(idx, outcome)`
    as each finishes (from the thread that solved it)."""
    outcomes: list[ScenarioOutcome | None] = [None] * len(points)

    def run(idx: int) -> None:
        if should_stop is not None and should_stop():
            return
        outcome = solve_point(points[idx], should_stop=should_stop, **point_options)
        outcomes[idx] = outcome
        if on_outcome is not None:
            on_outcome(idx, outcome)

    todo = [idx for idx in range(len(points)) if idx not in skip]
    workers = max(1, min(len(todo), os.cpu_count() or 1, MAX_WORKERS))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frontier") as pool:
        for future in [pool.submit(run, idx) for idx in todo]:
            future.result()
    return outcomes


def run_frontier(
    base: AllocationRequest, resource: str, budgets: Sequence[float]
) -> dict[str, Any]:
    """Solve a frontier here and now (the CLI): the same points and summary as the job."""
    points = prepare_points(base, {"scenarios": point_scenarios(resource, budgets)})
    outcomes = solve_points(points)
    return summarize_frontier(base, resource, outcomes)


# -- summarising ------------------------------------------------------------------------


def summarize_frontier(
    base: AllocationRequest,
    resource: str,
    outcomes: Sequence[ScenarioOutcome | None],
) -> dict[str, Any]:
    """`points` in budget order, each no worse than the one before (see the module doc)."""
    points = []
    previous: tuple[Plan, float] | None = None
    for outcome in outcomes:
        if outcome is None or outcome.request is None:
            continue
        budget = outcome.request.resource(resource).budget
        own = outcome.plans[0] if outcome.plans else None
        plan, carried = _monotone(outcome.request, own, previous)
        if plan is not None:
            previous = (plan, budget or 0.0)
        points.append(_point(budget, plan, outcome.error, carried))
    return {"resource": resource, "base_budget": base.resource(resource).budget, "points": points}


def _monotone(
    request: AllocationRequest, own: Plan | None, previous: tuple[Plan, float] | None
) -> tuple[Plan | None, float | None]:
    if previous is None:
        return own, None
    earlier, earlier_budget = previous
    if own is not None and plan_key(request, own) <= plan_key(request, earlier):
        return own, None
    carried = rebuild(request, earlier)
    if check_plan(request, carried):
        return own, None  # the cheaper plan does not hold here (a group floor grew)
    return carried, earlier_budget


def _point(
    budget: float | None, plan: Plan | None, error: str | None, carried: float | None
) -> dict[str, Any]:
    if plan is None:
        return {"budget": budget, "status": "failed", "error": error or "no plan produced"}
    stored = plan_to_dict(plan)
    uncertainty = stored.get("uncertainty") or {}
    p_target = {t["name"]: t.get("p_target") for t in uncertainty.get("tiers", [])} or None
    return {
        "budget": budget,
        "status": str(plan.solver.status),
        "achieved": {tier.name: tier.achieved for tier in plan.tiers},
        "weighted_shortfall": plan.objective.weighted_shortfall,
        "total_projected_gmv": plan.objective.total_projected_gmv,
        "total_cost": plan.objective.total_cost,
        "mip_gap": plan.solver.mip_gap,
        "p_target": p_target,
        "carried_from": carried,
    }


def stored_outcomes(
    store: JobStore, job_id: str, points: Sequence[PreparedScenario]
) -> list[ScenarioOutcome]:
    """The outcomes a frontier job stored, point by point."""
    outcomes = []
    for item, result in zip(points, store.scenario_results(job_id), strict=True):
        plans = [plan_from_dict(p) for p in store.plans(job_id, result.idx)]
        error = result.error or (None if plans else "the point was not solved")
        outcomes.append(ScenarioOutcome(item.name, item.request, plans or None, error))
    return outcomes


# -- as a job ---------------------------------------------------------------------------


def job_points(store: JobStore, job: Job) -> tuple[list[PreparedScenario], dict[str, Any]]:
    """A frontier job's points (budget order) and the `solve_point` options that go with
    them: the base job's plans when the base was given by `allocation_id`."""
    from service.jobs import stored_request

    spec = store.comparison(job.id)
    if spec is None:
        raise RuntimeError(f"frontier {job.id} has no stored points")
    base = stored_request(store, job)
    resource = swept_resource(spec)
    options: dict[str, Any] = {"resource": resource}
    if spec.get("base_allocation_id"):
        options["base_plans"] = [
            plan_from_dict(p) for p in store.plans(str(spec["base_allocation_id"]))
        ]
        options["base_budget"] = base.resource(resource).budget
    return prepare_points(base, spec), options


def finish_frontier(store: JobStore, job_id: str, worker: str | None) -> bool:
    """Summarise the stored points into the frontier (the job's `rows`)."""
    from service.jobs import stored_request

    job = store.get_job(job_id)
    if job is None or job.status != RUNNING:
        return False
    try:
        points, options = job_points(store, job)
        outcomes = stored_outcomes(store, job_id, points)
        summary = summarize_frontier(stored_request(store, job), options["resource"], outcomes)
    except Exception as error:
        return store.fail_job(job_id, worker, error_text(error))
    return store.finish_job(job_id, worker, summary=summary)


def get_frontier(store: JobStore, job_id: str) -> dict[str, Any]:
    """Status, points done so far, and once finished the frontier's points."""
    from service.jobs import get_job, job_view

    job = get_job(store, job_id, FRONTIER)
    view = job_view(job)
    spec = store.comparison(job_id) or {}
    view["base_allocation_id"] = spec.get("base_allocation_id")
    view["resource"] = swept_resource(spec) if spec.get("scenarios") else None
    summary = spec.get("rows") or {}
    view["points"] = summary.get("points", []) if job.status == SUCCEEDED else []
    view["base_budget"] = summary.get("base_budget")
    results = store.scenario_results(job_id)
    if job.status not in FINAL_STATUSES or view["progress"] is None:
        view["progress"] = {
            **(view["progress"] or {}),
            "points_done": sum(r.status in FINAL_STATUSES for r in results),
            "points_total": len(results),
        }
    return view
