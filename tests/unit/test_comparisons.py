"""What-if comparisons: scenario requests, outcomes side by side, per-partner differences.

The solve function is replaced by an even split of each budget over the partners (plans
built with the real exact `build_plan`), so these tests pin the comparison logic, not
the optimizer.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from models.curves import Curve, CurveKind
from models.plan import Plan, SolverReport, SolveStatus, build_plan
from models.request import AllocationRequest, Partner, Resource, Tier
from service.comparisons import (
    BASE,
    ScenarioError,
    ScenarioOutcome,
    build_scenario_requests,
    prepare_scenarios,
    run_comparison,
    summarize_comparison,
)
from service.differences import diff_pages, page_differences, partner_differences

LINEAR = Curve(CurveKind.LINEAR, roi=1.0)
BASELINES = {"p1": 9.3e7, "p2": 8.5e7, "p3": 5e7, "p4": 2e7}


def make_request(budget: float = 4e7) -> AllocationRequest:
    return AllocationRequest(
        name="four partners",
        resources=(Resource("subsidy", budget=budget),),
        tiers=(Tier("t100m", min_gmv=1e8, target=3),),
        partners=tuple(
            Partner(id=pid, baseline_gmv=gmv, curves={"subsidy": LINEAR})
            for pid, gmv in BASELINES.items()
        ),
    )


def split_evenly(request: AllocationRequest, **_: Any) -> list[Plan]:
    """Every partner gets an equal share of every budget."""
    amounts = np.zeros((len(request.partners), len(request.resources)))
    for r, resource in enumerate(request.resources):
        amounts[:, r] = (resource.budget or 0.0) / len(request.partners)
    return [build_plan(request, amounts, SolverReport("even-split", SolveStatus.OPTIMAL, 0.0))]


DOUBLE = {"name": "double", "changes": {"budgets": {"subsidy": "x2"}}}


def test_build_scenario_requests_puts_base_first_and_applies_changes() -> None:
    base = make_request()
    pairs = build_scenario_requests(base, [DOUBLE])
    assert [name for name, _ in pairs] == [BASE, "double"]
    assert pairs[0][1] is base
    assert pairs[1][1].resource("subsidy").budget == pytest.approx(8e7)


def test_build_scenario_requests_is_strict_and_prepare_is_not() -> None:
    bad = {"name": "bad", "changes": {"budgets": {"no_such_resource": 1.0}}}
    with pytest.raises(ScenarioError, match="bad"):
        build_scenario_requests(make_request(), [DOUBLE, bad])
    prepared = prepare_scenarios(make_request(), [bad, DOUBLE])
    assert [item.name for item in prepared] == [BASE, "bad", "double"]
    assert prepared[1].request is None and "no_such_resource" in (prepared[1].error or "")
    assert prepared[2].request is not None


def test_run_comparison_reports_kpis_per_scenario_base_first() -> None:
    result = run_comparison(make_request(), [DOUBLE], solve=split_evenly)
    rows = result["scenarios"]
    assert [row["name"] for row in rows] == [BASE, "double"]
    assert all(row["status"] == "succeeded" for row in rows)
    base, double = rows[0]["kpis"], rows[1]["kpis"]
    # Even split of 4e7: only p1 (9.3e7 + 1e7) reaches 1e8; of 8e7: p1 and p2 do.
    assert base["achieved"] == {"t100m": 1} and double["achieved"] == {"t100m": 2}
    assert base["target"] == {"t100m": 3}
    assert base["weighted_shortfall"] == 2 and double["weighted_shortfall"] == 1
    assert base["spend"]["subsidy"] == pytest.approx(4e7)
    assert double["spend"]["subsidy"] == pytest.approx(8e7)
    assert double["total_projected_gmv"] == pytest.approx(sum(BASELINES.values()) + 8e7)
    assert base["solver_status"] == "optimal"
    assert rows[1]["plan"]["rank"] == 1 and rows[1]["plan"]["allocations"]
    json.dumps(result)  # the API stores it as JSON


def test_differences_name_tier_changes_and_amount_changes() -> None:
    result = run_comparison(make_request(), [DOUBLE], solve=split_evenly)
    (entry,) = result["differences"]
    assert entry["scenario"] == "double"
    assert entry["partners_changed"] == 4  # everyone's amount doubled
    assert entry["tiers_gained"] == 1 and entry["tiers_lost"] == 0
    first = entry["partners"][0]  # tier changes are listed first
    assert first["partner_id"] == "p2" and first["tier_change"] == "gained"
    assert (first["base_tier"], first["scenario_tier"]) == (None, "t100m")
    change = first["amounts"]["subsidy"]
    assert change["base"] == pytest.approx(1e7) and change["scenario"] == pytest.approx(2e7)
    assert change["delta"] == pytest.approx(1e7)
    assert first["projected_gmv_delta"] == pytest.approx(1e7)


def test_lost_tier_and_excluded_partner_are_differences() -> None:
    halve = {"name": "halve", "changes": {"budgets": {"subsidy": "x0.5"}}}
    drop = {"name": "drop p1", "changes": {"exclude_partners": ["p1"]}}
    result = run_comparison(make_request(), [halve, drop], solve=split_evenly)
    by_name = {entry["scenario"]: entry for entry in result["differences"]}
    assert by_name["halve"]["tiers_lost"] == 1  # p1 at 9.3e7 + 5e6 falls below 1e8
    lost = by_name["halve"]["partners"][0]
    assert lost["partner_id"] == "p1" and lost["tier_change"] == "lost"
    dropped = next(p for p in by_name["drop p1"]["partners"] if p["partner_id"] == "p1")
    assert dropped["tier_change"] == "lost" and dropped["scenario_projected_gmv"] is None


def test_a_failing_scenario_does_not_fail_the_others() -> None:
    bad = {"name": "bad", "changes": {"budgets": {"no_such_resource": 1.0}}}
    crash = {"name": "crash", "changes": {"budgets": {"subsidy": 123.0}}}

    def solve(request: AllocationRequest, **kwargs: Any) -> list[Plan]:
        if request.resource("subsidy").budget == 123.0:
            raise RuntimeError("engine exploded")
        return split_evenly(request, **kwargs)

    result = run_comparison(make_request(), [bad, crash, DOUBLE], solve=solve)
    status = {row["name"]: row["status"] for row in result["scenarios"]}
    assert status == {BASE: "succeeded", "bad": "failed", "crash": "failed", "double": "succeeded"}
    errors = {row["name"]: row["error"] for row in result["scenarios"]}
    assert "no_such_resource" in errors["bad"] and "engine exploded" in errors["crash"]
    assert errors["double"] is None
    assert [entry["scenario"] for entry in result["differences"]] == ["double"]


def test_progress_names_each_scenario() -> None:

    def solve(request: AllocationRequest, *, progress: Any = None, **kwargs: Any) -> list[Plan]:
        progress("stage one")
        return split_evenly(request)

    events: list[Any] = []
    run_comparison(make_request(), [DOUBLE], solve=solve, progress=events.append)
    messages = [str(event) for event in events]
    assert any("double" in message for message in messages)
    assert "[double] stage one" in messages and "[base] stage one" in messages


def test_summary_without_a_base_plan_has_rows_but_no_differences() -> None:
    base = make_request()
    doubled = build_scenario_requests(base, [DOUBLE])[1][1]
    result = summarize_comparison(
        base,
        [
            ScenarioOutcome("double", doubled, split_evenly(doubled), None),
            ScenarioOutcome(BASE, base, None, "solver crashed"),
        ],
    )
    assert [row["name"] for row in result["scenarios"]] == [BASE, "double"]
    assert result["scenarios"][0]["status"] == "failed"
    assert result["scenarios"][0]["kpis"] is None
    assert result["differences"] == []


def test_float_noise_is_not_a_difference_and_the_list_is_complete_and_pages() -> None:
    base = make_request()
    (plan,) = split_evenly(base)
    amounts = np.full((4, 1), 1e7)
    noisy = build_plan(base, amounts + 1e-9, plan.solver)
    quiet = partner_differences(base, plan, base, noisy)
    assert quiet["partners_changed"] == 0 and quiet["partners"] == []

    more = build_plan(base, amounts * 3, plan.solver)
    full = partner_differences(base, plan, base, more)
    assert full["partners_changed"] == 4 and len(full["partners"]) == 4
    assert full["truncated"] is False
    # Only p2 (8.5e7 + 3e7) gains the tier, and tier changes are listed first.
    assert full["tiers_gained"] == 1
    assert full["partners"][0]["partner_id"] == "p2"

    entry = {"scenario": "x", **full}
    assert diff_pages([entry], 3) == 2 and diff_pages([], 3) == 1
    first, second = page_differences([entry], 1, 3), page_differences([entry], 2, 3)
    assert [len(first[0]["partners"]), len(second[0]["partners"])] == [3, 1]
    assert first[0]["truncated"] and second[0]["truncated"]
    assert first[0]["partners_changed"] == 4  # totals stay totals
    seen = [row["partner_id"] for page in (first, second) for row in page[0]["partners"]]
    assert sorted(seen) == ["p1", "p2", "p3", "p4"]
    (whole,) = page_differences([entry], 1, 4)
    assert not whole["truncated"]


def test_kpis_carry_p_target_when_forecasts_spread() -> None:
    plain = run_comparison(make_request(), [DOUBLE], solve=split_evenly)
    assert all(row["kpis"]["p_target"] is None for row in plain["scenarios"])
    spread = {"name": "spread", "changes": {"uncertainty": {"default_sigma": 0.1}}}
    result = run_comparison(make_request(), [spread], solve=split_evenly)
    kpis = result["scenarios"][1]["kpis"]
    plan = result["scenarios"][1]["plan"]
    assert kpis["p_target"] == {"t100m": plan["uncertainty"]["tiers"][0]["p_target"]}
    assert 0.0 < kpis["p_target"]["t100m"] < 1.0
