"""The smallest multiplier q whose maximisers reach a tier's need, for many rows at once:
the search behind `subproblem.reach_level` (see there for the problem and its dual).

A row is a partner with a set of resources on; at q its amounts are each resource's
envelope maximiser at price P_r/q, and its uplift only grows with q. The search works on
log q: first either side of the q's where an amount leaps (a chord, a linear curve, a
points curve's hull vertices), then ITP steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.decomposition.family import LINEAR, POINTS, Family

IntArray = NDArray[np.intp]
# Bisection on log q stops at this bracket width: D(q) is flat at its minimum, so a 1e-9
# relative error in q moves a partner's bound by ~1e-9 of its uplift (and it stays valid).
LOG_TOLERANCE = 1e-9
_MAX_STEPS = 80
# A row also stops once D(q) at an end of its bracket is this close (relative to q·need)
# to its minimum: interpolation closes one end fast and the other slowly, and the
# value, not q, is what the bound needs.
_VALUE_TOLERANCE = 1e-8
# Either side of a leap in a resource's amount, relative: the bracket around a row whose
# need falls in the leap is then narrower than LOG_TOLERANCE.
_JUMP_SIDE = 0.4 * LOG_TOLERANCE
# ITP's nudge, relative to a row's first bracket width, and its steps beyond bisection's.
# Against Illinois false position with a bisection whenever two steps did not halve the
# bracket, on 117 recorded searches of 1,200- and 5,000-partner family programmes: 31-37%
# fewer steps (the kept end crept towards the root three times before each bisection).
ITP_KAPPA = 0.4
ITP_SLACK = 1


def tangent_slack(
    family: Family, x: FloatArray, p: FloatArray, q: float | FloatArray
) -> FloatArray:
    """max over y in [lo, hi] of the tangent-line overestimate minus the value at x."""
    left_slope, right_slope = family.envelope_slopes(x)
    with np.errstate(invalid="ignore"):
        right = q * right_slope - p
        left = q * left_slope - p
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


def maximisers(
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
    narrower than LOG_TOLERANCE, or with D(q) at one end within _VALUE_TOLERANCE
    (relative to q·need) of its minimum. D is convex with slope g, so an end is within
    |g| times the bracket's width in q of the minimum."""
    q_lo, q_hi = np.exp(lo), np.exp(hi)
    off_minimum = np.minimum(g_hi, -g_lo) * (q_hi - q_lo)
    close = off_minimum <= _VALUE_TOLERANCE * q_hi * np.maximum(need, 1e-300)
    return (hi - lo <= LOG_TOLERANCE) | close


