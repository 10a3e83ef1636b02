"""`min_cost` at a confidence (docs/uncertainty.md, issue 8): it meets every target that
`max_attainment` meets with the same budgets, and it costs no less at a higher confidence.

Seeded generated programmes of 300 partners (`bench.instances.load`), budgets ×10 of the
scaled programme's, so the cost is what the targets need."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bench.instances import load
from models.check import check_plan
from models.plan import Plan
from models.request import AllocationRequest, MaxShare, Objective
from optimizer.confidence import spending
from optimizer.solve import solve

N_PARTNERS = 300
BUDGET_FACTOR = 10


def _programme(seed: int, share: float, objective: Objective, alpha: float) -> AllocationRequest:
    request = load(N_PARTNERS, seed=seed)
    tiers = tuple(
        dataclasses.replace(tier, target=max(1, int(tier.target * share))) for tier in request.tiers
    )
    resources = tuple(
        dataclasses.replace(r, budget=None if r.budget is None else BUDGET_FACTOR * r.budget)
        for r in request.resources
    )
    # The decomposition alone, so that both objectives see the same engine run to run.
    options = dataclasses.replace(
        request.options, time_limit_s=10, engine="decomposition", confidence=alpha
    )
    return dataclasses.replace(
        request, tiers=tiers, resources=resources, objective=objective, options=options
    )


def _solved(request: AllocationRequest) -> Plan:
    plan = solve(request)[0]
    assert check_plan(request, plan) == []
    assert plan.uncertainty is not None
    return plan


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.5, 0.8])
def test_min_cost_misses_no_target_max_attainment_meets(alpha: float) -> None:
    """Seed 3 at full targets: the 1B target cannot hold at α even with every budget spent,
    so both plans fall short. `min_cost` used to stop at partners sitting exactly on their
    thresholds (p = 0.5 at α = 0.5) with most of the money unspent: shortfall 3 against
    `max_attainment`'s 2 at α = 0.5, 5 against 3 at α = 0.8."""
    cheap = _solved(_programme(3, 1.0, Objective.MIN_COST, alpha))
    most = _solved(_programme(3, 1.0, Objective.MAX_ATTAINMENT, alpha))
    assert most.objective.weighted_shortfall > 0  # the case this test is about
    assert cheap.objective.weighted_shortfall <= most.objective.weighted_shortfall


@pytest.mark.slow
def test_min_cost_meets_affordable_targets_and_costs_more_at_higher_confidence() -> None:
    """Seed 3 at 40% of the targets: affordable at every α, so every plan meets them, and
    a plan that holds at 0.8 also holds at 0.5, so 0.5 never needs to cost more."""
    costs = []
    for alpha in (0.5, 0.8, 0.9):
        plan = _solved(_programme(3, 0.4, Objective.MIN_COST, alpha))
        assert plan.objective.weighted_shortfall == 0
        costs.append(plan.objective.total_cost)
    assert costs == sorted(costs)


def test_spending_caps_the_total_but_keeps_every_share_amount() -> None:
    """The spending rounds lower budgets to their caps (in whole steps); a `max_share` of
    the budget must still allow the same amount per partner."""
    request = load(N_PARTNERS, seed=3)
    budgets = {r.name: r.budget for r in request.resources}
    caps = {name: 0.4 * float(b or 0.0) + 0.5 for name, b in budgets.items()}
    capped = spending(request, caps)
    assert capped.objective is Objective.MAX_ATTAINMENT
    for resource in capped.resources:
        unit = resource.step or 1.0
        assert resource.budget == pytest.approx(math.floor(caps[resource.name] / unit) * unit)
    for before, after in zip(request.constraints, capped.constraints, strict=True):
        if isinstance(before, MaxShare):
            assert isinstance(after, MaxShare)
            old = before.max_share * float(budgets[before.resource] or 0.0)
            new = after.max_share * float(capped.resource(after.resource).budget or 0.0)
            assert new == pytest.approx(
                min(old, float(capped.resource(after.resource).budget or 0.0))
            )
        else:
            assert after == before
