"""Curve values in plain scalar Python (`math`), for the exact plan checker only.

`models.check` is the independent second opinion on every plan, so it deliberately does
not use the vectorised formulas of `models.curves` that the engines and the plan builder
share: a slip there (a wrong parameter in the table, a numpy broadcasting surprise) would
otherwise be repeated by the check and pass unnoticed. Keep this module free of numpy and
of `models.curves`' formula table; only the `Curve` record and its kind are shared.
"""

from __future__ import annotations

import bisect
import math

from models.curves import Curve, CurveKind


def uplift(curve: Curve, amount: float) -> float:
    """The GMV `curve` adds at `amount` (amounts below 0 count as 0)."""
    x = max(float(amount), 0.0)
    kind = curve.kind
    if kind is CurveKind.SATURATING:
        return curve.max_uplift * -math.expm1(-x / curve.scale)
    if kind is CurveKind.LOG:
        return curve.coef * math.log1p(x / curve.scale)
    if kind is CurveKind.LINEAR:
        return curve.roi * x
    if kind is CurveKind.HILL:
        return _hill(x, float(curve.max_uplift), float(curve.half_saturation), float(curve.shape))
    return _interpolate(x, curve.xs, curve.ys)


def _hill(x: float, max_uplift: float, half: float, shape: float) -> float:
    if x <= 0:
        return 0.0
    try:
        ratio = (half / x) ** shape  # the form that stays finite for large x and shape
    except OverflowError:
        return 0.0
    return max_uplift / (1.0 + ratio)


def _interpolate(x: float, xs: tuple[float, ...], ys: tuple[float, ...]) -> float:
    if x >= xs[-1]:
        return float(ys[-1])  # flat after the last point
    k = bisect.bisect_right(xs, x) - 1  # xs[0] is 0 and x >= 0, so k >= 0
    width = xs[k + 1] - xs[k]
    return ys[k] + (ys[k + 1] - ys[k]) * ((x - xs[k]) / width)
