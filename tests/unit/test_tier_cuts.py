"""Rows that price tier claims in the MILP's LP relaxation (`optimizer.tier_cuts`, issue
12): their bounds hold against brute force on a partner's pieces, the model's optimum is
the same with them, and its LP relaxation is tighter."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.families import family_request
from optimizer.arrays import build_arrays
from optimizer.decomposition import solve_decomposition
from optimizer.engines import milp_backend
from optimizer.engines.base import Termination
from optimizer.formulation import StageSpec
from optimizer.milp_finish import budget_prices
from optimizer.model_builder import build
from optimizer.pwl import Approximation, Segments
from optimizer.tier_cuts import tier_cuts

GRID = 241  # brute-force amounts per pair


def _pair_pieces(rng: np.random.Generator, shape: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Lengths and slopes of one pair's pieces (concave, S-shaped or with a minimum
    ticket), and its all-or-nothing first piece's length (0: none)."""
    count = int(rng.integers(2, 6))
    lengths = rng.uniform(1.0, 10.0, count)
    slopes = np.sort(rng.uniform(0.2, 5.0, count))[::-1]
    jump = 0.0
    if shape == "s":
        rise = int(rng.integers(1, count))
        slopes = np.r_[np.sort(rng.uniform(0.2, 5.0, rise)), slopes[rise:] * 0.5]
    elif shape == "ticket":
        jump = float(lengths[0])
    return lengths, slopes, jump


def _segments(pairs: list[tuple[np.ndarray, np.ndarray, float]]) -> Segments:
    pair = np.concatenate([np.full(len(lengths), k) for k, (lengths, _, _) in enumerate(pairs)])
    lengths = np.concatenate([p[0] for p in pairs])
    slopes = np.concatenate([p[1] for p in pairs])
    ordered = np.concatenate([np.r_[np.diff(s) > 0, False] for _, s, _ in pairs])
    starts = np.concatenate([np.r_[0.0, np.cumsum(p[0])[:-1]] for p in pairs])
    return Segments(
        pair=pair.astype(np.intp), start=starts, length=lengths, value0=np.zeros(len(pair)),
        slope=slopes, ordered=ordered, jump=np.array([p[2] for p in pairs]),
    )  # fmt: skip


def _reachable(lengths: np.ndarray, slopes: np.ndarray, jump: float) -> tuple[np.ndarray, ...]:
    """Amounts on a fine grid and at the breakpoints the integer model allows (none
    inside a minimum ticket) and the pair's gain there (its pieces filled in order)."""
    ends = np.r_[0.0, np.cumsum(lengths)]
    x = np.union1d(np.linspace(0.0, lengths.sum(), GRID), ends)
    x = x[(x == 0) | (x >= jump)]
    gains = np.r_[0.0, np.cumsum(lengths * slopes)]
    return x, np.interp(x, ends, gains)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    shapes=st.tuples(*(st.sampled_from(["concave", "s", "ticket"]),) * 2),
    share=st.floats(0.05, 0.95),
)
def test_bounds_hold_against_brute_force(seed: int, shapes: tuple[str, str], share: float) -> None:
    rng = np.random.default_rng(seed)
    pairs = [_pair_pieces(rng, shape) for shape in shapes]
    prices = rng.uniform(0.1, 3.0, 2)
    grids = [_reachable(*p) for p in pairs]
    amounts = np.add.outer(prices[0] * grids[0][0], prices[1] * grids[1][0])
    gains = np.add.outer(grids[0][1], grids[1][1])
    needs = np.array([share, min(share + 0.3, 0.98)]) * gains.max()
    cuts = tier_cuts(
        _segments(pairs), np.zeros(2, dtype=np.intp), prices,
        np.zeros(2, dtype=np.intp), np.array([0, 1]), needs,
    )  # fmt: skip
    scale = gains.max()
    free = (gains - amounts).max()
    assert cuts.no_tier_value[0] == pytest.approx(free, abs=1e-9 * scale)
    value = cuts.no_tier_value[0]
    for k, need in enumerate(needs):
        reach = gains >= need
        value -= cuts.value_coef[k]
        # Every amount the integer model allows at this tier satisfies both rows.
        assert (gains - amounts)[reach].max() <= value + 1e-9 * scale
        assert amounts[reach].min() >= cuts.cover[k] - 1e-9 * scale
    assert np.all(cuts.value_coef >= 0) and np.all(cuts.cover >= 0)


