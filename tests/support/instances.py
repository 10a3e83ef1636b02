"""Deterministic random small allocation requests, plain and as hypothesis strategies.

Every request lives on a coarse grid: each resource has a `step` and every partner's
cap is a few steps, so each partner has a handful of choices and `tests.support.bruteforce`
can enumerate them all. Curves are calibrated so that a partner's full allocation lifts
it by a fraction of a tier threshold, which keeps the tier decisions genuinely contested:
some partners cannot reach their tier at all, some already have, and the budget covers only
part of the rest.

Two magnitudes: `"unit"` (tiers at 100 and 1000, steps of 1) and `"realistic"` (tiers at
¥100M and ¥1B, subsidy steps of ¥10M, traffic steps of 1B impressions).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hypothesis import strategies as st

from models.curves import Curve, CurveKind
from models.request import (
    AllocationRequest,
    Bounds,
    Constraint,
    Eligibility,
    GroupBudget,
    MaxShare,
    Objective,
    OnePackage,
    Options,
    Package,
    Partner,
    Pin,
    Resource,
    Tier,
    Where,
)

Magnitude = Literal["unit", "realistic"]
ALL_KINDS: tuple[CurveKind, ...] = tuple(CurveKind)
# One curve of each kind the decomposition models, S-curves either side of shape 1.
SAMPLE_CURVES: tuple[Curve, ...] = (
    Curve(CurveKind.SATURATING, max_uplift=5e7, scale=1e7),
    Curve(CurveKind.LOG, coef=3e7, scale=2e6),
    Curve(CurveKind.LINEAR, roi=1.7),
    Curve(CurveKind.HILL, max_uplift=8e7, shape=2.5, half_saturation=3e7),
    Curve(CurveKind.HILL, max_uplift=8e7, shape=0.7, half_saturation=3e7),
)


@dataclass(frozen=True)
class _Scale:
    tiers: tuple[float, float]
    # (name, unit, step, unit_cost) of the first and second resource.
    resources: tuple[tuple[str, str, float, float], tuple[str, str, float, float]]


_SCALES: dict[str, _Scale] = {
    "unit": _Scale(
        tiers=(100.0, 1000.0),
        resources=(("subsidy", "CNY", 1.0, 1.0), ("traffic", "impressions", 1.0, 0.5)),
    ),
    "realistic": _Scale(
        tiers=(1e8, 1e9),
        resources=(("subsidy", "CNY", 1e7, 1.0), ("traffic", "impressions", 1e9, 0.001)),
    ),
}


def random_small_request(
    seed: int,
    *,
    n_partners: int = 5,
    n_resources: int = 1,
    n_tiers: int = 1,
    objective: Objective = Objective.MAX_ATTAINMENT,
    kinds: Sequence[CurveKind] = ALL_KINDS,
    magnitude: Magnitude = "unit",
    with_min: bool = False,
    with_eligibility: bool = False,
    with_pins: bool = False,
    with_max_share: bool = False,
    with_group_budget: bool = False,
    with_packages: bool = False,
    packages_only: bool = False,
    unlimited_budget: bool = False,
    max_units: int | None = None,
) -> AllocationRequest:
    """A valid request on a small grid, the same for the same arguments.

    `packages_only` gives every partner a package menu and no curves (a multiple-choice
    knapsack). `max_units` caps each partner's allocation of each resource (in steps); by default
    2..5 steps with one resource and 1..2 with two, so a partner has at most ~6 (one
    resource) or 9 (two) choices. `unlimited_budget` leaves budgets unset (every partner
    then has an explicit max bound, so the grid stays finite).
    """
    if not 1 <= n_resources <= 2 or not 1 <= n_tiers <= 2 or n_partners < 1:
        raise ValueError("1-2 resources, 1-2 tiers and at least one partner")
    rng = random.Random(seed)
    scale = _SCALES[magnitude]
    thresholds = scale.tiers[:n_tiers]
    tiers = _tiers(rng, thresholds, n_partners)

    caps: list[int] = []
    resources: list[Resource] = []
    for name, unit, step, unit_cost in scale.resources[:n_resources]:
        cap = (
            max_units
            if max_units is not None
            else (rng.randint(2, 5) if n_resources == 1 else rng.randint(1, 2))
        )
        caps.append(cap)
        budget_units = rng.randint(max(1, n_partners * cap // 4), max(2, n_partners * cap // 2))
        budget = None if unlimited_budget else budget_units * step
        resources.append(Resource(name, unit=unit, budget=budget, unit_cost=unit_cost, step=step))

    constraints: list[Constraint] = []
    share_rule: MaxShare | None = None
    if with_max_share and not unlimited_budget:
        first = resources[0]
        assert first.budget is not None and first.step is not None
        share = rng.choice((0.1, 0.2, 0.25, 0.3, 0.5))
        # Only worth a rule when it bites below the partners' caps yet leaves a step.
        if first.step <= share * first.budget < caps[0] * first.step:
            share_rule = MaxShare(first.name, share)
            constraints.append(share_rule)

    partners = [
        _partner(
            rng,
            index,
            resources,
            caps,
            thresholds,
            kinds,
            with_min,
            share_rule,
            unlimited_budget,
            package_chance=1.0 if packages_only else 0.4 if with_packages else 0.0,
        )
        for index in range(n_partners)
    ]

    if with_eligibility:
        resource = rng.choice(resources).name
        where = rng.choice(
            (
                Where({"region": "north"}),
                Where({"score": {">=": 3}}),
                Where({"region": {"in": ["north", "east"]}}),
            )
        )
        constraints.append(Eligibility(resource, where))
    if with_group_budget and not unlimited_budget:
        constraints.append(
            GroupBudget(
                resources[0].name, Where({"region": "south"}), max_share=rng.choice((0.3, 0.5, 0.7))
            )
        )
    if any(partner.packages for partner in partners) and rng.random() < 0.5:
        rule = OnePackage(rng.choice((Where(), Where({"region": "north"}))))
        if _one_package_affordable(rule, partners, resources):
            constraints.append(rule)

    request = AllocationRequest(
        name=f"random-{seed}",
        resources=tuple(resources),
        tiers=tiers,
        partners=tuple(partners),
        objective=objective,
        constraints=tuple(constraints),
        options=Options(time_limit_s=20.0, seed=seed),
    )
    if with_pins:
        pin = _random_pin(rng, request)
        if pin is not None:
            request = AllocationRequest(
                name=request.name,
                resources=request.resources,
                tiers=request.tiers,
                partners=request.partners,
                objective=request.objective,
                constraints=(*request.constraints, pin),
                options=request.options,
            )
    return request


def _tiers(rng: random.Random, thresholds: Sequence[float], n_partners: int) -> tuple[Tier, ...]:
    names = ("t100m", "t1b")
    tiers = []
    upper = n_partners
    for index, threshold in enumerate(thresholds):
        target = rng.randint(1, max(1, upper))
        tiers.append(Tier(names[index], threshold, target, weight=rng.choice((1.0, 1.0, 2.0, 5.0))))
        upper = target  # fewer partners can reach a higher tier
    return tuple(tiers)


def _partner(
    rng: random.Random,
    index: int,
    resources: Sequence[Resource],
    caps: Sequence[int],
    thresholds: Sequence[float],
    kinds: Sequence[CurveKind],
    with_min: bool,
    share_rule: MaxShare | None,
    unlimited_budget: bool,
    package_chance: float,
) -> Partner:
    threshold = rng.choice(thresholds)
    uplift = threshold * rng.uniform(0.1, 0.6)  # what a full allocation of everything adds
    if rng.random() < 0.15:
        baseline = threshold * rng.uniform(1.0, 1.3)  # already there
    else:
        baseline = threshold - uplift * rng.uniform(0.2, 1.3)  # > 1: out of reach
    attributes = {"region": rng.choice(("north", "south", "east")), "score": rng.randint(1, 5)}
    pid = f"p{index:02d}"

    if package_chance and rng.random() < package_chance:
        packages = tuple(
            Package(
                name=f"pkg{k}",
                amounts={
                    resource.name: rng.randint(1, cap) * _step(resource)
                    for resource, cap in zip(resources, caps, strict=True)
                    if rng.random() < 0.8 or resource is resources[0]
                },
                uplift=uplift * rng.uniform(0.3, 1.2),
            )
            for k in range(rng.randint(1, 3))
        )
        return Partner(
            pid, baseline, name=f"Partner {index}", attributes=attributes, packages=packages
        )

    curves: dict[str, Curve] = {}
    bounds: dict[str, Bounds] = {}
    shares = [rng.uniform(0.3, 1.0) for _ in resources]
    for resource, cap, share in zip(resources, caps, shares, strict=True):
        if len(resources) > 1 and resource is not resources[0] and rng.random() < 0.2:
            continue  # no curve: this partner cannot use the resource
        step = _step(resource)
        units = rng.randint(1, cap)
        full = cap * step
        curves[resource.name] = _curve(
            rng, rng.choice(list(kinds)), full, uplift * share / sum(shares)
        )
        minimum = rng.randint(1, units) * step if with_min and rng.random() < 0.5 else 0.0
        capped_by_share = share_rule is not None and share_rule.resource == resource.name
        explicit_max = unlimited_budget or not capped_by_share or rng.random() < 0.5
        bounds[resource.name] = Bounds(min=minimum, max=units * step if explicit_max else None)
    return Partner(
        pid, baseline, name=f"Partner {index}", attributes=attributes, curves=curves, bounds=bounds
    )


def _step(resource: Resource) -> float:
    assert resource.step is not None
    return resource.step


def _curve(rng: random.Random, kind: CurveKind, full: float, uplift: float) -> Curve:
    """A curve of `kind` that gives about `uplift` at `full` units."""
    if kind is CurveKind.SATURATING:
        scale = full * rng.uniform(0.3, 1.5)
        return Curve(kind, max_uplift=uplift / -math.expm1(-full / scale), scale=scale)
    if kind is CurveKind.LOG:
        scale = full * rng.uniform(0.2, 1.0)
        return Curve(kind, coef=uplift / math.log1p(full / scale), scale=scale)
    if kind is CurveKind.LINEAR:
        return Curve(kind, roi=uplift / full)
    if kind is CurveKind.HILL:
        shape = rng.uniform(1.5, 4.0) if rng.random() < 0.75 else rng.uniform(0.6, 1.0)
        half = full * rng.uniform(0.3, 0.9)
        return Curve(
            kind,
            max_uplift=uplift * (1.0 + (half / full) ** shape),
            shape=shape,
            half_saturation=half,
        )
    # Points: a few knots, sometimes convex first (a threshold effect), flat after the last.
    n_knots = rng.randint(2, 4)
    xs = sorted(rng.sample(range(1, 2 * n_knots + 2), n_knots))
    xs_scaled = [0.0, *(full * x / xs[-1] for x in xs)]
    increments = [rng.uniform(0.0, 1.0) ** rng.choice((0.5, 2.0)) for _ in xs]
    if rng.random() < 0.5:
        increments.sort()  # rising slopes: not concave
    total = sum(increments) or 1.0
    ys = [0.0]
    for increment in increments:
        ys.append(ys[-1] + uplift * increment / total)
    return Curve(kind, xs=tuple(xs_scaled), ys=tuple(ys))


def _one_package_affordable(
    rule: OnePackage, partners: Sequence[Partner], resources: Sequence[Resource]
) -> bool:
    """Would the cheapest package of every partner the rule forces fit the budgets?"""
    for resource in resources:
        if resource.budget is None:
            continue
        need = sum(
            min(package.amounts.get(resource.name, 0.0) for package in partner.packages)
            for partner in partners
            if partner.packages and rule.where.matches(partner)
        )
        if need > resource.budget:
            return False
    return True


def _random_pin(rng: random.Random, request: AllocationRequest) -> Pin | None:
    """Pin one curve partner to an amount its bounds, eligibility and step allow."""
    candidates = [
        (partner, resource)
        for partner in request.partners
        for resource in request.resources
        if resource.name in partner.curves and request.eligible(partner, resource.name)
    ]
    if not candidates:
        return None
    partner, resource = rng.choice(candidates)
    step = _step(resource)
    low, high = request.amount_range(partner, resource.name)
    units = [
        k
        for k in range(math.floor(high / step + 1e-9) + 1)
        if k == 0 or k * step >= low - 1e-9 * step
    ]
    return Pin(partner.id, resource.name, rng.choice(units) * step)


@st.composite
def small_requests(
    draw: st.DrawFn,
    *,
    objectives: Sequence[Objective] = tuple(Objective),
    max_partners: int = 8,
    allow_packages: bool = True,
) -> AllocationRequest:
    """Hypothesis strategy over `random_small_request`'s knobs (shrinks towards plain)."""
    return random_small_request(
        draw(st.integers(0, 2**32 - 1)),
        n_partners=draw(st.integers(2, max_partners)),
        n_resources=draw(st.integers(1, 2)),
        n_tiers=draw(st.integers(1, 2)),
        objective=draw(st.sampled_from(list(objectives))),
        magnitude=draw(st.sampled_from(("unit", "realistic"))),
        with_min=draw(st.booleans()),
        with_eligibility=draw(st.booleans()),
        with_pins=draw(st.booleans()),
        with_max_share=draw(st.booleans()),
        with_group_budget=draw(st.booleans()),
        with_packages=allow_packages and draw(st.booleans()),
        packages_only=allow_packages and draw(st.integers(0, 9)) == 0,
    )
