"""Tier amounts under a group_budget cap: plans are also built on a greedy level choice
whose members' tier mixes fit the cap, and the group repair gives up as few tiers as the
cap needs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fixtures.families import family_request
from models.request import GroupBudget, Where
from optimizer.arrays import build_arrays
from optimizer.decomposition.lagrangian import Lagrangian, Stage, initial_point
from optimizer.decomposition.primal import (
    construct,
    evaluate_plan,
    level_choices,
    minimum_keeping_tier,
    within_groups,
)
from optimizer.decomposition.problem import Problem, build_problem
from optimizer.decomposition.repair import assign_levels, fill, overdraws_caps
from tests.unit.test_decomposition import programme

NORTH = Where({"region": "north"})


def capped_problem(n: int, max_share: float) -> Problem:
    """`programme(n)` with the north region's subsidy capped at `max_share` of its budget."""
    request = replace(
        programme(n), constraints=(GroupBudget("subsidy", NORTH, max_share=max_share),)
    )
    return build_problem(build_arrays(request))


def reached_levels(problem: Problem, amounts: np.ndarray) -> np.ndarray:
    gmv = problem.values(amounts)
    return (gmv[:, None] >= problem.thresholds[None, :]).sum(axis=1).astype(np.int64)


def at_first_prices(problem: Problem) -> tuple[Stage, object]:
    stage = Stage("gmv", problem.targets, True)
    lagrangian = Lagrangian(problem, stage)
    z, _ = initial_point(problem, lagrangian, stage)
    return stage, lagrangian.evaluate(z)


def test_tier_mixes_of_a_capped_group_fit_its_cap() -> None:
    uncapped = capped_problem(600, max_share=1.0)
    _, evaluation = at_first_prices(uncapped)
    levels, amounts = assign_levels(
        uncapped, evaluation.response, evaluation.prices, uncapped.targets
    )
    row = uncapped.group_budgets[0]
    free_use = float(amounts[row.members, row.resource].sum())
    assert free_use > 0  # members reach their tiers with subsidy when nothing caps it
    assert len(level_choices(uncapped, evaluation, uncapped.targets)) == 1
    # A cap at half of that: the greedy within the caps leans those members on other
    # resources (or picks other partners), never handing the group repair more tier
    # subsidy than the cap; plans are built on both its choice and the plain greedy's.
    problem = capped_problem(600, max_share=0.5 * free_use / uncapped.budget[row.resource])
    _, evaluation = at_first_prices(problem)
    levels, amounts = assign_levels(
        problem, evaluation.response, evaluation.prices, problem.targets, within_caps=True
    )
    row = problem.group_budgets[0]
    assert float(amounts[row.members, row.resource].sum()) <= row.high * (1 + 1e-9)
    assert np.count_nonzero(levels >= 1) >= problem.targets[0]  # the counts still met
    stage, evaluation = at_first_prices(problem)
    plain, within = level_choices(problem, evaluation, problem.targets)
    assert overdraws_caps(problem, plain[1]) and not overdraws_caps(problem, within[1])
    # The plan keeps every tier while the group keeps its cap.
    plan = construct(problem, evaluation, stage, problem.targets)
    assert np.all(plan.achieved >= problem.targets)
    assert float(plan.amounts[row.members, row.resource].sum()) <= row.high * (1 + 1e-9)


def test_the_group_repair_gives_up_as_few_tiers_as_the_cap_needs() -> None:
    problem = capped_problem(1200, max_share=1.0)
    _, evaluation = at_first_prices(problem)
    levels, amounts = assign_levels(
        problem, evaluation.response, evaluation.prices, problem.targets
    )
    plan = evaluate_plan(problem, fill(problem, amounts))
    levels = reached_levels(problem, plan.amounts)
    row = problem.group_budgets[0]
    r = row.resource
    keep = minimum_keeping_tier(problem, plan.amounts, levels, r)
    holders = np.flatnonzero(row.members & (keep > 0))
    assert holders.size >= 5
    # A cap 1.5 largest tier amounts under what the members' tiers need: the fewest tiers
    # to give up are the largest holders' until that much is freed (two here); giving up
    # every member's tier amounts and water-filling to the cap (the old repair) lost five.
    largest_first = np.sort(keep[holders])[::-1]
    excess = 1.5 * largest_first[0]
    fewest = int(np.searchsorted(np.cumsum(largest_first), excess)) + 1
    assert 1 < fewest < holders.size
    cap = float(keep[holders].sum()) - excess
    problem.group_budgets[0] = replace(row, high=cap)
    problem.targets = plan.achieved.copy()  # every tier lost counts as shortfall
    repaired = within_groups(problem, plan, levels)
    assert float(repaired.amounts[row.members, r].sum()) <= cap * (1 + 1e-9)
    members_before = np.count_nonzero(row.members & (levels > 0))
    members_after = np.count_nonzero(row.members & (reached_levels(problem, repaired.amounts) > 0))
    assert members_before - members_after == fewest
    assert repaired.shortfall == fewest


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_least_amounts_keeping_a_tier_keep_it_in_the_plans_own_figures(seed: int) -> None:
    """Each resource cut to `minimum_keeping_tier` leaves every partner at its tier as
    `Problem.values` sums it. The bisection lands on the threshold itself, where a check
    summed in another order passed for a partner the plan then had a hair under ¥1B:
    enforcing a group cap on those amounts dropped its tier (5,000 family partners,
    ambition 0.98, seed 3: stage 1 ended 3 short, unproven, on a plan 2 short)."""
    problem = build_problem(build_arrays(family_request(seed, 2000, 0.95)[0]))
    _, evaluation = at_first_prices(problem)
    _, amounts = assign_levels(problem, evaluation.response, evaluation.prices, problem.targets)
    plan = fill(problem, amounts)
    levels = reached_levels(problem, plan)
    assert np.count_nonzero(levels) >= 50
    for r in range(problem.n_resources):
        keep = minimum_keeping_tier(problem, plan, levels, r)
        cut = plan.copy()
        cut[:, r] = np.where(keep > 0, keep, plan[:, r])
        assert np.all(reached_levels(problem, cut) >= levels), f"resource {r}"
