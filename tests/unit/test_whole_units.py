"""Plans in whole units (optimizer/whole_units.py, docs/exports.md): every variable amount
a multiple of its resource's step, else of 1, with budgets, bounds, shares, pins and tiers
still holding when re-checked exactly."""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import load_partners, scenario
from fixtures.families import family_programme
from models.check import check_plan
from models.plan import Plan, build_plan, curve_columns, projected_gmv
from models.request import AllocationRequest, Objective
from models.schemas import parse_request
from optimizer import solve
from optimizer.arrays import build_arrays
from optimizer.whole_units import to_grid, whole_units
from tests.support.instances import random_small_request


def _request(partners: list[dict[str, Any]], budget: float, **extra: Any) -> AllocationRequest:
    return parse_request(
        {
            "name": "whole-units",
            "resources": [{"name": "subsidy", "unit": "CNY", "budget": budget}],
            "tiers": [{"name": "100M", "min_gmv": 1e8, "target": len(partners)}],
            "partners": partners,
            **extra,
        }
    )


def _linear(pid: str, baseline: float, roi: float = 3.0, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "baseline_gmv": baseline,
        "response": {"subsidy": {"curve": "linear", "roi": roi}},
        **extra,
    }


def _rounded(request: AllocationRequest, amounts: list[float]) -> np.ndarray:
    arrays = build_arrays(request)
    column = np.array(amounts, dtype=np.float64).reshape(-1, 1)
    return whole_units(arrays, column, None, curve_columns(request))[:, 0]


def _gmv(request: AllocationRequest, amounts: np.ndarray) -> np.ndarray:
    return projected_gmv(request, amounts.reshape(-1, 1))


def test_to_grid_rounds_down_and_snaps_float_noise() -> None:
    got = to_grid(np.array([2.9999999999999, 3.7, 5e9 + 0.4, 0.0, 7e6]), np.array(1.0))
    assert got.tolist() == [3.0, 3.0, 5e9, 0.0, 7e6]
    assert to_grid(np.array([2.5e6 - 1e-7, 3.3e6]), np.array(1e6)).tolist() == [2e6, 3e6]


def test_a_partner_rounded_under_its_tier_gets_a_unit_back() -> None:
    # P1 sits exactly on the 100M threshold with a fractional amount: rounding down alone
    # would drop it out of the tier.
    request = _request(
        [_linear("P1", 1e8 - 3 * 1000.4), _linear("P2", 5e7)], budget=5000.0, objective="min_cost"
    )
    amounts = _rounded(request, [1000.4, 3999.6])
    assert amounts.tolist() == [1001.0, 3999.0]
    assert _gmv(request, amounts)[0] >= 1e8
    assert amounts.sum() <= 5000.0


def test_a_spent_budget_takes_the_unit_from_a_partner_no_tier_depends_on() -> None:
    # The budget is exactly what the engine spent: P1's unit back must come from P2.
    request = _request(
        [_linear("P1", 1e8 - 3 * 1000.5), _linear("P2", 5e7), _linear("P3", 1e8 - 3 * 10.5)],
        budget=1000.5 + 2000.5 + 10.5,
    )
    amounts = _rounded(request, [1000.5, 2000.5, 10.5])
    gmv = _gmv(request, amounts)
    assert gmv[0] >= 1e8 and gmv[2] >= 1e8
    assert amounts.tolist() == [1001.0, 1999.0, 11.0]  # 1.5 units of slack: P2 gives one
    assert amounts.sum() <= request.resources[0].budget  # type: ignore[operator]


def _at_a_max_off_the_grid(fund: bool = False) -> AllocationRequest:
    """min_cost; P1 reaches 100M with its subsidy at a max of 1000.4 and 500 of traffic;
    `fund`: P1 may also take a fund ticket of 900, and traffic costs 0.001 a unit."""
    resources: list[dict[str, Any]] = [
        {"name": "subsidy", "unit": "CNY", "budget": 2000.4},
        {"name": "traffic", "unit": "impressions", "budget": 600.0},
    ]
    curves = {
        "subsidy": {"curve": "linear", "roi": 3.0},
        "traffic": {"curve": "linear", "roi": 2.0},
    }
    bounds: dict[str, Any] = {"subsidy": {"max": 1000.4}}
    if fund:
        resources[1]["unit_cost"] = 0.001
        resources.append({"name": "fund", "unit": "CNY", "budget": 900.0, "step": 900.0})
        curves["fund"] = {"curve": "linear", "roi": 4.0}
        bounds["fund"] = {"min": 900.0}
    p1 = {
        "id": "P1",
        "baseline_gmv": 1e8 - 3 * 1000.4 - 2 * 500,
        "response": curves,
        "bounds": bounds,
    }
    return parse_request(
        {
            "name": "whole-units",
            "resources": resources,
            "tiers": [{"name": "100M", "min_gmv": 1e8, "target": 1}],
            "partners": [p1, _linear("P2", 5e7)],
            "objective": "min_cost",
        }
    )


