"""Stage 2's plan from the tier-option MILP, priced in GMV.

When the tiers take most of the budgets, who reaches them and with which mix is a
multiple-choice knapsack, and the plans built at stage-2 prices (`primal.construct`) miss
it: their greedy lifts in price order until a budget runs out, and the Lagrangian's own
mixes round a fractional fund ticket up. On 5,000 family partners every stage-2 plan was
one or two partners short of a tier count, the best plan stayed stage 1's (0.47% under the
bound) and the neighbourhood search spent 17 s closing it. The stage-1 MILP
(`assignment`) chooses among exact options per partner; here it weighs each option by its
cost at stage-2 prices less the GMV it adds (what the budgets it leaves would earn at
those prices), keeps the counts stage 1 reached, and the plan is spent on top as at any
price point (0.18% under the bound on that programme, in 2 s).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.clock import Clock
from optimizer.decomposition.assignment import assign_by_milp
from optimizer.decomposition.dual import LevelBundle
from optimizer.decomposition.lagrangian import (
    Evaluation,
    Lagrangian,
    Stage,
    chosen_amounts,
    initial_point,
)
from optimizer.decomposition.menu_plans import at_prices
from optimizer.decomposition.primal import ScoredAmounts, spend
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.subproblem import respond

# Each pass (options and their MILP) may use this share of the limit, its MILP half of it.
OPTION_SHARE = 0.15
MIN_OPTION_S = 0.5
LAST_SHARE = 0.9  # of the limit: no pass or held-dual step starts past it
# The held-level dual of the second pass: at most this many steps, from stage 2's prices.
HELD_STEPS = 40
HELD_TOLERANCE = 1e-5  # relative model gap at which it has converged


def option_plan_applies(problem: Problem, stage: Stage) -> bool:
    """Whether stage 2 keeps tier counts (GMV objective; under max_gmv the tiers are not
    priced, only reported, and there is nothing to choose)."""
    return (
        stage.kind == "gmv"
        and stage.price_tiers
        and problem.n_tiers > 0
        and bool(np.any(stage.targets > 0))
    )


def first_pass(
    problem: Problem, stage: Stage, prices: FloatArray, clock: Clock
) -> ScoredAmounts | None:
    """The MILP's plan at stage-2 `prices` (dual point), or None (no tiers to choose, no
    time, or no MILP solution in time).

    No warm start from the best plan: given one, HiGHS 1.x stopped on it reporting
    `optimal` with its own dual bound 1.6% below (5,000 family partners), where without it
    the MILP found a choice 0.2% better; the caller keeps the better plan anyway.
    """
    if not option_plan_applies(problem, stage):
        return None
    return _planned(problem, stage, Lagrangian(problem, stage).evaluate(prices), clock)


def second_pass(
    problem: Problem, stage: Stage, prices: FloatArray, first: ScoredAmounts, clock: Clock
) -> ScoredAmounts | None:
    """The MILP's plan at the prices of the problem holding `first`'s tier levels, or None
    (no time, or no MILP solution in time); the caller keeps the better of the two.

    The stage's prices charge the tiers too, so the mixes they make cheapest are not those
    that share the budgets best among the partners the first pass lifts. This pass holds
    those partners' levels, finds the budget and group prices of that restricted problem
    (a small dual, `held_prices`), and builds its options at them (5,000 family partners,
    seed 1: first pass 0.175% under the bound, second 0.088%, 2.6 s for both, where the
    neighbourhood search took 17 s to 0.1%)."""
    held = held_prices(problem, problem.levels(first.amounts), prices, clock)
    if held is None:
        return None
    return _planned(problem, stage, Lagrangian(problem, stage).evaluate(held), clock)


def _planned(
    problem: Problem, stage: Stage, evaluation: Evaluation, clock: Clock
) -> ScoredAmounts | None:
    share = min(clock.elapsed() / max(clock.limit, 1e-9) + OPTION_SHARE, LAST_SHARE)
    if clock.left(share) < MIN_OPTION_S:
        return None
    worth = evaluation.prices
    # After a shortfall, the stage holds its weighted attainment, not stage 1's counts
    # tier by tier: 1,000 family partners, 4 resources, seed 1, stage 1 reached 64 of 65
    # at ¥100M and 17 of 17 at ¥1B; this MILP held that mix at 44.4B, 5.5% under the plan
    # that misses a ¥1B partner instead (47.0B).
    most_short = None
    if stage.attainment is not None:
        total = float((problem.weights * problem.targets).sum())
        most_short = total - stage.attainment + 1e-9 * max(total, 1.0)  # float noise
    found = assign_by_milp(
        problem, worth, stage.targets, clock, share, problem.request.options.seed,
        solve_s=0.5 * OPTION_SHARE * clock.limit, worth=worth, most_short=most_short,
    )  # fmt: skip
    if found is None:
        return None
    levels, mandatory = found
    view, seen = at_prices(problem, evaluation, mandatory)  # the packages it chose stay
    return spend(view, seen, stage, levels, mandatory)


def held_prices(
    problem: Problem, levels: NDArray[np.intp], prices: FloatArray, clock: Clock
) -> FloatArray | None:
    """Stage-2 `prices` with their budget and group-budget prices replaced by those of the
    problem where every partner keeps its tier level in `levels` (None: no time).

    That problem's dual is small (one price per budget and group row, the tier prices
    gone) and partners answer at their held level only; it is a restriction, so its
    value bounds nothing here: only its prices are used.
    """
    held_stage = Stage("gmv", np.zeros(problem.n_tiers, dtype=np.int64), False)
    held = Lagrangian(problem, held_stage)
    size = held.size  # budget and group rows come first in both layouts
    z = np.asarray(prices[:size], dtype=float).copy()
    _, scale = initial_point(problem, held, held_stage)
    bundle = LevelBundle(z, np.maximum(np.abs(z), 1e-3 * scale), held.upper(), box=4.0)
    for step in range(HELD_STEPS):
        if clock.left(LAST_SHARE) < MIN_OPTION_S:
            return None
        with clock.timed():
            value, grad = held_value(problem, held, z, levels)
            bundle.report(z, value, grad)
        if step >= 2 and bundle.model_gap < HELD_TOLERANCE:
            break
        z = bundle.propose()
    out = np.asarray(prices, dtype=float).copy()
    out[:size] = bundle.best
    return out


def held_value(
    problem: Problem,
    held: Lagrangian,
    z: FloatArray,
    levels: NDArray[np.intp],
) -> tuple[float, FloatArray]:
    """The held-level dual's value and gradient at `z` (budget rows, then group rows)."""
    response = respond(problem, held.resource_prices(z), 1.0)
    own = float(response.values[np.arange(problem.n), levels].sum())
    value, grads = held.coupling(z, chosen_amounts(response, levels), own)
    return value, np.array(grads)
