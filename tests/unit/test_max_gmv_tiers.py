"""Under `max_gmv` the tiers are reported, not pursued: no engine step may prefer a plan
with more achievers to one with more GMV. A 7-partner request drawn by hypothesis had
HiGHS hold a plan 0.33% below the optimum (stopping `feasible`) because the optimum
left one partner under ¥100M, and the pairwise moves refused to take that partner
below its tier."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fixtures.families import family_programme
from models.check import check_plan
from models.curves import Curve, CurveKind
from models.plan import Plan, SolveStatus, curve_columns
from models.request import (
    AllocationRequest,
    Bounds,
    GroupCount,
    Objective,
    Options,
    Partner,
    Resource,
    Tier,
)
from optimizer import solve
from optimizer.arrays import UnsupportedRequest, build_arrays
from optimizer.clock import Clock
from optimizer.engines import available_engines
from optimizer.polish import polish
from tests.support.bruteforce import solve_reference

M = 1e6


def hill(uplift: float, shape: float, half: float) -> Curve:
    return Curve(CurveKind.HILL, max_uplift=uplift, shape=shape, half_saturation=half)


def drawn_request(engine: str = "auto", time_limit_s: float = 30.0) -> AllocationRequest:
    def partner(pid: str, baseline: float, curve: Curve, cap: float) -> Partner:
        return Partner(
            pid, baseline, curves={"subsidy": curve}, bounds={"subsidy": Bounds(max=cap)}
        )

    partners = (
        partner("p00", 70326597.03, hill(63496766.97, 3.417894, 28699988.80), 40 * M),
        partner("p01", 42873836.37, hill(59886184.45, 3.922602, 29420462.43), 10 * M),
        partner("p02", 61059467.24, Curve(CurveKind.LINEAR, roi=1.2046262439), 40 * M),
        partner("p03", 62585325.55,
                Curve(CurveKind.SATURATING, max_uplift=54251336.42, scale=47671039.70), 30 * M),
        partner("p04", 85533031.44,
                Curve(CurveKind.POINTS, xs=(0.0, 8 * M, 32 * M, 40 * M),
                      ys=(0.0, 2489960.51, 8185501.90, 35385862.53)), 40 * M),
        partner("p05", 69052808.96,
                Curve(CurveKind.POINTS, xs=(0.0, 80 * M / 7, 120 * M / 7, 200 * M / 7, 40 * M),
                      ys=(0.0, 3300216.23, 12910921.24, 30619964.72, 48922130.75)), 30 * M),
        partner("p06", 56938722.66, hill(68502672.48, 0.792441, 20753665.13), 20 * M),
    )  # fmt: skip
    return AllocationRequest(
        resources=(Resource("subsidy", budget=80 * M, step=10 * M),),
        tiers=(Tier("t100m", 100 * M, 2),),
        partners=partners,
        objective=Objective.MAX_GMV,
        options=Options(time_limit_s=time_limit_s, mip_gap=1e-4, engine=engine),
    )


@pytest.mark.parametrize("engine", ["auto", *available_engines()])
def test_max_gmv_gives_up_an_achiever_for_more_gmv(engine: str) -> None:
    # The decomposition certifies the gap only through the CBC MILP finish, which needs
    # 30% of the limit left after its searches: at 3 s a loaded CI machine (two test
    # workers) left it less once (gap 0.054%). Alone it ends `optimal` in 1-2 s.
    request = drawn_request(engine, 10.0 if engine == "decomposition" else 30.0)
    reference = solve_reference(request)
    try:
        plan = solve(request)[0]
    except UnsupportedRequest as refusal:  # curves on a CP-SAT model
        pytest.skip(f"{engine} declines: {refusal}")
    assert check_plan(request, plan) == []
    assert plan.objective.total_projected_gmv == pytest.approx(reference.total_gmv, rel=1e-9)
    if engine == "decomposition":
        # Its bound (the Lagrangian's, on whole 10M steps) does not close on 7 partners
        # (0.054% at 0.6 s, against a gap of 0.01%). Once a search re-solving the whole
        # plan gains nothing, the CBC MILP starts from the plan with the time left, and
        # its bound certifies the gap.
        bound, gap = plan.solver.best_bound, plan.solver.mip_gap
        assert bound is not None and gap is not None
        assert bound >= reference.total_gmv * (1 - 1e-9)
        assert gap <= request.options.mip_gap
        assert plan.solver.status is SolveStatus.OPTIMAL
    else:
        assert plan.solver.status is SolveStatus.OPTIMAL
    # The optimum reaches ¥100M with one partner, where the target is two.
    assert plan.objective.weighted_shortfall == 1


def test_pairwise_moves_under_max_gmv_may_take_a_partner_below_its_tier() -> None:
    request = drawn_request()
    arrays = build_arrays(request)
    # The plan HiGHS kept: p02 at 40M reaches ¥100M; moving 10M to p00 gains 1.85M.
    kept = np.array([[30 * M], [0], [40 * M], [0], [0], [0], [10 * M]])
    moved = polish(arrays, curve_columns(request), kept, Clock(10.0))
    np.testing.assert_allclose(moved[:, 0], [40 * M, 0, 30 * M, 0, 0, 0, 10 * M])


@pytest.mark.skipif("decomposition" not in available_engines(), reason="no decomposition")
def test_the_decomposition_under_max_gmv_gives_up_an_achiever_for_more_gmv() -> None:
    # Without the two points curves (which the decomposition declines) the optimum still
    # leaves one partner under ¥100M; the old ranking kept a plan 0.46% below it.
    request = drawn_request("decomposition", time_limit_s=3.0)
    request = replace(request, partners=request.partners[:4] + request.partners[6:])
    reference = solve_reference(request)
    plan = solve(request)[0]
    assert check_plan(request, plan) == []
    assert plan.objective.total_projected_gmv == pytest.approx(reference.total_gmv, rel=1e-9)
    assert plan.objective.weighted_shortfall == 1


def _missed_counts(request: AllocationRequest, plan: Plan) -> list[GroupCount]:
    gmv = {allocation.partner_id: allocation.projected_gmv for allocation in plan.allocations}
    return [
        rule
        for rule in request.constraints
        if isinstance(rule, GroupCount)
        and sum(
            gmv.get(p.id, p.baseline_gmv) >= request.tier(rule.tier).min_gmv
            for p in request.partners
            if rule.where.matches(p)
        )
        < rule.min
    ]


@pytest.mark.skipif("decomposition" not in available_engines(), reason="no decomposition")
@pytest.mark.parametrize(("seed", "size", "resources"), [(1, 2000, 3), (2, 400, 4)])
def test_a_max_gmv_plan_from_the_decomposition_holds_its_group_counts(
    seed: int, size: int, resources: int
) -> None:
    # Tiers are only reported under max_gmv, but a group_count still holds, as the MILP
    # engines hold it. The decomposition did not price the rows then: family programmes
    # of 400 partners missed a count on 10 seeds of 11, each reported `optimal`. Priced,
    # seed 2 still had 6 of the 7 its count asks for: plans missing a count could beat, on GMV,
    # plans that kept it.
    programme = family_programme(
        seed, size, 0.95, resources=resources, time_limit_s=30.0, mip_gap=1e-3
    )
    request = programme.request()
    request = replace(
        request,
        objective=Objective.MAX_GMV,
        options=replace(request.options, engine="decomposition"),
    )
    assert any(isinstance(rule, GroupCount) for rule in request.constraints)
    plan = solve(request)[0]
    assert check_plan(request, plan) == []
    assert _missed_counts(request, plan) == []
    assert plan.solver.best_bound is not None and plan.solver.mip_gap is not None
    assert plan.solver.mip_gap <= 1e-3
    assert plan.solver.best_bound >= plan.objective.total_projected_gmv * (1 - 1e-9)


@pytest.mark.slow
@pytest.mark.skipif(
    "decomposition" not in available_engines() or "cbc" not in available_engines(),
    reason="needs the decomposition and CBC",
)
@pytest.mark.parametrize("seed", range(6))
def test_max_gmv_group_counts_the_decomposition_and_the_milp_agree(seed: int) -> None:
    # Both hold the counts, so each engine's bound covers the other's plan. (CBC's bound is
    # its piecewise-linear model's: the exact curves may give a plan a little more.)
    size = 250 + 50 * (seed % 5)
    request = family_programme(seed, size, 0.9, resources=2 + seed % 3).request()
    request = replace(
        request,
        objective=Objective.MAX_GMV,
        options=replace(request.options, time_limit_s=30.0, mip_gap=1e-4),
    )
    plans = {
        engine: solve(replace(request, options=replace(request.options, engine=engine)))[0]
        for engine in ("decomposition", "cbc")
    }
    for engine, plan in plans.items():
        assert check_plan(request, plan) == [], engine
        assert _missed_counts(request, plan) == [], engine
    mine, milp = plans["decomposition"], plans["cbc"]
    if mine.solver.best_bound is not None:
        assert milp.objective.total_projected_gmv <= mine.solver.best_bound * (1 + 1e-9)
    if milp.solver.status is SolveStatus.OPTIMAL and milp.solver.best_bound is not None:
        assert mine.objective.total_projected_gmv <= milp.solver.best_bound * (1 + 2e-4)
