"""Plan explanations, verified by re-solving and exact re-checking on seeded generated
programmes (`tests.support.programmes`) as well as hand-made requests."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.check import check_plan
from models.curves import Curve, CurveKind
from models.plan import Plan, build_plan
from models.request import (
    AllocationRequest,
    Bounds,
    GroupBudget,
    GroupCount,
    Options,
    Partner,
    Pin,
    Resource,
    Tier,
    Where,
)
from optimizer import solve
from service.explain import TIME_SHARE, plan_amounts
from service.near_misses import find_near_misses
from service.solving import solve_request
from tests.support.explain_checks import assert_marginal_value_holds, with_budgets
from tests.support.programmes import generated_request

# Seed 6 needs a partner above today's max_share cap to meet the 1B target: to_targets
# must let the caps grow with the budgets there (it reported met: false at ×16 before).
# tests/unit/test_explain_seeds.py runs the same checks over 20 more seeds.
SEEDS = (3, 6)


def _explained(request: AllocationRequest) -> Plan:
    plan = solve_request(request)[0]
    assert plan.explanation is not None
    return plan


@pytest.fixture(scope="module", params=SEEDS)
def short_programme(request: pytest.FixtureRequest) -> tuple[AllocationRequest, Plan]:
    """A generated programme whose targets the budgets cannot all meet."""
    programme = generated_request(10, request.param, targets=(4, 9), time_limit_s=60)
    return programme, _explained(programme)


@pytest.fixture(scope="module", params=(1, 2))
def wide_programme(request: pytest.FixtureRequest) -> tuple[AllocationRequest, Plan]:
    """40 generated partners, many of them within reach of a tier (plan: a short solve)."""
    programme = generated_request(40, request.param, time_limit_s=4)
    return programme, solve(programme)[0]


def test_budget_marginal_values_agree_with_a_resolve_at_one_percent_more(
    short_programme: tuple[AllocationRequest, Plan],
) -> None:
    request, plan = short_programme
    assert plan.explanation is not None
    priced = [
        entry
        for entry in plan.explanation["binding"]
        if entry["kind"] == "budget" and entry.get("marginal_value")
    ]
    assert priced, "every budget of this programme is spent, so each must be priced"
    for entry in priced:
        value = entry["marginal_value"]
        assert value["per_unit"] == 1 and value["method"] in ("resolve", "extension")
        assert_marginal_value_holds(request, plan, entry)


def test_near_miss_extras_lift_the_partner_when_applied(
    wide_programme: tuple[AllocationRequest, Plan],
) -> None:
    request, plan = wide_programme
    misses = find_near_misses(request, plan, 12)
    assert misses, "partners sit just below a tier in a 40-partner programme"
    assert len(misses) <= 12
    costs = [miss["extra_cost"] for miss in misses]
    assert costs == sorted(costs)
    names = [r.name for r in request.resources]
    index = {p.id: i for i, p in enumerate(request.partners)}
    for miss in misses:
        amounts, choice = plan_amounts(request, plan)
        extra = miss["cheapest_extra"]
        i = index[miss["partner_id"]]
        for name, amount in extra.items():
            amounts[i, names.index(name)] += amount
        # The extra is new budget on top of the plan's: raise the budgets by exactly it.
        raised = with_budgets(
            request,
            {
                name: (request.resource(name).budget or 0.0) + amount
                for name, amount in extra.items()
            },
        )
        lifted = build_plan(raised, amounts, plan.solver, package_choice=choice)
        assert check_plan(raised, lifted) == []
        gmv = next(
            a.projected_gmv for a in lifted.allocations if a.partner_id == miss["partner_id"]
        )
        assert gmv >= request.tier(miss["tier"]).min_gmv
        assert miss["gmv_gap"] == pytest.approx(
            request.tier(miss["tier"]).min_gmv - _gmv_in(plan, request, miss["partner_id"])
        )
        assert miss["extra_cost"] == pytest.approx(
            sum(request.resource(n).unit_cost * a for n, a in extra.items())
        )


def test_near_misses_are_the_cheapest_ones(wide_programme: tuple[AllocationRequest, Plan]) -> None:
    """The pruned search returns the same partners as pricing every one of them."""
    request, plan = wide_programme
    few = find_near_misses(request, plan, 5)
    every = find_near_misses(request, plan, len(request.partners))
    assert [m["partner_id"] for m in few] == [m["partner_id"] for m in every[:5]]


def _gmv_in(plan: Plan, request: AllocationRequest, partner_id: str) -> float:
    for allocation in plan.allocations:
        if allocation.partner_id == partner_id:
            return allocation.projected_gmv
    return next(p.baseline_gmv for p in request.partners if p.id == partner_id)


def test_to_targets_budgets_meet_every_target_when_resolved(
    short_programme: tuple[AllocationRequest, Plan],
) -> None:
    request, plan = short_programme
    assert plan.objective.weighted_shortfall > 0
    assert plan.explanation is not None
    to_targets = plan.explanation["to_targets"]
    assert to_targets is not None and to_targets["met"] and to_targets["verified"]
    for resource in request.resources:
        assert resource.budget is not None
        needed = to_targets["budgets"][resource.name]
        assert needed >= resource.budget
        assert to_targets["extra"][resource.name] == pytest.approx(needed - resource.budget)
    resolved = solve(with_budgets(request, to_targets["budgets"]))[0]
    assert resolved.objective.weighted_shortfall == 0
    assert all(tier.shortfall == 0 for tier in resolved.tiers)


def test_a_single_resource_near_miss_is_the_least_extra() -> None:
    """One lever: one step less no longer lifts the partner."""
    request = _two_partner_request()
    plan = _explained(request)
    assert plan.explanation is not None
    (miss,) = plan.explanation["near_misses"]
    assert miss["partner_id"] == "b" and miss["tier"] == "100"
    (amount,) = miss["cheapest_extra"].values()
    # b reaches 100 at 40·ln 2 = 27.7 in all, so 28 whole units.
    assert _amount(plan, "b") + amount == 28.0
    curve = request.partners[1].curves["subsidy"]
    current = _amount(plan, "b")
    assert 70.0 + float(curve.value(current + amount)) >= 100.0
    assert 70.0 + float(curve.value(current + amount - 1.0)) < 100.0
    assert miss["fits_unspent"] is False  # the plan spent the budget


def _amount(plan: Plan, partner_id: str) -> float:
    return next((a.amounts["subsidy"] for a in plan.allocations if a.partner_id == partner_id), 0.0)


def _two_partner_request(**changes: object) -> AllocationRequest:
    linear = Curve(CurveKind.LINEAR, roi=1.0)
    request = AllocationRequest(
        resources=(Resource("subsidy", budget=30.0, step=1.0),),
        tiers=(Tier("100", 100.0, 2),),
        partners=(
            Partner("a", 90.0, curves={"subsidy": linear}),
            Partner("b", 70.0, curves={"subsidy": Curve(CurveKind.SATURATING, 60.0, 40.0)}),
        ),
        options=Options(time_limit_s=10.0, mip_gap=0.0),
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def test_binding_names_pins_bounds_group_caps_and_counts() -> None:
    linear = Curve(CurveKind.LINEAR, roi=1.0)
    partners = tuple(
        Partner(
            pid,
            baseline,
            attributes={"region": region},
            curves={"subsidy": linear},
            bounds={"subsidy": Bounds(max=8.0)} if pid == "c" else {},
        )
        for pid, baseline, region in (
            ("a", 95.0, "east"),
            ("b", 92.0, "east"),
            ("c", 60.0, "west"),
            ("d", 50.0, "west"),
        )
    )
    request = AllocationRequest(
        resources=(Resource("subsidy", budget=40.0, step=1.0),),
        tiers=(Tier("100", 100.0, 4),),
        partners=partners,
        constraints=(
            GroupBudget("subsidy", Where({"region": "east"}), max_share=0.25),
            GroupCount("100", 1, Where({"region": "east"})),
            Pin("d", "subsidy", 3.0),
        ),
        options=Options(time_limit_s=10.0, mip_gap=0.0),
    )
    plan = _explained(request)
    assert plan.explanation is not None
    kinds = {entry["kind"]: entry for entry in plan.explanation["binding"]}
    assert kinds["pin"]["partner_id"] == "d"
    assert kinds["bound"]["partners"] == ["c"]
    group = kinds["group_budget"]
    assert group["side"] == "max" and group["where"] == {"region": "east"}
    assert group["utilization"] == pytest.approx(1.0)
    # Relaxing the east cap by 1% (0.1 CNY) lifts nobody: a proven zero, not a guess.
    assert group["marginal_value"]["weighted_shortfall"] == 0.0
    assert "group_count" not in kinds or kinds["group_count"]["achieved"] <= 1


def test_rank_one_alone_is_resolved_and_the_time_is_bounded() -> None:
    request = generated_request(10, 3, targets=(4, 10), time_limit_s=4, plans=2)
    plans = solve_request(request)
    assert plans[0].explanation is not None
    scope = plans[0].explanation["scope"]
    # The whole explanation's share of the time limit: half of it.
    assert scope["resolves"] >= 1 and scope["time_limit_s"] == pytest.approx(TIME_SHARE * 4.0)
    # Each re-solve is cut at its slice; allow one slice of overrun for the last.
    assert scope["seconds"] <= 2 * scope["time_limit_s"] + 1.0
    for plan in plans[1:]:
        assert plan.explanation is not None
        assert plan.explanation["scope"]["resolves"] == 0
        assert all("marginal_value" not in entry for entry in plan.explanation["binding"])


def test_explanation_can_be_turned_off_and_survives_a_round_trip() -> None:
    from models.schemas import plan_from_dict, plan_to_dict

    request = _two_partner_request()
    assert solve_request(request, explain=False)[0].explanation is None
    plan = _explained(request)
    assert plan_from_dict(plan_to_dict(plan)).explanation == plan.explanation
    assert np.isfinite(plan.explanation["near_misses"][0]["extra_cost"])  # type: ignore[index]
