"""Pooling concave pairs (`optimizer.pooling`): exact where kept exact, a relaxation still
in an outer model and a restriction in an inner one where buckets merge, and the pooled
pairs' amounts recovered from a solution."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.families import family_request
from optimizer import pooling
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.engines import milp_backend
from optimizer.engines.base import MilpResult, Termination
from optimizer.formulation import Formulation, StageSpec
from optimizer.model_builder import build
from optimizer.pwl import Approximation


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


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.01, 10.0), st.floats(0.0, 100.0)), min_size=1, max_size=200),
    st.floats(0.0, 1.0),
    st.integers(0, 8),
)
def test_merged_buckets_lie_above_or_below_the_fill_and_meet_it_at_the_centre(
    pieces: list[tuple[float, float]], where: float, exact: int
) -> None:
    length = np.array([p[0] for p in pieces])
    gain = np.sort(np.array([p[1] for p in pieces]))[::-1]  # concave: slopes fall
    centre = where * length.sum()
    totals = np.linspace(0.0, length.sum(), 301)
    truth = _fill_value(length, gain, totals)
    old = pooling.EXACT_PIECES
    pooling.EXACT_PIECES = exact
    try:
        above = pooling._coarse(length, gain, centre, outer=True)
        below = pooling._coarse(length, gain, centre, outer=False)
    finally:
        pooling.EXACT_PIECES = old
    tolerance = 1e-9 * max(float(truth.max()), 1.0)
    for (coarse_length, slope), side in ((above, 1.0), (below, -1.0)):
        assert coarse_length.sum() == pytest.approx(length.sum())
        assert np.all(np.diff(slope) <= 1e-12 * max(float(gain.max()), 1.0)), "concave"
        value = _fill_value(coarse_length, slope, totals)
        assert np.all(side * (value - truth) >= -tolerance)
    # Both meet the fill where it reaches the centre (the piece there is kept exact).
    at = np.array([centre])
    for coarse_length, slope in (above, below):
        value = _fill_value(coarse_length, slope, at)
        ends = np.r_[0.0, np.cumsum(length)]
        k = min(int(np.searchsorted(ends, centre, side="right")) - 1, len(length) - 1)
        if exact >= 1 and ends[k] <= centre <= ends[k + 1]:
            assert value == pytest.approx(_fill_value(length, gain, at), rel=1e-9, abs=1e-9)
