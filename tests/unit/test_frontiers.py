"""Budget frontiers: points in budget order, monotone, the base budget's point the base
plan; on a seeded generated programme and with a point made deliberately bad."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.check import check_plan
from models.plan import build_plan
from models.schemas import RequestValidationError
from optimizer import solve
from service.comparisons import ScenarioOutcome
from service.explain import rebuild
from service.frontiers import (
    frontier_budgets,
    point_scenarios,
    prepare_points,
    run_frontier,
    solve_point,
    summarize_frontier,
)
from tests.support.programmes import generated_request


def _no_worse(points: list[dict]) -> None:
    """Each point's (shortfall, -GMV) is no worse than the one at the smaller budget."""
    for smaller, larger in itertools.pairwise(points):
        assert larger["budget"] > smaller["budget"]
        assert (larger["weighted_shortfall"], -larger["total_projected_gmv"]) <= (
            smaller["weighted_shortfall"],
            -smaller["total_projected_gmv"],
        ), (smaller, larger)


@pytest.mark.parametrize("seed", [3, 6])
def test_a_generated_programmes_frontier_is_monotone(seed: int) -> None:
    request = generated_request(10, seed, targets=(4, 9), time_limit_s=20)
    budgets = frontier_budgets(request, "fund", multipliers=[2, 0.25, 1, 0.5, 4])
    frontier = run_frontier(request, "fund", budgets)
    points = frontier["points"]
    base_budget = request.resource("fund").budget
    assert base_budget is not None
    assert [p["budget"] for p in points] == [base_budget * m for m in (0.25, 0.5, 1, 2, 4)]
    assert all(p["status"] != "failed" for p in points)
    _no_worse(points)
    assert points[0]["weighted_shortfall"] >= points[-1]["weighted_shortfall"]


def test_a_worse_point_takes_the_cheaper_points_plan() -> None:
    request = generated_request(8, 3, targets=(4, 8), time_limit_s=20)
    points = prepare_points(request, {"scenarios": point_scenarios("subsidy", [1e7, 2e7])})
    cheap = solve_point(points[0])
    assert cheap.plans
    # The larger budget's own result: nothing allocated at all (as if its solve had
    # found nothing better than the empty plan).
    larger = points[1].request
    assert larger is not None
    empty = np.zeros((len(larger.partners), len(larger.resources)))
    poor = build_plan(larger, empty, cheap.plans[0].solver)
    assert poor.objective.weighted_shortfall > cheap.plans[0].objective.weighted_shortfall
    outcomes = [cheap, ScenarioOutcome(points[1].name, larger, [poor], None)]
    frontier = summarize_frontier(request, "subsidy", outcomes)
    first, second = frontier["points"]
    assert second["carried_from"] == pytest.approx(1e7)
    assert second["weighted_shortfall"] == first["weighted_shortfall"]
    assert second["total_projected_gmv"] == pytest.approx(first["total_projected_gmv"])
    # The carried plan really holds at the larger budget.
    assert check_plan(larger, rebuild(larger, cheap.plans[0])) == []


def test_the_base_budgets_point_is_the_base_plan_without_a_solve() -> None:
    request = generated_request(8, 3, targets=(4, 8), time_limit_s=20)
    base_plans = solve(request)
    budget = request.resource("subsidy").budget
    points = prepare_points(request, {"scenarios": point_scenarios("subsidy", [budget])})
    outcome = solve_point(points[0], base_plans=base_plans, base_budget=budget, resource="subsidy")
    assert outcome.plans is not None and outcome.plans[0] is base_plans[0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"budgets": [1.0], "multipliers": [1.0]}, "_schema"),
        ({}, "_schema"),
        ({"multipliers": []}, "multipliers"),
        ({"budgets": [-1.0]}, "budgets"),
        ({"multipliers": [1.0] * 26}, "multipliers"),
    ],
)
def test_bad_frontiers_name_the_field(kwargs: dict, field: str) -> None:
    request = generated_request(4, 3)
    with pytest.raises(RequestValidationError) as caught:
        frontier_budgets(request, "subsidy", **kwargs)
    assert field in caught.value.messages
