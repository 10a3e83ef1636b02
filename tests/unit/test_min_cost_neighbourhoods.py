"""`min_cost` in neighbourhoods (issue 12): the search lowers the cost of a decomposition
plan at the same shortfall, and under `auto` it, not the whole-programme MILP finish,
takes the decomposition's plan on to the requested gap.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import optimizer.neighbourhood as neighbourhood_module
from fixtures.families import family_request
from models.check import check_plan
from models.plan import SolveStatus, curve_columns
from models.request import AllocationRequest, Objective
from optimizer.arrays import build_arrays
from optimizer.clock import Clock, relative_gap
from optimizer.decomposition import solve_decomposition
from optimizer.engines import available_engines
from optimizer.neighbourhood import improve_in_neighbourhoods
from optimizer.scoring import score
from optimizer.solve import solve
from tests.unit.test_neighbourhood import searched

pytestmark = pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")


def _min_cost(seed: int, size: int, ambition: float, limit_s: float) -> AllocationRequest:
    request, _ = family_request(
        seed, size, ambition, resources=3, time_limit_s=limit_s, mip_gap=1e-3
    )
    return replace(request, objective=Objective.MIN_COST)


def test_neighbourhoods_lower_a_min_cost_plan_and_keep_it_valid() -> None:
    request = _min_cost(3, 1000, 0.95, 30.0)
    arrays = build_arrays(request)
    first = solve_decomposition(request, time_limit_s=10.0, mip_gap=1e-3, arrays=arrays)
    assert first.best_bound is not None and first.shortfall_proven
    before, after = searched(arrays, first, 40.0)
    gap = relative_gap(before.cost, first.best_bound, minimise=True)
    assert gap is not None and gap > 0.01, "the decomposition alone pays 1% over its bound"
    # Family 1,000 partners, seed 3: 2.3% over the bound before; after, 0.087% in 3.9 s
    # alone, 0.14% on the loaded CI machine and 0.21% beside three busy loops on 2 cores,
    # where the whole neighbourhood's second 3 s round gained nothing and three random
    # halves in a row then found no saving. So the search must close most of the gap, not
    # all of it, and never go below the bound.
    assert after.cost >= first.best_bound * (1 - 1e-9)
    after_gap = relative_gap(after.cost, first.best_bound, minimise=True)
    assert after_gap is not None and after_gap <= gap / 5


@pytest.mark.slow
def test_auto_takes_a_min_cost_plan_to_its_gap_in_neighbourhoods() -> None:
    # Family seed 5, 2,000 partners: before, the MILP finish took the decomposition's plan
    # and stopped `feasible` 0.21% over the bound after 17 s of 30, or ran to the limit;
    # now `optimal` in 5 s (19 s beside three busy processes on 2 cores).
    request = _min_cost(5, 2000, 0.9, 30.0)
    plan = solve(request)[0]
    assert not check_plan(request, plan)
    report = plan.solver
    assert report.shortfall_proven
    assert report.status is SolveStatus.OPTIMAL
    assert report.mip_gap is not None and report.mip_gap <= request.options.mip_gap


def test_a_plan_costing_nothing_is_within_any_gap_of_a_bound_a_rounding_error_below() -> None:
    assert relative_gap(0.0, -6.8e-13, minimise=True) == 0.0
    assert relative_gap(0.0, -3.6e-7, minimise=True) == 0.0
    assert relative_gap(1.0, 0.5, minimise=True) == pytest.approx(1.0)  # real room counts


def test_a_search_from_a_plan_costing_nothing_ends_once_its_rounds_gain_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 2-partner `min_cost` programme from the brute-force suite whose cheapest plan costs 0,
    # against a decomposition bound of -0.0017: every round "gained" 0 >= 1e-5 × 0, and the
    # search re-solved the same plan until the 30 s limit.
    from tests.unit.test_bruteforce import instance

    request = instance(0, Objective.MIN_COST)
    arrays, columns = build_arrays(request), curve_columns(request)
    first = solve_decomposition(request, time_limit_s=5.0, mip_gap=1e-4, arrays=arrays)
    plan = first.candidates[0]
    assert score(arrays, columns, plan).cost == 0.0
    rounds: list[int] = []
    real_round = neighbourhood_module._round

    def counted(*args: object, **kwargs: object) -> object:
        rounds.append(1)
        return real_round(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(neighbourhood_module, "_round", counted)
    moved = improve_in_neighbourhoods(
        arrays, plan.amounts, first.shortfall_bound, -0.0017, Clock(30.0)
    )
    assert moved is None, "nothing cheaper than nothing"
    assert len(rounds) <= 1 + neighbourhood_module.STALE_HALVES
