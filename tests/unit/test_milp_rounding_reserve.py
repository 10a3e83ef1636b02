"""The inner model holds a little of a fine-stepped budget back for rounding. A start it
must hold at a proven shortfall may spend that too: then the round is solved again
without the reserve, instead of falling back to stage 1 (issue 12: family seed 2, 3,000
partners, 4 resources, ended at the 58 s limit that way; 18.7 s `optimal` without it).
An exact model (linear or points curves) is its own bound, so it holds nothing back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.curves import Curve, CurveKind
from models.plan import SolveStatus
from models.request import AllocationRequest, Options, Partner, Resource, Tier
from optimizer import solve
from optimizer.arrays import build_arrays
from optimizer.engines import available_engines, milp_backend
from optimizer.formulation import StageSpec
from optimizer.milp import solve_milp
from optimizer.model_builder import build
from optimizer.outcome import Candidate
from optimizer.progress import ProgressEvent
from optimizer.pwl import Approximation

pytestmark = pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")

STEP = 1e6
FUND = Resource("fund", budget=200 * STEP, step=STEP)
# 100 steps lift each of two partners from ¥50M to ¥100.1M (99.8 do not): both reach ¥100M
# only if all 200 steps of the budget go to them, 100 each.
LINEAR = Curve(CurveKind.LINEAR, roi=0.501)
SATURATING = Curve(CurveKind.SATURATING, max_uplift=2e8, scale=1e8 / -math.log(1 - 50.1e6 / 2e8))


def _request(curve: Curve = SATURATING, engine: str = "auto") -> AllocationRequest:
    return AllocationRequest(
        name="every step spent",
        resources=(FUND,),
        tiers=(Tier("100M", min_gmv=1e8, target=2),),
        partners=tuple(
            Partner(id=f"p{i}", baseline_gmv=5e7, curves={"fund": curve}) for i in range(2)
        ),
        options=Options(time_limit_s=20.0, engine=engine),
    )


def _budget_upper(reserve: bool) -> float:
    """The fund's budget row in request units, as the inner model holds it."""
    arrays = build_arrays(_request())
    segs = Approximation(arrays).segments(False)
    model = build(arrays, segs, StageSpec(True), reserve=reserve).model
    budget_rows = np.flatnonzero(np.isfinite(model.row_hi) & (model.row_hi > 0))
    return float(model.row_hi[budget_rows].max()) * float(arrays.resource_scale[0])


def test_the_reserve_holds_a_step_back_and_can_be_lifted() -> None:
    assert _budget_upper(False) == pytest.approx(FUND.budget)
    assert _budget_upper(True) == pytest.approx(FUND.budget - STEP)


def test_a_start_that_spends_the_reserve_is_held_without_it() -> None:
    arrays = build_arrays(_request())
    start = Candidate(np.full((2, 1), 100 * STEP))
    events: list[ProgressEvent] = []
    outcome = solve_milp(
        arrays, milp_backend("cbc"), warm_start=start, proven_shortfall=0.0,
        progress=events.append,
    )  # fmt: skip
    assert not [e for e in events if e.stage == "shortfall"], "no stage 1: it is proven"
    assert outcome.candidates
    plan = outcome.candidates[0].amounts
    assert np.allclose(plan, 100 * STEP), "both partners keep their tier"
    assert outcome.shortfall_proven is True and outcome.shortfall_bound == 0.0
    assert outcome.status is SolveStatus.OPTIMAL


def test_an_exact_model_proves_no_shortfall_its_reserve_made_up() -> None:
    # Linear curves are modelled exactly, so the inner model is its own bound: with 199
    # of the 200 steps it "proved" one partner short (CBC: `optimal`, shortfall 1, bound 1).
    plan = solve(_request(LINEAR, engine="cbc"))[0]
    assert plan.objective.weighted_shortfall == 0.0
    assert plan.solver.shortfall_proven is True and plan.solver.shortfall_bound == 0.0
