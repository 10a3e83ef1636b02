"""Alternatives beyond the MILP's size (`optimizer.wide_alternatives`, issue 12).

Above the MILP finish's 12,000 amounts a decomposition run came back with one plan however
many `plans` asked for. Each alternative now comes from a decomposition run with a rule
asking one more partner, below a tier in every plan so far, onto it. The quick tests send
a 1,000-partner programme down that path by declaring the MILP unable to finish it."""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from bench.claims_sweep import refuted_alternatives
from fixtures.families import family_request
from models.check import check_plan
from models.plan import Plan, SolveStatus, curve_columns
from models.request import AllocationRequest, GroupCount, Objective
from optimizer import decomposition, solve, wide_alternatives
from optimizer.alternatives import STAGE
from optimizer.arrays import build_arrays
from optimizer.engines import DECOMPOSITION, available_engines
from optimizer.progress import ProgressEvent
from optimizer.wide_alternatives import new_achiever_rule

solve_module = importlib.import_module("optimizer.solve")
pytestmark = pytest.mark.skipif(
    DECOMPOSITION not in available_engines(), reason="needs the decomposition"
)


def _levels(request: AllocationRequest, plan: Plan) -> dict[str, int]:
    """Per partner with a tier, how many tiers the plan lifts it to."""
    order = [tier.name for tier in request.sorted_tiers()]
    return {a.partner_id: order.index(a.tier) + 1 for a in plan.allocations if a.tier}


def _brings_someone_new(request: AllocationRequest, plans: list[Plan]) -> list[str]:
    """Against every plan found before it (by label), does each alternative bring some
    partner onto a tier that plan left it below?"""
    found = sorted(plans, key=lambda plan: (plan.label != "best", plan.label))
    levels = [_levels(request, plan) for plan in found]
    broken = []
    for k, mine in enumerate(levels):
        for j, theirs in enumerate(levels[:k]):
            if not any(level > theirs.get(partner, 0) for partner, level in mine.items()):
                broken.append(f"{found[k].label} against {found[j].label}")
    return broken


def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MILP can neither finish this programme nor search it for alternatives."""
    monkeypatch.setattr(solve_module, "milp_can_finish", lambda arrays, *args: False)
    monkeypatch.setattr(solve_module, "milp_finishes", lambda arrays, *args: False)


@pytest.mark.parametrize("objective", list(Objective))
def test_a_programme_beyond_the_milp_comes_with_the_alternatives_asked_for(
    monkeypatch: pytest.MonkeyPatch, objective: Objective
) -> None:
    _wide(monkeypatch)
    request, _ = family_request(1, 1000, 0.9, resources=3, time_limit_s=30.0)
    request = replace(request, objective=objective, options=replace(request.options, plans=3))
    plans = solve(request)
    assert sorted(plan.label for plan in plans) == ["alternative 1", "alternative 2", "best"]
    assert plans[0].solver.engine == DECOMPOSITION
    assert all(check_plan(request, plan) == [] for plan in plans)
    assert [plan.solver.status for plan in plans[1:]] == [SolveStatus.FEASIBLE] * 2
    assert refuted_alternatives(request, plans) == []  # no copies, none ahead of the first
    assert _brings_someone_new(request, plans) == []
    if objective is not Objective.MAX_GMV:  # (there the tiers are only reported)
        heaviest = max(tier.weight for tier in request.tiers)
        first = plans[0].objective.weighted_shortfall
        assert all(p.objective.weighted_shortfall <= first + heaviest for p in plans[1:])


def test_an_alternative_short_by_more_than_a_trade_ends_the_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no extra place allowed (less than none), no alternative is short by little
    enough: the best plan comes back alone, not with worse plans."""
    _wide(monkeypatch)
    monkeypatch.setattr(wide_alternatives, "EXTRA_PLACES", -1)
    request, _ = family_request(1, 1000, 0.9, resources=3, time_limit_s=30.0)
    request = replace(request, options=replace(request.options, plans=3))
    assert [plan.label for plan in solve(request)] == ["best"]


