"""Where partners cross tier thresholds most cheaply: breakpoints for a MILP whose bound
must price tier claims tightly (the MILP finish, `optimizer.milp_finish`).

The outer model claims a tier wherever its tangents over-state a partner's GMV enough,
and on a flat stretch of a curve a sliver of over-statement saves a great deal of
budget. Family seed 3, 1,500 partners: the finish's first outer solution reached 59 and
19 of the 93 and 33 tiers it claimed on the exact curves, each a hair under its
threshold, and refining at its amounts closed those a few partners per 8-16 s round (the
run ended at the 60 s limit, 0.17% from its bound). A breakpoint where each partner
crosses each threshold most cheaply puts a tangent where the outer model would claim:
there its claim costs what the exact curve does.
"""

from __future__ import annotations

import numpy as np

from models.curves import FloatArray
from optimizer.arrays import ProblemArrays, UnsupportedRequest
from optimizer.decomposition.problem import Problem, build_problem
from optimizer.decomposition.repair import fixed_amounts, mandatory
from optimizer.outcome import Candidate
from optimizer.pwl import Approximation


def add_tier_crossings(approximation: Approximation, start: Candidate | None) -> None:
    """Refine `approximation` (as at an inner solution's amounts) where the partners cross
    tier thresholds most cheaply at `start`'s prices; nothing without a start.

    Up front, not only once a round has missed: deferred to the second round, family seed
    8, 1,000 partners ran into the 60 s limit, where up front it finished in 28-35 s."""
    if start is None:
        return
    for amounts in tier_crossings(approximation.arrays, start.amounts):
        approximation.add(amounts, outer=False)


def tier_crossings(arrays: ProblemArrays, plan: FloatArray) -> list[FloatArray]:
    """Per tier threshold that some partner can still cross, a per-pair amount vector:
    where each such partner crosses it most cheaply at the plan's marginal prices (see
    `marginal_prices`), on its grid; the plan's own amounts (`plan`: (n, R)) for the other
    partners. Empty without tiers, or for requests the decomposition does not model."""
    if not len(arrays.thresholds) or arrays.packages:
        return []
    try:
        problem = build_problem(arrays)
    except UnsupportedRequest:
        return []
    prices = np.broadcast_to(marginal_prices(problem, plan), (problem.n, problem.n_resources))
    start = problem.levels(fixed_amounts(problem))
    crossings = []
    for level in range(1, problem.n_tiers + 1):
        threshold = problem.thresholds[level - 1]
        pool = np.flatnonzero((start < level) & (problem.baseline + problem.reach >= threshold))
        if not pool.size:
            continue
        amounts, reached = mandatory(problem, pool, level, prices)
        crossing = plan.copy()
        crossing[pool[reached]] = amounts[reached]
        crossings.append(crossing[arrays.pair_partner, arrays.pair_resource])
    return crossings


def marginal_prices(problem: Problem, plan: FloatArray) -> FloatArray:
    """(R,): per resource, the median GMV a unit more adds where the plan gives a partner
    some of it and could give more: what a unit of it is worth at the plan, as a budget's
    dual price would say. Where no partner is inside its range, the median over every
    partner who may receive the resource, at its amount."""
    prices = np.zeros(problem.n_resources)
    for r, family in enumerate(problem.families):
        slopes = family.derivative(plan[:, r])
        usable = problem.can_use[:, r] & np.isfinite(slopes)
        inside = usable & (plan[:, r] > family.lo) & (plan[:, r] < family.hi)
        chosen = slopes[inside] if inside.any() else slopes[usable]
        prices[r] = float(np.median(chosen)) if chosen.size else 0.0
    return prices
