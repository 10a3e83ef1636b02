"""Exact pairwise moves (`optimizer.polish`): never less GMV, never a broken rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.check import check_plan
from models.plan import SolverReport, SolveStatus, build_plan, curve_columns, projected_gmv
from models.schemas import parse_request
from optimizer.arrays import build_arrays
from optimizer.clock import Clock
from optimizer.decomposition import solve_decomposition
from optimizer.polish import polish
from tests.support.programmes import generated_request


def _two_partners() -> Any:
    def partner(i: int) -> dict[str, Any]:
        return {
            "id": f"P{i}",
            "baseline_gmv": 2e7,
            "response": {"subsidy": {"curve": "saturating", "max_uplift": 4e7, "scale": 1e7}},
        }

    body = {
        "objective": "max_gmv",
        "resources": [{"name": "subsidy", "unit": "CNY", "budget": 2e7}],
        "partners": [partner(0), partner(1)],
    }
    return parse_request(body)


def test_moves_spread_a_concave_resource_and_keep_its_total() -> None:
    request = _two_partners()
    arrays = build_arrays(request)
    columns = curve_columns(request)
    lopsided = np.array([[2e7], [0.0]])
    moved = polish(arrays, columns, lopsided, Clock(10.0))
    before = projected_gmv(request, lopsided, None, columns).sum()
    after = projected_gmv(request, moved, None, columns).sum()
    assert after > before * 1.01  # equal curves: the optimum splits the budget evenly
    assert moved.sum() == pytest.approx(2e7) and abs(moved[0, 0] - moved[1, 0]) < 1e5


@pytest.mark.parametrize("seed", [1, 2])
def test_moves_on_an_engine_plan_keep_it_exactly_valid(seed: int) -> None:
    request = generated_request(80, seed, time_limit_s=5.0)
    outcome = solve_decomposition(request, time_limit_s=5.0, mip_gap=1e-3)
    start = outcome.candidates[0].amounts
    arrays = build_arrays(request)
    moved = polish(arrays, curve_columns(request), start, Clock(5.0))
    report = SolverReport("polish", SolveStatus.FEASIBLE)
    before, after = build_plan(request, start, report), build_plan(request, moved, report)
    assert check_plan(request, after) == []
    assert after.objective.weighted_shortfall <= before.objective.weighted_shortfall
    assert after.objective.total_projected_gmv >= before.objective.total_projected_gmv