def test_a_partner_at_a_max_off_the_grid_gets_its_tier_back_from_another_resource() -> None:
    # P1 reaches 100M with its subsidy at a max of 1000.4: rounded down to 1000, no unit fits
    # back under that max, so the tier must come back from traffic, past P1's original 500.
    request = _at_a_max_off_the_grid()
    arrays = build_arrays(request)
    engine = np.array([[1000.4, 500.0], [1000.0, 0.0]])
    amounts = whole_units(arrays, engine, None, curve_columns(request))
    assert amounts[0].tolist() == [1000.0, 501.0]
    assert projected_gmv(request, amounts)[0] >= 1e8


def test_a_partner_a_float_s_rounding_short_of_its_tier_is_lifted_over_it() -> None:
    # P1's amount leaves it 3e-8 under 100M (an exact repair lifted it "to" the
    # threshold): it counts as on the tier, and rounding gives it the unit that reaches it
    # (a max_gmv plan missed a group_count its MILP met that way).
    request = _request(
        [_linear("P1", 1e8 - 3 * 1000.4), _linear("P2", 5e7)], budget=5000.0, objective="max_gmv"
    )
    engine = [1000.4 - 1e-8, 3000.0]
    assert 1e8 - 1e-4 < _gmv(request, np.array(engine))[0] < 1e8
    amounts = _rounded(request, engine)
    assert amounts.tolist() == [1001.0, 3000.0]
    assert _gmv(request, amounts)[0] >= 1e8


def test_a_tier_comes_back_at_the_least_cost_not_with_a_whole_minimum_ticket() -> None:
    """P1 is a unit short of 100M once its subsidy at a max off the grid rounds down. Its
    fund's first unit is a 900 ticket (more GMV per unit than anything); a unit of its
    cheap traffic closes the gap for almost nothing (a generated min_cost programme took
    the 9M ticket that way: 10% on the plan's cost)."""
    request = _at_a_max_off_the_grid(fund=True)
    arrays = build_arrays(request)
    engine = np.array([[1000.4, 500.0, 0.0], [1000.0, 0.0, 0.0]])
    amounts = whole_units(arrays, engine, None, curve_columns(request))
    assert amounts[0].tolist() == [1000.0, 501.0, 0.0]
    assert projected_gmv(request, amounts)[0] >= 1e8


def test_leftover_units_are_spent_where_they_buy_most_but_not_under_min_cost() -> None:
    partners = [_linear("P1", 1e7, roi=2.0), _linear("P2", 1e7, roi=5.0)]
    request = _request(partners, budget=100.0)
    assert _rounded(request, [49.5, 49.5]).tolist() == [49.0, 50.0]
    cheap = replace(request, objective=Objective.MIN_COST)
    assert _rounded(cheap, [49.5, 49.5]).tolist() == [49.0, 49.0]


def test_a_fractional_minimum_ticket_rounds_up_to_the_grid_or_to_nothing() -> None:
    partners = [
        _linear("P1", 1e7, bounds={"subsidy": {"min": 2.5, "max": 10}}),
        _linear("P2", 1e7, bounds={"subsidy": {"min": 2.5, "max": 2.9}}),
    ]
    request = _request(partners, budget=100.0, objective="min_cost")
    assert _rounded(request, [2.7, 2.7]).tolist() == [3.0, 0.0]


def test_a_group_budget_minimum_is_topped_up_in_whole_units() -> None:
    partners = [
        _linear("P1", 1e7, attributes={"region": "south"}),
        _linear("P2", 1e7, attributes={"region": "north"}),
    ]
    rule = {"type": "group_budget", "resource": "subsidy", "where": {"region": "south"}}
    request = _request(
        partners,
        budget=100.0,
        objective="min_cost",
        constraints=[{**rule, "min_share": 0.305, "max_share": 1.0}],
    )
    amounts = _rounded(request, [30.5, 0.0])
    assert amounts.tolist() == [31.0, 0.0]


