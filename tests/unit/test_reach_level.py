"""The tier-reaching subproblem (`subproblem.reach_level`): one stacked search over every
(partner, resource combo) pair must give each partner the best combo a search of that
combo alone gives."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.families import family_request
from optimizer.arrays import build_arrays
from optimizer.decomposition.problem import Problem, build_problem
from optimizer.decomposition.subproblem import _bisect, _reachable, reach_level


def _problem(seed: int, size: int) -> Problem:
    request, _ = family_request(seed, size, 0.95)
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
        value, _, _, q = _bisect(fam, mask, prices[sub], 0.0, need[sub])
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
