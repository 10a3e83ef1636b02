"""The decomposition engine against exact references, and its certificate.

Small requests (tests.support.instances) are solved exactly by dynamic programming
(tests.support.bruteforce); the engine's plan must pass the exact checker, its stage-1
shortfall must match the optimum, and its bound must never be on the wrong side of the
true optimum (that would be a false certificate).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from models.check import check_plan
from models.curves import Curve, CurveKind
from models.plan import Plan, SolverReport, SolveStatus, build_plan
from models.request import (
    AllocationRequest,
    Bounds,
    GroupBudget,
    GroupCount,
    Objective,
    Options,
    Partner,
    Resource,
    Tier,
    Where,
)
from optimizer.clock import BOUND_NOISE
from optimizer.decomposition import solve_decomposition
from optimizer.decomposition.family import Family, kind_code
from optimizer.decomposition.problem import _family
from optimizer.outcome import EngineOutcome
from tests.support.bruteforce import Reference, solve_reference
from tests.support.instances import SAMPLE_CURVES, random_small_request

KINDS = (CurveKind.SATURATING, CurveKind.LOG, CurveKind.LINEAR, CurveKind.HILL, CurveKind.POINTS)
RTOL = 1e-7


def run(request: AllocationRequest, mip_gap: float = 1e-6) -> tuple[EngineOutcome, Plan]:
    outcome = solve_decomposition(request, time_limit_s=20.0, mip_gap=mip_gap)
    candidate = outcome.candidates[0]
    plan = build_plan(
        request,
        candidate.amounts,
        SolverReport(outcome.engine, outcome.status),
        binding_constraints=outcome.binding_constraints,
    )
    return outcome, plan


def assert_certificate(request: AllocationRequest, outcome: EngineOutcome, plan: Plan) -> None:
    """The bound is on the right side of the plan's own objective, and the gap is honest."""
    assert outcome.best_bound is not None
    objective = (
        plan.objective.total_cost
        if request.objective is Objective.MIN_COST
        else plan.objective.total_projected_gmv
    )
    slack = RTOL * max(abs(objective), 1.0)
    if request.objective is Objective.MIN_COST:
        assert outcome.best_bound <= objective + slack
    else:
        assert outcome.best_bound >= objective - slack
    assert outcome.mip_gap is not None
    # The gap is one-sided: a bound a rounding error on the wrong side of the plan (checked
    # against `slack` above) means gap 0, and so does room within float noise (a plan
    # costing 0 against a bound of -1e-7 is not 100% short of it).
    room = outcome.best_bound - objective
    if request.objective is Objective.MIN_COST:
        room = -room
    expected = 0.0 if room <= BOUND_NOISE else room / max(abs(outcome.best_bound), 1e-12)
    assert outcome.mip_gap == pytest.approx(expected, rel=1e-6, abs=1e-9)


def assert_bound_valid(request: AllocationRequest, outcome: EngineOutcome, ref: Reference) -> None:
    """Never a false certificate: the bound is no better than the true optimum."""
    assert outcome.best_bound is not None
    if request.objective is Objective.MIN_COST:
        assert outcome.best_bound <= ref.total_cost + RTOL * max(ref.total_cost, 1.0)
    else:
        assert outcome.best_bound >= ref.total_gmv - RTOL * ref.total_gmv


