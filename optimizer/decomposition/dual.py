"""Minimising a Lagrangian dual over a handful of prices: the level bundle method.

The dual function is convex, piecewise smooth and very kinked (every partner switching
tier or ticket is a kink) in a few variables, one per coupling row; each evaluation costs
a pass over all partners. So LP work (tiny) is spent to save evaluations: the cuts
h(z) >= h_j + g_j·(z − z_j) form a model whose minimum over a box is a lower bound
`floor` of the dual; the next point is the one closest (scaled ∞-norm) to the best point
where the model reaches the level floor + γ·(best − floor). This converges without step
sizes to tune, and `best − floor` says how far from the dual optimum we are.

Every evaluated point gives a valid bound on the primal, so the bound reported is simply
the least value seen; convergence only decides how tight it gets.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import linprog

from models.curves import FloatArray

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_MAX_CUTS = 150
_LEVEL = 0.3
_BOX = 50.0  # the model is minimised within [0, _BOX · scale] (grown when touched)


class LevelBundle:
    def __init__(
        self,
        start: FloatArray,
        scale: FloatArray,
        upper: FloatArray | None = None,
        box: float = _BOX,
        radius: float | None = None,
    ):
        """`box`: how far (in scales) the first model minimum may go; a start known to be
        near the optimum takes a small one, so the first few cuts do not fling it away.
        `radius`: a start known to be very near it (the same dual under a tighter
        relaxation) confines the model to within `radius` scales of the start on either
        side, a side widened each time the best point nears it. The box alone reaches
        down to 0: its first step from a near-optimal start drops some prices to 0 and
        multiplies the others (3,000 family partners: of 8 steps, the 7 after the first
        landed at 33-43× the start's value)."""
        self.scale = np.maximum(scale, 1e-300)
        self.hard_upper = upper if upper is not None else np.full(start.size, np.inf)
        self.low = np.zeros(start.size)
        self.trust = radius is not None
        if radius is None:
            self.box = np.minimum(
                np.maximum(start / self.scale, 1.0) * box, self.hard_upper / self.scale
            )
        else:
            u = np.clip(start, 0.0, self.hard_upper) / self.scale
            self.low = np.maximum(u - radius, 0.0)
            self.box = np.minimum(u + radius, self.hard_upper / self.scale)
        self.best = np.clip(start, 0.0, self.hard_upper)
        self.best_value = np.inf
        self.floor = -np.inf
        self.cuts: list[tuple[FloatArray, float, FloatArray]] = []  # (point, value, grad)

    def report(self, point: FloatArray, value: float, grad: FloatArray) -> None:
        self.cuts.append((point / self.scale, value, grad * self.scale))
        if len(self.cuts) > _MAX_CUTS:
            # Drop the cut farthest above the best value (least informative near it).
            worst = max(range(len(self.cuts) - 1), key=lambda j: self.cuts[j][1])
            self.cuts.pop(worst)
        if value < self.best_value:
            self.best, self.best_value = point.copy(), value

    def _rows(self, ref: float) -> tuple[FloatArray, FloatArray]:
        a = np.array([g / ref for _, _, g in self.cuts])
        b = np.array([float(g @ u) / ref - (h - self.best_value) / ref for u, h, g in self.cuts])
        return a, b

    def propose(self) -> FloatArray:
        k = self.best.size
        ref = max(max(float(np.abs(g).sum()) for _, _, g in self.cuts), 1e-300)
        with np.errstate(over="ignore", invalid="ignore"):
            a, b = self._rows(ref)
        if not (np.isfinite(ref) and np.isfinite(a).all() and np.isfinite(b).all()):
            # A cut past float range (a value or slope overflowed at an extreme point) says
            # nothing a cutting-plane model can use: stay at the best point.
            return self.best.copy()
        # 1. The model's minimum over the box: a lower bound of the dual (in the box). The
        # box only grows when the best point itself nears its edge: growing it whenever
        # the model's minimiser touches it (it always does with few cuts) runs away.
        u_best = self.best / self.scale
        if self.trust:
            self._widen(u_best)
        else:
            near_edge = (u_best > 0.5 * self.box) & (self.box * 4 <= self.hard_upper / self.scale)
            self.box = np.where(near_edge, self.box * 4, self.box)
        objective = np.zeros(k + 1)
        objective[-1] = 1.0
        bounds: list[tuple[float | None, float | None]] = [
            (float(lo), float(hi)) for lo, hi in zip(self.low, self.box, strict=True)
        ]
        bounds.append((None, None))
        rows = np.hstack([a, -np.ones((a.shape[0], 1))])
        result = linprog(objective, A_ub=rows, b_ub=b, bounds=bounds, method="highs")
        if result.status != 0:
            return self.best.copy()
        u_min = np.asarray(result.x[:k])
        model_min = float(result.x[-1])
        # The floor holds within this box only: one kept from a smaller box may sit above
        # points the wider box now admits (a trust box widened, then its best point fell
        # below the old floor and the search stopped as converged).
        self.floor = self.best_value + model_min * ref
        gap = -model_min  # best − floor, in units of ref
        if gap <= 0:
            return self.best.copy()
        level = model_min + _LEVEL * gap
        # 2. Project the best point onto {model <= level} in the scaled ∞-norm.
        objective = np.zeros(k + 1)
        objective[-1] = 1.0
        box_rows = np.vstack(
            [np.hstack([np.eye(k), -np.ones((k, 1))]), np.hstack([-np.eye(k), -np.ones((k, 1))])]
        )
        box_rhs = np.concatenate([u_best, -u_best])
        cut_rows = np.hstack([a, np.zeros((a.shape[0], 1))])
        cut_rhs = level + b
        bounds = [(float(lo), float(hi)) for lo, hi in zip(self.low, self.box, strict=True)]
        bounds.append((0.0, None))
        result = linprog(
            objective,
            A_ub=np.vstack([cut_rows, box_rows]),
            b_ub=np.concatenate([cut_rhs, box_rhs]),
            bounds=bounds,
            method="highs",
        )
        if result.status != 0:
            return u_min * self.scale
        return np.minimum(np.asarray(result.x[:k]) * self.scale, self.hard_upper)

    def _widen(self, u_best: FloatArray) -> None:
        """Trust box: a side the best point has come within a quarter of its width of
        moves out by the width (the low side not below 0, the high one not past `upper`)."""
        width = self.box - self.low
        near_low = (u_best - self.low < 0.25 * width) & (self.low > 0)
        near_high = self.box - u_best < 0.25 * width
        self.low = np.where(near_low, np.maximum(self.low - width, 0.0), self.low)
        self.box = np.where(
            near_high, np.minimum(self.box + width, self.hard_upper / self.scale), self.box
        )

    @property
    def model_gap(self) -> float:
        """(best − floor) / |best|: how far the dual may still fall (within the box)."""
        if not np.isfinite(self.best_value) or not np.isfinite(self.floor):
            return np.inf
        return max(self.best_value - self.floor, 0.0) / max(abs(self.best_value), 1.0)


def golden_section(
    value: Callable[[float], float | None], low: float, high: float, steps: int
) -> tuple[float, float] | None:
    """The least point seen, with its value, of `steps` golden-section steps for the
    minimum of a convex `value` on [low, high] (two points first, then one new point a
    step); the search ends early when `value` returns None (no time), and gives None
    when it got no point at all."""
    a, b = high - _GOLDEN * (high - low), low + _GOLDEN * (high - low)
    fa, fb = value(a), value(b)
    for _ in range(steps):
        if fa is None or fb is None:
            break
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - _GOLDEN * (high - low)
            fa = value(a)
        else:
            low, a, fa = a, b, fb
            b = low + _GOLDEN * (high - low)
            fb = value(b)
    seen = [(fx, x) for x, fx in ((a, fa), (b, fb)) if fx is not None]
    if not seen:
        return None
    best_value, best = min(seen, key=lambda pair: pair[0])
    return best, best_value
