"""Package menus in the decomposition (`optimizer.decomposition.menus`).

Small random requests with menus (some partners with packages, or only packages: a
multiple-choice knapsack) are solved exactly by dynamic programming; the engine's plan must
pass the exact checker, and neither its stage-1 proof nor its bound may be false. A larger
menu programme checks that the price search converges to the optimum's value, and `auto`'s
choice checks which menu programmes go to the decomposition.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.menu_run import with_menus
from fixtures.families import family_programme
from models.check import check_plan
from models.curves import Curve, CurveKind
from models.plan import NO_PACKAGE, Plan, SolverReport, SolveStatus, build_plan
from models.request import AllocationRequest, Eligibility, Objective, OnePackage, Package, Where
from optimizer import solve
from optimizer.arrays import UnsupportedRequest, build_arrays
from optimizer.decomposition import solve_decomposition
from optimizer.decomposition.family import Family, kind_code
from optimizer.decomposition.menus import candidate, plan_amounts
from optimizer.decomposition.problem import build_problem
from optimizer.decomposition.subproblem import free_choice
from optimizer.engines import DECOMPOSITION, available_engines
from optimizer.milp_finish import FINISH_BY_MILP_PAIRS, milp_can_finish
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.solve import MENU_DECOMPOSITION_AMOUNTS, WARM_START_PAIRS, choose_engine
from tests.support.bruteforce import solve_reference
from tests.support.instances import random_small_request

pytestmark = pytest.mark.skipif(
    DECOMPOSITION not in available_engines(), reason="no decomposition engine"
)

# Curves the decomposition models (`points` curves it does not).
KINDS = (CurveKind.SATURATING, CurveKind.LOG, CurveKind.LINEAR, CurveKind.HILL)
RTOL = 1e-7


def menu_request(seed: int, objective: Objective, **options: object) -> AllocationRequest:
    packages_only = seed % 2 == 0
    return random_small_request(
        seed,
        n_partners=6,
        n_resources=1 + seed % 2,
        n_tiers=1 + (seed // 2) % 2,
        objective=objective,
        kinds=KINDS,
        magnitude="realistic" if seed % 3 == 0 else "unit",
        with_packages=True,
        packages_only=packages_only,
        **options,  # type: ignore[arg-type]
    )


def run(request: AllocationRequest, mip_gap: float = 1e-6) -> tuple[EngineOutcome, Plan]:
    outcome = solve_decomposition(request, time_limit_s=20.0, mip_gap=mip_gap)
    # No candidate: no plan to show (as `optimizer.solve` then builds an empty one).
    nothing = Candidate(np.zeros((len(request.partners), len(request.resources))))
    chosen = outcome.candidates[0] if outcome.candidates else nothing
    plan = build_plan(
        request,
        chosen.amounts,
        SolverReport(outcome.engine, outcome.status),
        package_choice=chosen.package_choice,
        binding_constraints=outcome.binding_constraints,
    )
    return outcome, plan


def objective_of(request: AllocationRequest, plan: Plan) -> float:
    if request.objective is Objective.MIN_COST:
        return plan.objective.total_cost
    return plan.objective.total_projected_gmv


CASES = [
    pytest.param(seed, objective, group, id=f"{objective.value}-{seed}{'-group' if group else ''}")
    for seed in range(8)
    for objective in Objective
    for group in (False, True)
]


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "objective", "group"), CASES)
def test_menu_requests_against_the_exact_optimum(
    seed: int, objective: Objective, group: bool
) -> None:
    request = menu_request(seed, objective, with_group_budget=group)
    assert any(partner.packages for partner in request.partners)
    ref = solve_reference(request)
    outcome, plan = run(request)
    assert check_plan(request, plan) == []
    if not ref.feasible:
        assert outcome.status is SolveStatus.INFEASIBLE
        return
    if objective is not Objective.MAX_GMV:
        shortfall = plan.objective.weighted_shortfall
        assert shortfall >= ref.weighted_shortfall - 1e-9
        assert outcome.shortfall_bound is not None
        assert outcome.shortfall_bound <= ref.weighted_shortfall + 1e-9
        if outcome.shortfall_proven:
            assert shortfall == pytest.approx(ref.weighted_shortfall)
        if shortfall > ref.weighted_shortfall + 1e-9:
            return  # the bound holds plans at the plan's shortfall, not the optimum's
    assert outcome.best_bound is not None
    value = objective_of(request, plan)
    if objective is Objective.MIN_COST:
        assert outcome.best_bound <= ref.total_cost + RTOL * max(ref.total_cost, 1.0)
        assert outcome.best_bound <= value + RTOL * max(value, 1.0)
    else:
        assert outcome.best_bound >= ref.total_gmv * (1 - RTOL)
        assert outcome.best_bound >= value * (1 - RTOL)
    if outcome.status is SolveStatus.OPTIMAL:  # within 1e-6 of the optimum
        if objective is Objective.MIN_COST:
            assert value <= ref.total_cost * (1 + 1e-5) + 1e-6
        else:
            assert value >= ref.total_gmv * (1 - 1e-5)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Found by CI: the must-partner's smallest subsidy package is its largest on traffic, and
# the cut-back moved it back and forth between the two budgets (40M of a 30M subsidy).
@example(
    seed=3, n_partners=3, n_resources=2, n_tiers=1, objective=Objective.MAX_ATTAINMENT,
    packages_only=True, with_group_budget=False,
)  # fmt: skip
# Found by a hypothesis seed: every partner bound to one package, their least subsidy
# filling its budget and their least traffic then past its own; the engine called it
# infeasible and showed a plan 20M over the subsidy budget.
@example(
    seed=749, n_partners=4, n_resources=2, n_tiers=2, objective=Objective.MAX_ATTAINMENT,
    packages_only=True, with_group_budget=False,
)  # fmt: skip
@given(
    seed=st.integers(0, 2**31 - 1),
    n_partners=st.integers(1, 8),
    n_resources=st.integers(1, 2),
    n_tiers=st.integers(1, 2),
    objective=st.sampled_from(list(Objective)),
    packages_only=st.booleans(),
    with_group_budget=st.booleans(),
)
def test_property_menu_plans_are_exact_and_their_certificate_honest(
    seed: int,
    n_partners: int,
    n_resources: int,
    n_tiers: int,
    objective: Objective,
    packages_only: bool,
    with_group_budget: bool,
) -> None:
    request = random_small_request(
        seed,
        n_partners=n_partners,
        n_resources=n_resources,
        n_tiers=n_tiers,
        objective=objective,
        kinds=KINDS,
        magnitude="realistic" if seed % 2 else "unit",
        with_packages=True,
        packages_only=packages_only,
        with_group_budget=with_group_budget,
    )
    outcome, plan = run(request, mip_gap=1e-3)
    assert check_plan(request, plan) == []
    if outcome.status is SolveStatus.INFEASIBLE or outcome.best_bound is None:
        return
    value = objective_of(request, plan)
    if objective is Objective.MIN_COST:
        assert outcome.best_bound <= value + RTOL * max(value, 1.0)
    else:
        assert outcome.best_bound >= value * (1 - RTOL)
    if outcome.status is SolveStatus.OPTIMAL:
        assert outcome.mip_gap is not None and outcome.mip_gap <= 1e-3


def test_a_menu_programme_s_price_search_reaches_the_optimum_s_value() -> None:
    """Only menus: the Lagrangian's least value is the LP relaxation's, a hair above the
    optimum. Clearing prices that left the menus out started the search a factor 1e10
    below its prices, and it stopped 1.3% above (20,000 partners)."""
    request = random_small_request(
        7, n_partners=1500, n_resources=2, n_tiers=2, kinds=KINDS, magnitude="realistic",
        with_packages=True, packages_only=True,
    )  # fmt: skip
    request = replace(request, options=replace(request.options, time_limit_s=30.0))
    exact = solve(replace(request, options=replace(request.options, engine="highs", mip_gap=0.0)))
    optimum = exact[0].objective.total_projected_gmv
    assert exact[0].solver.status is SolveStatus.OPTIMAL
    outcome, plan = run(request, mip_gap=1e-3)
    assert check_plan(request, plan) == []
    assert outcome.status is SolveStatus.OPTIMAL
    assert outcome.best_bound is not None and outcome.best_bound <= optimum * 1.002
    assert plan.objective.total_projected_gmv >= optimum * (1 - 1e-3)


def test_a_plan_s_packages_survive_the_round_trip_through_an_engine_candidate() -> None:
    request = random_small_request(3, n_partners=12, n_resources=2, with_packages=True, kinds=KINDS)
    problem = build_problem(build_arrays(request))
    menus = problem.menus
    assert menus is not None
    holders = np.flatnonzero(menus.holders)
    amounts = np.zeros((problem.n, problem.n_resources))
    first = np.searchsorted(menus.owner, holders)  # each holder's first option
    amounts[holders] = menus.amounts[first]
    chosen = candidate(menus, amounts)
    assert chosen.package_choice is not None
    assert np.all(chosen.package_choice[holders] != NO_PACKAGE)
    assert np.all(chosen.amounts[holders] == 0.0)
    # Read back: the package those amounts cover with the most uplift (one partner's first
    # option covers a smaller one worth more here), never more than the amounts, and the
    # same value.
    back = plan_amounts(menus, chosen)
    assert np.array_equal(back, menus.amounts_of(menus.covered(amounts)))
    assert not np.array_equal(back, amounts)
    assert np.all(back <= amounts)
    assert np.array_equal(problem.values(back), problem.values(amounts))
    assert np.array_equal(candidate(menus, back).package_choice, chosen.package_choice)


def test_menus_taken_for_repeated_rows_keep_each_partner_s_options() -> None:
    request = random_small_request(5, n_partners=10, n_resources=2, with_packages=True, kinds=KINDS)
    menus = build_problem(build_arrays(request)).menus
    assert menus is not None
    rows = np.array([np.flatnonzero(menus.holders)[-1], 0, np.flatnonzero(menus.holders)[0]] * 2)
    taken = menus.take(rows)
    for position, row in enumerate(rows):
        mine = np.flatnonzero(menus.owner == row)
        theirs = np.flatnonzero(taken.owner == position)
        assert np.array_equal(menus.index[mine], taken.index[theirs])
        assert np.array_equal(menus.amounts[mine], taken.amounts[theirs])


def test_a_partner_with_curves_and_packages_is_left_to_the_milp() -> None:
    request = random_small_request(2, n_partners=6, kinds=KINDS)
    partner = request.partners[0]
    both = replace(partner, packages=(Package("p", {request.resources[0].name: 1.0}, 5.0),))
    request = replace(request, partners=(both, *request.partners[1:]))
    with pytest.raises(UnsupportedRequest, match="both curves"):
        solve_decomposition(request, time_limit_s=5.0, mip_gap=1e-3)


def test_auto_sends_menu_programmes_to_the_decomposition_by_their_curves_or_size() -> None:
    def engine_for(n: int, only: bool = False, kinds: tuple[CurveKind, ...] = KINDS) -> str:
        request = random_small_request(
            7, n_partners=n, n_resources=2, n_tiers=2, kinds=kinds, magnitude="realistic",
            with_packages=True, packages_only=only,
        )  # fmt: skip
        return choose_engine(request, build_arrays(request))

    assert engine_for(500) == "cbc"  # 565 curve amounts, 388 options: medium, mostly curves
    assert engine_for(1000) == DECOMPOSITION  # 1,122 and 767: mostly curves
    # Menus alone: by the count of options (6,002 and 16,026, either side of the line).
    assert engine_for(3000, only=True) == "highs"
    assert engine_for(8000, only=True) == DECOMPOSITION
    assert 6_002 < MENU_DECOMPOSITION_AMOUNTS < 16_026
    # `points` curves too (they went to the MILP until the decomposition modelled them).
    assert engine_for(1000, kinds=(*KINDS, CurveKind.POINTS)) == DECOMPOSITION
    assert engine_for(60) == "highs"  # small: 69 curve amounts
    # Mostly menus, with a hundred curve amounts or more: CBC (see `choose_engine`).
    request = with_menus(family_programme(1, 1000, 0.95).request(), 0.8, 1)
    arrays = build_arrays(request)
    assert WARM_START_PAIRS <= arrays.n_pairs < 0.5 * len(arrays.packages)
    assert choose_engine(request, arrays) == "cbc"


def test_a_hill_below_shape_one_at_zero_bounds_its_partner_finitely() -> None:
    """At 0 its slope has no limit, so the tangent there bounded nothing: the partner's
    dual value was the largest float, and so was every bound (5,000 random partners)."""
    curve = Curve(CurveKind.HILL, max_uplift=8.8e6, shape=0.998, half_saturation=4.8e8)
    family = Family(np.array([kind_code(curve)], dtype=np.int8), np.array([8.8e6]),
                    np.array([4.8e8]), np.array([0.998]))  # fmt: skip
    family.set_domain(np.zeros(1), np.array([1e9]))
    request = random_small_request(1, n_partners=1, kinds=(CurveKind.LINEAR,))
    problem = build_problem(build_arrays(request))
    problem.families = [family]
    problem.can_use = np.ones((1, 1), dtype=bool)
    problem.optional = np.zeros((1, 1), dtype=bool)
    price = 0.43  # GMV per unit: far above the curve's slope anywhere but at 0
    _, value = free_choice(problem, np.full((1, 1), price), 1.0)
    grid = np.concatenate([[0.0], np.geomspace(1e-300, 1e9, 4000)])
    best = float(np.max(curve.value(grid) - price * grid))
    assert math.isfinite(value[0])
    assert best <= value[0] <= best + 1e-3 * curve.max_uplift


@pytest.mark.slow
def test_auto_certifies_a_family_programme_with_menus() -> None:
    """Family seed 1, 1,000 partners, ambition 0.95, menus on 30% of them
    (`bench.menu_run`): HiGHS, `auto`'s engine for menus before, ended at its 60 s limit
    1.27% from its bound. The decomposition proves stage 1 and its CBC finish certifies
    the gap (6.4 s on an AMD EPYC)."""
    request = family_programme(1, 1000, 0.95, time_limit_s=60.0).request()
    request = with_menus(request, 0.3, 1)
    assert choose_engine(request, build_arrays(request)) == DECOMPOSITION
    plan = solve(request)[0]
    assert check_plan(request, plan) == []
    assert plan.solver.status is SolveStatus.OPTIMAL
    assert plan.solver.shortfall_proven
    assert any(allocation.package for allocation in plan.allocations)


@pytest.mark.slow
def test_the_decomposition_named_on_menus_hands_what_it_cannot_close_to_the_milp() -> None:
    """Family seed 2, 1,000 partners, menus on 80% of them, the decomposition named, 30 s:
    no neighbourhood search models menus, and it stopped `feasible` 0.38% from its bound
    after 5.9 s. The CBC MILP finish now takes the plan with the time left: `optimal`,
    0.005%, in 7.3 s (reported as `cbc`, whose bound certifies it)."""
    request = family_programme(2, 1000, 0.95, time_limit_s=30.0, mip_gap=1e-3).request()
    request = with_menus(request, 0.8, 2)
    request = replace(request, options=replace(request.options, engine=DECOMPOSITION))
    plan = solve(request)[0]
    assert check_plan(request, plan) == []
    assert plan.solver.status is SolveStatus.OPTIMAL
    assert plan.solver.mip_gap is not None and plan.solver.mip_gap <= 1e-3


def test_one_package_partners_whose_least_packages_overdraw_a_budget_are_infeasible() -> None:
    request = random_small_request(4, n_partners=6, kinds=KINDS, packages_only=True)
    request = replace(request, constraints=(OnePackage(Where()),))
    resource = request.resources[0]
    least = sum(min(p.amounts.get(resource.name, 0.0) for p in partner.packages)
                for partner in request.partners)  # fmt: skip
    assert least > 0
    short = replace(resource, budget=least - (resource.step or 1.0))
    request = replace(request, resources=(short, *request.resources[1:]))
    outcome = solve_decomposition(request, time_limit_s=5.0, mip_gap=1e-3)
    assert outcome.status is SolveStatus.INFEASIBLE
    assert "one_package" in outcome.binding_constraints
    plan = solve(replace(request, options=replace(request.options, engine=DECOMPOSITION)))[0]
    assert plan.solver.status is SolveStatus.INFEASIBLE


def test_a_one_package_partner_with_no_package_it_may_take_is_infeasible() -> None:
    request = random_small_request(4, n_partners=6, kinds=KINDS, packages_only=True)
    nobody = Eligibility(request.resources[0].name, Where({"region": "nowhere"}))
    request = replace(request, constraints=(OnePackage(Where()), nobody))
    outcome = solve_decomposition(request, time_limit_s=5.0, mip_gap=1e-3)
    assert outcome.status is SolveStatus.INFEASIBLE
    assert outcome.binding_constraints == ["one_package"]
    assert not outcome.candidates


def test_menus_none_of_whose_packages_may_be_taken_leave_their_partners_at_baseline() -> None:
    request = random_small_request(4, n_partners=6, kinds=KINDS, packages_only=True)
    nobody = Eligibility(request.resources[0].name, Where({"region": "nowhere"}))
    request = replace(request, constraints=(nobody,))
    outcome, plan = run(request, mip_gap=1e-3)
    assert check_plan(request, plan) == []
    assert outcome.status is SolveStatus.OPTIMAL
    assert plan.objective.total_projected_gmv == pytest.approx(
        sum(partner.baseline_gmv for partner in request.partners)
    )


def test_package_options_count_toward_the_milp_finish_s_size() -> None:
    """Each option is a MILP column: 14,000 of them, with no curve amount, are past the
    finish's 12,000 (CBC never took menu programmes before; HiGHS proves MMKP sets)."""
    request = random_small_request(
        7, n_partners=7000, n_resources=2, kinds=KINDS, with_packages=True, packages_only=True
    )
    arrays = build_arrays(request)
    assert arrays.n_pairs == 0 and len(arrays.packages) > FINISH_BY_MILP_PAIRS
    assert not milp_can_finish(arrays)
    assert milp_can_finish(arrays, len(arrays.packages))
