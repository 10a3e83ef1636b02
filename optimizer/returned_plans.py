"""The engine's candidates as the plans `solve` returns: in whole units, exactly checked,
ranked, and with the solver's report true of the plan itself."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from models.check import assert_plan_valid, check_plan
from models.curves import CurveColumn
from models.plan import Plan, SolverReport, SolveStatus, build_plan
from models.request import AllocationRequest, Objective
from optimizer.arrays import ProblemArrays
from optimizer.clock import better_than_bound, relative_gap
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.scoring import score
from optimizer.whole_units import whole_units

log = logging.getLogger(__name__)


def planner_ready(
    request: AllocationRequest,
    arrays: ProblemArrays,
    candidate: Candidate,
    report: SolverReport,
    rank: int,
    outcome: EngineOutcome,
    columns: list[CurveColumn],
) -> Plan:
    """The candidate's plan in whole units (docs/exports.md). Should the rounded plan
    fail the exact check or miss a tier the engine's amounts reach — a bug, not an
    expected case — the engine's amounts are kept. Either way the plan returned has passed
    the exact check, once: a second check of the same plan took 17 s at 1,000,000
    partners."""

    def plan_of(amounts: np.ndarray) -> Plan:
        return build_plan(
            request,
            amounts,
            report,
            package_choice=candidate.package_choice,
            rank=rank,
            label=candidate.label,
            binding_constraints=outcome.binding_constraints,
            columns=columns,
        )

    rounded = plan_of(whole_units(arrays, candidate.amounts, candidate.package_choice, columns))
    violations = check_plan(request, rounded)
    if request.objective is not Objective.MAX_GMV:  # tiers are only reported there
        engine_shortfall = score(arrays, columns, candidate).shortfall
        if rounded.objective.weighted_shortfall > engine_shortfall + 1e-9:
            violations.append(
                f"weighted shortfall {rounded.objective.weighted_shortfall:g} where the"
                f" engine's amounts reach {engine_shortfall:g}"
            )
    if not violations:
        return reported_as_is(request, rounded)
    log.warning("whole-unit rounding broke the plan, keeping the engine's amounts: %s", violations)
    kept = plan_of(candidate.amounts)
    assert_plan_valid(request, kept)
    return reported_as_is(request, kept)


def reported_as_is(request: AllocationRequest, plan: Plan) -> Plan:
    """`plan` with its gap measured on its own figures, and `optimal` only while that gap
    is within the request's: the engine measured its amounts before whole-unit rounding,
    which may cost something (a minimum ticket given to keep a tier once cost a min_cost
    plan 10% over the bound its gap of 3e-8 was measured against)."""
    solver = plan.solver
    if solver.best_bound is None:
        return plan
    minimise = request.objective is Objective.MIN_COST
    value = plan.objective.total_cost if minimise else plan.objective.total_projected_gmv
    gap = relative_gap(value, solver.best_bound, minimise)
    if solver.mip_gap is None or gap is None:
        return plan
    status = solver.status
    if status is SolveStatus.OPTIMAL and gap > request.options.mip_gap * (1 + 1e-9) + 1e-12:
        log.warning("whole units took the plan %.3g past the gap: reported feasible", gap)
        status = SolveStatus.FEASIBLE
    plan.solver = replace(solver, mip_gap=gap, status=status)  # the plan checked, as it is
    return plan


def best_first(request: AllocationRequest, plans: list[Plan]) -> list[Plan]:
    """The plans with the best one at rank 1, where an alternative beats it once both are
    in whole units: rank 1 then takes over the engine's report (its bound holds for every
    plan; the gap is recomputed). A 4-partner request with `points` curves had HiGHS's
    `optimal` plan at GMV 424.5 and its no-good-cut alternative at 426.1 (hypothesis)."""
    if len(plans) < 2:
        return plans
    minimise = request.objective is Objective.MIN_COST

    def key(plan: Plan) -> tuple[float, float]:
        o = plan.objective
        first = 0.0 if request.objective is Objective.MAX_GMV else o.weighted_shortfall
        return first, o.total_cost if minimise else -o.total_projected_gmv

    top = min(range(len(plans)), key=lambda i: key(plans[i]))
    first_key, top_key = key(plans[0]), key(plans[top])
    if top == 0 or (
        top_key[0] >= first_key[0] - 1e-9
        and top_key[1] >= first_key[1] - 1e-9 * max(abs(first_key[1]), 1.0)
    ):
        return plans
    first, better = plans[0], plans[top]
    objective = top_key[1] if minimise else -top_key[1]
    bound, floor = first.solver.best_bound, first.solver.shortfall_bound
    report = replace(
        first.solver,
        mip_gap=relative_gap(objective, bound, minimise),
        shortfall_proven=(
            None if floor is None else better.objective.weighted_shortfall <= floor + 1e-9
        ),
    )
    if bound is not None and better_than_bound(objective, bound, minimise):
        # The alternative beats the engine's bound: it certified nothing (the request
        # above: the bound was the engine's own plan's GMV).
        report = replace(report, status=SolveStatus.FEASIBLE, mip_gap=None, best_bound=None)
    reordered = list(plans)
    reordered[0] = replace(better, rank=1, label=first.label, solver=report)
    reordered[top] = replace(first, rank=top + 1, label=better.label, solver=better.solver)
    return reordered
