"""`pwl.initial_points` and `pwl.segments` for the concave pairs (saturating and log
curves) of a programme at once.

Those curves are concave everywhere, so each pair's inner approximation is the secants
through its points and its outer one the lower envelope of its tangents there (see
`optimizer.pwl`). One pair at a time took 0.9 s per model at 3,000 family partners, for
the MILP finish's inner and outer models alike, before its first CBC call; here the
pairs' points sit in one NaN-padded matrix, a row per pair, and every step of the
per-pair path runs on the whole matrix with the same arithmetic, so the points and
pieces come out the same, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.curves import FORMULAS, CurveKind, FloatArray, packed_columns
from optimizer.arrays import ProblemArrays

BULK_KINDS = (CurveKind.SATURATING, CurveKind.LOG)
# Rows handled at once: the outer envelope holds rows × points × points floats.
CHUNK_ROWS = 4096

Parts = tuple[NDArray[np.intp], FloatArray, FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]


def bulk_pairs(arrays: ProblemArrays) -> NDArray[np.intp]:
    """The pairs whose pieces `concave_parts` builds."""
    kinds = np.array([curve.kind in BULK_KINDS for curve in arrays.pair_curve], dtype=bool)
    return np.flatnonzero(kinds)


def concave_parts(
    arrays: ProblemArrays, points: list[FloatArray], outer: bool, pairs: NDArray[np.intp]
) -> Parts:
    """(pair, start, length, value0, slope, ordered) of the pieces of `pairs` (each of a
    `BULK_KINDS` kind): each pair's pieces together and in order of amount, the pairs
    grouped by kind (`pwl.segments` sorts them by pair)."""
    found: list[Parts] = []
    kind_of = np.array([arrays.pair_curve[k].kind for k in pairs], dtype=object)
    for kind in BULK_KINDS:
        rows = pairs[kind_of == kind]
        for begin in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[begin : begin + CHUNK_ROWS]
            found.append(_kind_parts(arrays, points, outer, chunk, kind))
    if not found:
        empty = np.zeros(0)
        return np.zeros(0, dtype=np.intp), empty, empty, empty, empty, np.zeros(0, dtype=bool)
    pair, start, length, value0, slope, ordered = (
        np.concatenate(column) for column in zip(*found, strict=True)
    )
    return pair, start, length, value0, slope, ordered.astype(bool)


def _kind_parts(
    arrays: ProblemArrays,
    points: list[FloatArray],
    outer: bool,
    rows: NDArray[np.intp],
    kind: CurveKind,
) -> Parts:
    formulas = FORMULAS[kind]
    a, s, n = (
        column[:, None] for column in packed_columns(kind, [arrays.pair_curve[k] for k in rows])
    )

    def value(x: FloatArray) -> FloatArray:
        return formulas.value(np.maximum(x, 0.0), a, s, n)

    low = _low(arrays, rows)
    domain = _domain(points, rows, low)
    base = value(np.zeros((len(rows), 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        if outer:
            xs, values = _envelope(
                domain, value(domain) - base, formulas.derivative(np.maximum(domain, 0.0), a, s, n)
            )
            values = np.maximum(values, value(xs) - base)
        else:
            xs, values = domain, value(domain) - base
        # A pair never taking an amount in (0, low) runs straight from (0, 0) to low.
        lead = np.where(low > 0, 0.0, np.nan)[:, None]
        xs, values = np.hstack([lead, xs]), np.hstack([lead, values])
        widths = np.diff(xs, axis=1)
        slopes = np.diff(values, axis=1) / widths
        piece = np.isfinite(widths)
        later = np.where(piece, slopes, -np.inf)
        steepest_after = np.hstack(
            [
                np.maximum.accumulate(later[:, ::-1], axis=1)[:, ::-1][:, 1:],
                np.full((len(rows), 1), -np.inf),
            ]
        )
        ordered = slopes < steepest_after - 1e-12 * np.maximum(np.abs(steepest_after), 1.0)
    pair = np.broadcast_to(rows[:, None], piece.shape)[piece]
    return (
        pair,
        xs[:, :-1][piece],
        widths[piece],
        values[:, :-1][piece],
        slopes[piece],
        ordered[piece],
    )


def _low(arrays: ProblemArrays, rows: NDArray[np.intp]) -> FloatArray:
    """`pwl.domain`'s low end per row: the minimum ticket, else the first step, if any."""
    step = arrays.step[arrays.pair_resource[rows]]
    minimum = arrays.pair_min[rows]
    return np.where(minimum > 0, minimum, np.minimum(step, arrays.pair_max[rows]))


def _domain(points: list[FloatArray], rows: NDArray[np.intp], low: FloatArray) -> FloatArray:
    """Each row's points at or above its `low` (all of them where low is 0), left-aligned,
    NaN after."""
    counts = np.array([len(points[k]) for k in rows], dtype=np.intp)
    flat = np.concatenate([points[k] for k in rows])
    row = np.repeat(np.arange(len(rows)), counts)
    column = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
    grid = np.full((len(rows), int(counts.max())), np.nan)
    grid[row, column] = flat
    grid[(low[:, None] > 0) & (grid < low[:, None])] = np.nan
    return np.sort(grid, axis=1)  # NaN last


