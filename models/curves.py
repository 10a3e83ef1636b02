"""Response curves: the GMV a partner gains from x units of one resource.

The formulas live here once, in a table of vectorised functions per curve kind (value,
derivative and the inverse of the derivative) over numpy arrays in float64. Every
evaluator uses them: `Curve` (one partner's curve on an array of amounts), `CurveColumn`
(one resource's curves for many partners, grouped by kind), the decomposition engine's
curve families and the fixture calibration. Only the exact plan checker (`models.check`)
keeps its own scalar formulas, on purpose: it is the independent second opinion.

The table takes the parameters *packed* into three arrays, whatever the kind:

==========  ================  ===================  =========
kind        ``a``             ``s``                ``n``
==========  ================  ===================  =========
saturating  max_uplift        scale                (unused)
log         coef              scale                (unused)
linear      roi               (unused)             (unused)
hill        max_uplift        half_saturation      shape
==========  ================  ===================  =========

`points` curves (piecewise-linear through given points) are not in the table: their
parameters are arrays, and they are evaluated by interpolation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.knots import knot_slopes, knot_values, padded_knots

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

_TINY = 1e-300
_HUGE = 1e300

# ---------------------------------------------------------------------------------------
# The formulas: f(x), f'(x) and the x >= floor where f'(x) = p, per kind.
#   saturating  f = a·(1 − e^(−x/s))       f' = a/s·e^(−x/s)
#   log         f = a·ln(1 + x/s)          f' = a/(s + x)
#   linear      f = a·x                    f' = a
#   hill        f = a·xⁿ/(xⁿ + sⁿ)         f' = a·n·(x/s)ⁿ / (x·(1 + (x/s)ⁿ)²)


def _saturating(x: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray) -> FloatArray:
    return a * -np.expm1(-x / s)


def _saturating_slope(x: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray) -> FloatArray:
    return a / s * np.exp(-x / s)


def _saturating_inverse(
    p: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray, floor: FloatArray
) -> FloatArray:
    return np.maximum(s * np.log(a / (s * p)), floor)


def _log(x: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray) -> FloatArray:
    return a * np.log1p(x / s)


def _log_slope(x: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray) -> FloatArray:
    return a / (s + x)


def _log_inverse(
    p: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray, floor: FloatArray
) -> FloatArray:
    return np.maximum(a / p - s, floor)


def _linear(x: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray) -> FloatArray:
    return a * x


def _linear_slope(x: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray) -> FloatArray:
    return np.broadcast_to(a, np.broadcast(x, a).shape).astype(np.float64)


def _linear_inverse(
    p: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray, floor: FloatArray
) -> FloatArray:
    # The slope never falls to p: x·(a − p) grows without end while p < a, else x = floor.
    return np.where(p < a, np.inf, floor)


def _hill(x: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray) -> FloatArray:
    # xⁿ/(xⁿ + sⁿ) written as 1/(1 + (s/x)ⁿ) to stay finite for large x and n.
    with np.errstate(divide="ignore", over="ignore"):
        ratio = np.power(s / x, n)
    return np.where(x > 0, a / (1.0 + ratio), 0.0)


def _hill_slope(x: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.power(x / s, n)
        slope = a * n * ratio / (x * (1.0 + ratio) ** 2)
    # At 0 the slope is infinite (n < 1), a/s (n = 1) or flat (n > 1).
    at_zero = np.where(n < 1, np.inf, np.where(n == 1, a / s, 0.0))
    return np.where(x > 0, np.where(np.isfinite(slope), slope, 0.0), at_zero)


def _hill_inverse(
    p: FloatArray, a: FloatArray, s: FloatArray, n: FloatArray, floor: FloatArray
) -> FloatArray:
    """f'(x) = p on the concave side (floor >= the inflection, see `hill_inflection`).

    In u = ln(x/s), ln f'(x) is concave and decreasing past the inflection, so Newton
    started to the right of the root (the asymptote f' ~ a·n/s·(s/x)^(n+1) overshoots)
    moves monotonically onto it without bracketing. A price beyond any float slope (the
    decomposition probing a multiplier near 0) is steeper than the curve anywhere past
    the floor: the floor (Newton would subtract inf from inf). A price of 0 or less is
    met only at infinity; Newton from its infinite residual never stopped, so it is not
    started (family seed 22, 1,000 partners: a tenth of the calls ran all 60 steps).
    """
    p, a, s, n, floor = np.broadcast_arrays(p, a, s, n, floor)
    with np.errstate(over="ignore"):
        ratio = p * s / a
    steep = ~(ratio < _HUGE)
    flat = ratio <= 0
    ratio = np.where(steep | flat, 1.0, ratio)
    target = np.log(ratio)  # ln H'(z) with H(z) = zⁿ/(1 + zⁿ)
    u = np.log(np.maximum(n / np.maximum(ratio, _TINY), 1.0)) / (n + 1)
    u = np.maximum(u, np.log(np.maximum(floor / s, _TINY)))
    todo = np.flatnonzero(~(steep | flat).ravel())
    u, n_flat, log_n, target = u.ravel(), n.ravel(), np.log(n).ravel(), target.ravel()
    for _ in range(60):
        uu, nn = u[todo], n_flat[todo]
        e = np.exp(np.minimum(nn * uu, 700.0))
        g = log_n[todo] + (nn - 1) * uu - 2 * np.log1p(e) - target[todo]
        dg = (nn - 1) - 2 * nn * e / (1 + e)
        step = np.where(dg < 0, g / np.minimum(dg, -1e-12), 0.0)
        u[todo] = uu - step
        todo = todo[np.abs(step) > 1e-12]
        if todo.size == 0:
            break
    past = np.maximum(s * np.exp(u.reshape(p.shape)), floor)
    return np.where(steep, floor, np.where(flat, np.inf, past))


Formula = Callable[[FloatArray, FloatArray, FloatArray, FloatArray], FloatArray]
Inverse = Callable[[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray], FloatArray]


@dataclass(frozen=True)
class KindFormulas:
    value: Formula
    derivative: Formula
    inverse_derivative: Inverse


FORMULAS: dict[CurveKind, KindFormulas] = {
    CurveKind.SATURATING: KindFormulas(_saturating, _saturating_slope, _saturating_inverse),
    CurveKind.LOG: KindFormulas(_log, _log_slope, _log_inverse),
    CurveKind.LINEAR: KindFormulas(_linear, _linear_slope, _linear_inverse),
    CurveKind.HILL: KindFormulas(_hill, _hill_slope, _hill_inverse),
}


def _arrays(*values: ArrayLike) -> list[FloatArray]:
    return [np.asarray(value, dtype=np.float64) for value in values]


def kind_value(
    kind: CurveKind, x: ArrayLike, a: ArrayLike, s: ArrayLike, n: ArrayLike
) -> FloatArray:
    """f(x) of `kind` curves with packed parameters (amounts below 0 count as 0)."""
    xs, aa, ss, nn = _arrays(x, a, s, n)
    return FORMULAS[kind].value(np.maximum(xs, 0.0), aa, ss, nn)


def kind_derivative(
    kind: CurveKind, x: ArrayLike, a: ArrayLike, s: ArrayLike, n: ArrayLike
) -> FloatArray:
    """Right derivative f'(x) (hill at 0: inf for shape < 1, a/s for 1, 0 above)."""
    xs, aa, ss, nn = _arrays(x, a, s, n)
    return FORMULAS[kind].derivative(np.maximum(xs, 0.0), aa, ss, nn)


def kind_inverse_derivative(
    kind: CurveKind,
    p: ArrayLike,
    a: ArrayLike,
    s: ArrayLike,
    n: ArrayLike,
    floor: ArrayLike = 0.0,
) -> FloatArray:
    """The x >= floor where the slope falls to p > 0 (floor where it is already below p).

    Linear curves have no such point: +inf while p < roi, else floor. Hill curves need
    floor at or beyond their inflection (the slope rises before it).
    """
    pp, aa, ss, nn, ff = _arrays(p, a, s, n, floor)
    return FORMULAS[kind].inverse_derivative(pp, aa, ss, nn, ff)


def hill_inflection(s: ArrayLike, n: ArrayLike) -> FloatArray:
    """Where a hill curve turns concave: s·((n−1)/(n+1))^(1/n) for n > 1, else 0."""
    ss, nn = _arrays(s, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = ss * (np.maximum(nn - 1, 0.0) / (nn + 1)) ** (1 / nn)
    return np.where(nn > 1, point, 0.0)


# ---------------------------------------------------------------------------------------
# One curve, and one resource's curves for many partners


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

    @property
    def packed(self) -> tuple[float, float, float]:
        """(a, s, n) as `FORMULAS` takes them (see the module docstring)."""
        if self.kind is CurveKind.LOG:
            return self.coef, self.scale, 1.0
        if self.kind is CurveKind.LINEAR:
            return self.roi, 1.0, 1.0
        if self.kind is CurveKind.HILL:
            return self.max_uplift, self.half_saturation, self.shape
        return self.max_uplift, self.scale, 1.0

    def value(self, x: ArrayLike) -> FloatArray:
        if self.kind is CurveKind.POINTS:
            amounts = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
            return np.interp(amounts, self.xs, self.ys)  # flat after the last point
        return kind_value(self.kind, x, *self.packed)

    def derivative(self, x: ArrayLike) -> FloatArray:
        """Right derivative (for `points`: the slope of the segment to the right)."""
        if self.kind is not CurveKind.POINTS:
            return kind_derivative(self.kind, x, *self.packed)
        amounts = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
        xs = np.asarray(self.xs)
        slopes = self._point_slopes()
        index = np.searchsorted(xs, amounts, side="right") - 1
        return slopes[np.clip(index, 0, len(slopes) - 1)]

    def _point_slopes(self) -> FloatArray:
        return np.append(np.diff(self.ys) / np.diff(self.xs), 0.0)

    @property
    def is_concave(self) -> bool:
        if self.kind is CurveKind.HILL:
            return self.shape <= 1.0
        if self.kind is CurveKind.POINTS:
            slopes = self._point_slopes()
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

        Hill: `hill_inflection`; points: the last breakpoint where the slope rises.
        """
        if self.kind is CurveKind.HILL:
            return float(hill_inflection(self.half_saturation, self.shape))
        if self.kind is CurveKind.POINTS and not self.is_concave:
            rising = np.nonzero(np.diff(self._point_slopes()) > 0)[0]
            return float(self.xs[int(rising[-1]) + 1])
        return 0.0


# Which Curve field fills each packed slot (a, s, n) of `FORMULAS`, per kind: what
# `Curve.packed` gives one curve at a time (None: the slot is 1).
PACKED_FIELDS: dict[CurveKind, tuple[str | None, str | None, str | None]] = {
    CurveKind.SATURATING: ("max_uplift", "scale", None),
    CurveKind.LOG: ("coef", "scale", None),
    CurveKind.LINEAR: ("roi", None, None),
    CurveKind.HILL: ("max_uplift", "half_saturation", "shape"),
}


def packed_columns(kind: CurveKind, curves: Sequence[Curve]) -> list[FloatArray]:
    """The (a, s, n) parameters of many curves of one (non-points) kind, as three arrays."""
    return [
        np.ones(len(curves))
        if name is None
        else np.fromiter(map(attrgetter(name), curves), np.float64, len(curves))
        for name in PACKED_FIELDS[kind]
    ]


class CurveColumn:
    """One resource's curves for many partners, evaluated together.

    `curves[i]` is partner i's curve, or None when the partner has no curve for the
    resource (its uplift is then 0 whatever the amount).
    """

    def __init__(self, curves: Sequence[Curve | None]):
        self.curves = list(curves)
        by_kind: dict[CurveKind, list[int]] = {}
        for i, curve in enumerate(self.curves):
            if curve is not None:
                by_kind.setdefault(curve.kind, []).append(i)
        self._groups: dict[CurveKind, NDArray[np.intp]] = {
            kind: np.array(by_kind[kind], dtype=np.intp) for kind in CurveKind if kind in by_kind
        }
        # Column by column: 1,000,000 partners' columns took 7.4 s through `Curve.packed`.
        self._packed: dict[CurveKind, FloatArray] = {
            kind: np.array(packed_columns(kind, [self.curves[i] for i in index]))
            for kind, index in self._groups.items()
            if kind is not CurveKind.POINTS
        }
        # Points curves' knots padded to one width (`models.knots`): evaluated one curve at
        # a time, they took 4.8 s of a 2,000-partner run on points curves.
        self._knots: tuple[FloatArray, FloatArray, FloatArray] | None = None
        if CurveKind.POINTS in self._groups:
            knots = [self.curves[i] for i in self._groups[CurveKind.POINTS]]
            px, py = padded_knots([(c.xs, c.ys) for c in knots if c is not None])
            with np.errstate(divide="ignore", invalid="ignore"):
                self._knots = (px, py, knot_slopes(px, py))

    def __len__(self) -> int:
        return len(self.curves)

    def value(self, amounts: ArrayLike) -> FloatArray:
        x = np.maximum(np.asarray(amounts, dtype=np.float64), 0.0)
        out = np.zeros(len(self.curves), dtype=np.float64)
        for kind, index in self._groups.items():
            xi = x[index]
            if kind is CurveKind.POINTS:
                assert self._knots is not None
                out[index] = knot_values(*self._knots, xi)
            else:
                out[index] = FORMULAS[kind].value(xi, *self._packed[kind])
        return out


def points_curve(xs: Sequence[float], ys: Sequence[float]) -> Curve:
    return Curve(CurveKind.POINTS, xs=tuple(map(float, xs)), ys=tuple(map(float, ys)))
