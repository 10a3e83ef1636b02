"""Piecewise-linear approximations of the response curves, inner and outer.

Every variable pair keeps one sorted set of points in [0, max]. From it come two
continuous piecewise-linear functions:

* the *inner* one, everywhere <= the exact curve — secants where the curve is concave,
  the upper envelope of tangents where it is convex — so any tier the model claims holds
  under the exact curve; and
* the *outer* one, everywhere >= the exact curve — the lower envelope of tangents where
  the curve is concave, secants where it is convex — so the model built on it is a
  relaxation, and its bound certifies the inner plan against the exact optimum.

Both are exact at every point of the set. `refine` adds the amounts a solve chose (and
halves the intervals around them); the engines re-solve until the two bounds meet within
the requested gap. Pieces on a convex stretch must be filled in order, which the model
enforces with one binary per such piece; concave stretches fill in order by themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import Curve, CurveKind, FloatArray
from models.plan import projected_gmv
from optimizer.arrays import ProblemArrays
from optimizer.formulation import FINE_GRID, grid_steps
from optimizer.pwl_bulk import bulk_pairs, concave_initial_points, concave_parts

INITIAL_POINTS = 8
SAME_POINT = 1e-6  # relative to a pair's max: closer points are one point


@dataclass
class Segments:
    """One row per linear piece, pieces of a pair consecutive and in order of amount."""

    pair: NDArray[np.intp]
    start: FloatArray  # request units
    length: FloatArray
    value0: FloatArray  # approximation at start, CNY, relative to the curve's value at 0
    slope: FloatArray  # CNY per request unit
    ordered: NDArray[np.bool_]  # on a convex stretch: needs its predecessors full first
    # Per pair: the first piece [0, jump] is all or nothing (a semi-continuous minimum, or
    # the tangent point of a relaxed S-curve); 0 where partial fills are allowed.
    jump: FloatArray


def _is_exact_pwl(curve: Curve) -> bool:
    return curve.kind in (CurveKind.POINTS, CurveKind.LINEAR)


def initial_points(arrays: ProblemArrays, count: int = INITIAL_POINTS) -> list[FloatArray]:
    """Points spread evenly in curve *value* so curvature is resolved where it matters."""
    bulk = bulk_pairs(arrays)
    found = dict(
        zip(bulk.tolist(), concave_initial_points(arrays, bulk, count, SAME_POINT), strict=True)
    )
    points = []
    for k, curve in enumerate(arrays.pair_curve):
        ready = found.get(k)
        if ready is not None:
            points.append(ready)
            continue
        low, high, step = domain(arrays, k)
        base = [0.0, high] + ([low] if low > 0 else [])
        if curve.kind is CurveKind.POINTS:
            base += _grid_neighbours([x for x in curve.xs if low < x < high], step)
        elif curve.kind is not CurveKind.LINEAR:
            grid = np.unique(
                np.concatenate(
                    [np.geomspace(max(high, 1e-12) * 1e-4, high, 64), np.linspace(low, high, 16)]
                )
            )
            values = curve.value(grid)
            levels = np.linspace(0.0, values[-1], count + 1)[1:-1]
            base += list(grid[np.searchsorted(values, levels).clip(0, len(grid) - 1)])
            if curve.inflection > 0:
                base.append(min(max(curve.inflection, low), high))
        points.append(_clean(np.array(base), low, high, step))
    return points


def _grid_neighbours(kinks: list[float], step: float) -> list[float]:
    """The amounts to keep around a points curve's kinks. Off a step grid, the kinks
    themselves. On one, the grid amounts either side of each kink: a kink between two
    grid amounts rounded onto one of them would make the line through the kept points
    cut below the curve at the other, and the model built on it would no longer bound the
    plans the grid allows (it did: a plan 0.36% above the reported bound)."""
    if step <= 0:
        return kinks
    return [edge(x / step) * step for x in kinks for edge in (np.floor, np.ceil)]


def domain(arrays: ProblemArrays, k: int) -> tuple[float, float, float]:
    """(low, high, step) of pair k. Amounts in (0, low) are never taken: below a
    semi-continuous minimum, or below the first step of a stepped resource."""
    step = float(arrays.step[arrays.pair_resource[k]])
    low = float(arrays.pair_min[k]) or min(step, float(arrays.pair_max[k]))
    return low, float(arrays.pair_max[k]), step


def _clean(values: FloatArray, low: float, high: float, step: float = 0.0) -> FloatArray:
    """Sorted points in {0} ∪ [low, high], always holding 0, low and high, on the step
    grid if there is one; a point closer than SAME_POINT to one already kept is dropped
    (the fixed ends win)."""
    tol = SAME_POINT * max(high, 1.0)
    fixed = np.unique([0.0, low, high])
    if step > 0:  # only grid amounts are feasible: the approximation need not be finer
        values = np.round(values / step) * step
    inside = values[(values > low) & (values < high)]
    inside = inside[np.min(np.abs(inside[:, None] - fixed[None, :]), axis=1) > tol]
    kept: list[float] = []
    for value in np.unique(inside):
        if not kept or value - kept[-1] > tol:
            kept.append(float(value))
    return np.unique(np.concatenate([fixed, kept]))


def refine(points: list[FloatArray], arrays: ProblemArrays, chosen: FloatArray) -> int:
    """Make the approximations exact at each pair's chosen amount and twice as fine on
    both sides of it; returns how many points were added.

    Exactness at the amount alone converges slowly (the outer model then moves to the next
    loose spot nearby), and a non-concave curve's outer line on a concave piece is loosest
    at the piece's ends, where solutions sit; halving the neighbouring intervals fixes both.
    """
    added = 0
    for k, amount in enumerate(chosen):
        pts = points[k]
        low, high, step = domain(arrays, k)
        curve = arrays.pair_curve[k]
        if _is_exact_pwl(curve):
            continue
        if amount <= 0:
            # With a vertical tangent at 0 (hill, shape < 1) the outer model credits an
            # unallocated pair with a little uplift; points nearer 0 shrink it.
            if low == 0 and len(pts) > 1 and not np.isfinite(curve.derivative(0.0)):
                points[k] = _clean(np.append(pts, pts[1] / 16), low, high, step)
                added += len(points[k]) - len(pts)
            continue
        # Solvers return amounts a feasibility tolerance away from a breakpoint they sit on.
        tol = SAME_POINT * max(high, 1.0)
        nearest = int(np.argmin(np.abs(pts - amount)))
        if abs(pts[nearest] - amount) <= tol:
            amount = float(pts[nearest])
        around = np.unique(np.append(pts, amount))
        j = int(np.searchsorted(around, amount))
        new = [amount] + [
            0.5 * (around[a] + around[a + 1])
            for a in (j - 1, j)
            if 0 <= a < len(around) - 1
            and around[a] >= low
            and around[a + 1] - around[a] > 10 * tol
        ]
        points[k] = _clean(np.append(pts, new), low, high, step)
        added += len(points[k]) - len(pts)
    return added


def tangent_point(curve: Curve, low: float, high: float) -> float | None:
    """Where the ray from the origin touches an S-shaped hill curve (shape > 1): the amount
    with the best average return, x_t = h·(n−1)^(1/n), clipped to [low, high].

    Below it the concave envelope of the curve is that ray, above it the curve itself; so
    {0} ∪ [x_t, max] is a concave (binary-light, LP-tight) restriction of the curve, and
    the envelope a concave relaxation. None for other curves.
    """
    if curve.kind is not CurveKind.HILL or curve.shape <= 1:
        return None
    touch = curve.half_saturation * (curve.shape - 1) ** (1 / curve.shape)
    return min(max(touch, low), high)


def segments(
    arrays: ProblemArrays,
    points: list[FloatArray],
    outer: bool,
    relaxed: frozenset[int] = frozenset(),
) -> Segments:
    """The pieces of every pair's approximation. Pairs in `relaxed` (S-curves) use the
    tangent-point restriction (inner) or the concave envelope (outer) instead of the
    exact convex stretch."""
    parts: list[
        tuple[NDArray[np.intp], FloatArray, FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]
    ] = []
    jump = arrays.pair_min.copy()
    bulk = bulk_pairs(arrays)
    if len(bulk):
        parts.append(concave_parts(arrays, points, outer, bulk))
    one_by_one = np.ones(arrays.n_pairs, dtype=bool)
    one_by_one[bulk] = False
    for k in np.flatnonzero(one_by_one).tolist():
        curve = arrays.pair_curve[k]
        low = domain(arrays, k)[0]
        touch = tangent_point(curve, low, float(arrays.pair_max[k])) if k in relaxed else None
        if touch is not None:
            xs, values = _relaxed_approximation(curve, points[k], touch, outer)
            if not outer:
                jump[k] = touch
        else:
            xs, values = approximation(curve, points[k], low, outer)
        widths = np.diff(xs)
        slopes = np.diff(values) / widths
        # A piece must be full before the pieces after it are used wherever one of those
        # is steeper (a convex stretch, or the jump to a semi-continuous minimum); where
        # slopes only decrease, a maximising model fills pieces in order by itself.
        steepest_after = np.r_[np.maximum.accumulate(slopes[::-1])[::-1][1:], -np.inf]
        ordered = slopes < steepest_after - 1e-12 * np.maximum(np.abs(steepest_after), 1.0)
        parts.append(
            (np.full(len(widths), k, dtype=np.intp), xs[:-1], widths, values[:-1], slopes, ordered)
        )
    if not parts:
        empty = np.zeros(0)
        return Segments(
            np.zeros(0, dtype=np.intp), empty, empty, empty, empty, np.zeros(0, dtype=bool), jump
        )
    pair, start, length, value0, slope, ordered = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    # Pairs in order, each one's pieces in order (a stable sort keeps them so).
    order = np.argsort(pair, kind="stable")
    return Segments(
        pair[order], start[order], length[order], value0[order], slope[order], ordered[order], jump
    )


def _relaxed_approximation(
    curve: Curve, pts: FloatArray, touch: float, outer: bool
) -> tuple[FloatArray, FloatArray]:
    """From 0 straight to the tangent point, then the concave part of the curve: secants
    (inner, taken only from the tangent point on) or the tangent envelope (outer)."""
    base = float(curve.value(0.0))
    tail = np.union1d([touch], pts[pts > touch])
    if outer and len(tail) >= 2:
        xs, values = _envelope(curve, tail, upper=True)
        values = np.maximum(values, curve.value(xs) - base)
    else:
        xs, values = tail, curve.value(tail) - base
    if xs[0] > 0:
        xs, values = np.r_[0.0, xs], np.r_[0.0, values]
    return xs, values


def approximation(
    curve: Curve, pts: FloatArray, low: float, outer: bool
) -> tuple[FloatArray, FloatArray]:
    """Breakpoints and values (relative to f(0)) of the inner or outer approximation.

    A semi-continuous pair never takes an amount in (0, low): the approximation covers
    [low, max] and its first piece runs straight from (0, 0) to its value at `low`.
    """
    base = float(curve.value(0.0))
    domain = pts[pts >= low] if low > 0 else pts
    if _is_exact_pwl(curve) or len(domain) == 1:
        xs, values = domain, curve.value(domain) - base
    else:
        bend = min(max(curve.inflection, float(domain[0])), float(domain[-1]))
        # The inflection may have been rounded off a step grid; the approximation still
        # needs it as a breakpoint to tell the convex stretch from the concave one.
        domain = np.union1d(domain, [bend])
        convex_pts = domain[domain <= bend]
        concave_pts = domain[domain >= bend]
        pieces_x: list[FloatArray] = []
        pieces_v: list[FloatArray] = []
        if len(convex_pts) >= 2:  # secants lie above a convex stretch, tangents below
            x, v = (
                (convex_pts, curve.value(convex_pts) - base)
                if outer
                else _envelope(curve, convex_pts, upper=False)
            )
            pieces_x.append(x)
            pieces_v.append(v)
        if len(concave_pts) >= 2:  # and the other way round on a concave one
            x, v = (
                _envelope(curve, concave_pts, upper=True)
                if outer
                else (concave_pts, curve.value(concave_pts) - base)
            )
            pieces_x.append(x)
            pieces_v.append(v)
        xs, first = np.unique(np.concatenate(pieces_x), return_index=True)
        values = np.concatenate(pieces_v)[first]
        exact = curve.value(xs) - base
        values = np.maximum(values, exact) if outer else np.minimum(values, exact)
    if low > 0:  # nothing allocated, no uplift
        xs, values = np.r_[0.0, xs], np.r_[0.0, values]
    return xs, values


def _envelope(curve: Curve, anchors: FloatArray, upper: bool) -> tuple[FloatArray, FloatArray]:
    """The tangents at `anchors` combined over [anchors[0], anchors[-1]]: their minimum
    (upper=True, above a concave curve) or maximum (below a convex one), as breakpoints
    (anchors plus where consecutive tangents cross) and values relative to f(0).

    Where a tangent is vertical (f'(0) = inf for a hill with shape < 1) it is left out,
    and the minimum at 0 comes out above 0: a valid, loose relaxation the model carries
    as a constant of the pair.
    """
    base = float(curve.value(0.0))
    values = curve.value(anchors) - base
    slopes = curve.derivative(anchors)
    usable = np.isfinite(slopes)
    a, v, g = anchors[usable], values[usable], slopes[usable]
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = (v[1:] - v[:-1] + g[:-1] * a[:-1] - g[1:] * a[1:]) / (g[:-1] - g[1:])
    lo, hi = float(anchors[0]), float(anchors[-1])
    cross = cross[np.isfinite(cross) & (cross > lo) & (cross < hi)]
    xs = np.unique(np.concatenate([anchors, cross]))
    lines = v[None, :] + g[None, :] * (xs[:, None] - a[None, :])
    return xs, (lines.min(axis=1) if upper else lines.max(axis=1))


def below_tangents(arrays: ProblemArrays, relaxed: frozenset[int], amounts: FloatArray) -> set[int]:
    """The relaxed S-curve pairs whose amount is on the convex stretch: they must go exact,
    since the relaxation keeps amounts at 0 or past the tangent point, and without that the
    inner model could not represent those amounts (nor hold the tiers they reach)."""
    below = set()
    for k in relaxed:
        low, high, _ = domain(arrays, k)
        touch = tangent_point(arrays.pair_curve[k], low, high)
        if touch is not None and 0 < amounts[k] < touch * (1 - 1e-9):
            below.add(k)
    return below


def tier_pairs(arrays: ProblemArrays) -> NDArray[np.bool_]:
    """Per pair: does its partner's GMV range (nothing to every maximum) span a tier
    threshold it does not reach on its own?"""
    at_max = arrays.pinned.copy()
    at_max[arrays.pair_partner, arrays.pair_resource] = arrays.pair_max
    top = projected_gmv(arrays.request, at_max)
    spans = np.zeros(arrays.n_partners, dtype=bool)
    for threshold in arrays.thresholds:
        spans |= (arrays.baseline < threshold) & (top >= threshold)
    return spans[arrays.pair_partner]


class Approximation:
    """What the MILP's rounds refine: each pair's points, the S-curve pairs still relaxed
    (modelled on {0} ∪ [tangent point, max], see `tangent_point`), and which fine grids
    are solved on integer indices: those a solution counted towards a tier between steps,
    or all of them (the last resort when nothing else is left to refine)."""

    def __init__(
        self,
        arrays: ProblemArrays,
        exact_tier_curves: bool = False,
        may_claim: NDArray[np.bool_] | None = None,
    ) -> None:
        """`exact_tier_curves`: the S-curves of `tier_pairs` start exact (see `solve_milp`),
        those of partners who may claim a tier (`may_claim`, per partner) only."""
        self.arrays = arrays
        self.points = initial_points(arrays)
        self.relaxed = frozenset(
            k for k, c in enumerate(arrays.pair_curve) if tangent_point(c, 0.0, 1.0) is not None
        )
        if exact_tier_curves:
            exact = tier_pairs(arrays)
            if may_claim is not None:
                exact &= may_claim[arrays.pair_partner]
            self.relaxed = self.relaxed - set(np.flatnonzero(exact).tolist())
        self.integral_grid = False
        self.integral = np.zeros(arrays.n_pairs, dtype=bool)
        self.claims_on_steps = False  # see `add`

    def segments(self, outer: bool) -> Segments:
        return segments(self.arrays, self.points, outer=outer, relaxed=self.relaxed)

    def state(self) -> int:
        """Grows whenever the approximations change (points added, pairs made exact)."""
        exact = self.arrays.n_pairs - len(self.relaxed)
        integral = int(self.integral.sum()) + self.integral_grid
        return sum(len(p) for p in self.points) + exact + integral

    def onto_whole_steps(self) -> bool:
        """Every fine grid on whole steps from here on; False if already, or none has steps."""
        if self.integral_grid or not np.any(self.arrays.step > 0):
            return False
        self.integral_grid = True
        return True

    def onto_claimed_steps(self) -> bool:
        """Claimed pairs on whole steps from here on (see `add`); False if already, or no
        grid is fine."""
        fine = np.any(grid_steps(self.arrays) > FINE_GRID)
        if self.claims_on_steps or self.integral_grid or not fine:
            return False
        self.claims_on_steps = True
        return True

    def integral_grids(self) -> bool | NDArray[np.bool_]:
        """For `model_builder.build`: all grids integral, or per pair which."""
        return self.integral_grid or self.integral

    def add(self, amounts: FloatArray, outer: bool, claimed: FloatArray | None = None) -> None:
        """Exact at these per-pair amounts; an outer solution's (or a start's) amount on a
        relaxed pair's convex stretch makes that pair exact (`below_tangents`).

        Once claimed steps are on (`onto_claimed_steps`, or `claims_on_steps` set when a
        repaired inner plan lost a tier it claimed): where the solution counts a partner
        towards a tier (`claimed`, per partner), its pairs that sit between the steps of a
        fine grid get integer indices from now on. Rounding them costs the tier, and the
        relaxed step buys the outer bound tiers no plan can have. Family seed 2, 1,000
        partners, 2 resources (fund tickets of 40-100 steps, all in 15 tier partners):
        `feasible` at 0.60% after 7 s before, now `optimal` at 0.00% in 3.5-5 s. All fine
        grids integral from the start took 3,000 partners, seed 4, from 34 s to 57 s; the
        claimed pairs from the start, 300 partners with 3 resources, seed 1, from 2.4 s to
        5.5 s."""
        refine(self.points, self.arrays, amounts)
        if claimed is not None and self.claims_on_steps:
            arrays = self.arrays
            step = arrays.step[arrays.pair_resource]
            ratio = amounts / np.where(step > 0, step, 1.0)
            between = (step > 0) & (np.abs(ratio - np.round(ratio)) > 1e-6)
            self.integral |= between & (claimed[arrays.pair_partner] > 0)
        if outer:
            self.relaxed = self.relaxed - below_tangents(self.arrays, self.relaxed, amounts)