def _envelope(
    anchors: FloatArray, values: FloatArray, slopes: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per row, `pwl._envelope(upper=True)`: the anchors and the points where consecutive
    tangents cross inside the row's range, and the least tangent there."""
    valid = np.isfinite(anchors)
    a, v, g = anchors, values, slopes
    cross = (v[:, 1:] - v[:, :-1] + g[:, :-1] * a[:, :-1] - g[:, 1:] * a[:, 1:]) / (
        g[:, :-1] - g[:, 1:]
    )
    last = np.take_along_axis(a, (valid.sum(axis=1) - 1)[:, None], axis=1)
    inside = np.isfinite(cross) & (cross > a[:, :1]) & (cross < last)
    xs = np.sort(np.hstack([a, np.where(inside, cross, np.nan)]), axis=1)
    xs = np.sort(np.where(_repeats(xs), np.nan, xs), axis=1)
    lines = v[:, None, :] + g[:, None, :] * (xs[:, :, None] - a[:, None, :])
    lines = np.where(valid[:, None, :], lines, np.inf)
    envelope = lines.min(axis=2)
    return xs, np.where(np.isfinite(xs), envelope, np.nan)


def concave_initial_points(
    arrays: ProblemArrays, rows: NDArray[np.intp], count: int, tolerance: float
) -> list[FloatArray | None]:
    """`pwl.initial_points` for concave pairs (`rows`, each of a `BULK_KINDS` kind): 0, the
    domain's ends and the grid amounts where the curve first reaches each of `count` − 1
    evenly spaced values, cleaned as `pwl._clean` does (points closer than `tolerance`
    times the pair's max are one). None for a row whose points need `_clean`'s pass one
    point at a time (a run of points each within the tolerance of the next)."""
    placed: list[FloatArray | None] = [None] * len(rows)
    kinds = np.array([arrays.pair_curve[k].kind for k in rows], dtype=object)
    for kind in BULK_KINDS:
        where = np.flatnonzero(kinds == kind)
        if len(where):
            found = _kind_initial_points(arrays, rows[where], kind, count, tolerance)
            for j, points in zip(where.tolist(), found, strict=True):
                placed[j] = points
    return placed


def _kind_initial_points(
    arrays: ProblemArrays, rows: NDArray[np.intp], kind: CurveKind, count: int, tolerance: float
) -> list[FloatArray | None]:
    formulas = FORMULAS[kind]
    a, s, n = (
        column[:, None] for column in packed_columns(kind, [arrays.pair_curve[k] for k in rows])
    )
    step = arrays.step[arrays.pair_resource[rows]]
    high = arrays.pair_max[rows]
    low = _low(arrays, rows)
    grid = np.sort(
        np.hstack(
            [
                np.geomspace(np.maximum(high, 1e-12) * 1e-4, high, 64, axis=1),
                np.linspace(low, high, 16, axis=1),
            ]
        ),
        axis=1,
    )
    values = formulas.value(np.maximum(grid, 0.0), a, s, n)
    levels = np.linspace(0.0, values[:, -1], count + 1, axis=1)[:, 1:-1]
    first = (values[:, None, :] < levels[:, :, None]).sum(axis=2)  # searchsorted, left
    chosen = np.take_along_axis(grid, np.minimum(first, grid.shape[1] - 1), axis=1)
    # `_clean`: every point on the step grid, then those strictly inside (low, high) and
    # off 0, low and high, then one of each run within the tolerance.
    ends = np.column_stack([np.zeros(len(rows)), high, np.where(low > 0, low, np.nan)])
    candidates = np.hstack([ends, chosen])
    unit = np.where(step > 0, step, 1.0)[:, None]
    candidates = np.where(step[:, None] > 0, np.round(candidates / unit) * unit, candidates)
    tol = tolerance * np.maximum(high, 1.0)[:, None]
    lo, hi = low[:, None], high[:, None]
    with np.errstate(invalid="ignore"):
        near = np.minimum(
            np.minimum(np.abs(candidates), np.abs(candidates - lo)), np.abs(candidates - hi)
        )
        inside = (candidates > lo) & (candidates < hi) & (near > tol)
        kept = np.sort(np.where(inside, candidates, np.nan), axis=1)
        gaps = np.diff(kept, axis=1)
        chained = np.any((gaps > 0) & (gaps <= tol), axis=1)
    # The ends join the kept points (low may be high: `_repeats` drops it once).
    merged = np.sort(np.hstack([ends, np.where(_repeats(kept), np.nan, kept)]), axis=1)
    valid = np.isfinite(merged) & ~_repeats(merged)
    pieces = np.split(merged[valid], np.cumsum(valid.sum(axis=1))[:-1])
    return [None if chain else piece for chain, piece in zip(chained, pieces, strict=True)]


def _repeats(rows: FloatArray) -> NDArray[np.bool_]:
    """Per sorted row, the entries equal to the one before them (what `np.unique` drops)."""
    repeated = np.zeros(rows.shape, dtype=bool)
    repeated[:, 1:] = rows[:, 1:] == rows[:, :-1]
    return repeated
