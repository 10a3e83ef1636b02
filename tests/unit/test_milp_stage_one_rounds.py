"""Stage 1 on CBC keeps refining for a third round at an unchanged shortfall and bound:
the third round's breakpoints are what prove it (issue 12: a plan must say whether its
shortfall is proven, and the engine should prove it when it can)."""

from __future__ import annotations

import pytest

from fixtures.families import family_request
from models.plan import SolveStatus
from optimizer import solve
from optimizer.engines import available_engines

pytestmark = pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")


def test_a_shortfall_the_third_refinement_proves_is_proven() -> None:
    # Family seed 3, 600 partners: the decomposition's stage 1 ends at shortfall 1,
    # unproven (its Lagrangian allows 46.003 of the 46 weighted targets); CBC's rounds
    # read (1, bound 0), (1, bound 0), then (1, bound 1). With two rounds the plan came
    # back `feasible` and unproven.
    request, _ = family_request(3, 600, 0.95, time_limit_s=40.0, mip_gap=1e-3)
    plan = solve(request)[0]
    assert plan.solver.engine == "cbc"
    assert plan.objective.weighted_shortfall == 1.0
    assert plan.solver.shortfall_proven is True
    assert plan.solver.shortfall_bound == 1.0
    assert plan.solver.status is SolveStatus.OPTIMAL
