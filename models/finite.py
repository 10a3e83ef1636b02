"""Every figure a request can produce must be a finite float64.

Each parameter may be finite and positive on its own while the curve is not: a `log`
curve with coef 1e308 and scale 1e-308 rises at 1e616 per unit, and a 1e308 baseline
doubled by a scenario's forecast is inf. The solver would then fail deep inside with an
`inf` in some matrix; this check finds such requests up front, over the amounts each
partner may actually receive (`AllocationRequest.amount_range`, computed here for every
partner at once).

Checked per partner: the baseline and its p10/p90; per curve, its value at the upper
bound (when there is one) and its steepest slope on [0, upper] (at 0 for concave curves;
a hill curve with shape < 1 is infinitely steep at 0 by its nature, so it is checked at
its upper bound instead); package uplifts; and the partner's, and the programme's, best
projected GMV.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np

from models.curves import (
    CURVE_PARAMETERS,
    FORMULAS,
    Curve,
    CurveKind,
    hill_inflection,
    packed_columns,
)
from models.request import AllocationRequest, MaxShare

MAX_LISTED = 50  # problems reported; one bad forecast multiplier breaks every partner


@dataclass(frozen=True)
class NonFinite:
    """One partner figure that is not finite. `field` is ``baseline_gmv``,
    ``baseline_gmv_p10``, ``baseline_gmv_p90``, ``response`` (of `resource`),
    ``packages`` or ``projected_gmv``."""

    index: int
    partner_id: str
    field: str
    message: str
    resource: str | None = None


def nonfinite_figures(request: AllocationRequest, limit: int = MAX_LISTED) -> list[NonFinite]:
    """Up to `limit` figures of `request` that are not finite (empty: all are)."""
    found: list[NonFinite] = []
    with np.errstate(all="ignore"):
        for problem in _problems(request):
            found.append(problem)
            if len(found) >= limit:
                break
    return found


def _problems(request: AllocationRequest) -> Iterator[NonFinite]:
    partners = request.partners
    count = len(partners)
    best = np.fromiter((p.baseline_gmv for p in partners), np.float64, count)
    for name in ("baseline_gmv", "baseline_gmv_p10", "baseline_gmv_p90"):
        values = (
            best
            if name == "baseline_gmv"
            else np.fromiter((getattr(p, name) or 0.0 for p in partners), np.float64, count)
        )
        for index in np.flatnonzero(~np.isfinite(values)).tolist():
            value = getattr(partners[index], name)
            yield NonFinite(index, partners[index].id, name, f"is {value} (must be finite)")
    for index, partner in enumerate(partners):
        if not partner.packages:
            continue
        uplifts = [package.uplift for package in partner.packages]
        if all(math.isfinite(u) for u in uplifts):
            best[index] += max(uplifts)
        else:
            yield NonFinite(index, partner.id, "packages", "a package uplift is not finite")
    for resource in request.resources:
        yield from _curve_problems(request, resource.name, best)
    for index in np.flatnonzero(~np.isfinite(best)).tolist():
        partner = partners[index]
        if math.isfinite(partner.baseline_gmv):  # else already reported
            yield NonFinite(
                index,
                partner.id,
                "projected_gmv",
                "projected GMV at the upper bounds is not finite",
            )
    if np.isfinite(best).all() and not math.isfinite(float(np.sum(best))):
        yield NonFinite(
            -1,
            "",
            "projected_gmv",
            "the partners' projected GMV adds up to more than float64 holds",
        )


def _cap(request: AllocationRequest, resource: str) -> float:
    """The upper bound of a partner without its own `max` (see `amount_range`)."""
    budget = request.resource(resource).budget
    if budget is None:
        return math.inf
    cap = budget
    for rule in request.constraints:
        if isinstance(rule, MaxShare) and rule.resource == resource:
            cap = min(cap, rule.max_share * budget)
    return cap


def _curve_problems(
    request: AllocationRequest, resource: str, best: np.ndarray
) -> Iterator[NonFinite]:
    cap = _cap(request, resource)
    partners = request.partners
    # One pass per resource in comprehensions: this runs on every submission, a million
    # partners included.
    curves = [partner.curves.get(resource) for partner in partners]
    maxima = [
        None if (bounds := partner.bounds.get(resource)) is None else bounds.max
        for partner in partners
    ]
    # Positions and limits only: creating a tuple per partner would set off the garbage
    # collector over every partner object, many times over.
    positions: dict[CurveKind, list[int]] = {}
    limits: dict[CurveKind, list[float]] = {}
    for position, curve in enumerate(curves):
        if curve is not None:
            high = maxima[position]
            kind = curve.kind
            positions.setdefault(kind, []).append(position)
            limits.setdefault(kind, []).append(cap if high is None or high > cap else high)
    for kind, members in positions.items():
        index = np.array(members, dtype=np.intp)
        upper = np.array(limits[kind], dtype=np.float64)
        group = cast(list[Curve], [curves[i] for i in members])  # members have curves
        if kind is CurveKind.POINTS:
            steep = np.array([_points_steepest(c) for c in group], dtype=np.float64)
            value = np.array(
                [
                    float(c.value(u)) if math.isfinite(u) else c.supremum
                    for c, u in zip(group, upper.tolist(), strict=True)
                ]
            )
        else:
            a, s, n = packed_columns(kind, group)
            bounded = np.isfinite(upper)
            at_upper = FORMULAS[kind].value(np.where(bounded, upper, 0.0), a, s, n)
            value = np.where(bounded, at_upper, 0.0)
            steep = _steepest(kind, upper, a, s, n)
        bad_value = ~np.isfinite(value)
        bad_slope = ~np.isfinite(steep)
        best[index] += np.where(bad_value, 0.0, value)
        for k in np.flatnonzero(bad_value | bad_slope).tolist():
            i, curve, bound = members[k], group[k], float(upper[k])
            what = "value" if bad_value[k] else "slope"
            where = f"at {bound:g} (its upper bound)" if bad_value[k] else "on [0, upper bound]"
            yield NonFinite(
                i,
                request.partners[i].id,
                "response",
                f"{kind} curve ({_parameters(curve)}): its {what} {where} is not finite",
                resource,
            )


def _steepest(
    kind: CurveKind, upper: np.ndarray, a: np.ndarray, s: np.ndarray, n: np.ndarray
) -> np.ndarray:
    slope = FORMULAS[kind].derivative
    if kind is not CurveKind.HILL:
        return slope(np.zeros_like(upper), a, s, n)  # concave: steepest at 0
    # Hill: steepest at its inflection (0 for shape <= 1), or at the upper bound before it.
    at = np.minimum(hill_inflection(s, n), upper)
    steep = slope(at, a, s, n)
    # shape < 1: inf at 0 is the curve's nature; the optimizer starts it past 0.
    past_zero = np.where(np.isfinite(upper), upper, s)
    return np.where((n < 1) & (at == 0), slope(past_zero, a, s, n), steep)


def _points_steepest(curve: Curve) -> float:
    slopes = np.diff(np.asarray(curve.ys)) / np.diff(np.asarray(curve.xs))
    return float(np.max(np.abs(slopes))) if slopes.size else 0.0


def _parameters(curve: Curve) -> str:
    if curve.kind is CurveKind.POINTS:
        return f"{len(curve.xs)} points"
    return ", ".join(f"{name} {getattr(curve, name):g}" for name in CURVE_PARAMETERS[curve.kind])
