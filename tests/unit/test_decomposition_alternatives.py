"""Alternatives after a decomposition plan (`optimizer.alternatives`, issue 12).

The decomposition has no no-good cuts: a programme it certified alone came back with one
plan however many `plans` asked for (family seed 101, 2,000 partners, `max_gmv`: one plan
in 0.3 s of 30). Its plan now seeds a CBC MILP that finds the alternatives in the time
left. Here `auto` is sent to the decomposition on a programme small enough to be quick.
"""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest

from bench.claims_sweep import refuted_alternatives
from fixtures.families import family_request
from models.check import check_plan
from models.plan import SolveStatus
from models.request import Objective
from optimizer import solve
from optimizer.alternatives import STAGE
from optimizer.engines import available_engines
from optimizer.progress import ProgressEvent

solve_module = importlib.import_module("optimizer.solve")


@pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")
@pytest.mark.parametrize("objective", [Objective.MAX_GMV, Objective.MAX_ATTAINMENT])
def test_a_decomposition_plan_comes_with_the_alternatives_asked_for(
    monkeypatch: pytest.MonkeyPatch, objective: Objective
) -> None:
    monkeypatch.setattr(solve_module, "choose_engine", lambda request, arrays: "decomposition")
    request, _ = family_request(1, 300, 0.9, resources=3, time_limit_s=30.0)
    request = replace(request, objective=objective, options=replace(request.options, plans=3))
    plans = solve(request)
    assert [plan.label for plan in plans] == ["best", "alternative 1", "alternative 2"]
    if objective is Objective.MAX_GMV:
        # Certified by the decomposition alone: the case that had one plan. (Under
        # max_attainment the MILP finish may take its plan on and find them itself.)
        assert plans[0].solver.engine == "decomposition"
    assert [plan.solver.status for plan in plans[1:]] == [SolveStatus.FEASIBLE] * 2
    assert all(check_plan(request, plan) == [] for plan in plans)
    assert refuted_alternatives(request, plans) == []  # new achievers each, none ahead


@pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")
def test_one_plan_asked_for_is_one_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solve_module, "choose_engine", lambda request, arrays: "decomposition")
    request, _ = family_request(1, 300, 0.9, resources=3, time_limit_s=30.0)
    assert len(solve(request)) == 1


@pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")
def test_while_alternatives_are_searched_progress_shows_the_best_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(solve_module, "choose_engine", lambda request, arrays: "decomposition")
    request, _ = family_request(1, 300, 0.9, resources=3, time_limit_s=30.0)
    request = replace(
        request, objective=Objective.MAX_GMV, options=replace(request.options, plans=3)
    )
    events: list[ProgressEvent] = []
    plans = solve(request, progress=events.append)
    marked = [event for event in events if event.stage == STAGE]
    assert marked, "the alternatives' searches report"
    assert {event.message.split(":")[0] for event in marked} == {"alternative 1", "alternative 2"}
    best = plans[0]
    for event in marked:
        assert event.best_objective == pytest.approx(best.objective.total_projected_gmv, rel=1e-6)
        assert event.best_bound == best.solver.best_bound
        assert event.gap == pytest.approx(best.solver.mip_gap, rel=1e-3)
    # Unmarked, the searches' rounds would have shown an alternative's figures as the best's.
    assert not [e for e in events[events.index(marked[0]) :] if e.stage != STAGE and e.gap]
