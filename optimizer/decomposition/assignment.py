"""Who reaches which tier, as a small MILP over each partner's exact tier options (HiGHS).

The greedy assignment (`repair.assign_levels`) lifts the cheapest partners tier by tier
while the budgets last. When budgets bind, which partners to lift is a multiple-choice
knapsack, and greedy leaves shortfall a MILP does not. Each partner in the pool gets a
few exact options per tier: the least grid amounts reaching it (`repair.mandatory`) at
the Lagrangian prices and at prices leaning away from each resource in turn (the
cheapest exact cost per resource mix; fewer variants when time is short), and, for a
stepped ticket resource, one per ticket amount on its grid (the least mix at the prices
with the ticket pinned there). Price variants alone give each partner a few mixes that
all lean the same way on the ticket; when the ticket budget binds, lifting one more
partner can take a mix with many tickets for it and fewer for another partner (family
seed 4, 300 partners, ambition 0.98: 1 short with price variants, 0 with the grid). The grid
makes the MILP several times larger, so its options go into a second MILP that runs only
when the certificate leaves room for less shortfall (`stage_one.stage_one`). The MILP
picks at most one option per partner, within the budgets and group caps, and minimises
weighted shortfall first, then the share of the budgets the options use (what is left
goes to GMV); stage 2 (`option_plan`) gives it GMV prices instead, and it then minimises
the options' cost at those prices less the GMV they add.

Partners outside the pool stay at the level their pins give them. The MILP is a
restriction of stage 1: its plans are exactly feasible, its value is no bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.clock import Clock
from optimizer.decomposition.menus import levels_of
from optimizer.decomposition.option_lp import rounded_relaxation
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.repair import fixed_amounts, mandatory
from optimizer.engines import milp_backend
from optimizer.engines.base import MilpModel, MilpResult, Termination
from optimizer.matrix import MatrixBuilder
from optimizer.root_fixing import solve_fixed_at_root

IntArray = NDArray[np.intp]
# Partners per tier in the pool: the cheapest (at the prices) this many times the target,
# plus a margin; options per partner and tier: one per price variant.
POOL_PER_TARGET = 2
POOL_MARGIN = 100
LEAN_AWAY = 8.0  # a resource's price times this: mixes that use less of it
# (partner, ticket amount) rows per tier beyond which the ticket grid's mixes are skipped.
GRID_OPTION_ROWS = 200_000
VECTOR_ROWS = 1_000
# Above this many options the MILP is replaced by its LP relaxation, rounded: HiGHS's
# root rounding heuristics ignore the time limit on such models (1,000,000 family
# partners, 171,343 options: 24 s on a 10.9 s limit, and over 280 s on a 60 s one),
# where the LP takes 12 s and leaves 8 options fractional.
LP_ROUNDING_OPTIONS = 50_000
# A MILP on a leash (`solve_s`) that stops before its root LP is solved has no bound and
# at most its start: it gets one more try with this many leashes. 50,000 family partners,
# seed 4, on an AMD EPYC: the root of stage 1's first MILP (9,700 binaries) took about
# its 2.8 s leash, and in about one run in ten it did not finish; the run then ended 45
# short instead of 6 (`BENCHMARKS.md`). So does a call that stops on its leash with a
# choice at least one unit of weighted shortfall above its bound: the same MILP, traced,
# stopped at its 2.77 s leash with 6 short (objective 13.0, bound 12.2) in most runs, and
# with 44 short (objective 89.0) in runs where the machine was a little slower.
ROOT_RETRY = 2.0


@dataclass
class Options:
    """Exact tier options: partner, tier level reached, amounts (R,) including pins."""

    partner: IntArray
    level: IntArray
    amounts: FloatArray

    def __len__(self) -> int:
        return len(self.partner)


def tier_options(
    problem: Problem,
    prices: FloatArray,
    targets: NDArray[np.int64],
    seconds_left: Callable[[], float] = lambda: math.inf,
    grid: bool = True,
    every_package: bool = False,
) -> Options:
    """Each tier's pool and every partner's exact options to reach it (fewer price
    variants, and no ticket grid, once they would take more than `seconds_left()`); menu
    partners' packages that lift them (`every_package`: all their packages, for a MILP that
    weighs GMV too)."""
    fixed = fixed_amounts(problem)
    start = problem.levels(fixed)
    partners: list[IntArray] = []
    levels: list[IntArray] = []
    amounts: list[FloatArray] = []
    for t in range(1, problem.n_tiers + 1):
        if targets[t - 1] <= 0:
            continue
        threshold = problem.thresholds[t - 1]
        pool = np.flatnonzero((start < t) & (problem.baseline + problem.reach >= threshold))
        if pool.size == 0:
            continue
        began = time.perf_counter()
        x, ok = mandatory(problem, pool, t, prices)
        # Vectorised: below some thousand rows a call costs about the same whatever its size.
        per_row = (time.perf_counter() - began) / max(pool.size, VECTOR_ROWS)
        cost = np.where(ok, (x * prices[pool]).sum(axis=1), np.inf)
        keep = int(POOL_PER_TARGET * targets[t - 1] + POOL_MARGIN)
        chosen = np.argsort(cost, kind="stable")[:keep]
        pool, x, ok = pool[chosen], x[chosen], ok[chosen]
        variants = [(x, ok)]
        for r in range(problem.n_resources):
            if seconds_left() <= 0:
                break
            leaning = prices.copy()
            leaning[:, r] *= LEAN_AWAY
            variants.append(mandatory(problem, pool, t, leaning))
        owners = [pool] * len(variants)
        # The grid's rows cost about what the pool's did each (a rough guess, which is
        # why only half of what is left is given to it).
        room = 0.5 * seconds_left() / max(per_row, 1e-9)
        if grid and room >= pool.size:
            grid_rows, xg, okg = ticket_grid_mixes(
                problem, pool, t, prices, int(min(room, GRID_OPTION_ROWS))
            )
            variants.append((xg, okg))
            owners.append(grid_rows)
        for rows, (xv, okv) in zip(owners, variants, strict=True):
            partners.append(rows[okv])
            levels.append(np.full(int(okv.sum()), t, dtype=np.intp))
            amounts.append(xv[okv])
    if problem.menus is not None:
        menus = problem.menus
        gmv = problem.baseline[menus.owner] + menus.uplift
        reaches = levels_of(problem.thresholds, gmv)
        # Every package that lifts its partner, and every package of a partner that must
        # take one (a package reaching no tier is still its choice).
        listed = (reaches > start[menus.owner]) | menus.must[menus.owner] | every_package
        partners.append(menus.owner[listed])
        levels.append(reaches[listed])
        amounts.append(menus.amounts[listed])
    if not partners:
        return Options(
            np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros((0, problem.n_resources))
        )
    return _unique(Options(np.concatenate(partners), np.concatenate(levels), np.vstack(amounts)))


def ticket_grid_mixes(
    problem: Problem,
    pool: IntArray,
    level: int,
    prices: FloatArray,
    max_rows: int = GRID_OPTION_ROWS,
) -> tuple[IntArray, FloatArray, NDArray[np.bool_]]:
    """(partner, amounts, ok) per partner and ticket amount on its grid: the least mix at
    the prices reaching `level` with the ticket pinned there (none beyond `max_rows`)."""
    lumpy = problem.lumpy_resources()
    if not lumpy or pool.size == 0:
        return pool[:0], np.zeros((0, problem.n_resources)), np.zeros(0, dtype=bool)
    r = lumpy[0]
    step = problem.step[r]
    family = problem.families[r]
    lo, hi = family.lo[pool], family.hi[pool]
    free = problem.can_use[pool, r] & ~(~problem.optional[pool, r] & (lo > 0) & (lo == hi))
    low = np.where(free, np.ceil(lo / step - 1e-9), 0).astype(np.int64)
    high = np.where(free, np.floor(hi / step + 1e-9), -1).astype(np.int64)
    # Partners who cannot choose their ticket keep their own domain (one row).
    counts = np.where(free, high - low + 2, 1)
    if int(counts.sum()) > min(max_rows, GRID_OPTION_ROWS):
        return pool[:0], np.zeros((0, problem.n_resources)), np.zeros(0, dtype=bool)
    owner = np.repeat(np.arange(pool.size), counts)
    first = np.cumsum(counts) - counts
    offset = np.arange(owner.size) - first[owner]  # 0: no ticket, then low, low+1, …
    units = np.where(offset == 0, 0, low[owner] + offset - 1)
    own = ~free[owner]
    # No ticket only where the resource is optional or has no minimum.
    keep = own | (units > 0) | problem.optional[pool[owner], r] | (lo[owner] <= 0)
    owner, units, own = owner[keep], units[keep], own[keep]
    rows = pool[owner]
    sub = problem.subset(rows)
    amount = units * step
    ticket = sub.families[r]
    ticket.set_domain(np.where(own, ticket.lo, amount), np.where(own, ticket.hi, amount))
    sub.can_use = sub.can_use.copy()
    sub.optional = sub.optional.copy()
    sub.can_use[:, r] = np.where(own, sub.can_use[:, r], amount > 0)
    sub.optional[:, r] = np.where(own, sub.optional[:, r], False)
    x, ok = mandatory(sub, np.arange(rows.size), level, prices[rows])
    return rows, x, ok


def assign_by_milp(
    problem: Problem,
    prices: FloatArray,
    targets: NDArray[np.int64],
    clock: Clock,
    share: float,
    seed: int = 0,
    incumbent: FloatArray | None = None,
    grid: bool = True,
    floor: float | None = None,
    solve_s: float = math.inf,
    worth: FloatArray | None = None,
    most_short: float | None = None,
    beats: float | None = None,
) -> tuple[NDArray[np.int64], FloatArray] | None:
    """(levels, amounts) the MILP chooses, like `repair.assign_levels`, within `share` of
    the clock's limit; None when it has no solution in time (or the hard group rows
    cannot be met with these options). `incumbent`: a plan's amounts (within budgets and
    group rules) whose partners' tier mixes become options too, and its start: the MILP
    then never does worse than it. `grid`: with the ticket grid's options (a larger
    MILP, slower to prove its budget use least). `floor`: a proven least weighted
    shortfall; the MILP stops at the first choice reaching it, whatever its budget use
    (at 50,000 family partners it had that choice in 0.3 s and spent 12 s more on 0.4%
    of the budgets, which stage 2 reallocates anyway). `solve_s`: at most this long for
    the MILP itself (building the options is not capped by it). `worth`: GMV per unit
    (per partner and resource); the options' cost at it less their GMV replaces their
    budget share in the objective. `most_short`: a weighted shortfall against the
    request's own targets that the choice may reach with any mix of tier counts, in place
    of `targets`' counts (which the LP rounding above LP_ROUNDING_OPTIONS, and a MILP
    started from an `incumbent`, keep). `beats`: the weighted shortfall of a plan the
    caller has; only a choice a unit (the least weight) below it is wanted, and the MILP
    stops once its bound shows there is none (None then): at 5,000 family partners, 4
    resources, the ticket grid's MILP had that proof after 1.2 s and ran on for 10 s more
    over its budget use."""
    available = clock.left(share)
    pools = targets if most_short is None else np.maximum(targets, problem.targets)
    # Price variants stop once half the time is gone: the MILP needs the other half.
    options = tier_options(
        problem,
        prices,
        pools,
        lambda: -1.0 if clock.out(share) else clock.left(share) - 0.5 * available,
        grid,
        every_package=worth is not None,
    )
    fixed = fixed_amounts(problem)
    start = problem.levels(fixed)
    warm: FloatArray | None = None
    if incumbent is not None:
        options, warm = _with_incumbent(problem, options, incumbent, start, targets)
    if len(options) == 0 or clock.out(share):
        return None
    if most_short is not None and warm is None and len(options) <= LP_ROUNDING_OPTIONS:
        model = _model(problem, options, fixed, start, problem.targets, worth, most_short)
    else:
        model = _model(problem, options, fixed, start, targets, worth)
    if len(options) > LP_ROUNDING_OPTIONS:
        chosen = rounded_relaxation(model, options.partner, clock.left(share), clock)
        if chosen is None:
            return None
        taken = np.flatnonzero(chosen)
    else:
        target = None if floor is None else _objective_at(problem, floor)
        cutoff = None
        step = _shortfall_step(problem)
        if beats is not None and worth is None and most_short is None and step is not None:
            # Above it a choice has at least `beats`' shortfall (budget use is at most 1).
            cutoff = _objective_at(problem, beats - step)
            cutoff += 1e-9 * max(abs(cutoff), 1.0)
        for leash in (solve_s, ROOT_RETRY * solve_s):
            seconds = max(min(clock.left(share), leash), 0.05)
            if worth is not None and warm is None and target is None:  # stage 2's passes
                result = solve_fixed_at_root(
                    model, time_limit_s=seconds, mip_gap=1e-6, seed=seed,
                    should_stop=clock.should_stop,
                )  # fmt: skip
            else:
                result = milp_backend("highs").solve(
                    model,
                    time_limit_s=seconds,
                    mip_gap=1e-6,
                    seed=seed,
                    warm_start=warm,
                    should_stop=clock.should_stop,
                    target=target,
                    cutoff=cutoff,
                )
            # An infeasible call has no bound either, but a longer leash cannot change it.
            settled = result.termination is Termination.INFEASIBLE or (
                result.bound is not None
                and math.isfinite(result.bound)
                and not _unit_above_bound(problem, result, worth, target)
            )
            if settled or clock.out(share) or clock.stopped or not math.isfinite(solve_s):
                break
        if result.x is None:
            return None
        taken = np.flatnonzero(result.x[: len(options)] > 0.5)
    levels = start.astype(np.int64)
    amounts = fixed.copy()
    levels[options.partner[taken]] = options.level[taken]
    amounts[options.partner[taken]] = options.amounts[taken]
    return levels, amounts


def _model(
    problem: Problem,
    options: Options,
    fixed: FloatArray,
    start: IntArray,
    targets: NDArray[np.int64],
    worth: FloatArray | None = None,
    most_short: float | None = None,
) -> MilpModel:
    b = MatrixBuilder()
    count = len(options)
    y = b.add_columns(np.zeros(count), np.ones(count), integer=True)
    delta = options.amounts - fixed[options.partner]
    # At most one option per partner (exactly one package for a partner that must take one).
    must = np.zeros(problem.n, dtype=bool) if problem.menus is None else problem.menus.must
    b.add_one_per_owner(y, options.partner, must)
    # Budgets and group caps (floors are filled afterwards, by `within_groups`).
    share = np.zeros(count)
    finite = [r for r in range(problem.n_resources) if np.isfinite(problem.budget[r])]
    # Resource rows in shares of their budget: raw traffic (1e13 impressions) against
    # binaries left HiGHS's LP badly scaled (1,000,000 family partners).
    unit = np.where(np.isfinite(problem.budget) & (problem.budget > 0), problem.budget, 1.0)
    for r in finite:
        left = problem.budget[r] - fixed[:, r].sum()
        row = b.add_rows(-np.inf, left / unit[r], count=1)
        b.add_entries(np.full(count, row[0]), y, delta[:, r] / unit[r])
        share += delta[:, r] / max(problem.budget[r], 1e-300)
    for group in problem.group_budgets:
        r = group.resource
        inside = group.members[options.partner]
        high = (group.high - fixed[group.members, r].sum()) / unit[r]
        row = b.add_rows(-np.inf, high, count=1)
        b.add_entries(np.full(int(inside.sum()), row[0]), y[inside], delta[inside, r] / unit[r])
        if np.isfinite(problem.budget[r]) and group.low > 0:
            # The group's floor is spent on members whatever they reach: outsiders share
            # only the rest of the budget.
            room = problem.budget[r] - max(group.low, fixed[group.members, r].sum())
            room -= fixed[~group.members, r].sum()
            row = b.add_rows(-np.inf, room / unit[r], count=1)
            b.add_entries(
                np.full(int((~inside).sum()), row[0]), y[~inside], delta[~inside, r] / unit[r]
            )
    # Counts: s_t >= target_t - (already there + lifted to t or above).
    s = b.add_columns(np.zeros(problem.n_tiers), np.maximum(targets, 0), integer=True)
    # An option counts for tier t only if it takes its partner there: a partner already at
    # t (lifted to a higher tier) is among those counted as already there.
    was = start[options.partner]
    for t in range(1, problem.n_tiers + 1):
        lifted = (options.level >= t) & (was < t)
        row = b.add_rows(float(targets[t - 1] - np.count_nonzero(start >= t)), np.inf, count=1)
        b.add_entries(np.full(int(lifted.sum()), row[0]), y[lifted], 1.0)
        b.add_entries(row, s[t - 1 : t], 1.0)
    excess = None  # weighted shortfall beyond `most_short`, which the options may need
    if most_short is not None:
        excess = b.add_columns(np.zeros(1), np.full(1, np.inf))
        row = b.add_rows(-np.inf, most_short, count=1)
        b.add_entries(np.full(problem.n_tiers, row[0]), s, problem.weights)
        b.add_entries(row, excess, -1.0)
    for counted in problem.group_counts:
        lifted = (options.level > counted.tier) & (was <= counted.tier)
        lifted &= counted.members[options.partner]
        already = np.count_nonzero((start > counted.tier) & counted.members)
        row = b.add_rows(float(counted.minimum - already), np.inf, count=1)
        b.add_entries(np.full(int(lifted.sum()), row[0]), y[lifted], 1.0)
    # One unit of the smallest weight outweighs any use of the budgets (share <= 1).
    cost = np.zeros(b.n_cols)
    if worth is None:
        cost[y] = share / max(len(finite), 1)
    else:
        cost[y] = _priced_cost(problem, options, fixed, worth)
    # Under a cap, only shortfall beyond it costs: priced per tier, the LP relaxation
    # lifted fractional partners for fractional counts, 27% under the MILP's optimum, and
    # HiGHS took 5-8 s to close it where the uncapped model takes 0.15 s (3,000 family
    # partners, 4 resources, seed 6).
    if excess is None:
        cost[s] = _shortfall_cost(problem) * problem.weights
    else:
        cost[excess] = _shortfall_cost(problem)
    return b.build(cost)


def _priced_cost(
    problem: Problem, options: Options, fixed: FloatArray, worth: FloatArray
) -> FloatArray:
    """Each option's cost at stage-2 prices `worth` (GMV per unit, per partner and
    resource) less the GMV it adds, in a scale where any choice's total is below 1."""
    delta = options.amounts - fixed[options.partner]
    spent = (delta * worth[options.partner]).sum(axis=1)
    gained = (
        problem.subset(options.partner).values(options.amounts)
        - problem.values(fixed)[options.partner]
    )
    net = spent - gained
    budget = np.where(np.isfinite(problem.budget), problem.budget, 0.0)
    most_gained = np.zeros(problem.n)
    np.maximum.at(most_gained, options.partner, np.maximum(gained, 0.0))
    scale = float((worth.max(axis=0) * budget).sum() + most_gained.sum())
    return net / max(scale, 1e-300)


