"""The per-partner problem under prices, solved for every partner at once.

With prices `P[i, r]` on resources and a GMV weight `alpha` (1 when GMV is the objective,
0 when only cost counts), partner i's problem at tier level ℓ is

    max  alpha·F_i(x) − P_i·x    s.t.  F_i(x) ≥ need_iℓ = T_ℓ − baseline_i,

over x_r ∈ {0} ∪ [lo_r, hi_r]. Each choice of which min-ticket resources are "on" (a
*combo*) leaves a concave problem on the envelope, whose dual in the tier multiplier ν is
one-dimensional: with q = alpha + ν, x_r(q) = argmax envelope_r(x) − (P_r/q)·x and
F(x(q)) grows with q. A vectorised search on log q (leaps first, then ITP steps)
finds the smallest q reaching the need. The value reported is the dual function at that q,

    D(q) = Σ_r [q·env_r(x_r) − P_r·x_r + tangent slack_r] − (q − alpha)·need,

an upper bound of the level's optimum for ANY q ≥ alpha (weak duality), made rigorous for
inexact x_r by the tangent slack (concavity of the envelope). Relaxations used, all of
which only raise the bound: hill curves below their tangent point use the chord (concave
envelope) on the on-domain; steps are relaxed to continuous amounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.decomposition.family import LINEAR, Family
from optimizer.decomposition.menu_prices import answer as answer_menus
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.response import Reach, Response

IntArray = NDArray[np.intp]
# Bisection on log q stops at this bracket width: D(q) is flat at its minimum, so a 1e-9
# relative error in q moves a partner's bound by ~1e-9 of its uplift (and it stays valid).
_LOG_TOLERANCE = 1e-9
_MAX_STEPS = 80
# A row also stops once D(q) at an end of its bracket is this close (relative to q·need)
# to its minimum: interpolation closes one end fast and the other slowly, and the
# value, not q, is what the bound needs.
_VALUE_TOLERANCE = 1e-8
# Either side of a leap in a resource's amount, relative: the bracket around a row whose
# need falls in the leap is then narrower than _LOG_TOLERANCE.
_JUMP_SIDE = 0.4 * _LOG_TOLERANCE
# ITP's nudge, relative to a row's first bracket width, and its steps beyond bisection's.
# Against Illinois false position with a bisection whenever two steps did not halve the
# bracket, on 117 recorded searches of 1,200- and 5,000-partner family programmes: 31-37%
# fewer steps (the kept end crept towards the root three times before each bisection).
_ITP_KAPPA = 0.4
_ITP_SLACK = 1


@dataclass
class _Slice:
    """A subset of partners with their families restricted to the subset."""

    rows: IntArray
    families: list[Family]


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
            gain = alpha * family.envelope(x) - p * x + _slack(family, x, p, alpha)
        else:
            # Only cost counts: the least amount, unless a group floor's price is negative
            # there; then the most. The amounts are the subgradient, so they must be the
            # maximiser the value (with its slack) stands for, or the dual's cuts are wrong.
            x = np.where(p < 0, family.hi, family.lo)
            gain = -p * x + _slack(family, x, p, 0.0)
        off = problem.optional[:, r] & (gain < 0)
        take = usable & ~off
        x0[:, r] = np.where(take, x, 0.0)
        value += np.where(take, gain, 0.0)
    return x0, value


def _slack(family: Family, x: FloatArray, p: FloatArray, q: float | FloatArray) -> FloatArray:
    """max over y in [lo, hi] of the tangent-line overestimate minus the value at x."""
    with np.errstate(invalid="ignore"):
        right = q * np.where(x < family.xt, family.st, family.derivative(x)) - p
        left = q * np.where(x <= family.xt, family.st, family.derivative(x)) - p
        up = np.where(family.hi > x, right * (family.hi - x), 0.0)
        down = np.where(family.lo < x, left * (family.lo - x), 0.0)
    slack = np.maximum(0.0, np.maximum(np.nan_to_num(up), np.nan_to_num(down)))
    steep = np.flatnonzero(np.isposinf(right) & (family.hi > x))
    if steep.size:
        below = np.maximum(np.nan_to_num(down[steep]), 0.0)  # y under x, as before
        slack[steep] = np.maximum(_steep_slack(family, x, p, q, steep), below)
    return slack


def _steep_slack(
    family: Family, x: FloatArray, p: FloatArray, q: float | FloatArray, rows: IntArray
) -> FloatArray:
    """The slack where the slope at x has no limit (a hill of shape below 1 at 0): the
    tangent there bounds nothing (it was the largest float, and so was the dual's value:
    5,000 random partners, prices stuck), so the bound goes through a point e just above
    x instead. For y in [x, e] the envelope is at most env(e); beyond e its tangent at e
    holds. So max over y ≥ x of q·env(y) − p·y is at most q·env(x) − p·x plus
    q·(env(e) − env(x)) + max(0, −p)·(e − x) + max(0, q·env'(e) − p)·(hi − e)."""
    sub = family.take(rows)
    at, price = x[rows], p[rows]
    weight = np.broadcast_to(np.asarray(q, dtype=np.float64), x.shape)[rows]
    e = at + 1e-9 * (sub.hi - at)
    rise = weight * (sub.envelope(e) - sub.envelope(at)) + np.maximum(-price, 0.0) * (e - at)
    beyond = np.maximum(weight * sub.envelope_slope(e) - price, 0.0) * (sub.hi - e)
    return np.maximum(rise + beyond, 0.0)


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
    for level in range(1, n_tiers + 1):
        threshold = problem.thresholds[level - 1]
        free = g0 >= threshold
        values[free, level] = v0[free]
        rows = np.flatnonzero(~free & curves & (problem.baseline + problem.reach >= threshold))
        if rows.size == 0:
            response.reach.append(None)
            continue
        need = threshold - problem.baseline[rows]
        if exact_grid is None:
            value, amounts, _, q = reach_level(problem, rows, prices[rows], alpha, need)
        else:
            value, amounts, q = reach_on_grid(problem, rows, prices[rows], alpha, need, exact_grid)
        values[rows, level] = value
        response.reach.append(Reach(rows, amounts, q))
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
    value, x, blend, q = _smallest_reaching_q(
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
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """`reach_level` with resource r's amount enumerated on its step grid.

    Each (partner, grid amount) pair is a partner with r pinned there (0 where allowed),
    solved for the other resources as usual; each partner keeps its best pair.
    """
    step = problem.step[r]
    family = problem.families[r]
    lo, hi = family.lo[rows], family.hi[rows]
    free = problem.can_use[rows, r] & ~(~problem.optional[rows, r] & (lo > 0) & (lo == hi))
    low = np.where(free, np.ceil(lo / step - 1e-9), 0).astype(np.int64)
    high = np.where(free, np.floor(hi / step + 1e-9), -1).astype(np.int64)
    counts = np.where(free, high - low + 2, 1)
    if step <= 0 or int(counts.sum()) > GRID_ROWS:
        value, x, _, q = reach_level(problem, rows, prices, alpha, need)
        return value, x, q
    owner = np.repeat(np.arange(rows.size), counts)
    first = np.cumsum(counts) - counts
    offset = np.arange(owner.size) - first[owner]  # 0: amount 0, then low, low+1, …
    units = np.where(offset == 0, 0, low[owner] + offset - 1)
    keep_original = ~free[owner]
    sub = problem.subset(rows[owner])
    amount = units * step
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


def _amounts(
    fam: list[Family], on: NDArray[np.bool_], prices: FloatArray, q: FloatArray
) -> FloatArray:
    """Each row's maximisers at q; `on` (rows × resources) says which resources it uses."""
    x = np.zeros((q.size, len(fam)))
    for r, family in enumerate(fam):
        if not on[:, r].any():
            continue
        price = np.maximum(prices[:, r], 0.0)
        # At q = 0 a free resource takes its limit from q > 0 (everything: hi); the
        # amounts must reach the need there, or the subgradient hides their use.
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(q > 0, price / q, np.where(price > 0, np.inf, 0.0))
        x[:, r] = np.where(on[:, r], family.argmax_slope(ratio), 0.0)
    return x


def _settled(
    lo: FloatArray, hi: FloatArray, g_lo: FloatArray, g_hi: FloatArray, need: FloatArray
) -> NDArray[np.bool_]:
    """Rows whose bracket [lo, hi] (log q, uplift minus need g_lo < 0 <= g_hi) is closed:
    narrower than _LOG_TOLERANCE, or with D(q) at one end within _VALUE_TOLERANCE
    (relative to q·need) of its minimum. D is convex with slope g, so an end is within
    |g| times the bracket's width in q of the minimum."""
    q_lo, q_hi = np.exp(lo), np.exp(hi)
    off_minimum = np.minimum(g_hi, -g_lo) * (q_hi - q_lo)
    close = off_minimum <= _VALUE_TOLERANCE * q_hi * np.maximum(need, 1e-300)
    return (hi - lo <= _LOG_TOLERANCE) | close


def _dual_value(
    fam: list[Family],
    on: NDArray[np.bool_],
    prices: FloatArray,
    alpha: float,
    need: FloatArray,
    q: FloatArray,
    x: FloatArray,
) -> FloatArray:
    """D(q) at the maximisers x (with the tangent slack, so valid for inexact x)."""
    value = -(q - alpha) * need
    for r, family in enumerate(fam):
        if on[:, r].any():
            xr, p = x[:, r], prices[:, r]
            gain = q * family.envelope(xr) - p * xr + _slack(family, xr, p, q)
            value += np.where(on[:, r], gain, 0.0)
    return value


def _leaps(family: Family, on: NDArray[np.bool_], prices: FloatArray) -> FloatArray:
    """Per row, the q where the resource's amount leaps (from lo over its chord, or from
    lo to hi on a linear curve): P / chord slope; 0 where it does not leap."""
    price = np.maximum(prices, 0.0)
    leaps = on & (price > 0) & (family.st > 0) & np.isfinite(family.st)
    leaps &= (family.xt > family.lo) | ((family.kind == LINEAR) & (family.hi > family.lo))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(leaps, price / family.st, 0.0)


def _uplift(fam: list[Family], on: NDArray[np.bool_], x: FloatArray) -> FloatArray:
    total = np.zeros(x.shape[0])
    for r, family in enumerate(fam):
        if on[:, r].any():
            total += np.where(on[:, r], family.envelope(x[:, r]), 0.0)
    return total


def _itp_point(
    lo: FloatArray,
    hi: FloatArray,
    g_lo: FloatArray,
    g_hi: FloatArray,
    kappa: FloatArray,
    steps_left: FloatArray,
) -> FloatArray:
    """The next point of an ITP search (Oliveira & Takahashi 2021) in each bracket.

    False position, nudged towards the middle by kappa·width² (so the end that false
    position keeps also moves), then projected to within a radius of the middle that
    halves with each step: a row needs at most `steps_left` more steps to close its
    bracket to _LOG_TOLERANCE, as in bisection, and superlinearly fewer where the uplift
    is smooth.
    """
    width = hi - lo
    middle = 0.5 * (lo + hi)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        guess = hi - g_hi * width / (g_hi - g_lo)
        radius = 0.5 * _LOG_TOLERANCE * np.exp2(steps_left) - 0.5 * width
    guess = np.where(np.isfinite(guess), guess, middle)
    side = np.sign(middle - guess)
    nudge = kappa * width * width
    aimed = np.where(nudge <= np.abs(middle - guess), guess + side * nudge, middle)
    radius = np.maximum(radius, 0.0)
    point = np.where(np.abs(aimed - middle) <= radius, aimed, middle - side * radius)
    margin = 0.25 * _LOG_TOLERANCE
    return np.clip(point, lo + margin, hi - margin)


def _smallest_reaching_q(
    fam: list[Family], on: NDArray[np.bool_], prices: FloatArray, alpha: float, need: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The smallest q (log scale) whose maximisers reach `need`, for every row at once.

    The uplift at q only grows with q, and jumps only where a resource's amount leaps
    across a chord or a linear curve (q = P_r / chord slope). Those points are tried
    first (either side), which leaves each row a bracket the uplift crosses continuously;
    there ITP steps (`_itp_point`) close it, superlinearly where the uplift is smooth and
    never slower than bisection by more than _ITP_SLACK steps. A row is done when
    its bracket is `_LOG_TOLERANCE` wide or D(q) at one end is within `_VALUE_TOLERANCE`
    of its minimum (`_settled`); the lower end value is reported. Every call is
    one evaluation per row of all its resources, about the same cost for a few rows as
    for thousands, so the number of steps is what counts: ~35 in plain bisection.
    """
    m = need.size
    # Bracket: below q_lo every on-resource sits at lo, above q_hi at hi.
    q_lo = np.full(m, np.inf)
    q_hi = np.zeros(m)
    for r, family in enumerate(fam):
        used = on[:, r]
        if not used.any():
            continue
        p = np.maximum(prices[:, r], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            low = np.where(family.st > 0, p / family.st, np.inf)
            high = np.where(p > 0, p / np.maximum(family.derivative(family.hi), 1e-300), 0.0)
        q_lo = np.where(used, np.minimum(q_lo, low), q_lo)
        q_hi = np.where(used, np.maximum(q_hi, high), q_hi)
    q_lo = np.where(np.isfinite(q_lo), q_lo * (1 - 1e-9), 1e-300)
    q_lo = np.maximum(q_lo, max(alpha, 1e-300))
    q_hi = np.maximum(q_hi * (1 + 1e-9), q_lo * (1 + 1e-9))

    def shortfall(rows: IntArray, log_q: FloatArray, sub: list[Family] | None = None) -> FloatArray:
        """Uplift minus need at q (negative: q is too small)."""
        sub = sub if sub is not None else [f.take(rows) for f in fam]
        x = _amounts(sub, on[rows], prices[rows], np.exp(log_q))
        return _uplift(sub, on[rows], x) - need[rows]

    everyone = np.arange(m)
    lo, hi = np.log(q_lo), np.log(q_hi)
    g_lo = shortfall(everyone, lo, fam)
    start_ok = g_lo >= 0
    active = np.flatnonzero(~start_ok)
    g_hi = np.zeros(m)
    if active.size:
        g_hi[active] = shortfall(active, hi[active])
    for r, family in enumerate(fam):
        active = active[hi[active] - lo[active] > _LOG_TOLERANCE]
        leaps = _leaps(family, on[:, r], prices[:, r])[active]
        for side in (1.0 - _JUMP_SIDE, 1.0 + _JUMP_SIDE):
            rows = active[leaps > 0]
            with np.errstate(divide="ignore"):
                at = np.log(leaps[leaps > 0] * side)
            inside = (at > lo[rows]) & (at < hi[rows])
            rows, at = rows[inside], at[inside]
            if rows.size == 0:
                continue
            g = shortfall(rows, at)
            ok = g >= 0
            hi[rows[ok]], g_hi[rows[ok]] = at[ok], g[ok]
            lo[rows[~ok]], g_lo[rows[~ok]] = at[~ok], g[~ok]
    # Rows drop out as their bracket closes; the families are re-cut only when the open
    # rows are fewer than half the cut ones (cutting costs more than it saves on small
    # arrays).
    width0 = np.maximum(hi - lo, _LOG_TOLERANCE)
    most_steps = np.ceil(np.log2(width0 / _LOG_TOLERANCE)) + _ITP_SLACK
    steps = np.zeros(m)
    sub, cut = fam, np.arange(m)
    for _ in range(_MAX_STEPS):
        moving = ~_settled(lo[cut], hi[cut], g_lo[cut], g_hi[cut], need[cut])
        opened = int(np.count_nonzero(moving))
        if opened == 0:
            break
        if opened < 0.5 * cut.size:
            cut = cut[moving]
            sub, moving = [f.take(cut) for f in fam], np.ones(cut.size, dtype=bool)
        a_lo, a_hi = lo[cut], hi[cut]
        mid = _itp_point(
            a_lo, a_hi, g_lo[cut], g_hi[cut], _ITP_KAPPA / width0[cut], most_steps[cut] - steps[cut]
        )
        g = shortfall(cut, mid, sub)
        ok = g >= 0
        raise_lo, lower_hi = moving & ~ok, moving & ok
        g_lo[cut] = np.where(raise_lo, g, g_lo[cut])
        g_hi[cut] = np.where(lower_hi, g, g_hi[cut])
        lo[cut] = np.where(raise_lo, mid, a_lo)
        hi[cut] = np.where(lower_hi, mid, a_hi)
        steps[cut] += moving
    # Already reaching at q_lo means reaching on all of [alpha, q_lo], where D only grows
    # with q: the minimum is at q = alpha (with alpha = 0, the cheapest on-amounts).
    q = np.where(start_ok, alpha, np.exp(hi))
    x = _amounts(fam, on, prices, q)
    value = _dual_value(fam, on, prices, alpha, need, q, x)
    # At the minimising q the amounts may jump (linear curves, chords): the subgradient is
    # the mix of the maximisers either side of q whose uplift equals the need exactly, and
    # it is also the least-overshoot mix the primal starts from.
    q_low = np.where(start_ok, alpha, np.exp(lo))
    x_low = _amounts(fam, on, prices, q_low)
    # Either end bounds the level's optimum; the search may have closed on either.
    low_value = _dual_value(fam, on, prices, alpha, need, q_low, x_low)
    q = np.where(low_value < value, q_low, q)
    value = np.minimum(value, low_value)
    f_low, f_high = _uplift(fam, on, x_low), _uplift(fam, on, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(f_high > f_low, (need - f_low) / (f_high - f_low), 1.0)
    theta = np.where(start_ok, 1.0, np.clip(theta, 0.0, 1.0))
    blend = x_low + theta[:, None] * (x - x_low)
    return value, blend, blend, q
