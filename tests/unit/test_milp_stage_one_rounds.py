"""Stage 1 on CBC keeps refining for a third round at an unchanged shortfall and bound:
the third round's breakpoints are what prove it (issue 12: a plan must say whether its
shortfall is proven, and the engine should prove it when it can)."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.families import family_request
from models.check import check_plan
from models.plan import SolveStatus
from models.schemas import parse_request
from optimizer import solve
from optimizer.engines import available_engines

pytestmark = pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")


def test_a_shortfall_the_third_refinement_proves_is_proven() -> None:
    # Family seed 3, 600 partners: the decomposition's stage 1 ends at shortfall 1,
    # unproven (its Lagrangian allows 46.003 of the 46 weighted targets); CBC's rounds
    # read (1, bound 0), (1, bound 0), then (1, bound 1). With two rounds the plan came
    # back `feasible` and unproven.
    request, _ = family_request(3, 600, 0.95, time_limit_s=40.0, mip_gap=1e-3)
    plan = solve(request)[0]
    assert plan.solver.engine == "cbc"
    assert plan.objective.weighted_shortfall == 1.0
    assert plan.solver.shortfall_proven is True
    assert plan.solver.shortfall_bound == 1.0
    assert plan.solver.status is SolveStatus.OPTIMAL


def test_stage_one_refines_at_the_outer_solution_in_the_outer_model_s_columns() -> None:
    # Found by the hypothesis property test: an alternative's stage-1 round read the outer
    # model's solution with the inner model's columns. Here the outer model had fewer, and
    # the solve raised IndexError; elsewhere it refined at amounts nobody chose.
    def partner(pid: str, baseline: float, region: str, **curves: dict[str, Any]) -> dict[str, Any]:
        bounds = {name: {"max": 1} for name in curves}
        if pid == "p01":
            bounds["subsidy"] = {"max": 2}
        return {
            "id": pid,
            "baseline_gmv": baseline,
            "attributes": {"region": region},
            "response": curves,
            "bounds": bounds,
        }

    request = parse_request(
        {
            "name": "stage-one-columns",
            "resources": [
                {"name": "subsidy", "unit": "CNY", "budget": 2, "step": 1},
                {"name": "traffic", "unit": "impressions", "budget": 1, "step": 1,
                 "unit_cost": 0.5},
            ],
            "tiers": [{"name": "t100m", "min_gmv": 100, "target": 2, "weight": 2}],
            "objective": "min_cost",
            "partners": [
                partner("p00", 89.11212151480079, "north",
                        subsidy={"curve": "points", "x": [0, 2 / 9, 4 / 9, 2 / 3, 2],
                                 "y": [0, 4.986151932150921, 5.210589092279882,
                                       7.049697488823151, 8.46114019907131]}),
                partner("p01", 88.0179586784989, "south",
                        subsidy={"curve": "hill", "max_uplift": 26.77119970232783,
                                 "half_saturation": 1.7875206979633185,
                                 "shape": 3.830149912202052},
                        traffic={"curve": "linear", "roi": 9.003880765804707}),
                partner("p02", 57.31443688066576, "north",
                        subsidy={"curve": "log", "coef": 18.56312100353275,
                                 "scale": 0.9776489823255766},
                        traffic={"curve": "points", "x": [0, 0.25, 0.5, 1],
                                 "y": [0, 2.1310373210543196, 37.630021903407425,
                                       37.802963107675474]}),
                partner("p03", 76.97131135208221, "south",
                        subsidy={"curve": "hill", "max_uplift": 22.280186919680983,
                                 "half_saturation": 1.3342343410657358,
                                 "shape": 2.506953919024273}),
            ],
            "constraints": [
                {"type": "group_budget", "resource": "subsidy", "where": {"region": "south"},
                 "max_share": 0.5}
            ],
            "options": {"plans": 2, "mip_gap": 1e-4, "time_limit_s": 20, "seed": 874},
        }
    )  # fmt: skip
    plans = solve(request)
    assert plans and all(check_plan(request, plan) == [] for plan in plans)
