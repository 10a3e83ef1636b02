"""Properties of `optimizer.solve` on random small requests (hypothesis).

For every valid request: solve returns plans instead of raising; every plan passes the
exact checker; ranks run 1, 2, … with no plan better than the one ranked above it (beyond
the requested gap); alternatives differ in who reaches which tier; an infeasible request
gives a single plan saying so.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.check import check_plan
from models.plan import Plan, SolveStatus
from models.request import AllocationRequest, Objective
from optimizer import solve
from tests.support.instances import small_requests

MIP_GAP = 1e-4
SHORTFALL_ATOL = 1e-9


def achievers(plan: Plan) -> frozenset[tuple[str, str]]:
    """(partner, tier) for every tier each partner reaches (tiers count cumulatively)."""
    return frozenset(
        (allocation.partner_id, tier.name)
        for allocation in plan.allocations
        for tier in plan.tiers
        if allocation.projected_gmv >= tier.min_gmv
    )


def ranking_problems(request: AllocationRequest, plans: list[Plan]) -> list[str]:
    """Where a plan beats the one ranked above it by more than the gap."""
    problems = []
    for above, below in itertools.pairwise(plans):
        a, b = above.objective, below.objective
        where = f"rank {below.rank} vs {above.rank}"
        if request.objective is not Objective.MAX_GMV:
            if b.weighted_shortfall < a.weighted_shortfall - SHORTFALL_ATOL:
                problems.append(
                    f"{where}: shortfall {b.weighted_shortfall} < {a.weighted_shortfall}"
                )
                continue
            if b.weighted_shortfall > a.weighted_shortfall + SHORTFALL_ATOL:
                continue
        if request.objective is Objective.MIN_COST:
            if b.total_cost < a.total_cost - MIP_GAP * max(a.total_cost, 1.0) - 1e-6:
                problems.append(f"{where}: cost {b.total_cost!r} < {a.total_cost!r}")
        elif b.total_projected_gmv > a.total_projected_gmv * (1 + MIP_GAP):
            problems.append(f"{where}: GMV {b.total_projected_gmv!r} > {a.total_projected_gmv!r}")
    return problems


def check_solve_properties(request: AllocationRequest, wanted: int) -> None:
    request = replace(
        request,
        options=replace(request.options, plans=wanted, mip_gap=MIP_GAP, time_limit_s=20.0),
    )
    plans = solve(request)  # valid input never raises

    assert 1 <= len(plans) <= wanted
    assert [plan.rank for plan in plans] == list(range(1, len(plans) + 1))
    for plan in plans:
        violations = check_plan(request, plan)
        assert violations == [], f"rank {plan.rank}: {violations}"
    if plans[0].solver.status is SolveStatus.INFEASIBLE:
        assert len(plans) == 1
        assert plans[0].binding_constraints
        return
    assert all(plan.solver.status is not SolveStatus.INFEASIBLE for plan in plans)
    problems = ranking_problems(request, plans)
    assert not problems, problems
    sets = [achievers(plan) for plan in plans]
    for i in range(len(sets)):
        for j in range(i):
            assert sets[i] != sets[j], f"ranks {j + 1} and {i + 1} have the same tier achievers"


# Solves take tens of milliseconds each: no per-example deadline.
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=12, deadline=None, suppress_health_check=SLOW_OK)
@given(request=small_requests(max_partners=6), wanted=st.integers(1, 3))
def test_solve_returns_valid_ranked_distinct_plans(request: AllocationRequest, wanted: int) -> None:
    check_solve_properties(request, wanted)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=SLOW_OK)
@given(request=small_requests(), wanted=st.integers(1, 4))
def test_solve_returns_valid_ranked_distinct_plans_thoroughly(
    request: AllocationRequest, wanted: int
) -> None:
    check_solve_properties(request, wanted)
