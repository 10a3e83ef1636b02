"""Piecewise-linear approximations of the response curves, inner and outer.

Every variable pair keeps one sorted set of points in [0, max]. From it come

* the *inner* approximation, everywhere <= the exact curve (secants on concave stretches,
  left tangents on convex ones), so any tier the model claims holds exactly; and
* the *outer* approximation, everywhere >= the exact curve (tangent envelope on concave
  stretches, secants on convex ones), so the model built on it is a relaxation whose bound
  certifies the inner plan against the exact optimum.

Adding the amounts a solve chose to the point set makes both approximations exact there;
`refine` does that, and the engines re-solve until the two bounds meet within the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import Curve, CurveKind, FloatArray
from optimizer.arrays import ProblemArrays

INITIAL_POINTS = 8


@dataclass
class Segments:
    """One row per linear piece. `concave[pair]` pairs use the incremental formulation
    (pieces filled in order, continuous); the others pick at most one piece (binary)."""

    pair: NDArray[np.intp]
    start: FloatArray  # request units
    length: FloatArray
    value0: FloatArray  # curve value at start, CNY (relative to the curve's value at 0)
    slope: FloatArray  # CNY per request unit


def _is_exact_pwl(curve: Curve) -> bool:
    return curve.kind in (CurveKind.POINTS, CurveKind.LINEAR)


def initial_points(arrays: ProblemArrays, count: int = INITIAL_POINTS) -> list[FloatArray]:
    """Points spread evenly in curve *value* so curvature is resolved where it matters."""
    points = []
    for k, curve in enumerate(arrays.pair_curve):
        low, high = float(arrays.pair_min[k]), float(arrays.pair_max[k])
        base = [0.0, high] + ([low] if low > 0 else [])
        if curve.kind is CurveKind.POINTS:
            base += [x for x in curve.xs if low < x < high]
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
        points.append(_clean(np.array(base), low, high))
    return points


def _clean(values: FloatArray, low: float, high: float) -> FloatArray:
    """Sorted unique points in {0} ∪ [low, high]."""
    keep = values[(values == 0.0) | ((values >= low) & (values <= high))]
    unique = np.unique(np.concatenate([[0.0, high], keep, [low] if low > 0 else []]))
    gaps = np.diff(unique) > 1e-9 * max(high, 1.0)
    return unique[np.concatenate([[True], gaps])]


def refine(points: list[FloatArray], arrays: ProblemArrays, chosen: FloatArray) -> int:
    """Add each pair's chosen amount to its point set; returns how many points were new."""
    added = 0
    for k, amount in enumerate(chosen):
        pts = points[k]
        curve = arrays.pair_curve[k]
        low, high = float(arrays.pair_min[k]), float(arrays.pair_max[k])
        if amount <= 0 or _is_exact_pwl(curve):
            continue
        tol = 1e-9 * max(high, 1.0)
        nearest = int(np.argmin(np.abs(pts - amount)))
        if abs(pts[nearest] - amount) > tol:
            new = [amount]
        elif curve.is_concave:
            continue
        else:
            # A non-concave curve's outer line on a concave piece is loosest at the piece's
            # ends, where solutions sit: halve the pieces on both sides instead.
            new = [
                0.5 * (pts[j] + pts[j + 1])
                for j in (nearest - 1, nearest)
                if 0 <= j < len(pts) - 1
                and pts[j + 1] - pts[j] > 1e-6 * max(high, 1.0)
                and pts[j] >= low
            ]
            if not new:
                continue
        points[k] = _clean(np.append(pts, new), low, high)
        added += len(points[k]) - len(pts)
    return added


def segments(arrays: ProblemArrays, points: list[FloatArray], outer: bool) -> Segments:
    pair, start, length, value0, slope = [], [], [], [], []
    for k, curve in enumerate(arrays.pair_curve):
        pts = points[k]
        base = float(curve.value(0.0))
        if curve.is_concave and outer and not _is_exact_pwl(curve):
            pts, vals = _tangent_envelope(curve, pts, float(arrays.pair_min[k]))
        else:
            vals = curve.value(pts) - base
        lows, highs = pts[:-1], pts[1:]
        v_low, v_high = vals[:-1], vals[1:]
        secant = (v_high - v_low) / (highs - lows)
        if curve.is_concave or _is_exact_pwl(curve):
            piece_start, piece_value, piece_slope = lows, v_low, secant
        else:
            # Non-concave: a piece is convex left of the inflection, concave right of it.
            convex = highs <= curve.inflection + 1e-12 * max(highs[-1], 1.0)
            tangent = curve.derivative(lows)
            below = np.where(convex, np.minimum(tangent, secant), secant)
            above = np.where(convex, secant, np.maximum(tangent, secant))
            piece_start, piece_value, piece_slope = lows, v_low, above if outer else below
            if arrays.pair_min[k] > 0:  # the (0, min) gap is not a piece one can choose
                keep = lows >= arrays.pair_min[k] - 1e-12
                piece_start, piece_value, piece_slope = (
                    piece_start[keep],
                    piece_value[keep],
                    piece_slope[keep],
                )
                highs = highs[keep]
        pair.append(np.full(len(piece_start), k))
        start.append(piece_start)
        length.append(highs - piece_start)
        value0.append(piece_value)
        slope.append(piece_slope)
    if not pair:
        empty = np.zeros(0)
        return Segments(np.zeros(0, dtype=np.intp), empty, empty, empty, empty)
    return Segments(
        np.concatenate(pair).astype(np.intp),
        np.concatenate(start),
        np.concatenate(length),
        np.concatenate(value0),
        np.concatenate(slope),
    )


def _tangent_envelope(curve: Curve, pts: FloatArray, low: float) -> tuple[FloatArray, FloatArray]:
    """The min of the tangents at `pts` (>= a concave curve), as breakpoints and values.

    The stretch (0, low) of a semi-continuous pair is never used, so from 0 the envelope
    jumps straight to its value at `low`.
    """
    base = float(curve.value(0.0))
    anchor = pts[pts >= low] if low > 0 else pts
    values = curve.value(anchor) - base
    slopes = curve.derivative(anchor)
    finite = np.isfinite(slopes)
    anchor, values, slopes = anchor[finite], values[finite], slopes[finite]
    high = pts[-1]
    # Consecutive tangents meet where the envelope bends.
    with np.errstate(divide="ignore", invalid="ignore"):
        meet = (values[1:] - values[:-1] + slopes[:-1] * anchor[:-1] - slopes[1:] * anchor[1:]) / (
            slopes[:-1] - slopes[1:]
        )
    meet = meet[np.isfinite(meet)]
    xs = np.unique(np.concatenate([[0.0, high], pts, meet[(meet > 0) & (meet < high)]]))
    if low > 0:
        xs = np.unique(np.concatenate([[0.0], xs[xs >= low]]))
    envelope = np.min(values[None, :] + slopes[None, :] * (xs[:, None] - anchor[None, :]), axis=1)
    envelope = np.maximum(envelope, curve.value(xs) - base)  # guard rounding: never below f
    if low > 0:
        envelope[0] = 0.0  # y = 0: nothing allocated, no uplift
    # Else envelope[0] > 0 only where f'(0) is infinite (hill, shape < 1): a valid, loose
    # relaxation that the model carries as a constant of the pair.
    return xs, envelope
