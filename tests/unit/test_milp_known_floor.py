"""Another engine's proven least shortfall settles the MILP's stage 1 once a plan reaches
it, even where the MILP's own outer bound proves nothing (issue 12: family seed 3, 3,000
partners, ambition 0.98, the decomposition proved 1 but its plan fell 2 short; its
neighbourhoods reached 1 and then spent 3.2 s hunting below it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from fixtures.families import family_request
from models.plan import SolveStatus, curve_columns
from optimizer.arrays import build_arrays
from optimizer.decomposition import solve_decomposition
from optimizer.engines import available_engines, milp_backend
from optimizer.engines.base import MilpModel, MilpResult
from optimizer.milp import solve_milp
from optimizer.milp_finish import finish_by_milp
from optimizer.outcome import Candidate
from optimizer.scoring import score, valid_plan
from tests.support.milp import WrappedBackend

pytestmark = pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")


class _Boundless(WrappedBackend):
    """CBC whose results carry no bound: an outer model that proves nothing."""

    def solve(self, model: MilpModel, **kwargs: Any) -> MilpResult:
        return replace(self.inner.solve(model, **kwargs), bound=None)


def _arrays():  # type: ignore[no-untyped-def]
    request, _ = family_request(9, 60, 0.98, time_limit_s=20.0)
    return build_arrays(request)


def test_the_programme_falls_short_by_one_at_least() -> None:
    outcome = solve_milp(_arrays(), milp_backend("cbc"))
    assert outcome.shortfall_proven is True
    assert outcome.shortfall_bound == 1.0
    assert outcome.candidates


def test_without_a_bound_of_its_own_the_shortfall_stays_unproven() -> None:
    outcome = solve_milp(_arrays(), _Boundless())
    assert outcome.candidates
    assert outcome.shortfall_proven is False


def test_another_engines_floor_proves_a_plan_that_reaches_it() -> None:
    outcome = solve_milp(_arrays(), _Boundless(), proven_shortfall=1.0)
    assert outcome.shortfall_proven is True
    assert outcome.shortfall_bound == 1.0


def test_a_floor_below_the_least_shortfall_proves_nothing() -> None:
    outcome = solve_milp(_arrays(), _Boundless(), proven_shortfall=0.0)
    assert outcome.candidates
    assert outcome.shortfall_proven is False


@pytest.mark.parametrize("floor, proven", [(1.0, True), (0.0, False)])
def test_the_milp_finish_takes_the_decompositions_floor_even_above_its_plan(
    monkeypatch: pytest.MonkeyPatch, floor: float, proven: bool
) -> None:
    # Family seed 708, 3,000 partners, 4 resources, 30 s: the decomposition's plan fell 4
    # short over a floor of 3; the finish, handed no floor, found a plan 3 short and ended
    # `time_limit` with it unproven, its own stage-1 bound 0.
    # Without its group rules the programme still falls short by one at least (CBC proves
    # it), and a plan of nothing is valid: a start well short of the floor.
    arrays = build_arrays(replace(_arrays().request, constraints=()))
    least = solve_milp(arrays, milp_backend("cbc"))
    assert least.shortfall_proven and least.shortfall_bound == 1.0
    first = solve_decomposition(arrays.request, time_limit_s=5.0, mip_gap=1e-3, arrays=arrays)
    nothing = Candidate(np.zeros((arrays.n_partners, arrays.n_resources)))
    columns = curve_columns(arrays.request)
    assert valid_plan(arrays, columns, nothing) and score(arrays, columns, nothing).shortfall > 1
    first.status, first.candidates = SolveStatus.FEASIBLE, [nothing]
    first.shortfall_bound, first.shortfall_proven = floor, False
    monkeypatch.setattr("optimizer.milp_finish.milp_backend", lambda _: _Boundless())
    finished = finish_by_milp(arrays, first, None, None, left_s=15.0, limit_s=20.0)
    assert finished is not first and finished.candidates
    assert score(arrays, columns, finished.candidates[0]).shortfall == 1.0
    assert finished.shortfall_bound == floor, "the floor stands; the MILP's own bound is none"
    assert finished.shortfall_proven is proven