CASES = [
    pytest.param(
        seed, objective, options, id=f"{objective.value}-{seed}-{'+'.join(options) or 'plain'}"
    )
    for seed in range(6)
    for objective in Objective
    for options in (
        (),
        ("with_min",),
        ("with_eligibility", "with_max_share"),
        ("with_pins",),
        ("with_group_budget",),
    )
]


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "objective", "options"), CASES)
def test_small_requests_against_exact_optimum(
    seed: int, objective: Objective, options: tuple[str, ...]
) -> None:
    request = random_small_request(
        seed,
        n_partners=5,
        n_resources=1 + seed % 2,
        n_tiers=1 + (seed // 2) % 2,
        objective=objective,
        kinds=KINDS,
        magnitude="realistic" if seed % 3 == 0 else "unit",
        **{option: True for option in options},
    )
    ref = solve_reference(request)
    assert ref.feasible
    outcome, plan = run(request)

    assert check_plan(request, plan) == []
    assert_certificate(request, outcome, plan)
    assert_bound_valid(request, outcome, ref)
    if objective is not Objective.MAX_GMV:
        assert plan.objective.weighted_shortfall == pytest.approx(ref.weighted_shortfall)
    if outcome.status is SolveStatus.OPTIMAL:
        if objective is Objective.MIN_COST:
            assert plan.objective.total_cost <= ref.total_cost * (1 + 1e-5) + 1e-6
        else:
            assert plan.objective.total_projected_gmv >= ref.total_gmv * (1 - 1e-5)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Targets met at no cost: a cost bound of 1.2e-7 against a plan costing 0 left it unbounded.
@example(2736143, 2, 2, 2, Objective.MIN_COST, False, False, False, False, False)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_partners=st.integers(1, 8),
    n_resources=st.integers(1, 2),
    n_tiers=st.integers(1, 2),
    objective=st.sampled_from(list(Objective)),
    with_min=st.booleans(),
    with_eligibility=st.booleans(),
    with_pins=st.booleans(),
    with_max_share=st.booleans(),
    with_group_budget=st.booleans(),
)
def test_property_bound_covers_plan_and_plan_is_feasible(
    seed: int,
    n_partners: int,
    n_resources: int,
    n_tiers: int,
    objective: Objective,
    with_min: bool,
    with_eligibility: bool,
    with_pins: bool,
    with_max_share: bool,
    with_group_budget: bool,
) -> None:
    request = random_small_request(
        seed,
        n_partners=n_partners,
        n_resources=n_resources,
        n_tiers=n_tiers,
        objective=objective,
        kinds=KINDS,
        magnitude="realistic" if seed % 2 else "unit",
        with_min=with_min,
        with_eligibility=with_eligibility,
        with_pins=with_pins,
        with_max_share=with_max_share,
        with_group_budget=with_group_budget,
    )
    outcome, plan = run(request, mip_gap=1e-3)
    assert check_plan(request, plan) == []
    if outcome.status is SolveStatus.INFEASIBLE:
        # Only pins fighting budgets or group shares can make a request infeasible here.
        assert with_pins and outcome.binding_constraints
        assert not solve_reference(request).feasible
        return
    assert_certificate(request, outcome, plan)
    if outcome.status is SolveStatus.OPTIMAL:
        assert outcome.mip_gap is not None and outcome.mip_gap <= 1e-3


