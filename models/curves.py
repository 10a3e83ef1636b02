"""Response curves: the GMV a partner gains from x units of one resource.

Exact evaluation in float64. `Curve` evaluates one partner's curve on an array of amounts;
`CurveColumn` evaluates one resource's curves for many partners at once (one amount each),
grouping partners by curve kind so the work is a handful of numpy expressions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


class CurveKind(StrEnum):
    SATURATING = "saturating"
    LOG = "log"
    LINEAR = "linear"
    HILL = "hill"
    POINTS = "points"


# The parameters each kind needs (all strictly positive, except the points arrays).
CURVE_PARAMETERS: dict[CurveKind, tuple[str, ...]] = {
    CurveKind.SATURATING: ("max_uplift", "scale"),
    CurveKind.LOG: ("coef", "scale"),
    CurveKind.LINEAR: ("roi",),
    CurveKind.HILL: ("max_uplift", "shape", "half_saturation"),
    CurveKind.POINTS: ("xs", "ys"),
}


@dataclass(frozen=True)
class Curve:
    kind: CurveKind
    max_uplift: float = 0.0
    scale: float = 1.0
    coef: float = 0.0
    roi: float = 0.0
    shape: float = 1.0
    half_saturation: float = 1.0
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()

    def value(self, x: ArrayLike) -> FloatArray:
        amounts = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
        kind = self.kind
        if kind is CurveKind.SATURATING:
            return self.max_uplift * -np.expm1(-amounts / self.scale)
        if kind is CurveKind.LOG:
            return self.coef * np.log1p(amounts / self.scale)
        if kind is CurveKind.LINEAR:
            return self.roi * amounts
        if kind is CurveKind.HILL:
            return _hill(amounts, self.max_uplift, self.shape, self.half_saturation)
        return np.interp(amounts, self.xs, self.ys)  # flat after the last point

    def derivative(self, x: ArrayLike) -> FloatArray:
        """Right derivative (for `points`: the slope of the segment to the right)."""
        amounts = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
        kind = self.kind
        if kind is CurveKind.SATURATING:
            return self.max_uplift / self.scale * np.exp(-amounts / self.scale)
        if kind is CurveKind.LOG:
            return self.coef / (self.scale + amounts)
        if kind is CurveKind.LINEAR:
            return np.full_like(amounts, self.roi)
        if kind is CurveKind.HILL:
            n, h = self.shape, self.half_saturation
            ratio = np.power(amounts / h, n)
            with np.errstate(divide="ignore", invalid="ignore"):
                slope = self.max_uplift * n * ratio / (amounts * (1.0 + ratio) ** 2)
            at_zero = np.inf if n < 1 else (self.max_uplift / h if n == 1 else 0.0)
            return np.where(amounts > 0, slope, at_zero)
        xs, ys = np.asarray(self.xs), np.asarray(self.ys)
        slopes = np.append(np.diff(ys) / np.diff(xs), 0.0)
        index = np.searchsorted(xs, amounts, side="right") - 1
        return slopes[np.clip(index, 0, len(slopes) - 1)]

    @property
    def is_concave(self) -> bool:
        if self.kind is CurveKind.HILL:
            return self.shape <= 1.0
        if self.kind is CurveKind.POINTS:
            slopes = np.append(np.diff(self.ys) / np.diff(self.xs), 0.0)
            return bool(np.all(np.diff(slopes) <= 1e-12 * max(1.0, float(np.max(slopes)))))
        return True

    @property
    def supremum(self) -> float:
        """The least upper bound of the curve's value (inf when it grows without bound)."""
        if self.kind in (CurveKind.SATURATING, CurveKind.HILL):
            return self.max_uplift
        if self.kind is CurveKind.POINTS:
            return float(self.ys[-1])
        return float("inf") if (self.coef if self.kind is CurveKind.LOG else self.roi) > 0 else 0.0

    @property
    def inflection(self) -> float:
        """Where a non-concave curve turns concave (0 for concave curves).

        Hill: x* = h·((n−1)/(n+1))^(1/n); points: the last breakpoint where the slope rises.
        """
        if self.kind is CurveKind.HILL and self.shape > 1:
            n = self.shape
            return float(self.half_saturation * ((n - 1) / (n + 1)) ** (1 / n))
        if self.kind is CurveKind.POINTS and not self.is_concave:
            slopes = np.append(np.diff(self.ys) / np.diff(self.xs), 0.0)
            rising = np.nonzero(np.diff(slopes) > 0)[0]
            return float(self.xs[int(rising[-1]) + 1])
        return 0.0


