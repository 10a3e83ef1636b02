"""A stage-1 bound beyond the Lagrangian's: reduced-cost fixing and a small MILP relaxation.

At any prices z the Lagrangian gives, for every exactly feasible plan with attainment A,

    A <= L(z) - Σ_i δ_i(ℓ_i),   δ_i(ℓ) = φ_i(z) - (v_iℓ(z) + reward_ℓ(z)) >= 0,

where ℓ_i is the level partner i really reaches and v_iℓ is an upper bound of its priced
value at that level (`subproblem.respond`). A plan with less shortfall than the best one
has attainment at least W − best + 1 (integral weights), so its partners' reduced costs
add up to at most L(z) − (W − best + 1): every level whose δ alone exceeds that is
impossible for such a plan (fixing). Partners left with one possible level are settled;
the others ("in doubt") choose a level in a MILP that keeps the counts, group counts, the
reduced-cost row above and surrogate budget rows: for price vectors P ≥ 0 on the budgeted
resources, Σ_i c_i(ℓ_i) <= P·B, with c_iℓ a lower bound of the least P-cost of any mix
reaching ℓ (the same relaxed per-partner problem at zero GMV weight). Every row holds for
every plan with less shortfall, so the MILP's proven bound (or its infeasibility) bounds
the least shortfall. Rows a plan need not meet (group floors) are simply left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.clock import Clock
from optimizer.decomposition.lagrangian import Lagrangian, Stage
from optimizer.decomposition.primal import (
    ScoredAmounts,
    missed_group_counts,
    reaches_targets,
)
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.repair import fixed_amounts
from optimizer.decomposition.subproblem import respond
from optimizer.engines import milp_backend
from optimizer.engines.base import MilpModel, MilpResult, Termination
from optimizer.matrix import MatrixBuilder
from optimizer.outcome import TierLevels

IntArray = NDArray[np.intp]
LEAN_AWAY = 8.0  # a resource's price times this: a surrogate row that weighs it more
# Float noise in the Lagrangian's sums: reduced costs within this (relative to L) are ties.
NOISE = 1e-7
# Surrogate rows are eased by this (relative): they are sums of bounds over many partners.
ROW_EASE = 1e-9
# Stage 1's MILP relaxation is not built for more partners in doubt than this: at
# 1,000,000 family partners 85,730 were, and its 194,211 columns took 14-50 s for no
# bound; on 50,000 partners 0-416 were, and it proved their shortfall in 0.6-2.2 s.
MAX_IN_DOUBT = 20_000
# The level-choice MILP tightening stage 2's bound may run up to this share of the limit.
CEILING_SHARE = 0.9


@dataclass
class StageOneBound:
    """The least weighted shortfall proven (`floor`) and what proving it took."""

    floor: float
    in_doubt: int  # partners with more than one possible level after fixing
    settled: bool  # the MILP ran to the end (optimal or infeasible)


def shortfall_floor(
    problem: Problem,
    z: FloatArray,
    best_shortfall: float,
    clock: Clock,
    share: float,
    seed: int = 0,
) -> StageOneBound | None:
    """A proven least shortfall from the stage-1 prices `z`, or None when no bound came
    out in the time (`share` of the clock's limit) or weights are not integral."""
    weights = problem.weights
    if not np.all(weights == np.round(weights)) or best_shortfall <= 0:
        return None
    lagrangian, value, delta = _reduced_costs(problem, Stage("attain", problem.targets, True), z)
    total = float((weights * problem.targets).sum())
    slack = value - (total - best_shortfall + 1.0)
    if slack < 0:  # the Lagrangian alone proves the best plan
        return StageOneBound(best_shortfall, 0, True)
    fixed = _fixed_levels(delta, slack, value)
    if fixed is None or clock.out(share):
        return None
    possible, doubt, settled_level = fixed
    if doubt.size > MAX_IN_DOUBT:
        return None
    model = _relaxation(
        problem, lagrangian, z, delta, possible, doubt, settled_level, value, total,
        lambda: clock.out(share),
    )  # fmt: skip
    if clock.out(share):
        return None
    result = _solved(model, clock, share, seed)
    if result.termination is Termination.INFEASIBLE:
        return StageOneBound(best_shortfall, doubt.size, True)
    if result.bound is None or not math.isfinite(result.bound):
        return None
    proven = math.ceil(result.bound - 1e-6)
    return StageOneBound(
        float(min(max(proven, 0), best_shortfall)),
        doubt.size,
        result.termination is Termination.OPTIMAL,
    )


def gmv_ceiling(
    problem: Problem,
    stage: Stage,
    z: FloatArray,
    best_gmv: float,
    clock: Clock,
    share: float,
    seed: int = 0,
) -> float | None:
    """A stage-2 GMV bound beyond the Lagrangian's at the prices `z`, or None (no time, an
    attainment row, or nothing gained). The same argument as stage 1's: every plan that
    keeps the stage's rows has GMV <= L(z) − Σ δ_i(ℓ_i); a plan better than `best_gmv`
    has Σ δ <= L(z) − best_gmv, which fixes the levels whose δ alone exceeds that. The
    partners left in doubt choose levels in a MILP minimising Σ δ under the tier and group
    counts and the surrogate budget rows; L(z) minus its proven least Σ δ bounds GMV (and
    when no level choice is left, no better plan exists: `best_gmv` is the bound)."""
    if stage.kind != "gmv" or not stage.price_tiers or stage.attainment is not None:
        return None
    lagrangian, value, delta = _reduced_costs(problem, stage, z)
    slack = value - best_gmv
    if slack < 0:  # the Lagrangian alone proves the best plan optimal
        return best_gmv
    fixed = _fixed_levels(delta, slack, value)
    if fixed is None:
        return None
    possible, doubt, settled_level = fixed
    if doubt.size == 0:  # one level choice left: it keeps the counts, or no plan is better
        keeps = _counts_hold(problem, settled_level, stage.targets)
        return value if keeps else best_gmv
    if clock.out(share):
        return None
    model = _level_choice(
        problem, lagrangian, z, delta, possible, doubt, settled_level, stage.targets,
        lambda: clock.out(share),
    )  # fmt: skip
    if clock.out(share):
        return None
    result = _solved(model, clock, share, seed)
    if result.termination is Termination.INFEASIBLE:
        return best_gmv
    if result.bound is None or not math.isfinite(result.bound):
        return None
    settled = np.ones(problem.n, dtype=bool)
    settled[doubt] = False
    fixed_delta = float(delta[settled, settled_level[settled]].sum())
    least = max(result.bound + fixed_delta, 0.0)
    return max(value - least * (1 - ROW_EASE), best_gmv)


def stage_ceiling(
    problem: Problem,
    stage: Stage,
    prices: FloatArray,
    bound: float,
    best: ScoredAmounts | None,
    clock: Clock,
) -> float:
    """Stage 2's `bound`, tightened by the level-choice MILP (`gmv_ceiling`) when the
    best plan keeps every row of the stage and is short of the bound (3,000 family
    partners: 0.075% where the Lagrangian certified 0.10%, in 0.3 s)."""
    if best is None or stage.kind != "gmv" or not clock.room(CEILING_SHARE):
        return bound
    if not keeps_rows(problem, stage, best):
        return bound  # the "no better plan" conclusion needs a plan the stage admits
    ceiling = gmv_ceiling(
        problem, stage, prices, best.objective, clock, CEILING_SHARE,
        problem.request.options.seed,
    )  # fmt: skip
    return bound if ceiling is None else min(bound, ceiling)


def keeps_rows(problem: Problem, stage: Stage, plan: ScoredAmounts) -> bool:
    """Does `plan` meet the stage's tier and group counts?"""
    return reaches_targets(plan, stage) and not missed_group_counts(problem, plan.amounts)


def level_ranges(
    problem: Problem,
    stage: Stage,
    z: FloatArray,
    best: ScoredAmounts,
    grid: int | None,
    proven: bool,
) -> TierLevels | None:
    """Per partner, the lowest and highest tier level a plan better than `best` (which
    keeps the stage's rows) can give it: reduced-cost fixing at the prices `z`, lumpy
    resource `grid` exact, as in `gmv_ceiling`. None where the argument does not hold:
    not the GMV stage, `best` short of a row, or an attainment row held while stage 1 is
    not `proven` (a plan with less shortfall, even with less GMV, would be better).

    With an attainment row the argument holds too: a plan's tier rewards Σ μ_t·count_t
    plus the row's Σ target_t·max(0, ρ·w_t − μ_t) are at least ρ·Σ w_t·min(count_t,
    target_t), which is at least ρ times the attainment held."""
    if stage.kind != "gmv" or not stage.price_tiers:
        return None
    if stage.attainment is not None and not proven:
        return None
    if not keeps_rows(problem, stage, best):
        return None
    _, value, delta = _reduced_costs(problem, stage, z, grid)
    fixed = _fixed_levels(delta, max(value - best.objective, 0.0), value)
    if fixed is None:
        return None
    possible = fixed[0]
    lowest = np.argmax(possible, axis=1).astype(np.intp)
    highest = (possible.shape[1] - 1 - np.argmax(possible[:, ::-1], axis=1)).astype(np.intp)
    return lowest, highest


def _reduced_costs(
    problem: Problem, stage: Stage, z: FloatArray, grid: int | None = None
) -> tuple[Lagrangian, float, FloatArray]:
    """The stage's Lagrangian at `z` (the ticket grid of `grid`, else the first lumpy
    resource, exact), its value, and each partner's reduced cost δ of each level:
    (n, T+1), inf where a level is out of reach."""
    lagrangian = Lagrangian(problem, stage)
    lumpy = problem.lumpy_resources()
    lagrangian.exact_grid = grid if grid is not None else (lumpy[0] if lumpy else None)
    evaluation = lagrangian.evaluate(z)
    levels = evaluation.response.values + lagrangian.rewards(z, problem)
    return lagrangian, evaluation.value, evaluation.phi[:, None] - levels


def _fixed_levels(
    delta: FloatArray, slack: float, value: float
) -> tuple[NDArray[np.bool_], IntArray, IntArray] | None:
    """Reduced-cost fixing: the levels each partner may still take (δ within `slack`),
    the partners left with more than one, and the one level of the others (0 for those in
    doubt). None if a partner has none (cannot be: the Lagrangian's own choice has δ = 0)."""
    possible = delta <= slack + NOISE * max(abs(value), 1.0)
    choices = possible.sum(axis=1)
    if np.any(choices == 0):
        return None
    doubt = np.flatnonzero(choices > 1)
    settled_level = np.argmax(possible, axis=1)
    settled_level[doubt] = 0
    return possible, doubt, settled_level


def _solved(model: MilpModel, clock: Clock, share: float, seed: int) -> MilpResult:
    """The model solved by HiGHS to optimality, or as far as `share` of the clock allows."""
    return milp_backend("highs").solve(
        model,
        time_limit_s=max(clock.left(share), 0.05),
        mip_gap=0.0,
        seed=seed,
        should_stop=clock.should_stop,
    )


def _counts_hold(problem: Problem, level: IntArray, targets: NDArray[np.int64]) -> bool:
    """Do partners at these levels meet the tier and group counts?"""
    for t in range(1, problem.n_tiers + 1):
        if np.count_nonzero(level >= t) < targets[t - 1]:
            return False
    return all(
        np.count_nonzero(row.members & (level > row.tier)) >= row.minimum
        for row in problem.group_counts
    )


def _level_choice(
    problem: Problem,
    lagrangian: Lagrangian,
    z: FloatArray,
    delta: FloatArray,
    possible: NDArray[np.bool_],
    doubt: IntArray,
    settled_level: IntArray,
    targets: NDArray[np.int64],
    out_of_time: Callable[[], bool],
) -> MilpModel:
    """The MILP over the partners in doubt: minimise Σ δ keeping the tier counts, group
    counts and surrogate budget rows."""
    b = MatrixBuilder()
    rows = _level_rows(problem, b, possible, doubt, settled_level, targets)
    y, owner, level, settled = rows.y, rows.owner, rows.level, rows.settled
    _surrogate_rows(problem, lagrangian, z, b, y, owner, level, settled, settled_level, out_of_time)
    cost = np.zeros(b.n_cols)
    cost[y] = delta[owner, level]
    return b.build(cost)


@dataclass
class _LevelRows:
    y: IntArray  # one binary per (partner in doubt, possible level)
    owner: IntArray  # its partner
    level: IntArray  # its level
    settled: NDArray[np.bool_]  # partners not in doubt
    tier_rows: IntArray  # the tier-count rows, in tier order


def _level_rows(
    problem: Problem,
    b: MatrixBuilder,
    possible: NDArray[np.bool_],
    doubt: IntArray,
    settled_level: IntArray,
    targets: NDArray[np.int64],
) -> _LevelRows:
    """The level binaries of the partners in doubt with their rows: exactly one level
    each, the tier counts (at least `targets`, settled partners counted as constants)
    and the group counts."""
    settled = np.ones(problem.n, dtype=bool)
    settled[doubt] = False
    owner, level = np.nonzero(possible[doubt])
    owner = doubt[owner]
    y = b.add_columns(np.zeros(owner.size), np.ones(owner.size), integer=True)
    _, row_of = np.unique(owner, return_inverse=True)
    rows = b.add_rows(1.0, 1.0, count=doubt.size)
    b.add_entries(rows[row_of], y, 1.0)
    tier_rows = []
    for t in range(1, problem.n_tiers + 1):
        already = int(np.count_nonzero(settled & (settled_level >= t)))
        lifted = level >= t
        row = b.add_rows(float(targets[t - 1] - already), np.inf, count=1)
        b.add_entries(np.full(int(lifted.sum()), row[0]), y[lifted], 1.0)
        tier_rows.append(int(row[0]))
    for counted in problem.group_counts:
        already = int(np.count_nonzero(settled & counted.members & (settled_level > counted.tier)))
        lifted = (level > counted.tier) & counted.members[owner]
        row = b.add_rows(float(counted.minimum - already), np.inf, count=1)
        b.add_entries(np.full(int(lifted.sum()), row[0]), y[lifted], 1.0)
    return _LevelRows(y, owner, level, settled, np.array(tier_rows, dtype=np.intp))


def _relaxation(
    problem: Problem,
    lagrangian: Lagrangian,
    z: FloatArray,
    delta: FloatArray,
    possible: NDArray[np.bool_],
    doubt: IntArray,
    settled_level: IntArray,
    dual_value: float,
    total: float,
    out_of_time: Callable[[], bool],
) -> MilpModel:
    """The MILP over the partners in doubt: minimise weighted shortfall (surrogate rows
    stop once `out_of_time`: fewer rows, a weaker but still valid relaxation)."""
    n_tiers = problem.n_tiers
    b = MatrixBuilder()
    rows = _level_rows(problem, b, possible, doubt, settled_level, problem.targets)
    y, owner, level, settled = rows.y, rows.owner, rows.level, rows.settled
    # Each tier's shortfall s_t makes up what its count misses.
    s = b.add_columns(np.zeros(n_tiers), problem.targets.astype(float), integer=True)
    b.add_entries(rows.tier_rows, s, 1.0)
    # The reduced-cost row: Σ δ <= L − A with A = W − Σ w·s.
    fixed_delta = float(delta[settled, settled_level[settled]].sum())
    row = b.add_rows(-np.inf, dual_value - total - fixed_delta, count=1)
    b.add_entries(np.full(owner.size, row[0]), y, delta[owner, level])
    b.add_entries(np.full(n_tiers, row[0]), s, -problem.weights)
    _surrogate_rows(problem, lagrangian, z, b, y, owner, level, settled, settled_level, out_of_time)
    cost = np.zeros(b.n_cols)
    cost[s] = problem.weights
    return b.build(cost)


def _surrogate_rows(
    problem: Problem,
    lagrangian: Lagrangian,
    z: FloatArray,
    b: MatrixBuilder,
    y: IntArray,
    owner: IntArray,
    level: IntArray,
    settled: NDArray[np.bool_],
    settled_level: IntArray,
    out_of_time: Callable[[], bool],
) -> None:
    """Budget rows priced by the Lagrangian's budget prices, each resource leaning
    heavier in turn, and each budgeted resource alone (which also bounds group caps)."""
    budgeted = [r for r in range(problem.n_resources) if math.isfinite(problem.budget[r])]
    if not budgeted:
        return
    lam = np.zeros(problem.n_resources)
    lam[budgeted] = np.maximum(lagrangian.split(z)[0], 0.0)
    variants: list[FloatArray] = []
    for r in budgeted:
        alone = np.zeros(problem.n_resources)
        alone[r] = 1.0 / problem.budget[r]
        variants.append(alone)
    if np.any(lam > 0):
        variants.append(lam)
        for r in budgeted:
            leaning = lam.copy()
            leaning[r] = max(leaning[r], 1e-300) * LEAN_AWAY
            variants.append(leaning)
    # Partners settled at level 0 use at least their pins (and nothing less than zero).
    lifted = np.flatnonzero(~settled | (settled_level > 0))
    pins = fixed_amounts(problem)
    idle = np.ones(problem.n, dtype=bool)
    idle[lifted] = False
    idle_use = pins[idle].sum(axis=0)
    sub = problem.subset(lifted)
    position = np.full(problem.n, -1, dtype=np.intp)
    position[lifted] = np.arange(lifted.size)
    lumpy = problem.lumpy_resources()
    alone_rows: dict[int, tuple[FloatArray, FloatArray]] = {}
    for k, price in enumerate(variants):
        if out_of_time():
            break
        prices = np.broadcast_to(price, (sub.n, problem.n_resources)).copy()
        values = respond(sub, prices, 0.0, exact_grid=lumpy[0] if lumpy else None).values
        least = -values  # a lower bound of the least priced cost reaching each level
        settled_rows = np.flatnonzero(settled[lifted])
        constant = float(least[settled_rows, settled_level[lifted[settled_rows]]].sum())
        constant += float(idle_use @ price)
        cap = float(price[budgeted] @ problem.budget[budgeted])
        row = b.add_rows(-np.inf, cap * (1 + ROW_EASE) - constant, count=1)
        b.add_entries(np.full(owner.size, row[0]), y, least[position[owner], level])
        if k < len(budgeted):
            alone_rows[budgeted[k]] = (least, price)
    for group in problem.group_budgets:
        if group.resource not in alone_rows:
            continue
        least, price = alone_rows[group.resource]
        unit = float(price[group.resource])
        if group.low > 0:
            # Members spend at least the floor: outsiders have the rest of the budget.
            _cap_row(b, y, owner, level, least / unit, position, ~group.members, settled,
                     settled_level, lifted, problem.budget[group.resource] - group.low,
                     float(pins[idle & ~group.members, group.resource].sum()))  # fmt: skip
        if math.isfinite(group.high):
            _cap_row(b, y, owner, level, least / unit, position, group.members, settled,
                     settled_level, lifted, group.high,
                     float(pins[idle & group.members, group.resource].sum()))  # fmt: skip


def _cap_row(
    b: MatrixBuilder,
    y: IntArray,
    owner: IntArray,
    level: IntArray,
    least: FloatArray,
    position: IntArray,
    members: NDArray[np.bool_],
    settled: NDArray[np.bool_],
    settled_level: IntArray,
    lifted: IntArray,
    cap: float,
    idle_use: float,
) -> None:
    """Σ over `members` of their least use (settled ones as a constant) <= cap."""
    settled_rows = np.flatnonzero(settled[lifted] & members[lifted])
    used = float(least[settled_rows, settled_level[lifted[settled_rows]]].sum()) + idle_use
    inside = members[owner]
    row = b.add_rows(-np.inf, cap * (1 + ROW_EASE) - used, count=1)
    b.add_entries(
        np.full(int(inside.sum()), row[0]),
        y[inside],
        least[position[owner[inside]], level[inside]],
    )
