"""What-if changes: each kind of change, its validation, and scenario lists."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.request import AllocationRequest, Objective, Pin
from models.scenario import Scenario, apply_changes, parse_scenarios, scale_curve
from models.schemas import RequestValidationError, parse_request


def base() -> AllocationRequest:
    return parse_request(
        {
            "name": "base",
            "resources": [
                {"name": "subsidy", "budget": 5e8, "step": 1e6},
                {"name": "traffic", "unit": "impressions", "budget": None},
                {"name": "fund", "budget": 1e9},
            ],
            "tiers": [
                {"name": "1B", "min_gmv": 1e9, "target": 100},
                {"name": "100M", "min_gmv": 1e8, "target": 300},
            ],
            "partners": [
                {
                    "id": "p1",
                    "baseline_gmv": 8e8,
                    "baseline_gmv_p10": 6e8,
                    "baseline_gmv_p90": 9e8,
                    "response": {
                        "subsidy": {"curve": "saturating", "max_uplift": 3e8, "scale": 2e7},
                        "traffic": {"curve": "log", "coef": 1e8, "scale": 1e9},
                        "fund": {
                            "curve": "hill",
                            "max_uplift": 2e8,
                            "shape": 2,
                            "half_saturation": 1e7,
                        },
                    },
                },
                {
                    "id": "p2",
                    "baseline_gmv": 9e7,
                    "response": {
                        "subsidy": {"curve": "linear", "roi": 3.0},
                        "traffic": {"curve": "points", "x": [0, 1e9, 2e9], "y": [0, 1e7, 1.2e7]},
                    },
                },
                {
                    "id": "p3",
                    "baseline_gmv": 4e8,
                    "packages": [{"name": "gold", "amounts": {"subsidy": 2e7}, "uplift": 7e8}],
                },
            ],
            "constraints": [
                {"type": "max_share", "resource": "subsidy", "max_share": 0.1},
                {"type": "pin", "partner_id": "p1", "resource": "subsidy", "amount": 1e7},
                {"type": "pin", "partner_id": "p2", "resource": "fund", "amount": 0},
            ],
        }
    )


def change_problems(changes: Any) -> dict[str, list[str]]:
    with pytest.raises(RequestValidationError) as caught:
        apply_changes(base(), changes)
    return caught.value.flat()


def test_no_changes_is_the_same_request() -> None:
    assert apply_changes(base(), {}) == base()


def test_budgets_absolute_multiplied_and_unlimited() -> None:
    changed = apply_changes(base(), {"budgets": {"subsidy": "x1.2", "fund": 2e9, "traffic": 5e10}})
    assert changed.resource("subsidy").budget == pytest.approx(6e8)
    assert changed.resource("fund").budget == 2e9
    assert changed.resource("traffic").budget == 5e10
    assert changed.resource("subsidy").step == 1e6  # the rest of the resource is kept
    unlimited = apply_changes(base(), {"budgets": {"fund": None}})
    assert unlimited.resource("fund").budget is None


def test_targets_and_objective() -> None:
    changed = apply_changes(base(), {"targets": {"1B": 120}, "objective": "min_cost"})
    assert changed.tier("1B").target == 120 and changed.tier("100M").target == 300
    assert changed.objective is Objective.MIN_COST


def test_exclude_partners_drops_them_and_their_pins() -> None:
    changed = apply_changes(base(), {"exclude_partners": ["p1"]})
    assert [p.id for p in changed.partners] == ["p2", "p3"]
    assert changed.pins() == {("p2", "fund"): 0.0}


def test_pins_are_added_and_replace_pins_of_the_same_pair() -> None:
    changed = apply_changes(
        base(),
        {
            "pins": [
                {"partner_id": "p1", "resource": "subsidy", "amount": 3e7},
                {"partner_id": "p2", "resource": "subsidy", "amount": 2e6},
            ]
        },
    )
    assert changed.pins() == {("p1", "subsidy"): 3e7, ("p2", "fund"): 0.0, ("p2", "subsidy"): 2e6}
    assert sum(isinstance(rule, Pin) for rule in changed.constraints) == 3


def test_forecast_baseline_scales_baselines_and_bands() -> None:
    changed = apply_changes(base(), {"forecast": {"baseline": 0.9}})
    p1 = changed.partners[0]
    assert (p1.baseline_gmv, p1.baseline_gmv_p10, p1.baseline_gmv_p90) == pytest.approx(
        (7.2e8, 5.4e8, 8.1e8)
    )
    assert changed.partners[1].baseline_gmv_p10 is None
    assert p1.curves == base().partners[0].curves  # uplift untouched


def test_forecast_uplift_scales_every_curve_and_package() -> None:
    before = base()
    after = apply_changes(before, {"forecast": {"uplift": 0.8}})
    amounts = np.array([0.0, 1e5, 3e6, 2e7, 7e8, 1.5e9, 5e9])
    for old, new in zip(before.partners, after.partners, strict=True):
        assert old.baseline_gmv == new.baseline_gmv
        assert set(old.curves) == set(new.curves)
        for name, curve in old.curves.items():
            np.testing.assert_allclose(
                new.curves[name].value(amounts), 0.8 * curve.value(amounts), rtol=1e-12
            )
    assert after.partners[2].packages[0].uplift == pytest.approx(0.8 * 7e8)
    assert after.partners[2].packages[0].amounts == {"subsidy": 2e7}


def test_scale_curve_by_one_is_identity() -> None:
    curve = base().partners[0].curves["fund"]
    assert scale_curve(curve, 1.0) is curve


def test_changes_do_not_touch_the_base_request() -> None:
    request = base()
    apply_changes(
        request,
        {
            "budgets": {"subsidy": 1.0},
            "exclude_partners": ["p3"],
            "forecast": {"baseline": 2.0, "uplift": 2.0},
        },
    )
    assert request == base()


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"budget": {}}, "changes.budget", "Unknown field"),
        ({"budgets": {"cash": 5}}, "changes.budgets.cash", "unknown resource 'cash'"),
        ({"budgets": {"subsidy": -5}}, "changes.budgets.subsidy", ">= 0"),
        ({"budgets": {"subsidy": "y1.2"}}, "changes.budgets.subsidy", 'multiplier like "x1.2"'),
        ({"budgets": {"subsidy": "x-1"}}, "changes.budgets.subsidy", 'multiplier like "x1.2"'),
        ({"budgets": {"subsidy": True}}, "changes.budgets.subsidy", "must be a number"),
        ({"budgets": {"traffic": "x2"}}, "changes.budgets.traffic", "no budget to multiply"),
        ({"budgets": {"subsidy": None}}, "changes.budgets.subsidy", "cannot be unlimited"),
        ({"targets": {"10B": 5}}, "changes.targets.10B", "unknown tier '10B'"),
        ({"targets": {"1B": -1}}, "changes.targets.1B", "must be >= 0"),
        ({"targets": {"1B": 2.5}}, "changes.targets.1B", "Not a valid integer"),
        ({"objective": "max_fun"}, "changes.objective", "Must be one of"),
        (
            {"exclude_partners": ["p1", "p9"]},
            "changes.exclude_partners.1",
            "unknown partner id 'p9'",
        ),
        ({"exclude_partners": "p1"}, "changes.exclude_partners", "Not a valid list"),
        (
            {"exclude_partners": ["p1", "p2", "p3"]},
            "changes.exclude_partners",
            "would leave no partners",
        ),
        (
            {"pins": [{"partner_id": "p9", "resource": "subsidy", "amount": 1}]},
            "changes.pins.0.partner_id",
            "unknown partner id 'p9'",
        ),
        (
            {"pins": [{"partner_id": "p1", "resource": "cash", "amount": 1}]},
            "changes.pins.0.resource",
            "unknown resource 'cash'",
        ),
        (
            {"pins": [{"partner_id": "p1", "resource": "subsidy", "amount": -1}]},
            "changes.pins.0.amount",
            "must be >= 0",
        ),
        (
            {"pins": [{"partner_id": "p1", "resource": "subsidy"}]},
            "changes.pins.0.amount",
            "Missing data",
        ),
        (
            {
                "exclude_partners": ["p1"],
                "pins": [{"partner_id": "p1", "resource": "subsidy", "amount": 1}],
            },
            "changes.pins.0.partner_id",
            "excluded by this scenario",
        ),
        ({"forecast": {"uplift": 0}}, "changes.forecast.uplift", "must be > 0"),
        ({"forecast": {"baseline": -1}}, "changes.forecast.baseline", "must be > 0"),
        ({"forecast": {"trend": 1.1}}, "changes.forecast.trend", "Unknown field"),
        ("double budgets", "changes", "Invalid input type"),
    ],
)
def test_bad_changes_name_the_field(changes: Any, path: str, message: str) -> None:
    found = change_problems(changes)
    assert path in found, f"{path} not among {sorted(found)}"
    assert any(message in text for text in found[path]), found[path]


def test_every_bad_change_is_reported() -> None:
    found = change_problems({"budgets": {"cash": 1}, "targets": {"10B": 1}, "objective": "none"})
    assert {"changes.objective"} <= set(found)  # structure first...
    found = change_problems({"budgets": {"cash": 1}, "targets": {"10B": 1}})
    assert {"changes.budgets.cash", "changes.targets.10B"} == set(found)  # ...then references


# --- scenario lists --------------------------------------------------------------------


def test_parse_scenarios_keeps_the_changes_as_sent() -> None:
    data = [
        {"name": "more subsidy", "changes": {"budgets": {"subsidy": "x1.5"}}},
        {"name": "no p3", "changes": {"exclude_partners": ["p3"]}},
        {"name": "as is"},
    ]
    scenarios = parse_scenarios(data, base())
    assert scenarios == (
        Scenario("more subsidy", {"budgets": {"subsidy": "x1.5"}}),
        Scenario("no p3", {"exclude_partners": ["p3"]}),
        Scenario("as is", {}),
    )
    assert scenarios[0].apply(base()).resource("subsidy").budget == pytest.approx(7.5e8)


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"name": "a"}, "scenarios", "must be a list"),
        ([{"name": "base", "changes": {}}], "scenarios.0.name", "reserved"),
        ([{"name": "", "changes": {}}], "scenarios.0.name", "must not be empty"),
        ([{"changes": {}}], "scenarios.0.name", "Missing data"),
        ([{"name": "a"}, {"name": "a"}], "scenarios.1.name", "duplicate scenario name 'a'"),
        ([{"name": "a", "changes": None}], "scenarios.0.changes", "may not be null"),
        (
            [{"name": "a", "changes": {"budgets": {"subsidy": "lots"}}}],
            "scenarios.0.changes.budgets.subsidy",
            "multiplier",
        ),
        ([{"name": "a", "change": {}}], "scenarios.0.change", "Unknown field"),
        (
            [{"name": "a"}, {"name": "b", "changes": {"targets": {"10B": 1}}}],
            "scenarios.1.changes.targets.10B",
            "unknown tier",
        ),
    ],
)
def test_bad_scenarios_name_the_field(data: Any, path: str, message: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_scenarios(data, base())
    found = caught.value.flat()
    assert path in found, f"{path} not among {sorted(found)}"
    assert any(message in text for text in found[path]), found[path]


def test_without_a_base_only_the_shape_is_checked() -> None:
    scenarios = parse_scenarios([{"name": "a", "changes": {"targets": {"10B": 1}}}])
    assert scenarios[0].changes == {"targets": {"10B": 1}}
    with pytest.raises(RequestValidationError):
        scenarios[0].apply(base())