def _shortfall_cost(problem: Problem) -> float:
    """The model's cost of one unit of weighted shortfall."""
    return 2.0 / max(float(np.min(problem.weights)), 1e-12)


def _unit_above_bound(
    problem: Problem, result: MilpResult, worth: FloatArray | None, target: float | None
) -> bool:
    """Did a shortfall MILP stop early with its choice, short of `target`, at least one
    unit of weighted shortfall above its bound (a choice with less may exist)?"""
    if worth is not None or result.termination is not Termination.FEASIBLE:
        return False
    if result.objective is None or result.bound is None:
        return False
    if target is not None and result.objective <= target:
        return False
    unit = _shortfall_cost(problem) * float(np.min(problem.weights))
    return result.objective - result.bound >= unit


def _shortfall_step(problem: Problem) -> float | None:
    """The least weighted shortfall between two choices (the least weight) when every
    weight is a whole multiple of it; None otherwise."""
    least = float(np.min(problem.weights))
    if least <= 0:
        return None
    multiples = problem.weights / least
    return least if np.allclose(multiples, np.round(multiples), rtol=0, atol=1e-9) else None


def _objective_at(problem: Problem, floor: float) -> float:
    """The highest objective of a choice at weighted shortfall `floor` (its budget use,
    the rest of the objective, is at most 1)."""
    return _shortfall_cost(problem) * floor + 1.0


