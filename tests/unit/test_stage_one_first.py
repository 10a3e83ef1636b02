"""Under `auto`, a CBC MILP starts from the decomposition's stage 1 (issue 12).

The MILP's outer model can leave stage 1 unproven where the Lagrangian proves it in a
second: family seed 4, 300 partners, ambition 0.98 ended on CBC alone at shortfall 1,
bound 0, after 5 s of a 10 s limit (`feasible`), while shortfall 0 is reachable. Handed
the decomposition's stage-1 plan and its proven floor, the MILP goes straight to stage 2.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

import pytest

from fixtures.families import family_request
from models.check import check_plan
from models.curves import points_curve
from models.plan import SolveStatus, curve_columns
from models.request import AllocationRequest, Objective, Pin
from optimizer import solve
from optimizer.arrays import build_arrays
from optimizer.engines import DECOMPOSITION, available_engines
from optimizer.outcome import EngineOutcome
from optimizer.progress import ProgressEvent
from optimizer.scoring import score, valid_plan
from optimizer.solve import stage_one_first

# `optimizer.solve` the attribute is the function; the module is what the engine calls.
solve_module = importlib.import_module("optimizer.solve")

pytestmark = pytest.mark.skipif(
    not {"cbc", DECOMPOSITION} <= set(available_engines()), reason="needs CBC and the decomposition"
)


def _recording_milp(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    real = solve_module.solve_milp

    def recorded(*args: Any, **kwargs: Any) -> EngineOutcome:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(solve_module, "solve_milp", recorded)
    return calls


def _with_engine(request: AllocationRequest, engine: str) -> AllocationRequest:
    return replace(request, options=replace(request.options, engine=engine))


@pytest.mark.slow
def test_auto_hands_cbc_the_proven_stage_one_and_meets_every_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, description = family_request(4, 300, 0.98, time_limit_s=30.0, mip_gap=1e-3)
    calls = _recording_milp(monkeypatch)
    events: list[ProgressEvent] = []
    plan = solve(request, progress=events.append)[0]
    assert plan.solver.engine == "cbc", description
    assert len(calls) == 1
    assert calls[0]["proven_shortfall"] == 0.0
    arrays = build_arrays(request)
    start = score(arrays, curve_columns(request), calls[0]["warm_start"])
    assert start.shortfall == 0.0, "the start reaches the proven floor"
    assert not [e for e in events if e.message.startswith("stage 1 (round")], "no MILP stage 1"
    assert check_plan(request, plan) == []
    assert plan.objective.weighted_shortfall == 0.0
    assert plan.solver.shortfall_proven is True and plan.solver.shortfall_bound == 0.0


def test_an_engine_asked_for_by_name_gets_no_stage_one_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(2, 100, 0.9, time_limit_s=10.0)
    calls = _recording_milp(monkeypatch)
    solve(_with_engine(request, "cbc"))
    assert [c["proven_shortfall"] for c in calls] == [None]
    assert calls[0]["warm_start"] is None


def test_the_highs_milp_after_the_decompositions_warm_up_keeps_its_proof(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(2, 100, 0.9, time_limit_s=10.0)
    calls = _recording_milp(monkeypatch)
    events: list[ProgressEvent] = []
    plan = solve(_with_engine(request, "highs"), progress=events.append)[0]
    assert len(calls) == 1 and calls[0]["proven_shortfall"] is not None
    start = score(build_arrays(request), curve_columns(request), calls[0]["warm_start"])
    assert start.shortfall == calls[0]["proven_shortfall"]
    assert not [e for e in events if e.message.startswith("stage 1 (round")], "no MILP stage 1"
    assert plan.solver.shortfall_proven is True
    assert plan.objective.weighted_shortfall == calls[0]["proven_shortfall"]


def test_stage_one_first_gives_a_valid_plan_and_its_floor() -> None:
    request, _ = family_request(2, 100, 0.9, time_limit_s=10.0)
    arrays = build_arrays(request)
    first = stage_one_first(arrays, None, None, 10.0)
    assert first is not None and len(first.candidates) == 1
    scored = score(arrays, curve_columns(request), first.candidates[0])
    assert first.shortfall_bound is not None and first.shortfall_bound <= scored.shortfall
    assert first.shortfall_proven == (scored.shortfall <= first.shortfall_bound + 1e-9)


def test_stage_one_first_steps_aside_without_tiers_and_takes_points_curves() -> None:
    request, _ = family_request(2, 100, 0.9, time_limit_s=10.0)
    no_tiers = replace(request, objective=Objective.MAX_GMV)
    assert stage_one_first(build_arrays(no_tiers), None, None, 2.0) is None
    # It stepped aside for `points` curves too, until the decomposition modelled them.
    first, *rest = request.partners
    resource = next(iter(first.curves))
    stepped = {**first.curves, resource: points_curve([0, 1e6, 2e6], [0, 5e5, 6e5])}
    with_points = replace(request, partners=(replace(first, curves=stepped), *rest))
    arrays = build_arrays(with_points)
    outcome = stage_one_first(arrays, None, None, 2.0)
    assert outcome is not None and outcome.candidates
    assert valid_plan(arrays, curve_columns(with_points), outcome.candidates[0])


def _pinned_past_the_group_cap() -> AllocationRequest:
    """Family seed 114 (200 partners, min_cost): three pins of 7.27M subsidy, together
    past the 0.318 share (7.05M) its central and south partners may have."""
    request, _ = family_request(114, 200, 0.98, resources=2, time_limit_s=30.0)
    pins = tuple(
        Pin(partner_id, "subsidy", 7270153.0) for partner_id in ("P0000126", "P0000076", "P0000054")
    )
    return replace(request, objective=Objective.MIN_COST, constraints=(*request.constraints, *pins))


def test_stage_one_first_steps_aside_where_no_plan_keeps_the_rules() -> None:
    """Its plan there was 0.5M over the subsidy budget, "proven" 1 short under a floor of
    3; the MILP kept it as its incumbent whenever the machine was busy, and the request
    then failed its exact check (a PlanCheckError, not a plan)."""
    request = _pinned_past_the_group_cap()
    arrays = build_arrays(request)
    assert stage_one_first(arrays, None, None, 10.0) is None
    plan = solve(request)[0]
    assert plan.solver.status is SolveStatus.INFEASIBLE


def test_a_start_that_breaks_a_rule_is_not_handed_to_the_milp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(2, 100, 0.9, time_limit_s=10.0)
    arrays = build_arrays(request)
    first = stage_one_first(arrays, None, None, 10.0)
    assert first is not None
    over = first.candidates[0].amounts * 10.0  # far past every budget
    broken = replace(first, candidates=[replace(first.candidates[0], amounts=over)])
    monkeypatch.setattr(solve_module, "stage_one_first", lambda *args: broken)
    calls = _recording_milp(monkeypatch)
    plan = solve(request)[0]
    assert calls[0]["warm_start"] is None and calls[0]["proven_shortfall"] is None
    assert check_plan(request, plan) == []
