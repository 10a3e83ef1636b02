"""The concave pairs' pieces built in bulk (`optimizer.pwl_bulk`) are the pieces the
per-pair path builds, bit for bit, for both approximations: on random small requests of
every curve kind (minimum tickets, steps, S-curves left to the per-pair path beside
them), after refinement at random amounts, and on a family programme."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.families import family_programme
from optimizer import pwl, pwl_bulk
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.pwl import Approximation, Segments
from tests.support.instances import random_small_request

FIELDS = ("pair", "start", "length", "value0", "slope", "ordered", "jump")


def _both(
    monkeypatch: pytest.MonkeyPatch, approximation: Approximation, outer: bool
) -> tuple[Segments, Segments]:
    bulk = approximation.segments(outer)
    with monkeypatch.context() as patch:
        patch.setattr(pwl, "bulk_pairs", lambda arrays: np.zeros(0, dtype=np.intp))
        one_by_one = approximation.segments(outer)
    return bulk, one_by_one


def _assert_same(bulk: Segments, one_by_one: Segments) -> None:
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(bulk, field), getattr(one_by_one, field), field)


def _refined(arrays: ProblemArrays, seed: int, exact_tiers: bool) -> Approximation:
    approximation = Approximation(arrays, exact_tiers)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        amounts = rng.uniform(0, 1, arrays.n_pairs) * arrays.pair_max
        approximation.add(np.where(rng.uniform(size=arrays.n_pairs) < 0.2, 0.0, amounts), True)
    return approximation


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("outer", [False, True])
def test_bulk_pieces_are_the_per_pair_pieces(
    monkeypatch: pytest.MonkeyPatch, seed: int, outer: bool
) -> None:
    request = random_small_request(
        seed, n_partners=9, n_resources=2, with_min=seed % 2 == 0, max_units=6 + seed
    )
    arrays = build_arrays(request)
    approximation = _refined(arrays, seed, exact_tiers=seed % 3 == 0)
    bulk, one_by_one = _both(monkeypatch, approximation, outer)
    assert len(pwl.bulk_pairs(arrays)) > 0, "some pairs take the bulk path"
    _assert_same(bulk, one_by_one)


@pytest.mark.parametrize("outer", [False, True])
def test_bulk_pieces_on_a_family_programme(monkeypatch: pytest.MonkeyPatch, outer: bool) -> None:
    arrays = build_arrays(family_programme(3, 400, 0.95, resources=3).request())
    assert len(pwl.bulk_pairs(arrays)) > arrays.n_pairs // 2
    approximation = _refined(arrays, 7, exact_tiers=True)
    _assert_same(*_both(monkeypatch, approximation, outer))


def _initial_points_both(
    monkeypatch: pytest.MonkeyPatch, arrays: ProblemArrays, count: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    bulk = pwl.initial_points(arrays, count)
    with monkeypatch.context() as patch:
        patch.setattr(pwl, "bulk_pairs", lambda arrays: np.zeros(0, dtype=np.intp))
        one_by_one = pwl.initial_points(arrays, count)
    return bulk, one_by_one


@pytest.mark.parametrize("seed", range(16))
def test_bulk_initial_points_are_the_per_pair_points(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    request = random_small_request(
        seed, n_partners=9, n_resources=2, with_min=seed % 2 == 0, max_units=4 + 3 * seed
    )
    arrays = build_arrays(request)
    bulk, one_by_one = _initial_points_both(monkeypatch, arrays, 8 - seed % 4)
    for k in range(arrays.n_pairs):
        np.testing.assert_array_equal(bulk[k], one_by_one[k], f"pair {k}")


def test_bulk_initial_points_on_a_family_programme(monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = build_arrays(family_programme(2, 400, 0.95, resources=3).request())
    bulk, one_by_one = _initial_points_both(monkeypatch, arrays, pwl.INITIAL_POINTS)
    for k in range(arrays.n_pairs):
        np.testing.assert_array_equal(bulk[k], one_by_one[k], f"pair {k}")


@pytest.mark.parametrize("tolerance", [0.02, 0.05])
def test_runs_of_close_points_take_the_one_by_one_pass(
    monkeypatch: pytest.MonkeyPatch, tolerance: float
) -> None:
    """With points this close to each other (a coarse tolerance), some pairs hold runs of
    points each within the tolerance of the next, which the one-by-one pass keeps or drops
    by what it kept before: those go that way, and every pair's points still agree."""
    monkeypatch.setattr(pwl, "SAME_POINT", tolerance)
    arrays = build_arrays(family_programme(2, 200, 0.95, resources=3).request())
    rows = pwl.bulk_pairs(arrays)
    runs = pwl_bulk.concave_initial_points(arrays, rows, pwl.INITIAL_POINTS, tolerance)
    assert any(points is None for points in runs), "some pairs hold such runs"
    bulk, one_by_one = _initial_points_both(monkeypatch, arrays, pwl.INITIAL_POINTS)
    for k in range(arrays.n_pairs):
        np.testing.assert_array_equal(bulk[k], one_by_one[k], f"pair {k}")
