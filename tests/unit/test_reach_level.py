"""The tier-reaching subproblem (`subproblem.reach_level`): one stacked search over every
(partner, resource combo) pair must give each partner the best combo a search of that
combo alone gives."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.families import family_request
from fixtures.points import as_points
from optimizer.arrays import build_arrays
from optimizer.decomposition import q_search, subproblem
from optimizer.decomposition.problem import Problem, build_problem
from optimizer.decomposition.q_search import (
    dual_value,
    maximisers,
    smallest_reaching_q,
    uplift,
)
from optimizer.decomposition.subproblem import _reachable, reach_level


def _problem(seed: int, size: int, points: float = 0.0) -> Problem:
    """A family programme's problem; `points`: that share of its partners on knots."""
    request, _ = family_request(seed, size, 0.95)
    if points > 0:
        request = as_points(request, points, seed)
    return build_problem(build_arrays(request))


def _one_combo_at_a_time(
    problem: Problem, prices: np.ndarray, need: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The per-combo searches the stacked one replaces: best value and q per partner."""
    rows = np.arange(problem.n)
    families = [family.take(rows) for family in problem.families]
    best, best_q = np.full(problem.n, -np.inf), np.full(problem.n, np.nan)
    for combo in range(1 << problem.n_resources):
        on = np.array([(combo >> r) & 1 == 1 for r in range(problem.n_resources)])
        member = np.all(np.where(on, problem.can_use, ~problem.can_use | problem.optional), axis=1)
        member &= _reachable(families, on, need)
        sub = np.flatnonzero(member)
        if sub.size == 0:
            continue
        fam = [f.take(sub) for f in families]
        mask = np.broadcast_to(on, (sub.size, problem.n_resources))
        value, _, _, q = smallest_reaching_q(fam, mask, prices[sub], 0.0, need[sub])
        better = value > best[sub]
        best[sub[better]], best_q[sub[better]] = value[better], q[better]
    return best, best_q


@pytest.mark.parametrize(("seed", "size"), [(1, 300), (2, 1200), (3, 2000)])
@pytest.mark.parametrize("level", [1, 2])
def test_the_stacked_search_equals_one_search_per_combo(seed: int, size: int, level: int) -> None:
    problem = _problem(seed, size)
    rng = np.random.default_rng(seed)
    scale = np.array([1.0 / max(float(b), 1.0) for b in problem.budget]) * 1e8
    prices = scale[None, :] * rng.uniform(0.2, 5.0, size=(problem.n, problem.n_resources))
    need = problem.thresholds[level - 1] - problem.baseline
    value, _, _, q = reach_level(problem, np.arange(problem.n), prices, 0.0, need)
    expected_value, expected_q = _one_combo_at_a_time(problem, prices, need)
    reachable = np.isfinite(expected_value)
    assert reachable.any() and not reachable.all()
    np.testing.assert_array_equal(np.isfinite(value), reachable)
    np.testing.assert_allclose(value[reachable], expected_value[reachable], rtol=1e-12)
    np.testing.assert_allclose(q[reachable], expected_q[reachable], rtol=1e-12)


@pytest.mark.parametrize(
    ("seed", "size", "points"), [(1, 1200, 0.0), (4, 2000, 0.0), (5, 3000, 0.0), (6, 1500, 0.5)]
)
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_the_search_ends_at_the_least_dual_value_and_its_mix_reaches_the_need(
    seed: int, size: int, points: float, alpha: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The value is D(q) at the q returned (so a valid bound), no more than the value
    tolerance above D's least value on a dense grid of q, and the mix reaches the need
    (the envelope is concave, so the blend of the two ends' mixes does)."""
    problem = _problem(seed, size, points)
    rng = np.random.default_rng(seed)
    scale = np.array([1.0 / max(float(b), 1.0) for b in problem.budget]) * 1e8
    prices = scale[None, :] * rng.uniform(0.2, 5.0, size=(problem.n, problem.n_resources))
    need = problem.thresholds[0] - problem.baseline
    searched: list[tuple] = []  # reach_level's stacked (partner, combo) search
    monkeypatch.setattr(
        subproblem,
        "smallest_reaching_q",
        lambda *args: searched.append(args) or smallest_reaching_q(*args),
    )
    rows = np.flatnonzero(need > 0)
    reach_level(problem, rows, prices[rows], alpha, need[rows])
    ((fam, on, row_prices, _, row_need),) = searched
    assert row_need.size > 50
    value, x, _, q = smallest_reaching_q(fam, on, row_prices, alpha, row_need)
    at_q = dual_value(fam, on, row_prices, alpha, row_need, q, maximisers(fam, on, row_prices, q))
    np.testing.assert_allclose(value, at_q, rtol=1e-12)
    reached = uplift(fam, on, x)
    assert np.all(reached >= row_need * (1 - 1e-9))
    least = np.full(row_need.size, np.inf)
    for log_q in np.linspace(np.log(max(alpha, 1e-6)), np.log(1e4), 4001):
        grid_q = np.full(row_need.size, np.exp(log_q))
        if alpha > 0:
            grid_q = np.maximum(grid_q, alpha)
        amounts = maximisers(fam, on, row_prices, grid_q)
        least = np.minimum(least, dual_value(fam, on, row_prices, alpha, row_need, grid_q, amounts))
    tolerance = 1e-7 * np.maximum(q, 1.0) * row_need
    assert np.all(value <= least + tolerance)
    # The grid is coarse: somewhere the search must beat it, or it is not searching.
    assert np.any(value < least - tolerance)


def _itp_steps(g, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Steps `itp_point` takes to close each bracket of the increasing function g to
    q_search.LOG_TOLERANCE (the search's own loop, without its value test)."""
    tolerance = q_search.LOG_TOLERANCE
    lo, hi = lo.copy(), hi.copy()
    g_lo, g_hi = g(lo), g(hi)
    width0 = np.maximum(hi - lo, tolerance)
    most = np.ceil(np.log2(width0 / tolerance)) + q_search.ITP_SLACK
    steps = np.zeros(lo.size)
    for _ in range(200):
        open_ = hi - lo > tolerance
        if not open_.any():
            break
        point = q_search.itp_point(lo, hi, g_lo, g_hi, q_search.ITP_KAPPA / width0, most - steps)
        assert np.all(((point > lo) & (point < hi))[open_])
        value = g(point)
        up = open_ & (value < 0)
        down = open_ & (value >= 0)
        lo, g_lo = np.where(up, point, lo), np.where(up, value, g_lo)
        hi, g_hi = np.where(down, point, hi), np.where(down, value, g_hi)
        steps += open_
    assert np.all(hi - lo <= tolerance)
    return steps


def test_itp_steps_are_never_more_than_bisection_s_and_far_fewer_on_smooth_uplifts() -> None:
    """The search's steps on log q: a saturating uplift of exp(t) (smooth, strongly
    curved, where false position keeps one end for many steps) closes in a few steps; a
    jump the leap search missed (a flat uplift, then a step up) in no more than
    bisection's count plus _ITP_SLACK."""
    rng = np.random.default_rng(7)
    rows = 500
    lo = rng.uniform(-25.0, -15.0, rows)
    width = rng.uniform(0.5, 7.0, rows)
    hi = lo + width
    # Bisection's count, plus one where rounding leaves the last halving a hair wide.
    bisection = np.ceil(np.log2(width / q_search.LOG_TOLERANCE)) + 1
    root = lo + rng.uniform(0.01, 0.99, rows) * width
    need = rng.uniform(1e6, 1e8, rows)
    top = need / (1 - np.exp(-np.exp(root - lo)))  # uplift top * (1 - e^{-q/q_lo})

    def saturating(t: np.ndarray) -> np.ndarray:
        return top * (1 - np.exp(-np.exp(t - lo))) - need

    smooth = _itp_steps(saturating, lo, hi)
    assert np.all(smooth <= bisection + q_search.ITP_SLACK)
    assert np.median(smooth) <= 0.35 * np.median(bisection)

    def jump(t: np.ndarray) -> np.ndarray:
        return np.where(t >= root, 5e4, -4e5)

    stepped = _itp_steps(jump, lo, hi)
    assert np.all(stepped <= bisection + q_search.ITP_SLACK)


@pytest.mark.parametrize(
    ("seed", "size", "points"), [(2, 1200, 0.0), (3, 2000, 0.3), (5, 1000, 1.0)]
)
def test_a_search_takes_few_steps_once_it_has_tried_the_uplift_s_breakpoints(
    seed: int, size: int, points: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between two breakpoints (a leap, a points curve's hull vertex, a smooth amount
    starting to move or reaching its max) every amount moves smoothly or not at all, so
    ITP closes each bracket in a few steps: the whole search, breakpoints included, takes
    at most 18 evaluations of its rows' maximisers (9-17 on 48 such searches of seeds
    1-8; 13-39, median 37, when ITP had to cross the kinks and the hull vertices)."""
    problem = _problem(seed, size, points)
    rng = np.random.default_rng(seed)
    scale = np.array([1.0 / max(float(b), 1.0) for b in problem.budget]) * 1e8
    prices = scale[None, :] * rng.uniform(0.2, 5.0, size=(problem.n, problem.n_resources))
    evaluations = 0
    real = q_search.maximisers

    def counted(*args: object) -> np.ndarray:
        nonlocal evaluations
        evaluations += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(q_search, "maximisers", counted)
    for level in (1, 2):
        need = problem.thresholds[level - 1] - problem.baseline
        rows = np.flatnonzero(need > 0)
        evaluations = 0
        value, _, _, _ = reach_level(problem, rows, prices[rows], 0.0, need[rows])
        assert np.isfinite(value).sum() > 10
        assert evaluations <= 18
