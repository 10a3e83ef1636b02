"""Stage 2's plan from the tier-option MILP, priced in GMV.

When the tiers take most of the budgets, who reaches them and with which mix is a
multiple-choice knapsack, and the plans built at stage-2 prices (`primal.construct`) miss
it: their greedy lifts in price order until a budget runs out, and the Lagrangian's own
mixes round a fractional fund ticket up. On 5,000 family partners every stage-2 plan was
one or two partners short of a tier count, the best plan stayed stage 1's (0.47% under the
bound) and the neighbourhood search spent 15 s closing it. The stage-1 MILP
(`assignment`) chooses among exact options per partner; here it weighs each option by its
cost at stage-2 prices less the GMV it adds (what the budgets it leaves would earn at
those prices), keeps the counts stage 1 reached, and the plan is spent on top as at any
price point (0.18% under the bound on that programme, in 2 s).
"""

from __future__ import annotations

import numpy as np

from models.curves import FloatArray
from optimizer.clock import Clock
from optimizer.decomposition.assignment import assign_by_milp
from optimizer.decomposition.lagrangian import Lagrangian, Stage
from optimizer.decomposition.primal import ScoredAmounts, spend
from optimizer.decomposition.problem import Problem

# The options and their MILP may use this share of the limit, the MILP itself half of it.
OPTION_SHARE = 0.15
MIN_OPTION_S = 0.5


def option_plan_applies(problem: Problem, stage: Stage) -> bool:
    """Whether stage 2 has tier counts to choose who reaches (GMV objective)."""
    return stage.kind == "gmv" and problem.n_tiers > 0 and bool(np.any(stage.targets > 0))


def option_plan(
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
    share = min(clock.elapsed() / max(clock.limit, 1e-9) + OPTION_SHARE, 0.9)
    if clock.left(share) < MIN_OPTION_S:
        return None
    evaluation = Lagrangian(problem, stage).evaluate(prices)
    worth = evaluation.prices
    found = assign_by_milp(
        problem, worth, stage.targets, clock, share, problem.request.options.seed,
        solve_s=0.5 * OPTION_SHARE * clock.limit, worth=worth,
    )  # fmt: skip
    if found is None:
        return None
    levels, mandatory = found
    return spend(problem, evaluation, stage, levels, mandatory)
