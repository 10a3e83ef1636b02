"""Stage 2's dual starts in a trust box around its start (`stages.TRUST_RADIUS`), not in
the warm box four times its size (issue 12).

From stage 1's scaled prices the warm box's first steps flung the prices far from the
start: at 3,000 family partners (seed 5, 4 resources) its first 42 steps landed at
1.01-7.7x the start's value, and the search came within 1e-4 of its best after 68 steps;
in the trust box, after 29. The bound is valid at any prices, so only the count of
steps (each a pass over every partner) changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fixtures.families import family_request
from optimizer.arrays import build_arrays
from optimizer.clock import Clock
from optimizer.decomposition import engine, stages
from optimizer.decomposition.lagrangian import Lagrangian, Stage
from optimizer.decomposition.problem import build_problem
from optimizer.decomposition.stage_one import stage_one
from optimizer.decomposition.starts import stage_two_start


def test_every_stage_two_search_starts_in_the_trust_box(monkeypatch: pytest.MonkeyPatch) -> None:
    request, _ = family_request(40, 300, 0.95, resources=3, time_limit_s=20.0)
    calls: list[dict[str, Any]] = []
    real = engine.run_stage

    def recording(problem, stage, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append({"kind": stage.kind, **kwargs})
        return real(problem, stage, *args, **kwargs)

    monkeypatch.setattr(engine, "run_stage", recording)
    engine.solve_decomposition(request, time_limit_s=20.0, mip_gap=1e-9)
    stage_two = [call for call in calls if call["kind"] == "gmv"]
    assert len(stage_two) >= 2, "the first search and at least one restart (gap 1e-9)"
    assert stage_two[0]["start"] is not None, "stage 2 starts from stage 1's prices"
    assert all(call["radius"] == stages.TRUST_RADIUS for call in stage_two)


@pytest.mark.parametrize(("seed", "partners"), [(40, 300), (50, 600)])
def test_from_stage_one_s_prices_the_trust_box_nears_the_optimum_in_fewer_steps(
    seed: int, partners: int
) -> None:
    request, _ = family_request(seed, partners, 0.95, resources=3)
    problem = build_problem(build_arrays(request))
    one = stage_one(problem, Clock(30.0), None, None)
    stage = Stage("gmv", one.targets, True)
    start = stage_two_start(problem, stage, None, True, one.prices)
    assert start is not None
    values: dict[float | None, list[float]] = {}
    for radius in (None, stages.TRUST_RADIUS):
        seen: list[float] = []
        evaluate = Lagrangian.evaluate

        def recording(self, z, _seen=seen, _evaluate=evaluate):  # type: ignore[no-untyped-def]
            evaluation = _evaluate(self, z)
            _seen.append(evaluation.value)
            return evaluation

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Lagrangian, "evaluate", recording)
            stages.run_stage(
                problem, stage, Clock(60.0), 1.0, lambda b, p: False, one.targets, None,
                max_iterations=60, polish_tries=0, dual_tolerance=0.0, start=start,
                radius=radius,
            )  # fmt: skip
        values[radius] = seen
    least = min(min(seen) for seen in values.values())

    def steps_to_near(seen: list[float]) -> int:
        return next(
            i for i, value in enumerate(np.minimum.accumulate(seen)) if value <= least * (1 + 1e-4)
        )

    assert steps_to_near(values[stages.TRUST_RADIUS]) < steps_to_near(values[None])
