"""The MILP strategy and its engines: semantics of every constraint kind, stages,
alternatives, infeasibility, and the inner/outer approximations it rests on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import optimizer
from models.check import check_plan
from models.curves import Curve, CurveKind, points_curve
from models.plan import SolveStatus
from models.request import (
    AllocationRequest,
    Bounds,
    Eligibility,
    GroupBudget,
    GroupCount,
    MaxShare,
    Objective,
    OnePackage,
    Options,
    Package,
    Partner,
    Pin,
    Resource,
    Tier,
    Where,
)
from optimizer.arrays import UnboundedRequest, UnsupportedRequest, build_arrays
from optimizer.engines import available_engines
from optimizer.pwl import initial_points, refine, segments

MILP_ENGINES = [e for e in available_engines() if e in ("highs", "cbc")]


def programme(n: int = 10, seed: int = 4, **changes: object) -> AllocationRequest:
    """A small programme: subsidy (stepped, semi-continuous for some), hill-shaped traffic."""
    rng = np.random.default_rng(seed)
    partners = []
    for i in range(n):
        curves = {
            "subsidy": Curve(
                CurveKind.SATURATING,
                max_uplift=float(rng.uniform(1e7, 6e7)),
                scale=float(rng.uniform(3e6, 1e7)),
            ),
            "traffic": Curve(
                CurveKind.HILL,
                max_uplift=float(rng.uniform(1e7, 4e7)),
                shape=2.0,
                half_saturation=float(rng.uniform(3e8, 1e9)),
            ),
        }
        bounds = {"subsidy": Bounds(min=3e6)} if i % 3 == 0 else {}
        partners.append(
            Partner(
                id=f"p{i}",
                baseline_gmv=float(rng.uniform(3e7, 9.5e7)),
                curves=curves,
                bounds=bounds,
                attributes={"region": "east" if i % 2 else "west", "score": i * 10},
            )
        )
    request = AllocationRequest(
        resources=(
            Resource("subsidy", budget=30e6, step=1e6),
            Resource("traffic", unit="impressions", budget=4e9),
        ),
        tiers=(Tier("100M", 1e8, 5), Tier("120M", 1.2e8, 2, weight=2.0)),
        partners=tuple(partners),
        options=Options(time_limit_s=30, mip_gap=1e-3),
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def with_options(request: AllocationRequest, **options: object) -> AllocationRequest:
    return replace(request, options=replace(request.options, **options))  # type: ignore[arg-type]


def amount(plan, partner_id: str, resource: str) -> float:  # type: ignore[no-untyped-def]
    for allocation in plan.allocations:
        if allocation.partner_id == partner_id:
            return float(allocation.amounts[resource])
    return 0.0


@pytest.mark.slow
@pytest.mark.parametrize("engine", MILP_ENGINES)
@pytest.mark.parametrize("objective", list(Objective))
def test_every_engine_agrees_and_plans_pass_the_exact_check(engine: str, objective: Objective):
    # A generous limit: each engine proves optimality in seconds on a quiet machine; the
    # limit only matters when the machine is loaded, and then it must not decide the test.
    request = with_options(programme(objective=objective), engine=engine, time_limit_s=120)
    reference = optimizer.solve(with_options(request, engine="highs"))[0]
    plan = optimizer.solve(request)[0]
    assert check_plan(request, plan) == []
    assert plan.solver.engine == engine
    assert plan.solver.status is SolveStatus.OPTIMAL
    assert plan.objective.weighted_shortfall == reference.objective.weighted_shortfall
    key = "total_cost" if objective is Objective.MIN_COST else "total_projected_gmv"
    ours, theirs = getattr(plan.objective, key), getattr(reference.objective, key)
    assert abs(ours - theirs) <= 2e-3 * abs(theirs)
    # The certificate is honest: the bound is on the right side of the exact objective.
    if objective is Objective.MIN_COST:
        assert plan.solver.best_bound <= ours * (1 + 1e-9)
    else:
        assert plan.solver.best_bound >= ours * (1 - 1e-9)
    assert plan.solver.mip_gap <= request.options.mip_gap


def test_gmv_certificate_closes_to_requested_gap_despite_non_concave_curves():
    plan = optimizer.solve(programme())[0]
    assert plan.solver.status is SolveStatus.OPTIMAL
    gap = (plan.solver.best_bound - plan.objective.total_projected_gmv) / plan.solver.best_bound
    assert 0 <= gap <= 1e-3


def test_bounds_steps_and_semi_continuous_minimums_hold():
    request = programme()
    plan = optimizer.solve(request)[0]
    for allocation in plan.allocations:
        subsidy = allocation.amounts["subsidy"]
        assert subsidy == pytest.approx(round(subsidy / 1e6) * 1e6, abs=1e-6)
        if int(allocation.partner_id[1:]) % 3 == 0:
            assert subsidy == 0 or subsidy >= 3e6
    assert plan.resources[0].allocated <= 30e6
    assert plan.resources[1].allocated <= 4e9


def test_eligibility_and_max_share_restrict_who_gets_what():
    request = programme(
        constraints=(
            Eligibility("traffic", Where({"region": "east"})),
            MaxShare("subsidy", 0.1),
        )
    )
    plan = optimizer.solve(request)[0]
    assert check_plan(request, plan) == []
    for partner in request.partners:
        if partner.attributes["region"] != "east":
            assert amount(plan, partner.id, "traffic") == 0
        assert amount(plan, partner.id, "subsidy") <= 3e6 + 1e-6


def test_pins_are_exact_and_count_towards_the_budget():
    request = programme(constraints=(Pin("p2", "subsidy", 7e6), Pin("p4", "traffic", 0.0)))
    plan = optimizer.solve(request)[0]
    assert amount(plan, "p2", "subsidy") == 7e6
    assert amount(plan, "p4", "traffic") == 0
    assert plan.resources[0].allocated <= 30e6


def test_group_budget_shares_hold():
    request = programme(constraints=(GroupBudget("subsidy", Where({"region": "west"}), 0.5, 0.6),))
    plan = optimizer.solve(request)[0]
    west = sum(
        amount(plan, p.id, "subsidy") for p in request.partners if p.attributes["region"] == "west"
    )
    assert 15e6 - 1e-6 <= west <= 18e6 + 1e-6


def test_group_count_is_met_by_matching_partners():
    request = programme(constraints=(GroupCount("100M", 3, Where({"score": {">=": 50}})),))
    plan = optimizer.solve(request)[0]
    reached = {a.partner_id for a in plan.allocations if a.tier is not None}
    assert (
        len([p for p in request.partners if p.attributes["score"] >= 50 and p.id in reached]) >= 3
    )


def test_infeasible_request_returns_an_infeasible_plan_naming_the_culprit():
    request = programme(constraints=(Pin("p1", "subsidy", 40e6), MaxShare("traffic", 0.5)))
    (plan,) = optimizer.solve(request)
    assert plan.solver.status is SolveStatus.INFEASIBLE
    assert plan.binding_constraints == ["pin partner_id=p1, resource=subsidy, amount=40000000.0"]


def test_shortfall_plan_names_the_exhausted_budgets():
    request = programme(tiers=(Tier("100M", 1e8, 10),))
    plan = optimizer.solve(request)[0]
    assert plan.tiers[0].shortfall > 0
    assert plan.solver.status is SolveStatus.OPTIMAL
    assert any("budget of" in reason for reason in plan.binding_constraints)


def test_alternatives_have_different_tier_achievers_and_are_ranked():
    request = with_options(programme(), plans=3)
    plans = optimizer.solve(request)
    assert [p.rank for p in plans] == list(range(1, len(plans) + 1))
    assert len(plans) >= 2
    achiever_sets = [
        frozenset((a.partner_id, a.tier) for a in plan.allocations if a.tier) for plan in plans
    ]
    assert len(set(achiever_sets)) == len(plans)
    shortfalls = [p.objective.weighted_shortfall for p in plans]
    assert shortfalls == sorted(shortfalls)
    for plan in plans:
        assert check_plan(request, plan) == []


def test_min_cost_reaches_targets_with_less_money_than_max_attainment_spends():
    base = programme()
    cheap = optimizer.solve(replace(base, objective=Objective.MIN_COST))[0]
    rich = optimizer.solve(base)[0]
    assert cheap.objective.weighted_shortfall == rich.objective.weighted_shortfall == 0
    assert cheap.objective.total_cost < rich.objective.total_cost


def test_points_curves_are_modelled_exactly():
    partner = Partner(
        "a",
        90.0,
        curves={"cash": points_curve([0, 10, 20, 30], [0, 2, 9, 10])},  # S-shaped
    )
    request = AllocationRequest(
        resources=(Resource("cash", budget=20.0),),
        tiers=(Tier("t", 99.0, 1),),
        partners=(partner,),
    )
    plan = optimizer.solve(request)[0]
    assert plan.allocations[0].amounts["cash"] == pytest.approx(20.0)
    assert plan.allocations[0].projected_gmv == pytest.approx(99.0)
    assert plan.solver.status is SolveStatus.OPTIMAL


def test_packages_pick_at_most_one_and_one_package_forces_one():
    partners = tuple(
        Partner(
            f"g{i}",
            0.0,
            packages=(
                Package("small", {"cash": 2.0}, 3.0 + i),
                Package("large", {"cash": 5.0}, 6.0 + i),
            ),
        )
        for i in range(4)
    )
    request = AllocationRequest(
        resources=(Resource("cash", budget=10.0),),
        tiers=(),
        partners=partners,
        objective=Objective.MAX_GMV,
    )
    free = optimizer.solve(request)[0]
    forced = optimizer.solve(replace(request, constraints=(OnePackage(),)))[0]
    assert free.objective.total_projected_gmv == pytest.approx(9.0 + 9.0)  # two large of best
    assert sum(a.package is not None for a in forced.allocations) == 4
    assert forced.resources[0].allocated <= 10.0
    assert check_plan(request, free) == []


def test_unbounded_gmv_is_an_optimizer_error_naming_the_resource():
    partner = Partner("a", 1.0, curves={"cash": Curve(CurveKind.LINEAR, roi=2.0)})
    request = AllocationRequest(
        resources=(Resource("cash"),), tiers=(), partners=(partner,), objective=Objective.MAX_GMV
    )
    with pytest.raises(UnboundedRequest, match="'cash'"):
        optimizer.solve(request)


@pytest.mark.skipif("cpsat" not in available_engines(), reason="OR-Tools missing")
def test_cpsat_refuses_continuous_amounts_clearly():
    with pytest.raises(UnsupportedRequest, match="cpsat"):
        optimizer.solve(with_options(programme(), engine="cpsat"))


def test_should_stop_ends_the_solve_early_with_a_plan():
    calls = []

    def stop() -> bool:
        calls.append(1)
        return True

    plans = optimizer.solve(programme(), should_stop=stop)
    assert calls
    assert plans[0].solver.status in (SolveStatus.INTERRUPTED, SolveStatus.OPTIMAL)
    assert check_plan(programme(), plans[0]) == []


@pytest.mark.parametrize("kind", ["saturating", "log", "hill1", "hill3", "points"])
def test_inner_approximation_is_below_and_outer_above_the_exact_curve(kind: str):
    curve = {
        "saturating": Curve(CurveKind.SATURATING, max_uplift=5e7, scale=4e6),
        "log": Curve(CurveKind.LOG, coef=2e7, scale=1e6),
        "hill1": Curve(CurveKind.HILL, max_uplift=3e7, shape=0.7, half_saturation=2e6),
        "hill3": Curve(CurveKind.HILL, max_uplift=3e7, shape=3.0, half_saturation=8e6),
        "points": points_curve([0, 5e6, 1e7, 2e7], [0, 1e6, 8e6, 9e6]),
    }[kind]
    request = AllocationRequest(
        resources=(Resource("cash", budget=2e7),),
        tiers=(),
        partners=(Partner("a", 0.0, curves={"cash": curve}, bounds={"cash": Bounds(min=1e6)}),),
    )
    arrays = build_arrays(request)
    points = initial_points(arrays)
    refine(points, arrays, np.array([1.234e7]))
    xs = np.concatenate([[0.0], np.linspace(1e6, 2e7, 997)])
    exact = curve.value(xs)
    for outer in (False, True):
        pieces = segments(arrays, points, outer=outer)
        approx = _evaluate(pieces, xs, concave=curve.is_concave)
        if outer:
            assert np.all(approx >= exact - 1e-6)
        else:
            assert np.all(approx <= exact + 1e-6)
    # Refining at an amount makes the inner approximation exact there.
    inner = _evaluate(segments(arrays, points, outer=False), np.array([1.234e7]), curve.is_concave)
    assert inner[0] == pytest.approx(float(curve.value(1.234e7)), rel=1e-9)


def _evaluate(pieces, xs, concave: bool):  # type: ignore[no-untyped-def]
    """The approximation's best value at each x (what a maximising model can claim)."""
    values = np.full(len(xs), -np.inf)
    for start, length, value0, slope in zip(
        pieces.start, pieces.length, pieces.value0, pieces.slope, strict=True
    ):
        inside = (xs >= start - 1e-9) & (xs <= start + length + 1e-9)
        values[inside] = np.maximum(values[inside], value0 + slope * (xs[inside] - start))
    if concave:  # incremental pieces: the constant of the first piece applies from 0
        values[xs == 0] = max(values[xs == 0].max(initial=0.0), pieces.value0[0])
    return values