def dual_value(
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
            gain = q * family.envelope(xr) - p * xr + tangent_slack(family, xr, p, q)
            value += np.where(on[:, r], gain, 0.0)
    return value


def _breakpoints(fam: list[Family], on: NDArray[np.bool_], prices: FloatArray) -> FloatArray:
    """Per row, ascending (m, C), the log q's where its uplift is not smooth (inf to pad):
    just either side of each q where an amount leaps (from lo over a chord or a linear
    curve, P / chord slope; from vertex to vertex of a points curve's hull, P / the
    segment's slope), and the kinks where a smooth amount starts to move from lo or
    reaches hi (P / its slope there). Between two of them every amount moves smoothly, or
    not at all."""
    columns: list[FloatArray] = []
    for r, family in enumerate(fam):
        price = np.where(on[:, r], np.maximum(prices[:, r], 0.0), 0.0)
        moves = (price > 0) & (family.hi > family.lo)
        smooth = moves & (family.kind != POINTS)  # a points row's leaps are its vertices
        st = family.st
        linear = family.kind == LINEAR
        leap = smooth & (st > 0) & np.isfinite(st) & ((family.xt > family.lo) | linear)
        kink = smooth & (st > 0) & np.isfinite(st) & ~leap
        top = family.derivative(family.hi)
        at_hi = smooth & ~linear & (family.hi > family.xt) & (top > 0) & np.isfinite(top)
        with np.errstate(divide="ignore", invalid="ignore"):
            start, end = price / st, price / top
            columns += [np.where(leap, start * (1.0 - _JUMP_SIDE), np.inf)]
            columns += [np.where(leap, start * (1.0 + _JUMP_SIDE), np.inf)]
            columns += [np.where(kink, start, np.inf), np.where(at_hi, end, np.inf)]
        found = family.points_rows()
        if found is None:
            continue
        rows, knots = found
        vertex = np.full((price.size, knots.hs.shape[1]), np.inf)
        bends = moves[rows, None] & (knots.hs > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            vertex[rows] = np.where(bends, price[rows, None] / knots.hs, np.inf)
        columns += [vertex * (1.0 - _JUMP_SIDE), vertex * (1.0 + _JUMP_SIDE)]
    with np.errstate(divide="ignore"):
        return np.sort(np.log(np.column_stack(columns)), axis=1)


def _search_breakpoints(
    points: FloatArray,
    rows: IntArray,
    lo: FloatArray,
    hi: FloatArray,
    g_lo: FloatArray,
    g_hi: FloatArray,
    shortfall: Callable[[IntArray, FloatArray], FloatArray],
) -> None:
    """Narrow the rows' brackets (log q, in place) to lie between two consecutive
    `points` (the rows' `_breakpoints`): a bisection over the points inside each bracket,
    about log2(C) steps for C points. The bracket left is one the uplift crosses
    smoothly, or a leap's (narrower than LOG_TOLERANCE)."""
    while rows.size:
        inside = (points > lo[rows, None]) & (points < hi[rows, None])
        count = inside.sum(axis=1)
        keep = count > 0
        rows, points, inside, count = rows[keep], points[keep], inside[keep], count[keep]
        if rows.size == 0:
            break
        # The points inside an interval are consecutive: the middle one halves them.
        at = points[np.arange(rows.size), inside.argmax(axis=1) + count // 2]
        g = shortfall(rows, at)
        ok = g >= 0
        hi[rows[ok]], g_hi[rows[ok]] = at[ok], g[ok]
        lo[rows[~ok]], g_lo[rows[~ok]] = at[~ok], g[~ok]


def uplift(fam: list[Family], on: NDArray[np.bool_], x: FloatArray) -> FloatArray:
    total = np.zeros(x.shape[0])
    for r, family in enumerate(fam):
        if on[:, r].any():
            total += np.where(on[:, r], family.envelope(x[:, r]), 0.0)
    return total


def itp_point(
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
    bracket to LOG_TOLERANCE, as in bisection, and superlinearly fewer where the uplift
    is smooth.
    """
    width = hi - lo
    middle = 0.5 * (lo + hi)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        guess = hi - g_hi * width / (g_hi - g_lo)
        radius = 0.5 * LOG_TOLERANCE * np.exp2(steps_left) - 0.5 * width
    guess = np.where(np.isfinite(guess), guess, middle)
    side = np.sign(middle - guess)
    nudge = kappa * width * width
    aimed = np.where(nudge <= np.abs(middle - guess), guess + side * nudge, middle)
    radius = np.maximum(radius, 0.0)
    point = np.where(np.abs(aimed - middle) <= radius, aimed, middle - side * radius)
    margin = 0.25 * LOG_TOLERANCE
    return np.clip(point, lo + margin, hi - margin)


def smallest_reaching_q(
    fam: list[Family], on: NDArray[np.bool_], prices: FloatArray, alpha: float, need: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The smallest q (log scale) whose maximisers reach `need`, for every row at once.

    The uplift at q only grows with q, and jumps only where a resource's amount leaps
    across a chord or a linear curve (q = P_r / chord slope). Those points are tried
    first (either side), which leaves each row a bracket the uplift crosses continuously;
    there ITP steps (`itp_point`) close it, superlinearly where the uplift is smooth and
    never slower than bisection by more than ITP_SLACK steps. A row is done when
    its bracket is `LOG_TOLERANCE` wide or D(q) at one end is within `_VALUE_TOLERANCE`
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
            high = np.where(p > 0, p / np.maximum(family.least_slope(), 1e-300), 0.0)
        q_lo = np.where(used, np.minimum(q_lo, low), q_lo)
        q_hi = np.where(used, np.maximum(q_hi, high), q_hi)
    q_lo = np.where(np.isfinite(q_lo), q_lo * (1 - 1e-9), 1e-300)
    q_lo = np.maximum(q_lo, max(alpha, 1e-300))
    q_hi = np.maximum(q_hi * (1 + 1e-9), q_lo * (1 + 1e-9))

    def shortfall(rows: IntArray, log_q: FloatArray, sub: list[Family] | None = None) -> FloatArray:
        """Uplift minus need at q (negative: q is too small)."""
        sub = sub if sub is not None else [f.take(rows) for f in fam]
        x = maximisers(sub, on[rows], prices[rows], np.exp(log_q))
        return uplift(sub, on[rows], x) - need[rows]

    everyone = np.arange(m)
    lo, hi = np.log(q_lo), np.log(q_hi)
    g_lo = shortfall(everyone, lo, fam)
    start_ok = g_lo >= 0
    active = np.flatnonzero(~start_ok)
    g_hi = np.zeros(m)
    if active.size:
        g_hi[active] = shortfall(active, hi[active])
    active = active[hi[active] - lo[active] > LOG_TOLERANCE]
    _search_breakpoints(
        _breakpoints(fam, on, prices)[active], active, lo, hi, g_lo, g_hi, shortfall
    )
    # Rows drop out as their bracket closes; the families are re-cut only when the open
    # rows are fewer than half the cut ones (cutting costs more than it saves on small
    # arrays).
    width0 = np.maximum(hi - lo, LOG_TOLERANCE)
    most_steps = np.ceil(np.log2(width0 / LOG_TOLERANCE)) + ITP_SLACK
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
        mid = itp_point(
            a_lo, a_hi, g_lo[cut], g_hi[cut], ITP_KAPPA / width0[cut], most_steps[cut] - steps[cut]
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
    x = maximisers(fam, on, prices, q)
    value = dual_value(fam, on, prices, alpha, need, q, x)
    # At the minimising q the amounts may jump (linear curves, chords): the subgradient is
    # the mix of the maximisers either side of q whose uplift equals the need exactly, and
    # it is also the least-overshoot mix the primal starts from.
    q_low = np.where(start_ok, alpha, np.exp(lo))
    x_low = maximisers(fam, on, prices, q_low)
    # Either end bounds the level's optimum; the search may have closed on either.
    low_value = dual_value(fam, on, prices, alpha, need, q_low, x_low)
    q = np.where(low_value < value, q_low, q)
    value = np.minimum(value, low_value)
    f_low, f_high = uplift(fam, on, x_low), uplift(fam, on, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(f_high > f_low, (need - f_low) / (f_high - f_low), 1.0)
    theta = np.where(start_ok, 1.0, np.clip(theta, 0.0, 1.0))
    blend = x_low + theta[:, None] * (x - x_low)
    return value, blend, blend, q
