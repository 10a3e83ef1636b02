"""Many `points` curves evaluated at once: `Curve.value` and `Curve.derivative` for a row
of amounts, one curve per row, without a Python loop over the curves.

Rows are padded to one width: after a row's last knot come knots one unit apart with the
last value, so the padding is the flat tail every `points` curve has. A value is computed
as `np.interp` computes it (the same operations in the same order), so that every
evaluator agrees with `Curve.value` to the bit and a tier reached in one is reached in all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
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


def knot_slopes(px: FloatArray, py: FloatArray) -> FloatArray:
    """Each segment's slope, as np.interp takes it: (dy[j+1] - dy[j]) / (dx[j+1] - dx[j])."""
    return (py[:, 1:] - py[:, :-1]) / (px[:, 1:] - px[:, :-1])


def segment(px: FloatArray, x: FloatArray, right: bool = True) -> IntArray:
    """Per row, the segment [px[j], px[j+1]] holding x: the one to its right at a knot
    (the one to its left with `right` False)."""
    below = px <= x[:, None] if right else px < x[:, None]
    last = max(px.shape[1] - 2, 0)
    return np.minimum(np.maximum(below.sum(axis=1) - 1, 0), last)


def at(array: FloatArray, j: IntArray) -> FloatArray:
    """array[i, j[i]] for every row i."""
    return array[np.arange(len(j)), j]


def knot_values(px: FloatArray, py: FloatArray, ps: FloatArray, x: FloatArray) -> FloatArray:
    """The curves at x (x >= 0; `ps` = `knot_slopes`), as `np.interp` gives them."""
    j = segment(px, x)
    x0, y0 = at(px, j), at(py, j)
    inside = np.where(x == x0, y0, at(ps, j) * (x - x0) + y0)
    return np.where(x >= px[:, -1], py[:, -1], inside)


def knot_right_slopes(px: FloatArray, ps: FloatArray, x: FloatArray) -> FloatArray:
    """The slope of the segment to the right of x (0 on the flat tail), as
    `Curve.derivative` gives it."""
    return np.where(x >= px[:, -1], 0.0, at(ps, segment(px, x)))