def _with_incumbent(
    problem: Problem,
    options: Options,
    incumbent: FloatArray,
    start: IntArray,
    targets: NDArray[np.int64],
) -> tuple[Options, FloatArray]:
    """The options with the incumbent's lifted partners' mixes added, and the incumbent
    as a start for the MILP's columns (options, then the shortfall per tier)."""
    reached = problem.levels(incumbent)
    lifted = np.flatnonzero(reached > start)
    merged, position = _unique_with_positions(
        Options(
            np.concatenate([options.partner, lifted]),
            np.concatenate([options.level, reached[lifted]]),
            np.vstack([options.amounts, incumbent[lifted]]),
        )
    )
    chosen = np.zeros(len(merged))
    # By position, not by a search per lifted partner: that search was quadratic (65 s
    # at 1,000,000 family partners, more than the MILP it fed had).
    chosen[position[len(options) :]] = 1.0
    achieved = np.array([np.count_nonzero(reached >= t) for t in range(1, problem.n_tiers + 1)])
    short = np.maximum(targets - achieved, 0).astype(float)
    return merged, np.concatenate([chosen, short])


def _unique(options: Options) -> Options:
    """One copy of each (partner, level, amounts) option."""
    return _unique_with_positions(options)[0]


def _unique_with_positions(options: Options) -> tuple[Options, IntArray]:
    """One copy of each (partner, level, amounts) option, in first-seen order, and where
    each given option's copy is in it."""
    key = np.column_stack([options.partner, options.level, options.amounts])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    first = first[order]
    kept = Options(options.partner[first], options.level[first], options.amounts[first])
    return kept, rank[inverse.ravel()]
