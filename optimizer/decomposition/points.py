"""`points` curves (piecewise-linear through knots, flat after the last) for many rows at
once, as `family.Family` needs them: exact values and right slopes, and the concave
envelope over a row's on-domain [lo, hi].

Values and slopes are `models.knots`' (padded rows, computed as `np.interp` computes
them), so a tier the decomposition sees reached is reached in the plan's exact figures too.

The envelope is the upper concave hull of the curve over [lo, hi]: its vertices are lo,
hi and the knots between that lie on the hull. Any point of the envelope is a mix of two
amounts the curve really takes, so a subproblem solved on it is a relaxation, as with
the other kinds' chords. Its vertices are padded with the last one (slope 0 after it).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.knots import at, knot_right_slopes, knot_slopes, knot_values, segment

IntArray = NDArray[np.intp]


class Knots:
    """The points rows' arrays packed in one (m, W) array, so that taking rows is one copy
    (the searches take row subsets tens of thousands of times): knot amounts and values
    (K each), the knots' segment slopes (K − 1), and the hull's vertices, their values
    (K + 2 each) and its slopes (K + 1), set by `set_hull`. Rows that are not points
    curves hold zeros."""

    def __init__(self, packed: FloatArray, width: int) -> None:
        self.packed, self.width = packed, width

    @classmethod
    def of(cls, px: FloatArray, py: FloatArray) -> Knots:
        k = px.shape[1]
        knots = cls(np.zeros((len(px), 6 * k + 4)), k)
        knots.px[:], knots.py[:] = px, py
        with np.errstate(divide="ignore", invalid="ignore"):
            knots.ps[:] = knot_slopes(px, py)
        return knots

    def _part(self, index: int) -> FloatArray:
        k = self.width
        begin = (0, k, 2 * k, 3 * k - 1, 4 * k + 1, 5 * k + 3, 6 * k + 4)
        return self.packed[:, begin[index] : begin[index + 1]]

    px = property(lambda self: self._part(0))
    py = property(lambda self: self._part(1))
    ps = property(lambda self: self._part(2))
    hx = property(lambda self: self._part(3))
    hy = property(lambda self: self._part(4))
    hs = property(lambda self: self._part(5))

    def take(self, rows: IntArray | slice) -> Knots:
        return Knots(self.packed[rows], self.width)

    def copy(self) -> Knots:
        return Knots(self.packed.copy(), self.width)

    def set_hull(self, rows: IntArray, lo: FloatArray, hi: FloatArray) -> None:
        """The rows' hulls over [lo, hi]."""
        hx, hy, hs = hull(self.px[rows], self.py[rows], lo, hi)
        self.hx[rows], self.hy[rows], self.hs[rows] = hx, hy, hs

    def value(self, x: FloatArray) -> FloatArray:
        """The curves at x (x >= 0), as `np.interp` gives them."""
        return knot_values(self.px, self.py, self.ps, x)

    def right_slope(self, x: FloatArray) -> FloatArray:
        """The slope of the segment to the right of x, as `Curve.derivative` gives it."""
        return knot_right_slopes(self.px, self.ps, x)


def _slopes(px: FloatArray, py: FloatArray) -> FloatArray:
    """Each segment's slope; 0 where it has no width (padding at a repeated vertex)."""
    dx, dy = np.diff(px, axis=1), np.diff(py, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dx > 0, dy / dx, 0.0)


def hull(
    px: FloatArray, py: FloatArray, lo: FloatArray, hi: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(vertices' amounts, their values, the segments' slopes) of each row's upper concave
    hull over [lo, hi]: (m, K + 2), (m, K + 2), (m, K + 1), padded with the last vertex."""
    m = len(lo)
    inside = np.clip(px, lo[:, None], hi[:, None])
    cx = np.concatenate([lo[:, None], inside, hi[:, None]], axis=1)
    curve = Knots.of(px, py)
    cy = np.stack([curve.value(cx[:, k]) for k in range(cx.shape[1])], axis=1)
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
    j = segment(hx, x)
    return at(hy, j) + at(hs, j) * (x - at(hx, j))


def hull_slopes(hx: FloatArray, hs: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The envelope's (left, right) slopes at x."""
    return at(hs, segment(hx, x, right=False)), at(hs, segment(hx, x))


def hull_argmax(hx: FloatArray, hs: FloatArray, p: FloatArray) -> FloatArray:
    """argmax over the hull of envelope(x) − p·x for p > 0: the vertex after every segment
    at least as steep as p (on a segment of slope p exactly, its far end, the side that
    reaches tiers)."""
    return at(hx, (hs >= p[:, None]).sum(axis=1))
