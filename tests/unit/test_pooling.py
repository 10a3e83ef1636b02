"""Pooling concave pairs (`optimizer.pooling`): exact where kept exact, a relaxation still
in an outer model and a restriction in an inner one where buckets merge, and the pooled
pairs' amounts recovered from a solution."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.families import family_request
from models.curves import CurveKind
from models.request import AllocationRequest, Objective
from optimizer import model_builder, pooling
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.engines import available_engines, milp_backend
from optimizer.engines.base import MilpResult, Termination
from optimizer.formulation import FINE_GRID, Formulation, StageSpec
from optimizer.milp import MilpStrategy
from optimizer.model_builder import build
from optimizer.pwl import Approximation
from tests.support.bruteforce import solve_reference
from tests.support.instances import random_small_request
from tests.unit.test_bruteforce import describe, disagreements, solve_with


def _solved(form: Formulation) -> MilpResult:
    result = milp_backend("highs").solve(form.model, time_limit_s=60, mip_gap=1e-9)
    assert result.termination is Termination.OPTIMAL and result.objective is not None
    return result


def _models(
    arrays: ProblemArrays, outer: bool, near: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Formulation]:
    """The stage-2 model at its own least shortfall: plain, pooled exactly, and pooled
    with every bucket merged beyond the piece at `near`."""
    segs = Approximation(arrays, True).segments(outer)
    stage_one = build(arrays, segs, StageSpec(minimise_shortfall=True), tier_margin=not outer)
    least = _solved(stage_one).objective
    stage = StageSpec(minimise_shortfall=False, shortfall_cap=least)
    monkeypatch.setattr(pooling, "MIN_PIECES", 8)
    models = {"plain": build(arrays, segs, stage, tier_margin=not outer)}
    for name, exact in (("exact", 10**9), ("coarse", 1)):
        monkeypatch.setattr(pooling, "EXACT_PIECES", exact)
        models[name] = build(arrays, segs, stage, tier_margin=not outer, pool_near=near)
    return models


@pytest.mark.parametrize("outer", [True, False], ids=["outer", "inner"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pooled_models_keep_their_optimum_and_their_side(
    seed: int, outer: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    request, _ = family_request(seed, 60, 0.95, resources=3, time_limit_s=5.0)
    arrays = build_arrays(request)
    near = np.random.default_rng(seed).uniform(0, 0.5, arrays.n_pairs) * arrays.pair_max
    models = _models(arrays, outer, near, monkeypatch)
    plain, exact, coarse = (models[k] for k in ("plain", "exact", "coarse"))
    assert (exact.x_cols < 0).sum() > arrays.n_pairs // 2, "most pairs pool"
    assert coarse.model.n_cols < exact.model.n_cols < plain.model.n_cols
    optimum = {name: _solved(form) for name, form in models.items()}
    value = {name: result.objective for name, result in optimum.items()}
    assert value["exact"] == pytest.approx(value["plain"], rel=1e-7, abs=1e-6)
    tolerance = 1e-7 * abs(value["plain"]) + 1e-6
    # The model minimises −GMV: a relaxation reaches at most as low, a restriction no lower.
    if outer:
        assert value["coarse"] <= value["plain"] + tolerance
    else:
        assert value["coarse"] >= value["plain"] - tolerance
    # The pooled pairs' amounts come back within their bounds and the budgets.
    for name in ("exact", "coarse"):
        solution = optimum[name].x
        assert solution is not None
        amounts = models[name].raw_amounts(arrays, solution)
        assert np.all(amounts <= arrays.pair_max * (1 + 1e-9))
        spent = np.bincount(arrays.pair_resource, weights=amounts, minlength=arrays.n_resources)
        room = arrays.budget - arrays.pinned.sum(axis=0)
        assert np.all(spent <= room + 1e-6 * np.maximum(np.abs(room), 1.0))


def test_no_pooling_without_a_plan_to_pool_around() -> None:
    request, _ = family_request(1, 60, 0.95, resources=3, time_limit_s=5.0)
    arrays = build_arrays(request)
    segs = Approximation(arrays, True).segments(True)
    form = build(arrays, segs, StageSpec(minimise_shortfall=False), tier_margin=False)
    assert form.pooled is None and np.all(form.x_cols >= 0)


def _fill_value(length: np.ndarray, gain: np.ndarray, total: np.ndarray) -> np.ndarray:
    """The greedy fill's GMV at each total (pieces in fill order)."""
    ends = np.cumsum(length)
    filled = np.clip(total[:, None] - (ends - length)[None, :], 0.0, length[None, :])
    return filled @ gain


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.01, 10.0), st.floats(0.0, 100.0)), min_size=1, max_size=200),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4),
    st.integers(0, 8),
)
def test_merged_buckets_lie_above_or_below_the_fill_and_meet_it_at_each_centre(
    pieces: list[tuple[float, float]], where: list[float], exact: int
) -> None:
    length = np.array([p[0] for p in pieces])
    gain = np.sort(np.array([p[1] for p in pieces]))[::-1]  # concave: slopes fall
    centres = [w * length.sum() for w in where]
    totals = np.linspace(0.0, length.sum(), 301)
    truth = _fill_value(length, gain, totals)
    old = pooling.EXACT_PIECES
    pooling.EXACT_PIECES = exact
    try:
        above = pooling._coarse(length, gain, centres, outer=True)
        below = pooling._coarse(length, gain, centres, outer=False)
    finally:
        pooling.EXACT_PIECES = old
    tolerance = 1e-9 * max(float(truth.max()), 1.0)
    for (coarse_length, slope), side in ((above, 1.0), (below, -1.0)):
        assert coarse_length.sum() == pytest.approx(length.sum())
        assert np.all(np.diff(slope) <= 1e-12 * max(float(gain.max()), 1.0)), "concave"
        value = _fill_value(coarse_length, slope, totals)
        assert np.all(side * (value - truth) >= -tolerance)
    # Both meet the fill where it reaches each centre (the piece there is kept exact).
    ends = np.r_[0.0, np.cumsum(length)]
    for centre in centres:
        at = np.array([centre])
        k = min(int(np.searchsorted(ends, centre, side="right")) - 1, len(length) - 1)
        if exact < 1 or not ends[k] <= centre <= ends[k + 1]:
            continue
        for coarse_length, slope in (above, below):
            value = _fill_value(coarse_length, slope, at)
            assert value == pytest.approx(_fill_value(length, gain, at), rel=1e-9, abs=1e-9)


