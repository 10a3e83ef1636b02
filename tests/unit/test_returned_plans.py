"""The solver report a returned plan carries is true of that plan (`returned_plans`): its
gap is measured on the plan's own figures, and `optimal` only while that gap holds."""

from __future__ import annotations

import numpy as np
import pytest

from models.plan import SolverReport, SolveStatus, build_plan
from models.request import AllocationRequest
from models.schemas import parse_request
from optimizer.returned_plans import reported_as_is


def _request(objective: str) -> AllocationRequest:
    return parse_request(
        {
            "objective": objective,
            "options": {"mip_gap": 0.001},
            "resources": [{"name": "subsidy", "unit": "CNY", "budget": 200.0}],
            "partners": [
                {
                    "id": "P1",
                    "baseline_gmv": 1e4,
                    "response": {"subsidy": {"curve": "linear", "roi": 3.0}},
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("objective", "bound", "status", "gap"),
    [
        ("min_cost", 99.95, SolveStatus.OPTIMAL, 0.05 / 99.95),  # cost 100: within 0.1%
        ("min_cost", 90.0, SolveStatus.FEASIBLE, 10.0 / 90.0),  # 11% over the bound
        ("max_gmv", 10300.5, SolveStatus.OPTIMAL, 0.5 / 10300.5),  # GMV 10,300
        ("max_gmv", 10400.0, SolveStatus.FEASIBLE, 100.0 / 10400.0),
    ],
)
def test_the_gap_is_the_plan_s_own_and_optimal_only_within_the_request_s(
    objective: str, bound: float, status: SolveStatus, gap: float
) -> None:
    request = _request(objective)
    engine_said = SolverReport("cbc", SolveStatus.OPTIMAL, mip_gap=3e-8, best_bound=bound)
    plan = build_plan(request, np.array([[100.0]]), engine_said)
    allocations = list(plan.allocations)
    reported = reported_as_is(request, plan)
    assert reported.solver.status is status
    assert reported.solver.mip_gap == pytest.approx(gap)
    assert reported.allocations == allocations


def test_a_plan_without_a_gap_is_left_as_it_is() -> None:
    request = _request("min_cost")
    report = SolverReport("cbc", SolveStatus.FEASIBLE, mip_gap=None, best_bound=90.0)
    plan = build_plan(request, np.array([[100.0]]), report)
    assert reported_as_is(request, plan).solver == report
