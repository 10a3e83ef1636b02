"""Comparing a Windmaker plan with a reference on a family programme (fixtures/families.py).

A reference is either the exact brute-force optimum (tests/support/bruteforce.py) or a plan
of the plain PuLP + CBC model (bench/baseline_pulp.py) rebuilt with the exact curves. Both
are judged by the same rules of issue 12: the plan is exactly valid, its stage-1 shortfall
is no worse than the reference's, and at equal shortfall its GMV is within the requested
gap of the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.check import check_plan
from models.curves import FloatArray
from models.plan import Plan, SolverReport, SolveStatus, build_plan
from models.request import AllocationRequest

SHORTFALL_ATOL = 1e-9
# Beating an exact optimum by more than this (relative) means the plan's figures are wrong.
NEVER_BETTER_RTOL = 1e-6


@dataclass(frozen=True)
class Figures:
    """What the comparison needs of a solution: exact shortfall and GMV."""

    shortfall: float
    gmv: float
    seconds: float = 0.0
    status: str = ""

    def __str__(self) -> str:
        return (
            f"shortfall {self.shortfall:g}, GMV {self.gmv / 1e9:,.4f} B, "
            f"{self.seconds:.1f} s, {self.status}"
        )


def plan_figures(plan: Plan, seconds: float = 0.0) -> Figures:
    return Figures(
        plan.objective.weighted_shortfall,
        plan.objective.total_projected_gmv,
        seconds,
        str(plan.solver.status),
    )


def reference_plan(request: AllocationRequest, amounts: FloatArray, engine: str) -> Plan:
    """A reference's amounts as a plan with exact figures (and checked like any plan)."""
    return build_plan(request, amounts, SolverReport(engine, SolveStatus.FEASIBLE))


def shortcomings(
    request: AllocationRequest,
    plan: Plan,
    reference: Figures,
    *,
    exact: bool,
) -> list[str]:
    """Every way `plan` falls short of `reference` (empty: it passes).

    `exact`: the reference is a proven optimum, so the plan must match its shortfall and
    may not beat its GMV; otherwise (a MILP baseline's plan) the plan may do better.
    """
    problems = [f"checker: {violation}" for violation in check_plan(request, plan)]
    found = plan_figures(plan)
    gap = request.options.mip_gap
    if found.shortfall > reference.shortfall + SHORTFALL_ATOL:
        problems.append(f"shortfall {found.shortfall:g} > reference {reference.shortfall:g}")
        return problems
    if found.shortfall < reference.shortfall - SHORTFALL_ATOL:
        if exact:
            problems.append(
                f"shortfall {found.shortfall:g} beats the exact optimum {reference.shortfall:g}"
            )
        return problems  # less shortfall: GMV is not comparable
    if found.gmv < reference.gmv * (1 - gap):
        below = 1 - found.gmv / reference.gmv
        problems.append(f"GMV {below:.3%} below the reference's (gap {gap:g})")
    if exact and found.gmv > reference.gmv * (1 + NEVER_BETTER_RTOL):
        problems.append(f"GMV {found.gmv!r} beats the exact optimum {reference.gmv!r}")
    return problems
