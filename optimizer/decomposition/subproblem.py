"""The per-partner problem under prices, solved for every partner at once.

With prices `P[i, r]` on resources and a GMV weight `alpha` (1 when GMV is the objective,
0 when only cost counts), partner i's problem at tier level ℓ is

    max  alpha·F_i(x) − P_i·x    s.t.  F_i(x) ≥ need_iℓ = T_ℓ − baseline_i,

over x_r ∈ {0} ∪ [lo_r, hi_r]. Each choice of which min-ticket resources are "on" (a
*combo*) leaves a concave problem on the envelope, whose dual in the tier multiplier ν is
one-dimensional: with q = alpha + ν, x_r(q) = argmax envelope_r(x) − (P_r/q)·x and
F(x(q)) grows with q. A vectorised search on log q (`q_search`) finds the smallest q
reaching the need. The value reported is the dual function at that q,

    D(q) = Σ_r [q·env_r(x_r) − P_r·x_r + tangent slack_r] − (q − alpha)·need,

an upper bound of the level's optimum for ANY q ≥ alpha (weak duality), made rigorous for
inexact x_r by the tangent slack (concavity of the envelope). Relaxations used, all of
which only raise the bound: hill curves below their tangent point use the chord (concave
envelope) on the on-domain; steps are relaxed to continuous amounts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.decomposition.family import Family
from optimizer.decomposition.menu_prices import answer as answer_menus
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.q_search import smallest_reaching_q, tangent_slack
from optimizer.decomposition.response import Reach, Response

IntArray = NDArray[np.intp]


def free_choice(
    problem: Problem, prices: FloatArray, alpha: float
) -> tuple[FloatArray, FloatArray]:
    """Level-0 amounts and values: max alpha·F(x) − P·x, separable per resource."""
    n = problem.n
    x0 = np.zeros((n, problem.n_resources))
    value = np.zeros(n)
    for r, family in enumerate(problem.families):
        p = prices[:, r]
        usable = problem.can_use[:, r]
        if alpha > 0:
            x = family.argmax_slope(np.maximum(p, 0.0) / alpha)
            gain = alpha * family.envelope(x) - p * x + tangent_slack(family, x, p, alpha)
        else:
            # Only cost counts: the least amount, unless a group floor's price is negative
            # there; then the most. The amounts are the subgradient, so they must be the
            # maximiser the value (with its slack) stands for, or the dual's cuts are wrong.
            x = np.where(p < 0, family.hi, family.lo)
            gain = -p * x + tangent_slack(family, x, p, 0.0)
        off = problem.optional[:, r] & (gain < 0)
        take = usable & ~off
        x0[:, r] = np.where(take, x, 0.0)
        value += np.where(take, gain, 0.0)
    return x0, value


def respond(
    problem: Problem,
    prices: FloatArray,
    alpha: float,
    *,
    levels: bool = True,
    exact_grid: int | None = None,
) -> Response:
    """Every partner's best level values (upper bounds) and amounts under `prices`.

    `exact_grid` names a stepped resource whose amount is enumerated on its grid (exact
    curve, no chord, no step relaxation) when partners reach for a tier: tighter and
    costlier, meant for the few partners that matter.
    """
    n, n_tiers = problem.n, problem.n_tiers
    x0, v0 = free_choice(problem, prices, alpha)
    values = np.full((n, n_tiers + 1), -np.inf)
    values[:, 0] = v0
    response = Response(values=values, x0=x0)
    if not levels or n_tiers == 0:
        answer_menus(problem, prices, alpha, response, levels=False)
        return response
    g0 = problem.values(x0)  # exact == envelope here (x0 never sits inside a chord)
    curves = np.ones(n, dtype=bool) if problem.menus is None else ~problem.menus.holders
    per_level: list[IntArray] = []
    for level in range(1, n_tiers + 1):
        threshold = problem.thresholds[level - 1]
        free = g0 >= threshold
        values[free, level] = v0[free]
        per_level.append(
            np.flatnonzero(~free & curves & (problem.baseline + problem.reach >= threshold))
        )
    # Every level's rows in one search: a search's cost is mostly its steps, not its rows,
    # so one stacked search beats one per level.
    sizes = [part.size for part in per_level]
    level_of = np.repeat(np.arange(1, n_tiers + 1), sizes)
    rows = np.concatenate(per_level)
    need = problem.thresholds[level_of - 1] - problem.baseline[rows]
    if exact_grid is None:
        value, amounts, _, q = reach_level(problem, rows, prices[rows], alpha, need)
    else:
        value, amounts, q = reach_on_grid(
            problem, rows, prices[rows], alpha, need, exact_grid, segments=level_of
        )
    values[rows, level_of] = value
    for part in np.split(np.arange(rows.size), np.cumsum(sizes)[:-1]):
        response.reach.append(Reach(rows[part], amounts[part], q[part]) if part.size else None)
    answer_menus(problem, prices, alpha, response)
    return response


def reach_level(
    problem: Problem, rows: IntArray, prices: FloatArray, alpha: float, need: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Best value, maximiser, blended amounts and q for `rows` to lift their uplift to `need`.

    Enumerates on/off for min-ticket resources (combos), solving each on its envelope. The
    maximiser at q gives the dual's subgradient; the blend (between the mixes either side
    of q, where an amount jumps) is the least-overshoot mix the primal starts from.
    """
    n_res = problem.n_resources
    can_use = problem.can_use[rows]
    optional = problem.optional[rows]
    best = np.full(rows.size, -np.inf)
    best_x = np.zeros((rows.size, n_res))
    best_blend = np.zeros((rows.size, n_res))
    best_q = np.full(rows.size, np.nan)
    families = [family.take(rows) for family in problem.families]
    # Every (partner, combo) pair in one search: a search step costs about the same for a
    # few thousand rows as for a few, so one stacked search beats one per combo.
    members: list[IntArray] = []
    combos: list[NDArray[np.bool_]] = []
    for combo in range(1 << n_res):
        on = np.array([(combo >> r) & 1 == 1 for r in range(n_res)])
        # A partner takes part in a combo when it only switches off optional resources.
        member = np.all(np.where(on, can_use, ~can_use | optional), axis=1)
        member &= _reachable(families, on, need)
        sub = np.flatnonzero(member)
        members.append(sub)
        combos.append(np.broadcast_to(on, (sub.size, n_res)))
    owner = np.concatenate(members)
    if owner.size == 0:
        return best, best_x, best_blend, best_q
    fam = [f.take(owner) for f in families]
    value, x, blend, q = smallest_reaching_q(
        fam, np.vstack(combos), prices[owner], alpha, need[owner]
    )
    # Each partner's best combo; on equal values the first combo (stable order).
    order = np.lexsort((-value, owner))
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    idx = owner[first]
    best[idx] = value[first]
    best_x[idx] = x[first]
    best_blend[idx] = blend[first]
    best_q[idx] = q[first]
    return best, best_x, best_blend, best_q


