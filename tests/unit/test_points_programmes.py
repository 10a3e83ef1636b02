"""Family programmes with `points` curves (`fixtures.points`): the decomposition, which
declined them until it modelled their hulls, against the CBC MILP on the same requests.
Each plan passes the exact check, the two agree on a proven shortfall, and each engine's
bound holds for the other's plan: a bound below a plan that exists is a false
certificate."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fixtures.families import family_programme
from fixtures.points import as_points
from models.check import check_plan
from models.curves import CurveKind
from models.plan import Plan, SolveStatus
from models.request import AllocationRequest, Objective
from optimizer import solve
from optimizer.engines import DECOMPOSITION, available_engines

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        DECOMPOSITION not in available_engines() or "cbc" not in available_engines(),
        reason="needs the decomposition and CBC",
    ),
]
CASES = [
    (0, 300, 1.0, Objective.MAX_ATTAINMENT),
    (1, 300, 0.3, Objective.MAX_GMV),
    (2, 600, 0.5, Objective.MAX_ATTAINMENT),
    (3, 600, 1.0, Objective.MIN_COST),
    (4, 1000, 0.5, Objective.MAX_GMV),
    (5, 1000, 1.0, Objective.MAX_ATTAINMENT),
]


def _request(seed: int, size: int, share: float, objective: Objective) -> AllocationRequest:
    family = family_programme(seed, size, 0.95, time_limit_s=60.0).request()
    request = as_points(family, share, seed)
    assert any(c.kind is CurveKind.POINTS for p in request.partners for c in p.curves.values())
    return replace(request, objective=objective)


def _solved(request: AllocationRequest, engine: str) -> Plan:
    plan = solve(replace(request, options=replace(request.options, engine=engine)))[0]
    assert plan.solver.engine == engine
    assert check_plan(request, plan) == []
    return plan


@pytest.mark.parametrize(("seed", "size", "share", "objective"), CASES)
def test_the_decomposition_agrees_with_the_milp_on_points_programmes(
    seed: int, size: int, share: float, objective: Objective
) -> None:
    request = _request(seed, size, share, objective)
    mine, milp = _solved(request, DECOMPOSITION), _solved(request, "cbc")
    assert mine.solver.status is not SolveStatus.ERROR
    shortfalls = (mine.objective.weighted_shortfall, milp.objective.weighted_shortfall)
    if mine.solver.shortfall_proven and milp.solver.shortfall_proven:
        assert shortfalls[0] == pytest.approx(shortfalls[1])
    for plan, other in ((mine, milp), (milp, mine)):
        bound = plan.solver.best_bound
        if objective is Objective.MAX_ATTAINMENT and shortfalls[0] != shortfalls[1]:
            continue  # each bound holds at its own plan's shortfall
        if bound is None:
            continue
        if objective is Objective.MIN_COST:
            assert other.objective.total_cost >= bound * (1 - 1e-9) - 1e-6
        else:
            assert other.objective.total_projected_gmv <= bound * (1 + 1e-9) + 1e-6
