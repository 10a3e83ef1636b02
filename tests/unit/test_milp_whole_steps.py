"""A plan-only MILP solve asked to retry (a whole neighbourhood's round) whose inner
model cannot beat its start does not end there: it has one more round with fine grids on
whole steps, since rounding a fine grid's continuous index can hide the gains (issue 12)."""

from __future__ import annotations

import pytest

from fixtures.families import family_request
from models.plan import curve_columns
from optimizer.arrays import build_arrays
from optimizer.engines import available_engines, milp_backend
from optimizer.formulation import FINE_GRID
from optimizer.milp import MilpStrategy, solve_milp
from optimizer.outcome import Candidate
from optimizer.scoring import better_score, score, valid_plan

pytestmark = pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")


def test_a_start_the_inner_model_cannot_beat_gets_a_round_on_whole_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(2, 300, 0.95, time_limit_s=20.0, mip_gap=1e-3)
    arrays = build_arrays(request)
    columns = curve_columns(request)
    stepped = arrays.step[arrays.pair_resource] > 0
    grid = arrays.pair_max / arrays.step[arrays.pair_resource].clip(min=1e-300)
    assert (grid[stepped] > FINE_GRID).any(), "this programme has fine grids"

    # Plan-only solves without the retry, each from the last one's plan, until one
    # returns its start: the fine-grid inner model has nothing better to offer it.
    start: Candidate | None = None
    for _ in range(6):
        outcome = solve_milp(
            arrays, milp_backend("cbc"), plan_only=True, warm_start=start, time_limit_s=10.0
        )
        if outcome.candidates[0] is start:
            break
        start = outcome.candidates[0]
    else:
        pytest.fail("the fine-grid solves kept improving: no start to test with")
    assert start is not None

    rounds: list[bool] = []  # integral grid, per stage-2 inner solve
    original = MilpStrategy._solve

    def recording(self, stage, outer, clock, *rest):  # type: ignore[no-untyped-def]
        if not stage.minimise_shortfall and not outer:
            rounds.append(self.approximation.integral_grid)
        return original(self, stage, outer, clock, *rest)

    monkeypatch.setattr(MilpStrategy, "_solve", recording)
    again = solve_milp(
        arrays,
        milp_backend("cbc"),
        plan_only=True,
        whole_steps_retry=True,
        warm_start=start,
        time_limit_s=10.0,
    )
    assert rounds[:2] == [False, True], rounds
    assert rounds.count(True) == len(rounds) - 1, "whole steps stay once taken"
    plan = again.candidates[0]
    assert valid_plan(arrays, columns, plan)
    before, after = score(arrays, columns, start), score(arrays, columns, plan)
    assert better_score(after, before, request.objective), (before, after)
