"""On an exact model (linear or points curves, packages) the inner model is its own
relaxation in stage 2, but not in stage 1: it claims a tier only with a margin above the
threshold. Two partners that the whole budget lifts to ¥100M exactly both reach it, yet
the inner model alone "proved" one of them short (HiGHS: `optimal`, shortfall 1, bound 1).
Stage 1's proof comes from the outer model, which claims tiers without the margin, and
where the inner model is called infeasible, the outer model's solution is the plan."""

from __future__ import annotations

import pytest

from models.curves import Curve, CurveKind
from models.plan import SolveStatus
from models.request import AllocationRequest, Options, Partner, Resource, Tier
from optimizer import solve
from optimizer.engines import available_engines


def _request(step: float | None, engine: str) -> AllocationRequest:
    # ¥50M + 0.5 × ¥100M = ¥100M: each partner needs half of the ¥200M budget, exactly.
    curve = Curve(CurveKind.LINEAR, roi=0.5)
    return AllocationRequest(
        name="both at the threshold",
        resources=(Resource("fund", budget=2e8, step=step),),
        tiers=(Tier("100M", min_gmv=1e8, target=2),),
        partners=tuple(
            Partner(id=f"p{i}", baseline_gmv=5e7, curves={"fund": curve}) for i in range(2)
        ),
        options=Options(time_limit_s=20.0, engine=engine),
    )


@pytest.mark.parametrize("engine", ["highs", "cbc", "auto"])
@pytest.mark.parametrize("step", [1e7, 1e6, None])
def test_partners_lifted_exactly_to_a_threshold_reach_it(step: float | None, engine: str) -> None:
    # CBC called the inner model infeasible with a ¥1M step or none (and the request with
    # it): the outer model's solution, repaired, is the plan (`OuterRepair.rescued`).
    if engine != "auto" and engine not in available_engines():
        pytest.skip(f"{engine} not installed")
    plan = solve(_request(step, engine))[0]
    assert plan.solver.status is not SolveStatus.INFEASIBLE
    assert plan.objective.weighted_shortfall == 0.0
    assert plan.solver.shortfall_proven is True
    assert plan.solver.shortfall_bound == 0.0
    assert plan.objective.total_projected_gmv == pytest.approx(2e8)
