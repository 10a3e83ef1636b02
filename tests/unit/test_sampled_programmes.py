"""Programmes priced on a sample first (above `engine.SAMPLE_ABOVE` partners; here the
threshold is lowered so a 2,000-partner family programme takes that path).

At 1,000,000 family partners stage 1 built a plan at the targets' prices (18 s, 8,012
short) and re-ran the tier-option MILP with the ticket grid (16 s, the same plan) after
the sample had already shown the targets out of reach; stage 2's dual started from the
sample's prices inside a box four times their size, and its first 16 steps found no
better point. Now the probe and the grid MILP are skipped there, stage 2's dual starts
within a trust box around the sample's prices, and the pairwise moves take at most a
slice of the limit (they took 69 s of it for 0.01% more GMV).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from fixtures.families import family_request
from models.request import AllocationRequest
from optimizer.arrays import build_arrays
from optimizer.clock import Clock
from optimizer.decomposition import engine, stage_one, stages
from optimizer.decomposition.lagrangian import Lagrangian, Stage
from optimizer.decomposition.problem import build_problem

FULL = 2_000
SAMPLE = 600


def _sampled(monkeypatch: pytest.MonkeyPatch) -> AllocationRequest:
    monkeypatch.setattr(engine, "SAMPLE_ABOVE", 1_000)
    monkeypatch.setattr(engine, "SAMPLE_SIZE", SAMPLE)
    # Seed 2: the programme's stage 1 ends a partner short of the targets, unproven.
    request, _ = family_request(2, FULL, 0.98, resources=3)
    return replace(request, options=replace(request.options, time_limit_s=20.0))


def test_a_sampled_programme_skips_the_probe_and_the_grid_milp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = _sampled(monkeypatch)
    probes: list[int] = []
    grids: list[tuple[int, bool]] = []
    probe, assigned = stage_one._probe, stage_one._assigned_plan

    def probing(problem, warm, clock):  # type: ignore[no-untyped-def]
        probes.append(problem.n)
        return probe(problem, warm, clock)

    def assigning(problem, *args, **kwargs):  # type: ignore[no-untyped-def]
        grids.append((problem.n, kwargs.get("grid", True)))
        return assigned(problem, *args, **kwargs)

    monkeypatch.setattr(stage_one, "_probe", probing)
    monkeypatch.setattr(stage_one, "_assigned_plan", assigning)
    arrays = build_arrays(request)
    outcome = engine.solve_decomposition(request, time_limit_s=20.0, mip_gap=1e-3, arrays=arrays)
    assert probes == [SAMPLE]  # the sample's probe fell short: the programme has none
    assert (FULL, False) in grids and (FULL, True) not in grids
    assert outcome.candidates and outcome.shortfall_bound is not None
    amounts = outcome.candidates[0].amounts
    assert np.all(amounts.sum(axis=0) <= arrays.budget * (1 + 1e-9))


def test_without_a_probe_or_time_for_a_dual_plan_stage_one_still_has_a_plan() -> None:
    """A sampled programme's stage 1 with no time: the probe is its plan after all."""
    request, _ = family_request(1, 300, 0.98, resources=3)
    problem = build_problem(build_arrays(request))
    attain = Lagrangian(problem, Stage("attain", problem.targets, True))
    one = stage_one.stage_one(
        problem, Clock(0.0), None, None, attain_warm=np.ones(attain.size)
    )  # fmt: skip
    assert one.plan is not None and not one.proven
    assert one.plan.shortfall > 0


def _bundles(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    bundle = stages.LevelBundle

    def recording(start, scale, upper=None, **kwargs):  # type: ignore[no-untyped-def]
        made.append({"size": start.size, **kwargs})
        return bundle(start, scale, upper, **kwargs)

    monkeypatch.setattr(stages, "LevelBundle", recording)
    return made


def test_a_sampled_programmes_stage_two_dual_starts_within_a_trust_box(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = _sampled(monkeypatch)
    made = _bundles(monkeypatch)
    sizes: list[int] = []
    real_stage = engine.run_stage

    def tracking(problem, *args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(problem.n)
        return real_stage(problem, *args, **kwargs)

    monkeypatch.setattr(engine, "run_stage", tracking)
    monkeypatch.setattr(stage_one, "run_stage", tracking)
    engine.solve_decomposition(request, time_limit_s=20.0, mip_gap=1e-3)
    full = [kwargs for n, kwargs in zip(sizes, made, strict=True) if n == FULL]
    sample = [kwargs for n, kwargs in zip(sizes, made, strict=True) if n == SAMPLE]
    # Stage 1's attainment dual starts from the sample's prices in the warm box, stage 2's
    # first search in the trust box around them.
    assert [kwargs.get("radius") for kwargs in full[:2]] == [None, stages.SAMPLE_RADIUS]
    assert "box" in full[0]
    assert all("radius" not in kwargs for kwargs in sample)  # the sample starts cold


def test_the_trust_box_keeps_the_first_step_near_the_start() -> None:
    """From good prices, the warm box's first step leaves them far behind; the trust
    box's stays within SAMPLE_RADIUS of them."""
    request, _ = family_request(2, 400, 0.9, resources=3)
    problem = build_problem(build_arrays(request))
    stage = Stage("gmv", problem.targets, True)
    _, _, best = stages.run_stage(
        problem, stage, Clock(30.0), 1.0, lambda b, p: False, problem.targets, None
    )  # fmt: skip
    steps: dict[str, list[np.ndarray]] = {}
    for label, radius in (("box", None), ("trust", stages.SAMPLE_RADIUS)):
        seen: list[np.ndarray] = []
        evaluate = Lagrangian.evaluate

        def recording(self, z, _seen=seen, _evaluate=evaluate):  # type: ignore[no-untyped-def]
            _seen.append(np.array(z))
            return _evaluate(self, z)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Lagrangian, "evaluate", recording)
            stages.run_stage(
                problem, stage, Clock(30.0), 1.0, lambda b, p: False, problem.targets, None,
                max_iterations=2, polish_tries=0, start=best * 1.3, radius=radius,
            )  # fmt: skip
        steps[label] = seen
    priced = best > 0
    for label in ("box", "trust"):
        np.testing.assert_allclose(steps[label][0], best * 1.3)
    ratio = {label: steps[label][1][priced] / (best[priced] * 1.3) for label in steps}
    assert np.all(ratio["trust"] >= 1 - stages.SAMPLE_RADIUS - 1e-9)
    assert np.all(ratio["trust"] <= 1 + stages.SAMPLE_RADIUS + 1e-9)
    assert np.any(
        (ratio["box"] < 1 - stages.SAMPLE_RADIUS) | (ratio["box"] > 1 + stages.SAMPLE_RADIUS)
    )


def test_the_pairwise_moves_take_a_slice_of_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    request, _ = family_request(1, 300, 0.95, time_limit_s=10.0)
    arrays = build_arrays(request)
    problem = build_problem(arrays)
    shares: list[tuple[float, float]] = []

    def moving(arrays_, columns, amounts, clock, share):  # type: ignore[no-untyped-def]
        shares.append((clock.elapsed() / clock.limit, share))
        return amounts

    monkeypatch.setattr(engine, "polish", moving)
    clock = Clock(100.0)
    clock.started -= 30.0  # 30 s of 100 gone
    plan = engine.evaluate_plan(problem, engine.fixed_amounts(problem))
    engine._polished(problem, arrays, plan, clock)
    ((used, share),) = shares
    assert share == pytest.approx(used + engine.POLISH_SPAN, abs=1e-3)
    assert share < engine.POLISH_SHARE
