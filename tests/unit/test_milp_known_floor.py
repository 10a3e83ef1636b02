"""Another engine's proven least shortfall settles the MILP's stage 1 once a plan reaches
it, even where the MILP's own outer bound proves nothing (issue 12: family seed 3, 3,000
partners, ambition 0.98, the decomposition proved 1 but its plan fell 2 short; its
neighbourhoods reached 1 and then spent 3.2 s hunting below it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from fixtures.families import family_request
from optimizer.arrays import build_arrays
from optimizer.engines import available_engines, milp_backend
from optimizer.engines.base import MilpModel, MilpResult
from optimizer.milp import solve_milp
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