def test_on_concave_pieces_the_bounds_are_tight() -> None:
    rng = np.random.default_rng(7)
    pairs = [_pair_pieces(rng, "concave") for _ in range(2)]
    prices = np.array([1.0, 0.5])
    grids = [_reachable(*p) for p in pairs]
    amounts = np.add.outer(prices[0] * grids[0][0], prices[1] * grids[1][0])
    gains = np.add.outer(grids[0][1], grids[1][1])
    need = 0.8 * gains.max()
    cuts = tier_cuts(
        _segments(pairs), np.zeros(2, dtype=np.intp), prices,
        np.zeros(1, dtype=np.intp), np.array([0]), np.array([need]),
    )  # fmt: skip
    reach = gains >= need
    step = max(p[0].sum() for p in pairs) / (GRID - 1) * 5.0  # a grid step's worth
    assert amounts[reach].min() - cuts.cover[0] <= step
    best = (gains - amounts)[reach].max()
    assert cuts.no_tier_value[0] - cuts.value_coef[0] - best <= step


@pytest.mark.parametrize("seed", [1, 2])
def test_the_model_keeps_its_optimum_and_its_relaxation_tightens(seed: int) -> None:
    request, _ = family_request(seed, 40, 0.95, resources=2, time_limit_s=5.0)
    arrays = build_arrays(request)
    # The finish's prices: the decomposition's for the budgets.
    first = solve_decomposition(request, time_limit_s=10.0, mip_gap=1e-3, arrays=arrays)
    prices = budget_prices(arrays, first.prices)
    assert prices is not None
    segs = Approximation(arrays, True).segments(True)
    highs = milp_backend("highs")
    stage_one = build(arrays, segs, StageSpec(minimise_shortfall=True), tier_margin=False)
    least = highs.solve(stage_one.model, time_limit_s=60, mip_gap=1e-9).objective
    stage = StageSpec(minimise_shortfall=False, shortfall_cap=least)
    plain, cut = (
        build(arrays, segs, stage, tier_margin=False, tier_prices=p) for p in (None, prices)
    )
    assert cut.model.A.shape[0] > plain.model.A.shape[0], "the rows are there"
    optima: list[float] = []
    relaxations: list[float] = []
    for form in (plain, cut):
        model = form.model
        whole = highs.solve(model, time_limit_s=60, mip_gap=1e-9)
        assert whole.termination is Termination.OPTIMAL and whole.objective is not None
        optima.append(whole.objective)
        relaxed = replace(model, integer=np.zeros(model.n_cols, dtype=bool))
        lp = highs.solve(relaxed, time_limit_s=60, mip_gap=0)
        assert lp.objective is not None
        relaxations.append(lp.objective)
    assert optima[1] == pytest.approx(optima[0], rel=1e-7)
    # Minimising: a tighter relaxation is a larger LP value, still below the optimum.
    assert relaxations[0] < relaxations[1] <= optima[1] + 1e-7 * abs(optima[1])


def test_budget_prices_take_the_decompositions_first_prices_for_limited_budgets() -> None:
    # One price per limited budget, in resource order; an unlimited one is priced 0.
    arrays = SimpleNamespace(budget=np.array([5.0, np.inf, 7.0]), n_resources=3)
    prices = budget_prices(arrays, (2.0, 3.0, 9e9, 8e9))  # type: ignore[arg-type]
    assert prices is not None
    assert np.array_equal(prices, [2.0, 0.0, 3.0])
    assert budget_prices(arrays, None) is None  # type: ignore[arg-type]