def programme(n: int, seed: int = 3) -> AllocationRequest:
    """A small programme like the bundled fixture: two tiers, three resources, tickets."""
    rng = np.random.default_rng(seed)
    baseline = np.exp(rng.normal(np.log(3e7), 1.2, n)).clip(1e6, 5e9)
    partners = []
    for i in range(n):
        b = float(baseline[i])
        curves = {
            "subsidy": Curve(CurveKind.SATURATING, max_uplift=0.3 * b, scale=0.3 * b / 6),
            "traffic": Curve(CurveKind.LOG, coef=0.2 * b, scale=2e8),
        }
        bounds = {"traffic": Bounds(max=2e9)}
        if i % 3 == 0:
            curves["fund"] = Curve(
                CurveKind.HILL, max_uplift=0.5 * b, shape=2.0, half_saturation=2e7
            )
            bounds["fund"] = Bounds(min=5e6, max=6e7)
        region = "north" if i % 4 == 0 else "south"
        partners.append(
            Partner(f"P{i:04d}", b, curves=curves, bounds=bounds, attributes={"region": region})
        )
    return AllocationRequest(
        resources=(
            Resource("subsidy", budget=4e8 * n / 5000 * 10),
            Resource(
                "traffic", unit="impressions", budget=2e11 * n / 5000, step=1e6, unit_cost=0.02
            ),
            Resource("fund", budget=2e9 * n / 5000, step=1e6),
        ),
        tiers=(Tier("100M", 1e8, max(1, n // 12)), Tier("1B", 1e9, max(1, n // 120))),
        partners=tuple(partners),
        options=Options(time_limit_s=30.0),
    )


@pytest.mark.slow
@pytest.mark.parametrize("objective", list(Objective))
def test_programme_plan_is_exact_and_certified(objective: Objective) -> None:
    request = replace(programme(600), objective=objective)
    outcome, plan = run(request, mip_gap=1e-3)
    assert check_plan(request, plan) == []
    assert_certificate(request, outcome, plan)
    assert outcome.mip_gap is not None and outcome.mip_gap < 0.02
    if objective is not Objective.MAX_GMV:
        assert plan.objective.weighted_shortfall == 0
    spent = {r.name: r.allocated for r in plan.resources}
    if objective is not Objective.MIN_COST:
        # GMV objectives leave no budget idle that a curve could still use.
        assert spent["subsidy"] == pytest.approx(request.resources[0].budget, rel=1e-3)


@pytest.mark.slow
def test_group_count_and_group_budget_hold_in_the_plan() -> None:
    base = programme(600)
    north = Where({"region": "north"})
    request = replace(
        base,
        constraints=(
            GroupCount("1B", 2, north),
            GroupBudget("subsidy", north, min_share=0.1, max_share=0.2),
        ),
    )
    outcome, plan = run(request, mip_gap=1e-3)
    assert check_plan(request, plan) == []
    assert_certificate(request, outcome, plan)
    gmv = {a.partner_id: a.projected_gmv for a in plan.allocations}
    north_ids = {p.id for p in request.partners if p.attributes["region"] == "north"}
    assert sum(1 for pid in north_ids if gmv.get(pid, 0.0) >= 1e9) >= 2
    subsidy = sum(a.amounts["subsidy"] for a in plan.allocations if a.partner_id in north_ids)
    budget = request.resources[0].budget
    assert budget is not None and 0.1 * budget * (1 - 1e-9) <= subsidy <= 0.2 * budget * (1 + 1e-9)


@pytest.mark.slow
def test_unreachable_group_count_is_infeasible() -> None:
    north = Where({"region": "north"})
    request = replace(programme(600), constraints=(GroupCount("1B", 40, north),))
    outcome, plan = run(request)
    assert outcome.status is SolveStatus.INFEASIBLE
    assert any("group_count" in name for name in outcome.binding_constraints)
    assert outcome.best_bound is None
    assert check_plan(request, plan) == []


def test_stops_when_asked_and_reports_interrupted() -> None:
    request = programme(300)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    outcome = solve_decomposition(request, time_limit_s=60.0, mip_gap=0.0, should_stop=stop)
    assert outcome.status is SolveStatus.INTERRUPTED  # a cancel, not the clock
    assert outcome.best_bound is not None and outcome.mip_gap is not None
    plan = build_plan(request, outcome.candidates[0].amounts, SolverReport("d", outcome.status))
    assert check_plan(request, plan) == []


@pytest.mark.parametrize(
    "curve",
    [
        Curve(CurveKind.SATURATING, max_uplift=5e7, scale=1e7),
        Curve(CurveKind.LOG, coef=3e7, scale=2e6),
        Curve(CurveKind.HILL, max_uplift=8e7, shape=2.5, half_saturation=3e7),
        Curve(CurveKind.HILL, max_uplift=8e7, shape=0.7, half_saturation=3e7),
    ],
    ids=lambda c: f"{c.kind.value}-{c.shape}",
)
@pytest.mark.parametrize("lo", [0.0, 5e6])
def test_family_envelope_dominates_and_slope_inverse_is_optimal(curve: Curve, lo: float) -> None:
    family = Family(
        np.array([kind_code(curve)], dtype=np.int8),
        np.array([curve.coef if curve.kind is CurveKind.LOG else curve.max_uplift]),
        np.array([curve.half_saturation if curve.kind is CurveKind.HILL else curve.scale]),
        np.array([curve.shape]),
    )
    family.set_domain(np.array([lo]), np.array([2e8]))
    grid = np.linspace(lo, 2e8, 4001)
    exact = curve.value(grid)
    assert np.allclose(family.value(grid[:1]), exact[:1])
    envelope = np.array([family.envelope(np.array([x]))[0] for x in grid])
    assert np.all(envelope >= exact - 1e-6 * exact.max())
    for price in (0.01, 0.3, 1.0, 3.0, 30.0):
        x = family.argmax_slope(np.array([price]))[0]
        best_on_grid = float(np.max(envelope - price * grid))
        found = float(family.envelope(np.array([x]))[0] - price * x)
        assert found >= best_on_grid - 1e-7 * max(abs(best_on_grid), 1.0)


@pytest.mark.parametrize("price", [1e300, 1e308, np.inf])
def test_a_price_beyond_every_slope_takes_nothing_without_float_trouble(price: float) -> None:
    # A hill with shape < 1 is infinitely steep at 0, so no price sends it to its chord
    # end first: the slope inverse sees the price itself. A hypothesis run of the bound
    # property met overflow there (and inf - inf inside the Newton steps).
    curve = Curve(CurveKind.HILL, max_uplift=8e7, shape=0.7, half_saturation=3e7)
    family = Family(
        np.array([kind_code(curve)], dtype=np.int8),
        np.array([curve.max_uplift]),
        np.array([curve.half_saturation]),
        np.array([curve.shape]),
    )
    family.set_domain(np.array([0.0]), np.array([2e8]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        steep, steeper = (family.argmax_slope(np.array([p]))[0] for p in (1e10, price))
    assert 0.0 <= steeper <= steep < 1e-20, "steeper prices take less, and next to nothing"


@pytest.mark.slow
def test_unreachable_targets_give_proven_shortfall() -> None:
    partners = tuple(
        Partner(f"P{i}", 9e7, curves={"s": Curve(CurveKind.SATURATING, max_uplift=2e7, scale=5e6)})
        for i in range(10)
    )
    request = AllocationRequest(
        resources=(Resource("s", budget=2.4e7, step=1e6),),
        tiers=(Tier("100M", 1e8, 8),),
        partners=partners,
    )
    outcome, plan = run(request)
    ref = solve_reference(request)
    assert check_plan(request, plan) == []
    assert plan.objective.weighted_shortfall == pytest.approx(ref.weighted_shortfall)
    assert ref.weighted_shortfall > 0
    assert_bound_valid(request, outcome, ref)
    assert math.isfinite(outcome.best_bound or math.nan)


@given(
    picks=st.lists(st.integers(-1, len(SAMPLE_CURVES) - 1), min_size=1, max_size=12),
    amounts=st.lists(st.floats(-1e6, 3e8), min_size=12, max_size=12),
)
@settings(max_examples=60, deadline=None)
def test_family_values_and_slopes_are_each_curve_s_own(
    picks: list[int], amounts: list[float]
) -> None:
    """Mixed kinds, one kind, and rows without a curve (-1): each row's value and right
    slope are its curve's (amounts below 0 count as 0; no curve gives 0)."""
    mixed: list[Curve | None] = [None if p < 0 else SAMPLE_CURVES[p] for p in picks]
    one_kind: list[Curve | None] = [SAMPLE_CURVES[abs(picks[0])]] * 5
    for curves in (mixed, one_kind):
        family = _family(curves)
        x = np.array(amounts[: len(curves)])
        value, slope = family.value(x), family.derivative(x)
        for i, curve in enumerate(curves):
            at = max(float(x[i]), 0.0)
            expected = (0.0, 0.0) if curve is None else (curve.value(at), curve.derivative(at))
            assert value[i] == pytest.approx(expected[0], rel=1e-12, abs=1e-9)
            assert slope[i] == pytest.approx(expected[1], rel=1e-12, abs=1e-15)
