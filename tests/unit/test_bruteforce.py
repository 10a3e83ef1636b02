"""The optimizer against exhaustive search on tiny requests.

On every seeded instance and every installed engine: the plan passes the exact checker;
its weighted shortfall (stage 1 of `max_attainment` and `min_cost`) equals the brute-force
optimum; its final objective (GMV, or cost for `min_cost`) is within the requested
`mip_gap` of the optimum; and it never beats the optimum by more than rounding, which would
mean the checker or the reference is wrong. Also: the dynamic-programming reference agrees
with plain enumeration.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings

from models.check import check_plan
from models.curves import Curve, CurveKind
from models.plan import Plan, SolveStatus
from models.request import (
    AllocationRequest,
    Bounds,
    MaxShare,
    Objective,
    Options,
    Partner,
    Resource,
    Tier,
)
from optimizer import solve
from optimizer.arrays import UnsupportedRequest
from optimizer.engines import available_engines
from optimizer.errors import EngineUnavailable
from tests.support.bruteforce import Reference, solve_by_enumeration, solve_reference
from tests.support.instances import random_small_request, small_requests

SEEDS = range(40)
MIP_GAP = 1e-4
# Beating the exact optimum by more than this (relative) means a bug in the reference,
# the checker, or the plan's figures.
NEVER_BETTER_RTOL = 1e-6
SHORTFALL_ATOL = 1e-9
# Engines other than HiGHS (the `auto` choice for small requests) run only in the slow tier.
FAST_ENGINES = {"highs"}
# Solves take tens of milliseconds each: no per-example deadline.
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


def instance(seed: int, objective: Objective) -> AllocationRequest:
    """A deterministic mix of sizes, magnitudes and rules for `seed`."""
    rng = random.Random(seed * 7919 + 17)
    request = random_small_request(
        seed,
        n_partners=2 + seed % 7,
        n_resources=1 + (seed // 7) % 2,
        n_tiers=1 + (seed // 2) % 2,
        objective=objective,
        magnitude="realistic" if seed % 3 else "unit",
        with_min=rng.random() < 0.4,
        with_eligibility=rng.random() < 0.3,
        with_pins=rng.random() < 0.3,
        with_max_share=rng.random() < 0.3,
        with_group_budget=rng.random() < 0.2,
        with_packages=rng.random() < 0.25,
        unlimited_budget=objective is Objective.MIN_COST and rng.random() < 0.3,
    )
    options = replace(request.options, mip_gap=MIP_GAP, time_limit_s=30.0, plans=1)
    return replace(request, options=options)


def engine_params() -> list[object]:
    return [
        pytest.param(name, marks=() if name in FAST_ENGINES else pytest.mark.slow)
        for name in available_engines()
    ]


def solve_with(request: AllocationRequest, engine: str) -> Plan:
    request = replace(request, options=replace(request.options, engine=engine))
    try:
        plans = solve(request)
    except (UnsupportedRequest, EngineUnavailable) as refusal:
        pytest.skip(f"{engine} declines: {refusal}")
    assert [plan.rank for plan in plans] == [1]
    return plans[0]


def assert_matches_reference(request: AllocationRequest, engine: str) -> None:
    reference = solve_reference(request)
    plan = solve_with(request, engine)
    problems = disagreements(request, plan, reference)
    assert not problems, f"{'; '.join(problems)} ({describe(plan, reference)})"


def describe(plan: Plan, reference: Reference) -> str:
    return (
        f"plan: status={plan.solver.status} bound={plan.solver.best_bound!r} "
        f"shortfall={plan.objective.weighted_shortfall} "
        f"gmv={plan.objective.total_projected_gmv!r} cost={plan.objective.total_cost!r} "
        f"tiers={[(t.name, t.achieved) for t in plan.tiers]}; "
        f"reference: shortfall={reference.weighted_shortfall} gmv={reference.total_gmv!r} "
        f"cost={reference.total_cost!r} achieved={reference.achieved}"
    )


def disagreements(request: AllocationRequest, plan: Plan, reference: Reference) -> list[str]:
    """Every way `plan` falls short of, or impossibly beats, the exact optimum."""
    problems = [f"checker: {v}" for v in check_plan(request, plan)]
    status = plan.solver.status
    if not reference.feasible:
        if status is not SolveStatus.INFEASIBLE:
            problems.append(f"no feasible allocation exists, yet status {status}")
        return problems
    if status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        problems.append(f"status {status} on a feasible request")
    found = plan.objective
    objective = request.objective
    if objective is not Objective.MAX_GMV:
        if found.weighted_shortfall > reference.weighted_shortfall + SHORTFALL_ATOL:
            problems.append(
                f"weighted shortfall {found.weighted_shortfall:g} > optimum "
                f"{reference.weighted_shortfall:g}"
            )
            return problems  # the final objective is only comparable at equal shortfall
        if found.weighted_shortfall < reference.weighted_shortfall - SHORTFALL_ATOL:
            problems.append(
                f"weighted shortfall {found.weighted_shortfall:g} beats the exact optimum "
                f"{reference.weighted_shortfall:g}"
            )
    bound = plan.solver.best_bound
    # A plan that claims optimality must be within mip_gap of the optimum; one that only
    # claims feasibility with a certified gap must be within that gap (its bound is
    # checked against the optimum below, so the certificate cannot lie).
    allowed = MIP_GAP
    if status is SolveStatus.FEASIBLE and plan.solver.mip_gap is not None:
        allowed = max(MIP_GAP, plan.solver.mip_gap)
    if objective is Objective.MIN_COST:
        best, cost = reference.total_cost, found.total_cost
        if cost < best - NEVER_BETTER_RTOL * max(best, 1.0):
            problems.append(f"cost {cost!r} beats the exact optimum {best!r}")
        if cost > best + allowed * max(cost, 1.0) + 1e-6:
            problems.append(f"cost {cost!r} is more than its gap above the optimum {best!r}")
        if bound is not None and bound > best + NEVER_BETTER_RTOL * max(best, 1.0):
            problems.append(f"best_bound {bound!r} exceeds the optimum cost {best!r}")
    else:
        best, gmv = reference.total_gmv, found.total_projected_gmv
        if gmv > best * (1 + NEVER_BETTER_RTOL):
            problems.append(f"GMV {gmv!r} beats the exact optimum {best!r}")
        if gmv < best * (1 - allowed - NEVER_BETTER_RTOL):
            problems.append(f"GMV {gmv!r} is more than its gap below the optimum {best!r}")
        if bound is not None and bound < best * (1 - NEVER_BETTER_RTOL):
            problems.append(f"best_bound {bound!r} is below the optimum GMV {best!r}")
    return problems


@pytest.mark.parametrize("engine", engine_params())
@pytest.mark.parametrize("objective", list(Objective))
@pytest.mark.parametrize("seed", SEEDS)
def test_optimizer_matches_brute_force(seed: int, objective: Objective, engine: str) -> None:
    request = instance(seed, objective)
    assert_matches_reference(request, engine)


@pytest.mark.parametrize("engine", engine_params())
@pytest.mark.parametrize("objective", list(Objective))
@pytest.mark.parametrize("seed", range(20))
def test_package_menus_match_brute_force(seed: int, objective: Objective, engine: str) -> None:
    """Every partner picks from a menu: the multiple-choice knapsack every engine takes."""
    request = random_small_request(
        seed,
        n_partners=2 + seed % 7,
        n_resources=1 + seed % 2,
        n_tiers=1 + (seed // 2) % 2,
        objective=objective,
        magnitude="realistic" if seed % 2 else "unit",
        with_eligibility=seed % 5 == 1,
        packages_only=True,
    )
    request = replace(request, options=replace(request.options, mip_gap=MIP_GAP))
    assert_matches_reference(request, engine)


@pytest.mark.parametrize("engine", engine_params())
@pytest.mark.parametrize("objective", list(Objective))
@pytest.mark.parametrize(
    "curve",
    [
        Curve(CurveKind.HILL, max_uplift=10.0, shape=3.0, half_saturation=2.0),
        Curve(CurveKind.POINTS, xs=(0.0, 2.0, 4.0), ys=(0.0, 1.0, 9.0)),
        Curve(CurveKind.SATURATING, max_uplift=10.0, scale=2.0),
    ],
    ids=["hill", "convex-points", "saturating"],
)
@pytest.mark.parametrize("minimum", [2.0, 4.0], ids=["min-below-max", "min-equals-max"])
def test_a_semi_continuous_curve_can_be_allocated(
    minimum: float, curve: Curve, objective: Objective, engine: str
) -> None:
    """One partner, 4 units lift it over the tier (the minimum is 2 or all 4 units)."""
    request = AllocationRequest(
        resources=(Resource("subsidy", budget=10.0, step=1.0),),
        tiers=(Tier("t100", 100.0, target=1),),
        partners=(
            Partner(
                "a",
                95.0,
                curves={"subsidy": curve},
                bounds={"subsidy": Bounds(min=minimum, max=4.0)},
            ),
            Partner("b", 120.0),
        ),
        objective=objective,
        options=Options(engine=engine, mip_gap=MIP_GAP),
    )
    reference = solve_reference(request)
    assert reference.weighted_shortfall == 0.0
    plan = solve_with(request, engine)
    problems = disagreements(request, plan, reference)
    assert not problems, f"{'; '.join(problems)} ({describe(plan, reference)})"


@pytest.mark.parametrize("engine", engine_params())
@pytest.mark.parametrize("objective", list(Objective))
def test_a_request_where_nothing_can_be_allocated_is_solved(
    objective: Objective, engine: str
) -> None:
    """Caps below one step leave a single allocation, all zeros: optimal, not an error."""
    request = AllocationRequest(
        resources=(Resource("subsidy", budget=4e7, step=1e7),),
        tiers=(Tier("t100m", 1e8, target=1),),
        partners=(
            Partner("a", 9e7, curves={"subsidy": Curve(CurveKind.LINEAR, roi=2.0)}),
            Partner("b", 2e8, curves={"subsidy": Curve(CurveKind.LOG, coef=1e7, scale=1e7)}),
        ),
        objective=objective,
        constraints=(MaxShare("subsidy", 0.1),),
        options=Options(engine=engine, mip_gap=MIP_GAP),
    )
    reference = solve_reference(request)
    assert reference.total_cost == 0.0
    plan = solve_with(request, engine)
    problems = disagreements(request, plan, reference)
    assert not problems, f"{'; '.join(problems)} ({describe(plan, reference)})"
    assert plan.solver.status is SolveStatus.OPTIMAL


@pytest.mark.parametrize("objective", list(Objective))
@pytest.mark.parametrize("seed", range(30))
def test_dynamic_programme_agrees_with_enumeration(seed: int, objective: Objective) -> None:
    request = random_small_request(
        seed,
        n_partners=2 + seed % 4,
        n_resources=1 + seed % 2,
        n_tiers=1 + (seed // 2) % 2,
        objective=objective,
        with_min=seed % 3 == 0,
        with_eligibility=seed % 5 == 1,
        with_pins=seed % 4 == 1,
        with_max_share=seed % 3 == 1,
        with_group_budget=seed % 5 == 2,
        with_packages=seed % 4 == 3,
        max_units=2,
    )
    by_dp, by_enumeration = solve_reference(request), solve_by_enumeration(request)
    assert by_dp.feasible == by_enumeration.feasible
    if not by_dp.feasible:
        return
    assert by_dp.weighted_shortfall == by_enumeration.weighted_shortfall
    assert by_dp.total_gmv == pytest.approx(by_enumeration.total_gmv, rel=1e-12)
    assert by_dp.total_cost == pytest.approx(by_enumeration.total_cost, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    ("budget", "objective", "shortfall", "gmv", "cost"),
    [
        (2.0, Objective.MAX_ATTAINMENT, 1.0, 293.0, 2.0),  # a reaches; the last unit: a or b
        (2.0, Objective.MIN_COST, 1.0, 288.0, 1.0),  # one unit gets a there
        (3.0, Objective.MAX_ATTAINMENT, 0.0, 298.0, 3.0),  # a and b (c has the poorer roi)
        (3.0, Objective.MIN_COST, 0.0, 298.0, 3.0),
        (3.0, Objective.MAX_GMV, 1.0, 298.0, 3.0),  # the rate does not care about tiers
    ],
)
def test_reference_on_a_hand_solved_request(
    budget: float, objective: Objective, shortfall: float, gmv: float, cost: float
) -> None:
    request = AllocationRequest(
        resources=(Resource("subsidy", budget=budget, step=1.0),),
        tiers=(Tier("t100", 100.0, target=2),),
        partners=(
            Partner(
                "a",
                95.0,
                curves={"subsidy": Curve(CurveKind.LINEAR, roi=5.0)},
                bounds={"subsidy": Bounds(max=2.0)},
            ),
            Partner(
                "b",
                90.0,
                curves={"subsidy": Curve(CurveKind.LINEAR, roi=5.0)},
                bounds={"subsidy": Bounds(max=2.0)},
            ),
            Partner(
                "c",
                98.0,
                curves={"subsidy": Curve(CurveKind.LINEAR, roi=1.0)},
                bounds={"subsidy": Bounds(max=2.0)},
            ),
        ),
        objective=objective,
    )
    reference = solve_reference(request)
    assert reference.feasible
    if objective is Objective.MAX_GMV:
        shortfall = reference.weighted_shortfall  # any GMV-optimal plan will do
        assert shortfall in (0.0, 1.0)
    assert (reference.weighted_shortfall, reference.total_gmv, reference.total_cost) == (
        shortfall,
        pytest.approx(gmv),
        pytest.approx(cost),
    )


# Hypothesis draws beyond the seeded instances: a 4-partner request with `points` curves
# whose kinks sat off the step grid had HiGHS report `optimal` 0.36% below the optimum.
@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_OK)
@given(request=small_requests())
def test_drawn_requests_match_brute_force(request: AllocationRequest) -> None:
    check_against_reference(request)


def check_against_reference(request: AllocationRequest) -> None:
    options = replace(request.options, mip_gap=MIP_GAP, time_limit_s=30.0, plans=1)
    assert_matches_reference(replace(request, options=options), "auto")
