"""The PuLP baseline keeps group rules, so its plans can serve as references."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.baseline_pulp import solve_baseline
from fixtures.families import family_request
from models.check import check_plan
from models.plan import SolverReport, SolveStatus, build_plan
from models.request import GroupBudget, GroupCount


@pytest.mark.slow
def test_baseline_plans_keep_group_budgets_and_group_counts() -> None:
    request, _ = family_request(2, 100, 0.9, resources=2)
    count = next(rule for rule in request.constraints if isinstance(rule, GroupCount))
    share = next(rule for rule in request.constraints if isinstance(rule, GroupBudget))
    # A tight group budget binds; the group count needs partners lifted over the tier.
    tight = replace(share, max_share=0.05, min_share=0.01)
    more = count
    others = [r for r in request.constraints if r not in (count, share)]
    request = replace(request, constraints=(*others, tight, more))
    result = solve_baseline(request, "cbc", 30.0)
    plan = build_plan(request, result.amounts, SolverReport("pulp-cbc", SolveStatus.FEASIBLE))
    assert check_plan(request, plan) == []
    names = [r.name for r in request.resources]
    grouped = sum(
        result.amounts[i, names.index(tight.resource)]
        for i, partner in enumerate(request.partners)
        if tight.where.matches(partner)
    )
    budget = request.resource(tight.resource).budget
    assert budget is not None and 0.01 * budget - 1e-6 <= grouped <= 0.05 * budget + 1e-6
    floor = request.tier(more.tier).min_gmv
    reached = {a.partner_id for a in plan.allocations if a.projected_gmv >= floor}
    members = {p.id for p in request.partners if more.where.matches(p)}
    baseline_members = {
        p.id for p in request.partners if more.where.matches(p) and p.baseline_gmv >= floor
    }
    assert len(baseline_members) < more.min <= len((reached | baseline_members) & members)