def test_a_full_group_cap_makes_room_for_tiers_from_members_no_tier_depends_on() -> None:
    # The south group's cap is what the engine spent there. Rounding down frees 0.9 of it,
    # but P1 and P3 each need a unit back to stay in their tier: P2 (no tier) gives one.
    south = {"attributes": {"region": "south"}}
    partners = [
        _linear("P1", 1e8 - 3 * 1000.4, **south),
        _linear("P2", 5e7, **south),
        _linear("P3", 1e8 - 3 * 10.5, **south),
        _linear("P4", 5e7, attributes={"region": "north"}),
    ]
    rule = {"type": "group_budget", "resource": "subsidy", "where": {"region": "south"}}
    engine = [1000.4, 2000.0, 10.5, 989.1]
    request = _request(
        partners,
        budget=4000.0,
        constraints=[{**rule, "min_share": 0.0, "max_share": 3010.9 / 4000.0}],
    )
    amounts = _rounded(request, engine)
    gmv = _gmv(request, amounts)
    assert gmv[0] >= 1e8 and gmv[2] >= 1e8
    assert amounts[:3].sum() <= 3010.9 and amounts.sum() <= 4000.0
    assert amounts[:3].tolist() == [1001.0, 1998.0, 11.0]


def test_a_rounding_that_loses_a_tier_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A rounding that passes the exact check but reaches fewer tiers than the engine's
    # amounts is a bug; the plan keeps the engine's amounts.
    request = _request([_linear("P1", 1e8 - 3 * 1000.4), _linear("P2", 5e7)], budget=5000.0)

    def lose_every_tier(arrays: Any, amounts: np.ndarray, *_: Any) -> np.ndarray:
        return np.zeros_like(amounts)

    monkeypatch.setattr(
        importlib.import_module("optimizer.returned_plans"), "whole_units", lose_every_tier
    )
    plan = solve(request)[0]
    assert plan.objective.weighted_shortfall == 1  # P2 cannot reach 100M; P1 can
    assert not check_plan(request, plan)


def _checked_plans(monkeypatch: pytest.MonkeyPatch) -> list[Plan]:
    """The plans the exact checker runs on, one entry per run (the engines check plans of
    their own on the way). Held, not their ids: a freed plan's id can come back."""
    checker = importlib.import_module("models.check")._Checker
    checked: list[Plan] = []
    run = checker.run

    def recorded(self: Any) -> list[str]:
        checked.append(self.plan)
        return run(self)

    monkeypatch.setattr(checker, "run", recorded)
    return checked


def _times(plan: Plan, checked: list[Plan]) -> int:
    return sum(other is plan for other in checked)


def test_each_plan_is_checked_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    data = scenario("tiny")
    data["options"] = {**data.get("options", {}), "plans": 2, "time_limit_s": 5}
    request = parse_request(data, partners=load_partners("tiny"))
    checked = _checked_plans(monkeypatch)
    plans = solve(request)
    assert len(plans) == 2
    # A second check of the same plan cost 17 s at 1,000,000 partners.
    assert [_times(plan, checked) for plan in plans] == [1, 1]


def test_the_engine_s_amounts_kept_after_a_bad_rounding_are_checked_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = _request([_linear("P1", 1e8 - 3 * 1000.4), _linear("P2", 5e7)], budget=5000.0)

    def overspend(arrays: Any, amounts: np.ndarray, *_: Any) -> np.ndarray:
        return amounts + 10_000.0  # breaks the budget: the exact check refuses it

    monkeypatch.setattr(
        importlib.import_module("optimizer.returned_plans"), "whole_units", overspend
    )
    checked = _checked_plans(monkeypatch)
    plan = solve(request)[0]
    assert _times(plan, checked) == 1  # the engine's amounts, after the refused rounding
    assert plan.allocations[0].amounts["subsidy"] < 10_000.0
    assert not check_plan(request, plan)


@pytest.mark.parametrize("engine", ["highs", "cbc", "decomposition"])
def test_every_engine_s_plans_are_whole_and_exactly_checked(engine: str) -> None:
    data = scenario("tiny")
    data["options"] = {**data.get("options", {}), "engine": engine, "time_limit_s": 5}
    request = parse_request(data, partners=load_partners("tiny"))
    for plan in solve(request):
        assert plan.solver.engine == engine
        _assert_whole(request, plan)
        assert check_plan(request, plan) == []