def test_while_they_are_searched_progress_shows_the_best_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _wide(monkeypatch)
    request, _ = family_request(1, 1000, 0.9, resources=3, time_limit_s=30.0)
    request = replace(request, options=replace(request.options, plans=3))
    events: list[ProgressEvent] = []
    plans = solve(request, progress=events.append)
    marked = [event for event in events if event.stage == STAGE]
    assert [event.message.split(":")[0] for event in marked] == ["alternative 1", "alternative 2"]
    first = next(plan for plan in plans if plan.label == "best")
    for event in marked:
        assert event.best_objective == pytest.approx(first.objective.total_projected_gmv, rel=1e-6)
        assert event.shortfall == first.objective.weighted_shortfall
    # The runs themselves report nothing: their figures are an alternative's.
    assert not [e for e in events[events.index(marked[0]) :] if e.stage != STAGE]


def test_the_rule_names_only_partners_below_the_tier_in_every_plan() -> None:
    request, _ = family_request(2, 300, 0.9, resources=2)
    arrays = build_arrays(request)
    columns = curve_columns(request)
    rng = np.random.default_rng(0)
    n_tiers = len(arrays.thresholds)
    levels = [rng.integers(0, n_tiers + 1, arrays.n_partners) for _ in range(3)]
    rule = new_achiever_rule(arrays, columns, levels)
    assert rule is not None and rule.min == 1
    t = [tier.name for tier in request.sorted_tiers()].index(rule.tier)
    named = [i for i, p in enumerate(request.partners) if rule.where.matches(p)]
    assert named and all(max(plan[i] for plan in levels) <= t for i in named)
    # The lowest tier with anyone below it in every plan: none below tier 0 everywhere.
    levels.append(np.full(arrays.n_partners, 1))
    rule = new_achiever_rule(arrays, columns, levels)
    assert rule is not None and rule.tier == request.sorted_tiers()[1].name
    # Every partner at the top tier in some plan: no alternative to ask for.
    assert new_achiever_rule(arrays, columns, [np.full(arrays.n_partners, n_tiers)]) is None


@pytest.mark.slow
def test_six_thousand_partners_come_with_three_plans() -> None:
    """12,593 amounts: beyond the MILP finish, with nothing patched."""
    request, _ = family_request(1, 6000, 0.95, resources=3, time_limit_s=60.0)
    request = replace(request, options=replace(request.options, plans=3))
    plans = solve(request)
    assert len(plans) == 3
    assert all(check_plan(request, plan) == [] for plan in plans)
    assert refuted_alternatives(request, plans) == []
    assert _brings_someone_new(request, plans) == []


def test_the_decomposition_named_finds_its_own_alternatives() -> None:
    """`engine: decomposition` runs that engine alone: it returned one plan."""
    request, _ = family_request(2, 300, 0.9, resources=2, time_limit_s=20.0)
    options = replace(request.options, plans=2, engine=DECOMPOSITION)
    request = replace(request, options=options)
    plans = solve(request)
    assert [plan.solver.engine for plan in plans] == [DECOMPOSITION] * 2
    assert all(check_plan(request, plan) == [] for plan in plans)
    assert refuted_alternatives(request, plans) == []
    assert _brings_someone_new(request, plans) == []


def test_an_infeasible_request_gets_no_search_for_alternatives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plan shown for an infeasible request breaks a rule: there is nothing to offer
    alternatives to, and each run would end the same way."""
    request, _ = family_request(2, 300, 0.9, resources=2, time_limit_s=20.0)
    lowest = request.sorted_tiers()[0].name
    request = replace(
        request,
        constraints=(*request.constraints, GroupCount(tier=lowest, min=10**6)),
        options=replace(request.options, plans=3, engine=DECOMPOSITION),
    )
    runs = []
    real = decomposition.solve_decomposition

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(decomposition, "solve_decomposition", counted)
    plans = solve(request)
    assert [plan.solver.status for plan in plans] == [SolveStatus.INFEASIBLE]
    assert len(runs) == 1
