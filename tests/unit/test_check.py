"""The exact plan checker: it accepts honest plans and names every kind of violation."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from models.check import PlanCheckError, assert_plan_valid, check_plan
from models.curves import Curve, CurveKind
from models.plan import (
    NO_PACKAGE,
    Allocation,
    ObjectiveReport,
    Plan,
    ResourceReport,
    SolverReport,
    SolveStatus,
    TierReport,
    build_plan,
)
from models.request import (
    AllocationRequest,
    Bounds,
    DomainError,
    Eligibility,
    GroupBudget,
    MaxShare,
    OnePackage,
    Package,
    Partner,
    Pin,
    Resource,
    Tier,
    Where,
)
from tests.support.bruteforce import solve_reference
from tests.support.instances import random_small_request

SOUTH = Where({"region": "south"})
NORTH = Where({"region": "north"})

REQUEST = AllocationRequest(
    resources=(
        Resource("subsidy", budget=12.0, step=1.0),
        Resource("traffic", unit="impressions", budget=6.0, unit_cost=0.5, step=2.0),
    ),
    tiers=(Tier("t1b", 1000.0, target=1, weight=2.0), Tier("t100m", 100.0, target=2)),
    partners=(
        Partner(
            "a",
            90.0,
            attributes={"region": "south"},
            curves={"subsidy": Curve(CurveKind.LINEAR, roi=2.5)},
            bounds={"subsidy": Bounds(min=2.0, max=4.0)},
        ),
        Partner(
            "b",
            995.0,
            attributes={"region": "north"},
            curves={
                "subsidy": Curve(CurveKind.SATURATING, max_uplift=10.0, scale=2.0),
                "traffic": Curve(CurveKind.LINEAR, roi=1.0),
            },
            bounds={"traffic": Bounds(max=4.0)},
        ),
        Partner(
            "c",
            50.0,
            attributes={"region": "north"},
            packages=(
                Package("small", {"subsidy": 2.0}, uplift=20.0),
                Package("big", {"subsidy": 4.0, "traffic": 2.0}, uplift=60.0),
            ),
        ),
        Partner(
            "d",
            120.0,
            attributes={"region": "south"},
            curves={"subsidy": Curve(CurveKind.LOG, coef=5.0, scale=1.0)},
        ),
    ),
    constraints=(
        MaxShare("subsidy", 0.5),  # at most 6 each
        Eligibility("traffic", NORTH),
        Pin("b", "traffic", 2.0),
        GroupBudget("subsidy", SOUTH, max_share=0.6),  # the south gets at most 7.2
        OnePackage(Where({"id": "c"})),
    ),
)
GOOD = {"a": {"subsidy": 4.0}, "b": {"subsidy": 1.0, "traffic": 2.0}, "c": {"subsidy": 2.0}}
GOOD_PACKAGES = {"c": "small"}
OPTIMAL = SolverReport("test", SolveStatus.OPTIMAL)


def plan_for(
    amounts: dict[str, dict[str, float]],
    packages: dict[str, str] | None = None,
    *,
    request: AllocationRequest = REQUEST,
    solver: SolverReport = OPTIMAL,
    binding: list[str] | None = None,
) -> Plan:
    """A plan whose figures are honest (`build_plan`) for possibly dishonest amounts.

    `amounts` are totals per partner, package included, as a plan reports them.
    """
    packages = packages or {}
    names = [resource.name for resource in request.resources]
    matrix = np.zeros((len(request.partners), len(names)))
    choice = np.full(len(request.partners), NO_PACKAGE, dtype=np.intp)
    for i, partner in enumerate(request.partners):
        held: dict[str, float] = {}
        if partner.id in packages:
            index = [p.name for p in partner.packages].index(packages[partner.id])
            choice[i] = index
            held = dict(partner.packages[index].amounts)
        for r, name in enumerate(names):
            matrix[i, r] = amounts.get(partner.id, {}).get(name, 0.0) - held.get(name, 0.0)
    return build_plan(request, matrix, solver, package_choice=choice, binding_constraints=binding)


def only(violations: list[str], *fragments: str) -> None:
    """Exactly one violation, and it mentions every fragment."""
    assert len(violations) == 1, violations
    for fragment in fragments:
        assert fragment in violations[0], violations


def test_an_honest_plan_passes() -> None:
    plan = plan_for(GOOD, GOOD_PACKAGES)
    assert check_plan(REQUEST, plan) == []
    assert_plan_valid(REQUEST, plan)


def test_a_hand_computed_plan_passes() -> None:
    """Figures worked out by hand, not by build_plan: a sitting exactly on ¥100 counts."""
    b_gmv = 995.0 + 10.0 * (1 - math.exp(-0.5)) + 2.0
    total = 100.0 + b_gmv + 70.0 + 120.0
    plan = Plan(
        rank=1,
        label="best",
        objective=ObjectiveReport("max_attainment", 0.0, 7.0 + 0.5 * 2.0, total, total - 1255.0),
        tiers=[TierReport("t100m", 100.0, 2, 3, 0), TierReport("t1b", 1000.0, 1, 1, 0)],
        resources=[
            ResourceReport("subsidy", 12.0, 7.0, 7.0 / 12.0),
            ResourceReport("traffic", 6.0, 2.0, 2.0 / 6.0),
        ],
        solver=OPTIMAL,
        allocations=[
            Allocation("a", {"subsidy": 4.0, "traffic": 0.0}, 90.0, 100.0, "t100m", 10.0),
            Allocation("b", {"subsidy": 1.0, "traffic": 2.0}, 995.0, b_gmv, "t1b", b_gmv - 995),
            Allocation("c", {"subsidy": 2.0}, 50.0, 70.0, None, 20.0, package="small"),
            Allocation("d", {}, 120.0, 120.0, "t100m", 0.0),
        ],
    )
    assert check_plan(REQUEST, plan) == []


@pytest.mark.parametrize(
    ("amounts", "packages", "fragments"),
    [
        pytest.param(
            {
                **GOOD,
                "b": {"subsidy": 2.0, "traffic": 2.0},
                "c": {"subsidy": 4.0, "traffic": 2.0},
                "d": {"subsidy": 3.0},
            },
            {"c": "big"},
            ("subsidy", "exceeds the budget"),
            id="budget",
        ),
        pytest.param(
            {**GOOD, "a": {"subsidy": 5.0}}, GOOD_PACKAGES, ("'a'", "max bound"), id="max-bound"
        ),
        pytest.param(
            {**GOOD, "a": {}, "d": {"subsidy": 7.0}},
            GOOD_PACKAGES,
            ("'d'", "max_share 0.5"),
            id="max-share",
        ),
        pytest.param(
            {**GOOD, "a": {"subsidy": 1.0}},
            GOOD_PACKAGES,
            ("'a'", "min 2"),
            id="semi-continuous-min",
        ),
        pytest.param({**GOOD, "d": {"subsidy": 1.5}}, GOOD_PACKAGES, ("'d'", "step 1"), id="step"),
        pytest.param(
            {**GOOD, "d": {"traffic": 2.0}},
            GOOD_PACKAGES,
            ("'d'", "not eligible"),
            id="eligibility",
        ),
        pytest.param(
            {**GOOD, "c": {"subsidy": 2.0, "traffic": 2.0}},
            GOOD_PACKAGES,
            ("'c'", "no traffic curve"),
            id="no-curve",
        ),
        pytest.param(
            {**GOOD, "b": {"subsidy": 1.0, "traffic": 4.0}},
            GOOD_PACKAGES,
            ("'b'", "pinned at 2"),
            id="pin",
        ),
        pytest.param(
            {**GOOD, "d": {"subsidy": 4.0}},
            GOOD_PACKAGES,
            ("group_budget", "subsidy", "8"),
            id="group-budget",
        ),
        pytest.param(
            {**GOOD, "c": {"subsidy": 1.0}},
            GOOD_PACKAGES,
            ("'c'", "less than package 'small'"),
            id="short-of-package",
        ),
        pytest.param({**GOOD, "c": {}}, {}, ("'c'", "one_package"), id="one-package"),
    ],
)
def test_each_hard_constraint_is_enforced(
    amounts: dict[str, dict[str, float]], packages: dict[str, str], fragments: tuple[str, ...]
) -> None:
    only(check_plan(REQUEST, plan_for(amounts, packages)), *fragments)


def test_a_negative_or_non_finite_amount_is_caught() -> None:
    plan = plan_for(GOOD, GOOD_PACKAGES)
    plan.allocations[0].amounts["subsidy"] = -1.0
    assert any("negative amount" in v for v in check_plan(REQUEST, plan))
    plan.allocations[0].amounts["subsidy"] = math.nan
    assert any("not finite" in v for v in check_plan(REQUEST, plan))


def test_unknown_partners_resources_and_packages_are_caught() -> None:
    plan = plan_for(GOOD, GOOD_PACKAGES)
    plan.allocations.append(replace(plan.allocations[0], partner_id="ghost"))
    plan.allocations[0].amounts["fund"] = 1.0
    plan.allocations[2].package = "huge"
    violations = check_plan(REQUEST, plan)
    assert any("unknown partner 'ghost'" in v for v in violations)
    assert any("unknown resource 'fund'" in v for v in violations)
    assert any("package 'huge' is not one of its packages" in v for v in violations)


def test_a_partner_allocated_twice_is_caught() -> None:
    plan = plan_for(GOOD, GOOD_PACKAGES)
    plan.allocations.append(copy.deepcopy(plan.allocations[0]))
    assert any("more than one allocation" in v for v in check_plan(REQUEST, plan))


@pytest.mark.parametrize("field", ["projected_gmv", "incremental_gmv", "baseline_gmv"])
def test_allocation_figures_must_be_exact(field: str) -> None:
    plan = plan_for(GOOD, GOOD_PACKAGES)
    b = next(a for a in plan.allocations if a.partner_id == "b")
    setattr(b, field, getattr(b, field) * (1 + 1e-6))
    assert any("'b'" in v and field in v for v in check_plan(REQUEST, plan))


def test_rounding_noise_in_figures_is_tolerated() -> None:
    plan = plan_for(GOOD, GOOD_PACKAGES)
    for allocation in plan.allocations:
        allocation.projected_gmv *= 1 + 1e-13
    plan.objective.total_projected_gmv *= 1 + 1e-12
    assert check_plan(REQUEST, plan) == []


def test_an_exaggerated_or_understated_tier_is_caught() -> None:
    plan = plan_for(GOOD, GOOD_PACKAGES)
    allocations = {a.partner_id: a for a in plan.allocations}
    allocations["c"].tier = "t100m"
    allocations["b"].tier = "t100m"
    violations = check_plan(REQUEST, plan)
    assert any("'c': tier 't100m'" in v and "reaches None" in v for v in violations)
    assert any("'b': tier 't100m'" in v and "reaches 't1b'" in v for v in violations)


def test_a_tier_reached_a_hair_below_the_threshold_is_caught() -> None:
    plan = plan_for({**GOOD, "a": {"subsidy": 4.0}}, GOOD_PACKAGES)
    a = next(a for a in plan.allocations if a.partner_id == "a")
    # a's GMV is exactly 100; claim the tier with a GMV the checker does not reproduce.
    request = replace(
        REQUEST,
        partners=(
            replace(REQUEST.partners[0], curves={"subsidy": Curve(CurveKind.LINEAR, roi=2.4999)}),
            *REQUEST.partners[1:],
        ),
    )
    violations = check_plan(request, plan)
    assert a.tier == "t100m"
    assert any("'a': projected_gmv" in v for v in violations)
    assert any("'a': tier 't100m'" in v for v in violations)
    assert any("tier 't100m'" in v and "achieved" in v for v in violations)


def test_a_partner_reaching_a_tier_must_be_listed() -> None:
    plan = plan_for(GOOD, GOOD_PACKAGES)
    plan.allocations = [a for a in plan.allocations if a.partner_id != "d"]
    only(check_plan(REQUEST, plan), "'d' reaches tier 't100m'", "no allocation")


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda p: setattr(p.tiers[0], "achieved", p.tiers[0].achieved + 1), "achieved"),
        (lambda p: setattr(p.tiers[1], "shortfall", 1), "shortfall"),
        (lambda p: setattr(p.tiers[0], "min_gmv", 1.0), "min_gmv"),
        (lambda p: p.tiers.pop(), "missing from the plan's tiers"),
        (lambda p: setattr(p.objective, "weighted_shortfall", 1.0), "weighted_shortfall"),
        (lambda p: setattr(p.objective, "total_cost", p.objective.total_cost + 1), "total_cost"),
        (lambda p: setattr(p.objective, "mode", "max_gmv"), "objective.mode"),
        (
            lambda p: setattr(
                p.objective, "total_projected_gmv", p.objective.total_projected_gmv + 1
            ),
            "total_projected_gmv",
        ),
        (
            lambda p: setattr(p.objective, "incremental_gmv", p.objective.incremental_gmv + 1e-3),
            "objective.incremental_gmv",
        ),
        (lambda p: setattr(p.resources[0], "allocated", 8.0), "allocated"),
        (lambda p: setattr(p.resources[1], "utilization", 0.5), "utilization"),
        (lambda p: setattr(p.resources[1], "budget", None), "budget"),
        (lambda p: p.resources.pop(), "missing from the plan's resources"),
    ],
)
def test_plan_figures_must_be_recomputable(mutate: Callable[[Plan], object], fragment: str) -> None:
    plan = plan_for(GOOD, GOOD_PACKAGES)
    mutate(plan)
    only(check_plan(REQUEST, plan), fragment)


def test_an_infeasible_plan_may_leave_pins_and_packages_unmet_but_must_say_why() -> None:
    solver = SolverReport("test", SolveStatus.INFEASIBLE)
    plan = plan_for({}, solver=solver, binding=["pin b/traffic"])
    assert check_plan(REQUEST, plan) == []
    plan = plan_for({}, solver=solver)
    only(check_plan(REQUEST, plan), "names no binding constraints")
    # Budgets and bounds still hold in an infeasible plan.
    plan = plan_for({"a": {"subsidy": 5.0}}, solver=solver, binding=["pin b/traffic"])
    only(check_plan(REQUEST, plan), "max bound")


def test_an_error_plan_is_held_to_the_never_negotiable_rules_only() -> None:
    solver = SolverReport("test", SolveStatus.ERROR)
    assert check_plan(REQUEST, plan_for({}, solver=solver)) == []
    only(check_plan(REQUEST, plan_for({"d": {"subsidy": 1.5}}, solver=solver)), "step 1")


def test_the_same_zero_plan_is_a_violation_when_it_claims_optimal() -> None:
    violations = check_plan(REQUEST, plan_for({}))
    assert any("pinned at 2" in v for v in violations)
    assert any("one_package" in v for v in violations)


def test_assert_plan_valid_raises_a_domain_error_listing_violations() -> None:
    plan = plan_for({**GOOD, "a": {"subsidy": 5.0}}, GOOD_PACKAGES)
    with pytest.raises(PlanCheckError) as raised:
        assert_plan_valid(REQUEST, plan)
    assert isinstance(raised.value, DomainError)
    assert raised.value.violations == check_plan(REQUEST, plan)
    assert "max bound" in str(raised.value)


def test_feasibility_tolerance_is_relative() -> None:
    big = replace(REQUEST.resources[0], budget=12e9, step=1e9)
    request = replace(
        REQUEST,
        resources=(big, REQUEST.resources[1]),
        partners=(
            replace(
                REQUEST.partners[0],
                bounds={"subsidy": Bounds(min=2e9, max=4e9)},
                curves={"subsidy": Curve(CurveKind.LINEAR, roi=2.5e-9)},
            ),
            *REQUEST.partners[1:],
        ),
        constraints=REQUEST.constraints[1:3],
    )
    # 4 CNY over a 4e9 bound is noise at 1e-6; 4e4 CNY over it is not.
    assert (
        check_plan(
            request, plan_for({"a": {"subsidy": 4e9 + 4}, "b": {"traffic": 2.0}}, request=request)
        )
        == []
    )
    violations = check_plan(
        request, plan_for({"a": {"subsidy": 4e9 + 4e4}, "b": {"traffic": 2.0}}, request=request)
    )
    assert any("max bound" in v for v in violations)


@pytest.mark.parametrize("seed", range(12))
def test_reference_allocations_pass_and_perturbed_ones_fail(seed: int) -> None:
    """On random requests the brute-force optimum passes; pushing a capped partner past its
    cap (or the whole budget over) does not."""
    request = random_small_request(
        seed,
        n_partners=5,
        n_resources=1 + seed % 2,
        n_tiers=1 + seed % 2,
        magnitude="realistic" if seed % 3 else "unit",
        with_min=True,
        with_max_share=True,
        with_eligibility=seed % 4 == 1,
        with_pins=seed % 4 == 2,
        with_packages=seed % 4 == 3,
    )
    reference = solve_reference(request)
    assert reference.feasible and reference.amounts is not None
    plan = build_plan(request, reference.amounts, OPTIMAL, package_choice=reference.package_choice)
    assert check_plan(request, plan) == []

    resource = request.resources[0]
    assert resource.budget is not None
    over = reference.amounts.copy()
    over[:, 0] += resource.budget  # every partner gets a whole budget more
    violations = check_plan(
        request, build_plan(request, over, OPTIMAL, package_choice=reference.package_choice)
    )
    assert any("exceeds the budget" in v for v in violations)
