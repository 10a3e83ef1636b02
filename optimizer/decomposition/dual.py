"""Minimising a Lagrangian dual over a handful of prices: a trust-region cutting plane.

The dual function is convex and piecewise smooth in a few variables (one per coupling row),
and each evaluation costs a pass over all partners, so the method spends LP work (tiny)
to save evaluations: Kelley's cutting-plane model, minimised within a box around the best
point found so far (a serious step moves the box, a null step adds a cut and shrinks it).

Every evaluated point gives a valid bound, so the bound is simply the least value seen;
convergence only decides how tight it gets.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from models.curves import FloatArray

_MAX_CUTS = 120


class CuttingPlane:
    def __init__(
        self,
        start: FloatArray,
        scale: FloatArray,
        upper: FloatArray | None = None,
        radius: float = 0.5,
    ):
        self.scale = np.maximum(scale, 1e-300)
        self.upper = upper if upper is not None else np.full(start.size, np.inf)
        self.center = np.clip(start, 0.0, self.upper)
        self.center_value = np.inf
        self.radius = radius
        self.cuts: list[tuple[FloatArray, float, FloatArray]] = []  # (point, value, grad)
        self.predicted = np.inf
        self._pending: FloatArray | None = None

    def report(self, point: FloatArray, value: float, grad: FloatArray) -> None:
        """Record an evaluation; moves the center on sufficient decrease."""
        self.cuts.append((point.copy(), value, grad.copy()))
        if len(self.cuts) > _MAX_CUTS:
            self.cuts.pop(0)
        if not np.isfinite(self.center_value):
            self.center, self.center_value = point.copy(), value
            return
        expected = self.center_value - self.predicted if np.isfinite(self.predicted) else 0.0
        if value < self.center_value - 0.1 * max(expected, 0.0):
            self.center, self.center_value = point.copy(), value
            self.radius = min(self.radius * 2.0, 1e6)
        else:
            self.radius = max(self.radius * 0.5, 1e-9)

    def propose(self) -> FloatArray:
        """The model's minimiser within the trust box (in scaled coordinates)."""
        k = self.center.size
        u_center = self.center / self.scale
        ref = max(abs(self.center_value), 1.0)
        rows, rhs = [], []
        for point, value, grad in self.cuts:
            g = grad * self.scale / ref
            rows.append(np.append(g, -1.0))
            rhs.append(float(g @ (point / self.scale)) - value / ref)
        lower = np.maximum(u_center - self.radius * np.maximum(u_center, 1.0), 0.0)
        upper = np.minimum(
            u_center + self.radius * np.maximum(u_center, 1.0), self.upper / self.scale
        )
        bounds: list[tuple[float | None, float | None]] = [
            (float(lo), float(hi)) for lo, hi in zip(lower, upper, strict=True)
        ]
        bounds.append((None, None))
        objective = np.zeros(k + 1)
        objective[-1] = 1.0
        result = linprog(
            objective, A_ub=np.array(rows), b_ub=np.array(rhs), bounds=bounds, method="highs"
        )
        if result.status != 0:
            self.predicted = self.center_value
            return self.center.copy()
        self.predicted = float(result.x[-1]) * ref
        return np.asarray(result.x[:k]) * self.scale

    @property
    def model_gap(self) -> float:
        """Predicted decrease within the box, relative to the best value."""
        if not np.isfinite(self.center_value) or not np.isfinite(self.predicted):
            return np.inf
        return max(self.center_value - self.predicted, 0.0) / max(abs(self.center_value), 1.0)