GRID_ROWS = 400_000  # expanded (partner, grid amount) rows beyond which the grid is skipped


def reach_on_grid(
    problem: Problem,
    rows: IntArray,
    prices: FloatArray,
    alpha: float,
    need: FloatArray,
    r: int,
    segments: IntArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """`reach_level` with resource r's amount enumerated on its step grid.

    Each (partner, grid amount) pair is a partner with r pinned there (0 where allowed),
    solved for the other resources as usual; each partner keeps its best pair. `segments`
    labels rows solved together but limited apart (a level each): a segment whose pairs
    exceed GRID_ROWS is solved off the grid.
    """
    if problem.step[r] <= 0:
        value, x, _, q = reach_level(problem, rows, prices, alpha, need)
        return value, x, q
    low, counts, free = grid_span(problem, rows, r)
    label = np.zeros(rows.size, dtype=np.intp) if segments is None else segments
    gridded = np.bincount(label, weights=counts)[label] <= GRID_ROWS
    value = np.empty(rows.size)
    x = np.empty((rows.size, problem.n_resources))
    q = np.empty(rows.size)
    plain = np.flatnonzero(~gridded)
    if plain.size:
        value[plain], x[plain], _, q[plain] = reach_level(
            problem, rows[plain], prices[plain], alpha, need[plain]
        )
    on = np.flatnonzero(gridded)
    if on.size:
        value[on], x[on], q[on] = _on_grid(
            problem, rows[on], prices[on], alpha, need[on], r, low[on], counts[on], free[on]
        )
    return value, x, q


def grid_span(
    problem: Problem, rows: IntArray, r: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Per row, stepped resource r's first whole unit on its grid, the pairs a grid search
    expands it to (amount 0, then every unit to its max) and whether its amount is free
    (one pair where it is not: a pin, or not offered)."""
    step = problem.step[r]
    family = problem.families[r]
    lo, hi = family.lo[rows], family.hi[rows]
    free = problem.can_use[rows, r] & ~(~problem.optional[rows, r] & (lo > 0) & (lo == hi))
    low = np.where(free, np.ceil(lo / step - 1e-9), 0).astype(np.int64)
    high = np.where(free, np.floor(hi / step + 1e-9), -1).astype(np.int64)
    return low, np.where(free, high - low + 2, 1), free


def _on_grid(
    problem: Problem,
    rows: IntArray,
    prices: FloatArray,
    alpha: float,
    need: FloatArray,
    r: int,
    low: NDArray[np.int64],
    counts: NDArray[np.int64],
    free: NDArray[np.bool_],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """`reach_on_grid`'s search over every (partner, grid amount) pair: `counts` pairs
    per row from unit `low` (the first pair is amount 0), where the row is `free`."""
    lo = problem.families[r].lo[rows]
    owner = np.repeat(np.arange(rows.size), counts)
    first = np.cumsum(counts) - counts
    offset = np.arange(owner.size) - first[owner]  # 0: amount 0, then low, low+1, …
    units = np.where(offset == 0, 0, low[owner] + offset - 1)
    keep_original = ~free[owner]
    sub = problem.subset(rows[owner])
    amount = units * problem.step[r]
    sub_family = sub.families[r]
    sub_family.set_domain(
        np.where(keep_original, sub_family.lo, amount),
        np.where(keep_original, sub_family.hi, amount),
    )
    sub.can_use = sub.can_use.copy()
    sub.optional = sub.optional.copy()
    sub.can_use[:, r] = np.where(keep_original, sub.can_use[:, r], amount > 0)
    sub.optional[:, r] = np.where(keep_original, sub.optional[:, r], False)
    # A zero amount is only allowed where the resource is optional or has no min.
    allowed = keep_original | (units > 0) | problem.optional[rows[owner], r] | (lo[owner] <= 0)
    value, x, _, q = reach_level(sub, np.arange(owner.size), prices[owner], alpha, need[owner])
    value = np.where(allowed, value, -np.inf)
    order = np.lexsort((-value, owner))
    best = order[np.searchsorted(owner[order], np.arange(rows.size))]
    return value[best], x[best], q[best]


def _reachable(
    families: list[Family], on: NDArray[np.bool_], need: FloatArray
) -> NDArray[np.bool_]:
    top = np.zeros(need.size)
    for r, family in enumerate(families):
        if on[r]:
            top += family.value(family.hi)
    return top >= need