def _hill(x: FloatArray, max_uplift: ArrayLike, shape: ArrayLike, half: ArrayLike) -> FloatArray:
    # x^n / (x^n + h^n) written as 1 / (1 + (h/x)^n) to stay finite for large x and n.
    with np.errstate(divide="ignore", over="ignore"):
        ratio = np.power(np.asarray(half) / x, shape)
    return np.where(x > 0, np.asarray(max_uplift) / (1.0 + ratio), 0.0)


class CurveColumn:
    """One resource's curves for many partners, evaluated together.

    `curves[i]` is partner i's curve, or None when the partner has no curve for the
    resource (its uplift is then 0 whatever the amount).
    """

    def __init__(self, curves: Sequence[Curve | None]):
        self.curves = list(curves)
        size = len(self.curves)
        self._groups: dict[CurveKind, NDArray[np.intp]] = {}
        kinds = [curve.kind if curve is not None else None for curve in self.curves]
        for kind in CurveKind:
            index = np.array([i for i in range(size) if kinds[i] is kind], dtype=np.intp)
            if index.size:
                self._groups[kind] = index

        def param(name: str, index: NDArray[np.intp]) -> FloatArray:
            return np.array([getattr(self.curves[i], name) for i in index], dtype=np.float64)

        self._params: dict[CurveKind, dict[str, FloatArray]] = {
            kind: {name: param(name, index) for name in CURVE_PARAMETERS[kind] if name[-1] != "s"}
            for kind, index in self._groups.items()
            if kind is not CurveKind.POINTS
        }

    def __len__(self) -> int:
        return len(self.curves)

    def value(self, amounts: ArrayLike) -> FloatArray:
        x = np.maximum(np.asarray(amounts, dtype=np.float64), 0.0)
        out = np.zeros(len(self.curves), dtype=np.float64)
        for kind, index in self._groups.items():
            xi = x[index]
            if kind is CurveKind.POINTS:
                out[index] = [self.curves[i].value(xi[k]) for k, i in enumerate(index)]
                continue
            p = self._params[kind]
            if kind is CurveKind.SATURATING:
                out[index] = p["max_uplift"] * -np.expm1(-xi / p["scale"])
            elif kind is CurveKind.LOG:
                out[index] = p["coef"] * np.log1p(xi / p["scale"])
            elif kind is CurveKind.LINEAR:
                out[index] = p["roi"] * xi
            else:
                out[index] = _hill(xi, p["max_uplift"], p["shape"], p["half_saturation"])
        return out


def points_curve(xs: Sequence[float], ys: Sequence[float]) -> Curve:
    return Curve(CurveKind.POINTS, xs=tuple(map(float, xs)), ys=tuple(map(float, ys)))


def kind_values(kind: CurveKind, x: FloatArray, params: dict[str, FloatArray]) -> FloatArray:
    """Values of many curves of one analytic kind, one amount each (vectorised).

    `params` maps each name in CURVE_PARAMETERS[kind] to an array aligned with `x`.
    """
    amounts = np.maximum(x, 0.0)
    if kind is CurveKind.SATURATING:
        return params["max_uplift"] * -np.expm1(-amounts / params["scale"])
    if kind is CurveKind.LOG:
        return params["coef"] * np.log1p(amounts / params["scale"])
    if kind is CurveKind.LINEAR:
        return params["roi"] * amounts
    if kind is CurveKind.HILL:
        return _hill(amounts, params["max_uplift"], params["shape"], params["half_saturation"])
    raise ValueError(f"{kind} curves are not analytic")


def kind_slopes(kind: CurveKind, x: FloatArray, params: dict[str, FloatArray]) -> FloatArray:
    """Right derivatives of many curves of one analytic kind (see `kind_values`).

    Hill: inf at 0 when shape < 1; 0 where the amount is so large the slope underflows.
    """
    amounts = np.maximum(x, 0.0)
    if kind is CurveKind.SATURATING:
        scale = params["scale"]
        return params["max_uplift"] / scale * np.exp(-amounts / scale)
    if kind is CurveKind.LOG:
        return params["coef"] / (params["scale"] + amounts)
    if kind is CurveKind.LINEAR:
        return params["roi"] * np.ones_like(amounts)
    if kind is CurveKind.HILL:
        top, n, h = params["max_uplift"], params["shape"], params["half_saturation"]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = np.power(amounts / h, n)
            slope = top * n * ratio / (amounts * (1.0 + ratio) ** 2)
        at_zero = np.where(n < 1, np.inf, np.where(n == 1, top / h, 0.0))
        return np.where(amounts > 0, np.where(np.isfinite(slope), slope, 0.0), at_zero)
    raise ValueError(f"{kind} curves are not analytic")
