"""Curves (and baselines) must stay finite over the amounts each partner may receive:
refused at submission, named by field, row and column, or scenario change."""

from __future__ import annotations

import io
from typing import Any

import pytest

from models.finite import nonfinite_figures
from models.scenario import apply_changes, parse_scenarios
from models.schemas import RequestValidationError, parse_request
from service.comparisons import prepare_scenarios
from service.solving import parse_upload

LOG_OVERFLOW = {"curve": "log", "coef": 1e308, "scale": 1e-308}


def request(*partners: dict[str, Any], budget: float | None = 1e7, **extra: Any) -> dict[str, Any]:
    return {
        "resources": [{"name": "fund", "budget": budget}],
        "tiers": [{"name": "big", "min_gmv": 1e8, "target": 1}],
        "partners": list(partners),
        **extra,
    }


def partner(pid: str = "a", curve: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    response = {"fund": curve} if curve else {}
    return {"id": pid, "baseline_gmv": 5e7, "response": response, **fields}


def errors(data: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(RequestValidationError) as caught:
        parse_request(data)
    return caught.value.flat()


def test_the_reported_log_curve_is_refused_naming_the_field() -> None:
    found = errors(
        request(
            partner("ok", {"curve": "log", "coef": 1e6, "scale": 1e5}), partner("b", LOG_OVERFLOW)
        )
    )
    assert list(found) == ["partners.1.response.fund"]
    (message,) = found["partners.1.response.fund"]
    assert "log curve (coef 1e+308, scale 1e-308)" in message
    assert "value at 1e+07 (its upper bound) is not finite" in message


@pytest.mark.parametrize(
    ("curve", "what"),
    [
        ({"curve": "saturating", "max_uplift": 1e308, "scale": 1e-308}, "slope"),
        ({"curve": "linear", "roi": 1e302}, "value"),
        ({"curve": "hill", "max_uplift": 1e308, "shape": 1, "half_saturation": 1e-308}, "slope"),
        ({"curve": "points", "x": [0, 1e-300], "y": [0, 1e300]}, "slope"),
    ],
    ids=["saturating", "linear", "hill", "points"],
)
def test_every_kind_is_checked(curve: dict[str, Any], what: str) -> None:
    (message,) = errors(request(partner("a", curve)))["partners.0.response.fund"]
    assert f"its {what}" in message


def test_the_partner_bound_decides_not_the_budget() -> None:
    linear = {"curve": "linear", "roi": 1e302}
    small = partner("a", linear, bounds={"fund": {"max": 100}})
    assert parse_request(request(small, budget=1e10)).partners[0].bounds["fund"].max == 100
    assert "partners.0.response.fund" in errors(request(partner("a", linear), budget=1e10))


def test_ordinary_curves_pass_even_unbounded_or_infinitely_steep_by_nature() -> None:
    parsed = parse_request(
        request(
            partner("log", {"curve": "log", "coef": 1e8, "scale": 1e6}),
            partner("lin", {"curve": "linear", "roi": 3}),
            partner(
                "hill", {"curve": "hill", "max_uplift": 1e8, "shape": 0.5, "half_saturation": 1e6}
            ),
            budget=None,
        )
    )
    assert nonfinite_figures(parsed) == []


def test_the_sum_over_partners_must_fit_a_float() -> None:
    found = errors(request(*(partner(f"p{i}", baseline_gmv=1e308) for i in range(3))))
    assert found["partners"] == ["the partners' projected GMV adds up to more than float64 holds"]


def test_a_csv_curve_is_named_by_row_and_column() -> None:
    data = (
        b"partner_id,baseline_gmv,fund_curve,fund_coef,fund_scale\n"
        b"p1,5e7,log,1e6,1e5\n"
        b"p2,5e7,log,1e308,1e-308\n"
    )
    body = request()
    del body["partners"]
    with pytest.raises(RequestValidationError) as caught:
        parse_upload(body, partners_csv=io.BytesIO(data))
    found = caught.value.flat()
    assert list(found) == ["partners.csv row 3, column fund_curve"]


# --- scenarios ---------------------------------------------------------------------------


BASE = request(partner("a", {"curve": "log", "coef": 1e6, "scale": 1e5}, baseline_gmv=1e307))


def test_a_forecast_that_overflows_is_the_scenario_error() -> None:
    base = parse_request(BASE)
    with pytest.raises(RequestValidationError) as caught:
        apply_changes(base, {"forecast": {"baseline": 1e308}})
    assert caught.value.flat() == {
        "changes.forecast": ["partner 'a', baseline_gmv: is inf (must be finite)"]
    }
    with pytest.raises(RequestValidationError) as caught:
        parse_scenarios([{"name": "boom", "changes": {"forecast": {"baseline": 1e308}}}], base)
    assert list(caught.value.flat()) == ["scenarios.0.changes.forecast"]


def test_an_uplift_or_budget_that_overflows_names_its_change() -> None:
    base = parse_request(request(partner("a", {"curve": "linear", "roi": 1e290})))
    with pytest.raises(RequestValidationError) as caught:
        apply_changes(base, {"budgets": {"fund": 1e300}})
    assert list(caught.value.flat()) == ["changes.budgets"]
    assert "fund" in caught.value.flat()["changes.budgets"][0]
    with pytest.raises(RequestValidationError) as caught:
        apply_changes(base, {"forecast": {"uplift": 1e300}})
    assert list(caught.value.flat()) == ["changes.forecast"]


def test_a_bad_scenario_is_a_clean_failed_row_next_to_good_ones() -> None:
    base = parse_request(BASE)
    prepared = prepare_scenarios(
        base,
        [
            {"name": "boom", "changes": {"forecast": {"baseline": 1e308}}},
            {"name": "fine", "changes": {"forecast": {"baseline": 2}}},
        ],
    )
    assert [(p.name, p.request is None) for p in prepared] == [
        ("base", False),
        ("boom", True),
        ("fine", False),
    ]
    assert prepared[1].error == (
        "RequestValidationError: changes.forecast: "
        "partner 'a', baseline_gmv: is inf (must be finite)"
    )
