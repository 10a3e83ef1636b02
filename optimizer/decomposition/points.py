"""`points` curves (piecewise-linear through knots, flat after the last) for many rows at
once, as `family.Family` needs them: exact values and right slopes, and the concave
envelope over a row's on-domain [lo, hi].

Rows are padded to one width: after a row's last knot come knots one unit apart with the
last value, so the padding is the flat tail every `points` curve has. A value is computed
as `np.interp` computes it (the same operations in the same order), so a tier the
decomposition sees reached is reached in the plan's exact figures too.

The envelope is the upper concave hull of the curve over [lo, hi]: its vertices are lo,
hi and the knots between that lie on the hull. Any point of the envelope is a mix of two
amounts the curve really takes, so a subproblem solved on it is a relaxation, as with
the other kinds' chords. Its vertices are padded with the last one (slope 0 after it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray

IntArray = NDArray[np.intp]


def padded_knots(
    knots: Sequence[tuple[Sequence[float], Sequence[float]] | None],
) -> tuple[FloatArray, FloatArray]:
    """(n, K) knot amounts and values, a row per entry (None: no points curve, zeros)."""
    width = max((len(xs) for xs, _ in filter(None, knots)), default=0)
    px, py = np.zeros((len(knots), width)), np.zeros((len(knots), width))
    for i, pair in enumerate(knots):
        if pair is None:
            continue
        xs, ys = pair
        k = len(xs)
        px[i, :k], py[i, :k] = xs, ys
        px[i, k:] = xs[-1] + np.arange(1, width - k + 1)
        py[i, k:] = ys[-1]
    return px, py


def _segment(px: FloatArray, x: FloatArray, right: bool = True) -> IntArray:
    """Per row, the segment [px[j], px[j+1]] holding x: the one to its right at a knot
    (the one to its left with `right` False)."""
    below = px <= x[:, None] if right else px < x[:, None]
    return np.clip(np.count_nonzero(below, axis=1) - 1, 0, max(px.shape[1] - 2, 0))


def _slopes(px: FloatArray, py: FloatArray) -> FloatArray:
    """Each segment's slope; 0 where it has no width (padding at a repeated vertex)."""
    dx, dy = np.diff(px, axis=1), np.diff(py, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dx > 0, dy / dx, 0.0)


def value(px: FloatArray, py: FloatArray, x: FloatArray) -> FloatArray:
    """The curves at x (x >= 0), as `np.interp` gives them."""
    if px.shape[1] < 2:
        return py[:, 0].copy() if px.shape[1] else np.zeros(len(x))
    rows = np.arange(len(x))
    j = _segment(px, x)
    x0, y0 = px[rows, j], py[rows, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (py[rows, j + 1] - y0) / (px[rows, j + 1] - x0)
    inside = np.where(x == x0, y0, slope * (x - x0) + y0)
    return np.where(x >= px[:, -1], py[:, -1], inside)


def right_slope(px: FloatArray, py: FloatArray, x: FloatArray) -> FloatArray:
    """The slope of the segment to the right of x (0 on the flat tail), as
    `Curve.derivative` gives it."""
    if px.shape[1] < 2:
        return np.zeros(len(x))
    rows = np.arange(len(x))
    j = _segment(px, x)
    slope = (py[rows, j + 1] - py[rows, j]) / (px[rows, j + 1] - px[rows, j])
    return np.where(x >= px[:, -1], 0.0, slope)


def hull(
    px: FloatArray, py: FloatArray, lo: FloatArray, hi: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(vertices' amounts, their values, the segments' slopes) of each row's upper concave
    hull over [lo, hi]: (m, K + 2), (m, K + 2), (m, K + 1), padded with the last vertex."""
    m = len(lo)
    inside = np.clip(px, lo[:, None], hi[:, None])
    cx = np.concatenate([lo[:, None], inside, hi[:, None]], axis=1)
    cy = np.stack([value(px, py, cx[:, k]) for k in range(cx.shape[1])], axis=1)
    slopes = _slopes(cx, cy)
    wide = np.diff(cx, axis=1) > 0
    # Concave already: the slopes of the segments with width never rise.
    rising = np.zeros(m, dtype=bool)
    for k in range(1, slopes.shape[1]):
        earlier = np.where(wide[:, :k], slopes[:, :k], np.inf).min(axis=1)
        rising |= wide[:, k] & (slopes[:, k] > earlier)
    hx, hy = _distinct(cx, cy)
    for i in np.flatnonzero(rising):
        vx, vy = _upper_hull(cx[i], cy[i])
        hx[i, : len(vx)], hy[i, : len(vy)] = vx, vy
        hx[i, len(vx) :], hy[i, len(vy) :] = vx[-1], vy[-1]
    return hx, hy, _slopes(hx, hy)


def _distinct(cx: FloatArray, cy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Each row's vertices without repeats (knots clipped onto lo or hi), the first of each
    amount kept, padded with the last: a segment without width would break the count of
    steep segments `hull_argmax` makes."""
    keep = np.concatenate([np.ones((len(cx), 1), dtype=bool), np.diff(cx, axis=1) > 0], axis=1)
    order = np.argsort(~keep, axis=1, kind="stable")
    hx, hy = np.take_along_axis(cx, order, axis=1), np.take_along_axis(cy, order, axis=1)
    last = np.count_nonzero(keep, axis=1)[:, None] - 1
    padding = np.arange(cx.shape[1])[None, :] > last
    hx = np.where(padding, np.take_along_axis(hx, last, axis=1), hx)
    hy = np.where(padding, np.take_along_axis(hy, last, axis=1), hy)
    return hx, hy


def _upper_hull(xs: FloatArray, ys: FloatArray) -> tuple[list[float], list[float]]:
    """The upper concave hull of points with non-decreasing x (Andrew's monotone chain)."""
    vx: list[float] = []
    vy: list[float] = []
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if vx and x == vx[-1]:
            if y <= vy[-1]:
                continue
            vx.pop()
            vy.pop()
        while len(vx) >= 2 and (vy[-1] - vy[-2]) * (x - vx[-2]) <= (y - vy[-2]) * (vx[-1] - vx[-2]):
            vx.pop()
            vy.pop()
        vx.append(x)
        vy.append(y)
    return vx, vy


def hull_value(hx: FloatArray, hy: FloatArray, hs: FloatArray, x: FloatArray) -> FloatArray:
    """The envelope at x in [lo, hi]."""
    rows = np.arange(len(x))
    j = _segment(hx, x)
    return hy[rows, j] + hs[rows, j] * (x - hx[rows, j])


def hull_slopes(hx: FloatArray, hs: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The envelope's (left, right) slopes at x."""
    rows = np.arange(len(x))
    return hs[rows, _segment(hx, x, right=False)], hs[rows, _segment(hx, x)]


def hull_argmax(hx: FloatArray, hs: FloatArray, p: FloatArray) -> FloatArray:
    """argmax over the hull of envelope(x) − p·x for p > 0: the vertex after every segment
    at least as steep as p (on a segment of slope p exactly, its far end, the side that
    reaches tiers)."""
    rows = np.arange(len(p))
    return hx[rows, np.count_nonzero(hs >= p[:, None], axis=1)]
