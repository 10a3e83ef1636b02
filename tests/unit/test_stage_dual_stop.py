"""When stage 2's dual stops (issue 12): once it cannot fall by more than a sliver of the
gap its best plan leaves, the plan, not the dual, is what is missing. That holds after a
proven shortfall too: the plan need only reach the counts the stage holds. Before, such
a stage ran its dual to a 1e-6 model gap (5,000 family partners, seed 2: 0.7 s of steps
that moved the bound 0.003%)."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.families import family_request
from optimizer.arrays import build_arrays
from optimizer.clock import Clock
from optimizer.decomposition import stages
from optimizer.decomposition.lagrangian import Stage
from optimizer.decomposition.problem import build_problem
from optimizer.decomposition.stage_one import stage_one
from optimizer.decomposition.stages import run_stage


def test_a_stage_after_a_proven_shortfall_stops_its_dual_next_to_the_plans_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(1, 400, 0.95, time_limit_s=60.0)
    problem = build_problem(build_arrays(request))
    one = stage_one(problem, Clock(60.0), None, None)
    assert one.plan is not None and one.plan.shortfall > 0, "this programme is one short"
    stage = Stage("gmv", one.targets, True, float((problem.weights * one.targets).sum()))
    gaps: list[float] = []

    class Recorded(stages.LevelBundle):
        def propose(self, *args: Any, **kwargs: Any) -> Any:
            proposed = super().propose(*args, **kwargs)
            gaps.append(self.model_gap)  # what the stopping rule reads next
            return proposed

    monkeypatch.setattr(stages, "LevelBundle", Recorded)
    tolerance = 1e-6
    bound, best, _ = run_stage(
        problem, stage, Clock(60.0), 0.9, lambda bound, plan: False, one.targets, None,
        polish_tries=0, dual_tolerance=tolerance,
    )  # fmt: skip
    assert best is not None and best.shortfall == one.plan.shortfall
    assert all(best.achieved >= stage.targets)
    assert bound >= best.objective
    assert stages.MIN_DUAL_STEPS < len(gaps) < 200
    # Stopped by the plan's gap, not by the absolute tolerance.
    gap = stages.dual_gap(bound, best.objective, minimise=False)
    assert tolerance < gaps[-1] < 0.01 * gap
