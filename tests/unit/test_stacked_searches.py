"""Searches stacked for speed must answer as the separate searches they replace: every tier
level's rows in one search (`subproblem.respond`), the levels of a grid search limited
apart (`reach_on_grid`'s segments), and the slope inverse taken per curve kind over a
mixed family (`Family.argmax_slope`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.families import family_request
from optimizer.arrays import build_arrays
from optimizer.decomposition import subproblem
from optimizer.decomposition.problem import Problem, _family, build_problem
from optimizer.decomposition.subproblem import grid_span, reach_level, reach_on_grid, respond
from tests.support.instances import SAMPLE_CURVES


@given(
    rows=st.lists(
        st.tuples(
            st.integers(-1, len(SAMPLE_CURVES) - 1),
            st.sampled_from([0.0, 1e6, 5e6, 4e7]),
            st.sampled_from([0.0, 1e-3, 0.05, 0.3, 1.0, 3.0, 30.0, 1e300]),
        ),
        min_size=1,
        max_size=14,
    )
)
@settings(max_examples=80, deadline=None)
def test_a_mixed_family_takes_each_row_s_own_argmax(
    rows: list[tuple[int, float, float]],
) -> None:
    """Mixed kinds (and rows without a curve, -1), each row with its own ticket and price
    (0 takes everything; a price past every slope takes the ticket): each row's amount is
    the one a family of that row alone takes."""
    curves = [None if pick < 0 else SAMPLE_CURVES[pick] for pick, _, _ in rows]
    lo = np.array([ticket for _, ticket, _ in rows])
    price = np.array([p for _, _, p in rows])
    mixed = _family(curves)
    mixed.set_domain(lo, np.full(lo.size, 2e8))
    taken = mixed.argmax_slope(price)
    for i, curve in enumerate(curves):
        alone = _family([curve])
        alone.set_domain(lo[i : i + 1], np.array([2e8]))
        assert taken[i] == alone.argmax_slope(price[i : i + 1])[0]
    assert np.all((taken >= lo) & (taken <= 2e8))


def _priced(seed: int, size: int) -> tuple[Problem, np.ndarray]:
    request, _ = family_request(seed, size, 0.95)
    problem = build_problem(build_arrays(request))
    rng = np.random.default_rng(seed)
    scale = np.array([1.0 / max(float(b), 1.0) for b in problem.budget]) * 1e8
    prices = scale[None, :] * rng.uniform(0.2, 5.0, size=(problem.n, problem.n_resources))
    return problem, prices


@pytest.mark.parametrize(("seed", "size"), [(1, 300), (2, 800)])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("on_grid", [False, True], ids=["envelope", "grid"])
def test_one_search_over_every_level_answers_as_one_search_per_level(
    seed: int, size: int, alpha: float, on_grid: bool
) -> None:
    problem, prices = _priced(seed, size)
    grid = problem.lumpy_resources()
    assert grid, "the family programmes step their fund"
    response = respond(problem, prices, alpha, exact_grid=grid[0] if on_grid else None)
    assert len(response.reach) == problem.n_tiers
    assert any(found is not None for found in response.reach)
    for level, found in enumerate(response.reach, start=1):
        if found is None:  # every partner reaches it freely, or none can
            continue
        need = problem.thresholds[level - 1] - problem.baseline[found.rows]
        if on_grid:
            value, amounts, q = reach_on_grid(
                problem, found.rows, prices[found.rows], alpha, need, grid[0]
            )
        else:
            value, amounts, _, q = reach_level(problem, found.rows, prices[found.rows], alpha, need)
        np.testing.assert_array_equal(response.values[found.rows, level], value)
        np.testing.assert_array_equal(found.amounts, amounts)
        np.testing.assert_array_equal(found.q, q)


def test_a_segment_past_the_grid_limit_leaves_the_grid_and_the_others_stay_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two levels' rows searched together: with a limit between the two segments' pair
    counts, the larger segment is searched off the grid, as alone it would be, and the
    smaller on it."""
    problem, prices = _priced(3, 400)
    r = problem.lumpy_resources()[0]
    small, large = np.arange(60), np.arange(60, problem.n)
    both = np.arange(problem.n)
    need = problem.thresholds[0] - problem.baseline
    pairs = [int(grid_span(problem, part, r)[1].sum()) for part in (small, large)]
    monkeypatch.setattr(subproblem, "GRID_ROWS", (pairs[0] + pairs[1]) // 2)
    assert pairs[0] <= subproblem.GRID_ROWS < pairs[1]
    on_grid = reach_on_grid(problem, small, prices[small], 0.0, need[small], r)
    plain = reach_level(problem, large, prices[large], 0.0, need[large])
    on_large_grid = _on_the_grid(problem, large, prices[large], need[large], r, monkeypatch)
    assert not np.array_equal(on_large_grid, plain[0]), "the grid tightens some values"

    segments = np.repeat([0, 1], [small.size, large.size])
    value, amounts, q = reach_on_grid(problem, both, prices, 0.0, need, r, segments)
    np.testing.assert_array_equal(value[small], on_grid[0])
    np.testing.assert_array_equal(amounts[small], on_grid[1])
    np.testing.assert_array_equal(q[small], on_grid[2])
    np.testing.assert_array_equal(value[large], plain[0])
    np.testing.assert_array_equal(amounts[large], plain[1])
    np.testing.assert_array_equal(q[large], plain[3])


def _on_the_grid(
    problem: Problem,
    rows: np.ndarray,
    prices: np.ndarray,
    need: np.ndarray,
    r: int,
    monkeypatch: pytest.MonkeyPatch,
) -> np.ndarray:
    """The values of `rows` searched on the grid whatever their pair count."""
    limit = subproblem.GRID_ROWS
    monkeypatch.setattr(subproblem, "GRID_ROWS", 10**9)
    value = reach_on_grid(problem, rows, prices, 0.0, need, r)[0]
    monkeypatch.setattr(subproblem, "GRID_ROWS", limit)
    return value