@pytest.mark.slow
@pytest.mark.skipif("decomposition" not in available_engines(), reason="no decomposition")
def test_medium_milp_requests_start_from_a_decomposition_plan_and_never_end_worse():
    from models.plan import projected_gmv
    from optimizer.engines import milp_backend
    from optimizer.milp import solve_milp
    from optimizer.solve import WARM_START_PAIRS, WARM_START_SHARE, decomposition_first

    small = programme(n=10)
    assert decomposition_first(small, build_arrays(small), None, None, WARM_START_SHARE) is None
    request = with_options(programme(n=60, tiers=(Tier("100M", 1e8, 30),)), time_limit_s=15)
    arrays = build_arrays(request)
    assert arrays.n_pairs >= WARM_START_PAIRS
    first = decomposition_first(request, arrays, None, None, WARM_START_SHARE)
    assert first is not None and first.candidates
    seed = first.candidates[0]

    def rank(amounts):  # type: ignore[no-untyped-def]  # lexicographic: shortfall, then GMV
        gmv = projected_gmv(request, amounts)
        return (max(0, 30 - int((gmv >= 1e8).sum())), -gmv.sum())

    outcome = solve_milp(arrays, milp_backend("highs"), warm_start=seed)
    seed_rank, best_rank = rank(seed.amounts), rank(outcome.candidates[0].amounts)
    assert best_rank[0] <= seed_rank[0]
    if best_rank[0] == seed_rank[0]:
        assert best_rank[1] <= seed_rank[1] * (1 - 1e-12)
    plan = optimizer.solve(request)[0]
    assert check_plan(request, plan) == []
    # auto answers with the decomposition only when it certified the gap on its own.
    assert plan.solver.engine in ("highs", "cbc") or plan.solver.status is SolveStatus.OPTIMAL
