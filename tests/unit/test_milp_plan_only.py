"""A plan-only MILP solve (a neighbourhood's round) solves no outer model in stage 2 and
claims no bound, since its inner model's own bound is beaten by the exact curves."""

from __future__ import annotations

import pytest

from fixtures.families import family_request
from models.plan import SolveStatus, curve_columns
from optimizer.arrays import build_arrays
from optimizer.engines import milp_backend
from optimizer.engines.base import Termination
from optimizer.milp import MilpStrategy, solve_milp
from optimizer.scoring import score, valid_plan


def test_a_plan_only_solve_models_stage_two_once_and_reports_no_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(3, 120, 0.9, time_limit_s=10.0)
    arrays = build_arrays(request)
    assert not MilpStrategy(arrays, milp_backend("highs"), None).exact, "S-curves: inner ≠ outer"
    calls: list[tuple[bool, bool]] = []  # (stage 1, outer model) per backend call
    original = MilpStrategy._solve

    def recording(self, stage, outer, clock, *rest):  # type: ignore[no-untyped-def]
        calls.append((stage.minimise_shortfall, outer))
        return original(self, stage, outer, clock, *rest)

    monkeypatch.setattr(MilpStrategy, "_solve", recording)
    plan_only = solve_milp(arrays, milp_backend("highs"), plan_only=True)
    assert any(not first for first, _ in calls), "stage 2 ran"
    assert not any(outer for first, outer in calls if not first)
    assert plan_only.best_bound is None and plan_only.mip_gap is None
    assert plan_only.status is not SolveStatus.OPTIMAL
    assert valid_plan(arrays, curve_columns(request), plan_only.candidates[0])

    calls.clear()
    full = solve_milp(arrays, milp_backend("highs"))
    assert any(outer for first, outer in calls if not first), "the usual solve has both"
    assert full.best_bound is not None


@pytest.mark.parametrize("plan_only", [True, False])
def test_a_plan_only_run_whose_inner_model_cannot_hold_the_proven_start_keeps_it(
    monkeypatch: pytest.MonkeyPatch, plan_only: bool
) -> None:
    # A neighbourhood's round starts from a plan whose shortfall is proven least. When
    # the inner model cannot hold that shortfall (a partner the start lifts exactly to a
    # tier sits below it on the secants), stage-1 rounds could only find a larger one,
    # and no plan with more shortfall replaces the start: the round ends with the start
    # (3,000 family partners, seed 2: such rounds took their whole 3 s, now 0.3 s). The
    # round is first solved again without the inner model's rounding reserve, which a
    # start spending its budget breaks too (`test_milp_rounding_reserve`).
    request, _ = family_request(1, 120, 0.95, time_limit_s=20.0)
    arrays = build_arrays(request)
    first = solve_milp(arrays, milp_backend("cbc"), time_limit_s=20.0)
    start = first.candidates[0]
    start_score = score(arrays, curve_columns(request), start)
    floor, start_gmv = start_score.shortfall, start_score.gmv
    original = MilpStrategy._objective_round
    calls: list[str] = []

    def cannot_hold_first(self, held, clock, cutoff=None):  # type: ignore[no-untyped-def]
        calls.append("stage 2" if self.reserve else "stage 2, no reserve")
        if len(calls) <= 2:
            return Termination.INFEASIBLE
        return original(self, held, clock, cutoff)

    shortfall_round = MilpStrategy._shortfall_round

    def counting(self, exclude, clock, round_number):  # type: ignore[no-untyped-def]
        calls.append("stage 1")
        return shortfall_round(self, exclude, clock, round_number)

    monkeypatch.setattr(MilpStrategy, "_objective_round", cannot_hold_first)
    monkeypatch.setattr(MilpStrategy, "_shortfall_round", counting)
    outcome = solve_milp(
        arrays, milp_backend("cbc"), warm_start=start, time_limit_s=20.0,
        proven_shortfall=floor, plan_only=plan_only,
    )  # fmt: skip
    if plan_only:
        assert calls == ["stage 2", "stage 2, no reserve"], "no stage-1 rounds"
        kept = score(arrays, curve_columns(request), outcome.candidates[0])
        assert kept.shortfall == floor and kept.gmv >= start_gmv * (1 - 1e-12)
    else:
        assert calls[:3] == ["stage 2", "stage 2, no reserve", "stage 1"], "its own cap"
    assert valid_plan(arrays, curve_columns(request), outcome.candidates[0])