def _assert_whole(request: AllocationRequest, plan: Plan) -> None:
    pins = request.pins()
    for allocation in plan.allocations:
        if allocation.package is not None:
            continue
        for resource in request.resources:
            if (allocation.partner_id, resource.name) in pins:
                continue
            amount = allocation.amounts[resource.name]
            units = amount / (resource.step or 1.0)
            assert units == round(units), (allocation.partner_id, resource.name, amount)


def _continuous(request: AllocationRequest, stretch: float) -> AllocationRequest:
    """The request with its first resource's step dropped and its budget stretched off
    the grid, so the engines' amounts come out fractional."""
    first, *rest = request.resources
    budget = None if first.budget is None else first.budget * stretch + 0.37
    return replace(request, resources=(replace(first, step=None, budget=budget), *rest))


@contextmanager
def _fallbacks() -> Iterator[list[str]]:
    """The messages of the rounding fallbacks `optimizer.returned_plans` logs while the block
    runs."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "rounding broke" in record.getMessage():
                messages.append(record.getMessage())

    handler, logger = Collect(logging.WARNING), logging.getLogger("optimizer.returned_plans")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    seed=st.integers(0, 10_000),
    stretch=st.floats(0.6, 1.3),
    objective=st.sampled_from(list(Objective)),
    n_resources=st.integers(1, 2),
    flags=st.fixed_dictionaries(
        {
            "with_min": st.booleans(),
            "with_pins": st.booleans(),
            "with_max_share": st.booleans(),
            "with_group_budget": st.booleans(),
            "with_eligibility": st.booleans(),
        }
    ),
)
def test_every_plan_is_in_whole_units_and_passes_the_exact_check(
    seed: int, stretch: float, objective: Objective, n_resources: int, flags: dict[str, bool]
) -> None:
    base = random_small_request(
        seed,
        n_partners=6,
        n_resources=n_resources,
        n_tiers=2,
        objective=objective,
        magnitude="realistic",
        **flags,
    )
    request = _continuous(base, stretch)
    request = replace(request, options=replace(request.options, time_limit_s=5.0, plans=2))
    with _fallbacks() as fallbacks:
        plans = solve(request)
    assert fallbacks == []  # every plan's rounding held: none fell back to continuous amounts
    for plan in plans:
        _assert_whole(request, plan)
        assert check_plan(request, plan) == []
        for resource in plan.resources:
            if resource.budget is not None:
                assert resource.allocated <= resource.budget + 1e-6


def test_rounding_keeps_the_rounded_plan_no_worse_than_a_unit_per_partner() -> None:
    # On a realistic request the rounded plan's GMV is the engine's to within a few
    # units' worth of uplift per partner: rounding must not throw plans away.
    request = _continuous(random_small_request(7, n_partners=8, magnitude="realistic"), 1.1)
    arrays = build_arrays(request)
    columns = curve_columns(request)
    rng = np.random.default_rng(7)
    amounts = np.zeros((arrays.n_partners, arrays.n_resources))
    for i, r, high in zip(arrays.pair_partner, arrays.pair_resource, arrays.pair_max, strict=True):
        amounts[i, r] = rng.uniform(0, min(high, 1e7))
    budget = request.resources[0].budget
    assert budget is not None
    amounts *= min(1.0, budget / amounts.sum())
    rounded = whole_units(arrays, amounts, None, columns)
    assert np.all(rounded == np.floor(rounded))
    before = build_plan(request, amounts, _report())
    after = build_plan(request, rounded, _report())
    assert after.objective.weighted_shortfall <= before.objective.weighted_shortfall
    assert math.isclose(
        after.objective.total_projected_gmv, before.objective.total_projected_gmv, rel_tol=1e-6
    )


def _report() -> Any:
    from models.plan import SolverReport, SolveStatus

    return SolverReport("test", SolveStatus.FEASIBLE)


@pytest.mark.parametrize("unit", [1.0, 1e6])
def test_to_grid_keeps_amounts_already_on_the_grid(unit: float) -> None:
    on = np.arange(0, 50) * unit
    assert to_grid(on, np.array(unit)).tolist() == on.tolist()


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_generated_programmes_keep_their_rounded_plans(seed: int) -> None:
    # Seed 11 once fell back to the engine's amounts: a partner's subsidy sat at a max off
    # the grid and rounding lost its tier by ¥1.23.
    request = family_programme(seed, 50, 0.9, resources=4).request()
    with _fallbacks() as fallbacks:
        plans = solve(request)
    assert fallbacks == []
    for plan in plans:
        _assert_whole(request, plan)