def test_buckets_double_away_from_each_exact_stretch() -> None:
    # 400 pieces of slopes 400..1, exact within 2 pieces of the fills at 100 and 300:
    # single pieces there, and buckets 1, 2, 4, ... long in between and beyond.
    length, gain = np.ones(400), np.arange(400, 0, -1.0)
    old = pooling.EXACT_PIECES
    pooling.EXACT_PIECES = 2
    try:
        coarse_length, _ = pooling._coarse(length, gain, [100.5, 300.5], outer=False)
    finally:
        pooling.EXACT_PIECES = old
    ends = np.cumsum(coarse_length)
    for exact_end in (*range(98, 103), *range(298, 303)):
        assert exact_end in ends
    assert len(coarse_length) < 60, "merged beyond the exact stretches"
    assert np.max(coarse_length) <= 64
    # Twice as many exact pieces as with one centre.
    pooling.EXACT_PIECES = 2
    try:
        single, _ = pooling._coarse(length, gain, [100.5], outer=False)
    finally:
        pooling.EXACT_PIECES = old
    assert np.sum(coarse_length == 1) > np.sum(single == 1)


def test_a_centre_is_added_after_the_plan_and_the_oldest_solution_drops_out() -> None:
    near = np.zeros(3)
    for k in range(1, 7):
        near = pooling.with_centre(near, np.full(3, float(k)))
    assert near.shape == (pooling.MAX_CENTRES, 3)
    assert near[:, 0].tolist() == [0.0, *(float(k) for k in range(8 - pooling.MAX_CENTRES, 7))]


def _fine_grid_instance(seed: int, objective: Objective) -> AllocationRequest:
    """A small request on grids fine enough (over 64 steps) for continuous indices, which
    pairs need to pool (so no max_share rule, which caps them), on curves the MILP models
    inexactly (an exact model is never pooled); one resource keeps the reference fast."""
    request = random_small_request(
        seed,
        kinds=(CurveKind.SATURATING, CurveKind.LOG, CurveKind.HILL),
        n_partners=3 if seed % 3 == 1 else 3 + seed % 4,  # group budgets slow the reference
        n_tiers=1 + seed % 2,
        objective=objective,
        magnitude="realistic",
        max_units=300,
        with_min=seed % 5 == 1,
        with_eligibility=seed % 4 == 2,
        with_pins=seed % 6 == 3,
        with_group_budget=seed % 3 == 1,
    )
    options = replace(request.options, mip_gap=1e-4, time_limit_s=30.0, plans=1)
    return replace(request, options=options)


@pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")
@pytest.mark.parametrize("objective", list(Objective))
@pytest.mark.parametrize("seed", range(16))
def test_pooled_milp_rounds_match_the_exact_optimum(
    seed: int, objective: Objective, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pair that can pool does, in classes of any size, around the empty plan and
    with one exact piece: the MILP's plans, bounds and proofs still hold against the
    exact optimum."""
    monkeypatch.setattr(pooling, "MIN_PIECES", 1)
    monkeypatch.setattr(pooling, "EXACT_PIECES", 1)
    pooled: list[int] = []
    setup, pool = MilpStrategy.__init__, model_builder.pool_concave_pairs

    def pooling_strategy(self: MilpStrategy, arrays: ProblemArrays, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        setup(self, arrays, *args, **kwargs)
        self.pool_near = np.zeros(arrays.n_pairs)

    def counted(form: Formulation, *args) -> Formulation:  # type: ignore[no-untyped-def]
        out = pool(form, *args)
        pooled.append(int((out.x_cols < 0).sum()))
        return out

    monkeypatch.setattr(MilpStrategy, "__init__", pooling_strategy)
    monkeypatch.setattr(model_builder, "pool_concave_pairs", counted)
    request = _fine_grid_instance(seed, objective)
    reference = solve_reference(request)
    plan = solve_with(request, "cbc")
    problems = disagreements(request, plan, reference)
    assert not problems, f"{'; '.join(problems)} ({describe(plan, reference)})"
    # Amounts that cost (min_cost) never pool, nor pairs that may reach a tier (most of
    # so few partners under max_attainment), nor pairs on whole steps.
    arrays = build_arrays(request)
    fine = arrays.pair_max > FINE_GRID * arrays.step[arrays.pair_resource]
    if objective is Objective.MAX_GMV and fine.any():
        assert any(pooled), "some model pooled its pairs"
