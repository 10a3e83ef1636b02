"""A stage-2 round whose capped inner solve finds nothing, before the MILP has any stage-2
bound, runs once more with the inner solve uncapped: nothing else could use the time (the
neighbourhoods need a bound), and the engine otherwise stopped `feasible` with no gap and
most of its time unused (3,000 family partners, 80% on menus, HiGHS named)."""

from __future__ import annotations

from typing import Any

import pytest

from fixtures.families import family_request
from models.plan import SolveStatus
from optimizer.arrays import build_arrays
from optimizer.engines import available_engines
from optimizer.engines.base import MilpModel, MilpResult, Termination
from optimizer.milp import STAGE2_INNER_SHARE, solve_milp
from tests.support.milp import WrappedBackend

pytestmark = pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")
LIMIT_S = 20.0


class _FirstCappedInnerFindsNothing(WrappedBackend):
    """CBC, except that the first call capped at the stage-2 inner share answers at once
    with no solution, as an inner model that found none in its cap does."""

    def __init__(self) -> None:
        super().__init__("cbc")
        self.limits: list[float] = []
        self.failed = False

    def solve(self, model: MilpModel, **kwargs: Any) -> MilpResult:
        limit = float(kwargs["time_limit_s"])
        self.limits.append(limit)
        if not self.failed and limit == pytest.approx(STAGE2_INNER_SHARE * LIMIT_S):
            self.failed = True
            return MilpResult(Termination.NO_SOLUTION, seconds=0.0)
        return self.inner.solve(model, **kwargs)


def test_a_round_whose_capped_inner_solve_found_nothing_runs_again_uncapped() -> None:
    request, _ = family_request(2, 80, 0.9, time_limit_s=LIMIT_S, mip_gap=1e-3)
    backend = _FirstCappedInnerFindsNothing()
    outcome = solve_milp(build_arrays(request), backend, time_limit_s=LIMIT_S)
    assert backend.failed, "a stage-2 inner solve was capped"
    after = backend.limits[backend.limits.index(pytest.approx(STAGE2_INNER_SHARE * LIMIT_S)) :]
    assert any(limit > STAGE2_INNER_SHARE * LIMIT_S + 1 for limit in after[1:])
    assert outcome.candidates and outcome.best_bound is not None and outcome.mip_gap is not None
    assert outcome.status in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT)
