"""`build_arrays` evaluates the curves' constant parts and top uplifts in bulk; each
partner's baseline must be what adding its curves' values one by one gives."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings

from models.curves import Curve, CurveKind, points_curve
from models.request import (
    AllocationRequest,
    Bounds,
    Eligibility,
    MaxShare,
    Partner,
    Pin,
    Resource,
    Tier,
)
from optimizer.arrays import build_arrays
from tests.support.instances import small_requests


def _baseline_term_by_term(request: AllocationRequest) -> list[float]:
    """The partners' baselines as the request defines them: the forecast, plus each curve's
    value at the partner's pin on that resource (at 0 where it has none)."""
    pins = request.pins()
    baselines = []
    for partner in request.partners:
        total = partner.baseline_gmv
        for resource in request.resources:
            curve = partner.curves.get(resource.name)
            if curve is not None:
                total += float(curve.value(pins.get((partner.id, resource.name), 0.0)))
        baselines.append(total)
    return baselines


@settings(max_examples=60, deadline=None)
@given(small_requests())
def test_baselines_add_each_curves_constant_part(request: AllocationRequest) -> None:
    arrays = build_arrays(request)
    assert np.allclose(arrays.baseline, _baseline_term_by_term(request), rtol=1e-12, atol=0)
    # The money scale follows the largest uplift a pair can add at its maximum.
    pairs = zip(arrays.pair_curve, arrays.pair_max, strict=True)
    uplifts = [float(curve.value(high)) for curve, high in pairs]
    uplifts += [o.uplift for o in arrays.packages] + list(arrays.thresholds)
    largest = max(uplifts, default=1.0)
    expected = 1.0 if largest <= 1e3 else 10.0 ** (math.floor(math.log10(largest)) - 3)
    assert arrays.money_scale == expected


def test_points_curves_starting_above_zero_and_pins_count_in_the_baseline() -> None:
    rises = points_curve([0.0, 10.0, 20.0], [5.0e6, 2.0e7, 2.5e7])  # 5M at no amount
    saturating = Curve(CurveKind.SATURATING, max_uplift=3.0e7, scale=8.0)
    request = AllocationRequest(
        resources=(Resource("subsidy", budget=40.0), Resource("traffic", budget=30.0)),
        tiers=(Tier("100M", 1.0e8, 1),),
        partners=(
            Partner("a", 9.0e7, curves={"subsidy": rises, "traffic": saturating}),
            Partner("b", 5.0e7, curves={"subsidy": rises}),
            Partner("c", 2.0e7, curves={"traffic": saturating}),
        ),
        constraints=(Pin("b", "subsidy", 10.0), Pin("c", "traffic", 4.0)),
    )
    arrays = build_arrays(request)
    expected = [
        9.0e7 + 5.0e6,  # a: the points curve at 0, the saturating one adds nothing there
        5.0e7 + 2.0e7,  # b: pinned at 10 on the points curve
        2.0e7 + float(saturating.value(4.0)),  # c: pinned at 4
    ]
    assert np.allclose(arrays.baseline, expected, rtol=1e-12, atol=0)
    assert arrays.baseline[2] > 2.0e7  # the pin's value counted, not the curve's at 0
    # Pinned pairs are constants, not variables: only a's two pairs remain.
    assert list(arrays.pair_partner) == [0, 0]


@settings(max_examples=60, deadline=None)
@given(small_requests())
def test_eligibility_and_amount_ranges_follow_every_rule(request: AllocationRequest) -> None:
    # `eligible` and `amount_range` read the rules from per-resource caches (asked once
    # per pair); each answer must be what reading every rule gives.
    for partner in request.partners:
        for resource in request.resources:
            name = resource.name
            has_use = name in partner.curves or any(
                package.amounts.get(name, 0.0) > 0 for package in partner.packages
            )
            selected = all(
                rule.where.matches(partner)
                for rule in request.constraints
                if isinstance(rule, Eligibility) and rule.resource == name
            )
            assert request.eligible(partner, name) == (has_use and selected)
            bounds = partner.bounds.get(name, Bounds())
            upper = math.inf if bounds.max is None else bounds.max
            if resource.budget is not None:
                upper = min(upper, resource.budget)
                for rule in request.constraints:
                    if isinstance(rule, MaxShare) and rule.resource == name:
                        upper = min(upper, rule.max_share * resource.budget)
            assert request.amount_range(partner, name) == (bounds.min, upper)
