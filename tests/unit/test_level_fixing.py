"""Reduced-cost fixing of tier levels for the MILP finish (issue 12).

At the grid dual's prices every plan that keeps stage 2's rows has GMV at most the
Lagrangian's value less its partners' reduced costs, so a plan better than the best one
known can give a partner only the levels whose reduced cost fits in the slack between
the two. The finish claims tiers within those levels only (1,000 family partners, seed 8:
9 free tier claims of 41, 21.4 s to 13.6 s with the same plan).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fixtures.families import family_request
from optimizer import neighbourhood
from optimizer.arrays import build_arrays
from optimizer.clock import Clock
from optimizer.decomposition import engine, solve_decomposition
from optimizer.decomposition.certificate import level_ranges
from optimizer.decomposition.option_plan import first_pass
from optimizer.decomposition.primal import evaluate_plan
from optimizer.decomposition.refine import refine_bound
from optimizer.engines import available_engines, milp_backend
from optimizer.formulation import StageSpec
from optimizer.milp import solve_milp
from optimizer.model_builder import build
from optimizer.pwl import Approximation
from tests.support.stage_two import stage_two

pytestmark = pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])  # 1 and 5: a target out of reach
def test_a_better_plan_takes_only_levels_the_ranges_allow(seed: int) -> None:
    request, problem, one, stage, _, prices, clock = stage_two(seed, 300)
    assert one.proven, "the least shortfall is proven: no plan is better by shortfall"
    known = first_pass(problem, stage, prices, clock)
    assert known is not None
    # A better plan: CBC's, from the known one, to its own proven gap.
    outcome = solve_milp(
        build_arrays(request), milp_backend("cbc"), warm_start=None, time_limit_s=60.0
    )
    better = evaluate_plan(problem, outcome.candidates[0].amounts.copy())
    assert better.shortfall == known.shortfall == one.floor
    # Fix against a plan a little worse than both, so that CBC's is strictly better.
    threshold = min(known.objective, better.objective) * (1 - 1e-5)
    grid = refine_bound(problem, stage, clock, 0.95, 1e-3, prices)
    assert grid.prices is not None
    found = level_ranges(
        problem, stage, grid.prices, dataclasses.replace(known, objective=threshold),
        grid.resource, one.proven,
    )  # fmt: skip
    assert found is not None
    lowest, highest = found
    levels = problem.levels(better.amounts)
    assert np.all((lowest <= levels) & (levels <= highest)), "a better plan is within them"
    assert np.mean(lowest == highest) > 0.5, "and they settle most partners"


def test_no_level_is_fixed_under_an_attainment_row_while_stage_one_is_unproven() -> None:
    """A plan with less shortfall is better whatever its GMV, and the argument only covers
    plans with more GMV."""
    _, problem, _, stage, _, prices, clock = stage_two(1, 300)
    assert stage.attainment is not None
    known = first_pass(problem, stage, prices, clock)
    assert known is not None
    assert level_ranges(problem, stage, prices, known, None, True) is not None
    assert level_ranges(problem, stage, prices, known, None, False) is None


def test_the_model_claims_tiers_only_within_the_ranges() -> None:
    request, problem, *_ = stage_two(1, 300)
    arrays = build_arrays(request)
    segments = Approximation(arrays).segments(outer=True)
    stage = StageSpec(minimise_shortfall=False, shortfall_cap=0.0)
    free = build(arrays, segments, stage, tier_margin=False)
    assert free.z_cols, "partners who may cross a threshold claim it"
    tiers = problem.n_tiers
    never = np.zeros(problem.n, dtype=np.intp)
    none = build(arrays, segments, stage, tier_margin=False, tier_levels=(never, never))
    assert not none.z_cols
    every = np.full(problem.n, tiers, dtype=np.intp)
    forced = build(arrays, segments, stage, tier_margin=False, tier_levels=(every, every))
    assert set(forced.z_cols) == set(free.z_cols)
    columns = list(forced.z_cols.values())
    assert np.all(forced.model.col_lo[columns] == 1.0), "a level every better plan has"
    assert np.all(free.model.col_lo[list(free.z_cols.values())] == 0.0)


def test_partners_who_may_claim_no_tier_keep_their_s_curves_relaxed() -> None:
    request, problem, *_ = stage_two(1, 300)
    arrays = build_arrays(request)
    exact_for_all = Approximation(arrays, exact_tier_curves=True)
    assert exact_for_all.relaxed < Approximation(arrays).relaxed, "tier partners go exact"
    nobody = Approximation(arrays, True, may_claim=np.zeros(problem.n, dtype=bool))
    assert nobody.relaxed == Approximation(arrays).relaxed
    everybody = Approximation(arrays, True, may_claim=np.ones(problem.n, dtype=bool))
    assert everybody.relaxed == exact_for_all.relaxed


def test_each_neighbourhood_milp_gets_its_own_partners_levels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, problem, _, stage, _, prices, clock = stage_two(2, 300)
    known = first_pass(problem, stage, prices, clock)
    assert known is not None
    arrays = build_arrays(request)
    # Levels told apart by partner, so that a slice of the wrong partners shows.
    levels = (np.arange(problem.n) % 2, np.arange(problem.n) % 2 + problem.n_tiers)
    drawn: list[np.ndarray] = []
    handed: list[object] = []
    draw, solve = neighbourhood.sub_request, neighbourhood.solve_milp

    def drawing(*args: object) -> object:
        drawn.append(np.asarray(args[3]))  # the partners re-solved in this round
        return draw(*args)  # type: ignore[arg-type]

    def solving(*args: object, **kwargs: object) -> object:
        handed.append(kwargs["tier_levels"])
        return solve(*args, **{**kwargs, "tier_levels": None})  # type: ignore[arg-type]

    monkeypatch.setattr(neighbourhood, "sub_request", drawing)
    monkeypatch.setattr(neighbourhood, "solve_milp", solving)
    neighbourhood.improve_in_neighbourhoods(
        arrays, known.amounts, None, known.objective * 1.01, Clock(8.0), levels=levels
    )
    assert handed, "at least one round ran"
    assert len(drawn) - len(handed) in (0, 1), "a round without a sub-request ends them"
    for inside, given in zip(drawn, handed, strict=False):
        assert isinstance(given, tuple)
        assert np.array_equal(given[0], levels[0][inside])
        assert np.array_equal(given[1], levels[1][inside])


def test_the_levels_are_fixed_once_when_nothing_better_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When neither the improver nor the option plan's second pass finds a better plan,
    the improver's levels and the outcome's are fixed against the same plan at the same
    prices: one evaluation, the same levels."""
    request, _ = family_request(2, 300, 0.95, time_limit_s=20.0)
    calls: list[object] = []
    fixing = engine.level_ranges

    def counting(*args: object) -> object:
        calls.append(fixing(*args))  # type: ignore[arg-type]
        return calls[-1]

    handed: list[object] = []

    def improver(amounts, floor, bound, seconds, spent, stop, levels):  # type: ignore[no-untyped-def]
        handed.append(levels)
        return None

    monkeypatch.setattr(engine, "level_ranges", counting)
    monkeypatch.setattr(engine, "second_pass", lambda *args: None)
    outcome = solve_decomposition(
        request, time_limit_s=20.0, mip_gap=1e-7, improve=improver, anytime=False
    )
    assert handed and handed[0] is not None, "the improver got levels"
    assert len(calls) == 1
    assert outcome.tier_levels is handed[0]
