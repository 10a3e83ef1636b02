"""A plan-only MILP solve (a neighbourhood's round) solves no outer model in stage 2 and
claims no bound, since its inner model's own bound is beaten by the exact curves."""

from __future__ import annotations

import math

import pytest

from fixtures.families import family_request
from models.plan import SolveStatus, curve_columns
from optimizer.arrays import build_arrays
from optimizer.engines import milp_backend
from optimizer.milp import MilpStrategy, solve_milp
from optimizer.scoring import valid_plan


def test_a_plan_only_solve_models_stage_two_once_and_reports_no_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(3, 120, 0.9, time_limit_s=10.0)
    arrays = build_arrays(request)
    assert not MilpStrategy(arrays, milp_backend("highs"), None).exact, "S-curves: inner ≠ outer"
    calls: list[tuple[bool, bool]] = []  # (stage 1, outer model) per backend call
    original = MilpStrategy._solve

    def recording(self, stage, outer, clock, stop=None, cap_s=math.inf, cutoff=None):  # type: ignore[no-untyped-def]
        calls.append((stage.minimise_shortfall, outer))
        return original(self, stage, outer, clock, stop, cap_s, cutoff)

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
