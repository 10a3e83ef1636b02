"""Bad uncertainty input is named by field (JSON) or row and column (CSV); changes apply."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from models.csvio import read_partners_csv
from models.plan import SolverReport, SolveStatus, build_plan
from models.scenario import apply_changes
from models.schemas import (
    RequestValidationError,
    parse_request,
    plan_from_dict,
    plan_to_dict,
)


def _request(**options: Any) -> dict[str, Any]:
    return {
        "resources": [{"name": "subsidy", "budget": 1e7}],
        "tiers": [{"name": "100M", "min_gmv": 1e8, "target": 1}],
        "partners": [
            {
                "id": "p1",
                "baseline_gmv": 9e7,
                "baseline_gmv_p10": 7e7,
                "baseline_gmv_p90": 1.2e8,
                "attributes": {"region": "east"},
                "response": {"subsidy": {"curve": "linear", "roi": 2}},
            }
        ],
        "options": options,
    }


def _errors(data: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(RequestValidationError) as caught:
        parse_request(data)
    return caught.value.flat()


def test_options_load() -> None:
    request = parse_request(
        _request(
            confidence=0.9,
            uncertainty={"default_sigma": 0.2, "correlation": 0.3, "group_by": "region"},
        )
    )
    assert request.options.confidence == 0.9
    spread = request.options.uncertainty
    assert (spread.default_sigma, spread.correlation, spread.group_by, spread.draws) == (
        0.2,
        0.3,
        "region",
        20_000,
    )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"confidence": 0.4}, "options.confidence"),
        ({"confidence": 0.9995}, "options.confidence"),
        ({"uncertainty": {"correlation": 1.0}}, "options.uncertainty.correlation"),
        ({"uncertainty": {"correlation": -0.1}}, "options.uncertainty.correlation"),
        ({"uncertainty": {"group_by": "sector"}}, "options.uncertainty.group_by"),
        ({"uncertainty": {"draws": 10}}, "options.uncertainty.draws"),
        ({"uncertainty": {"draws": 10_000_000}}, "options.uncertainty.draws"),
        ({"uncertainty": {"default_sigma": -1}}, "options.uncertainty.default_sigma"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], field: str) -> None:
    assert field in _errors(_request(**options))


@pytest.mark.parametrize(
    ("band", "field"),
    [
        ({"baseline_gmv_p10": 9.5e7}, "partners.0.baseline_gmv_p10"),
        ({"baseline_gmv_p90": 8e7}, "partners.0.baseline_gmv_p90"),
        ({"baseline_gmv_p10": 0}, "partners.0.baseline_gmv_p10"),
        ({"baseline_gmv_p10": None}, "partners.0.baseline_gmv_p10"),
        ({"baseline_gmv_p90": None}, "partners.0.baseline_gmv_p90"),
    ],
)
def test_bad_bands_are_named(band: dict[str, Any], field: str) -> None:
    data = _request()
    data["partners"][0].update(band)
    assert field in _errors(data)


HEADER = "partner_id,baseline_gmv,baseline_gmv_p10,baseline_gmv_p90"


@pytest.mark.parametrize(
    ("row", "key"),
    [
        ("p2,9e7,9.5e7,1e8", "partners.csv row 3, column baseline_gmv_p10"),
        ("p2,9e7,8e7,8.5e7", "partners.csv row 3, column baseline_gmv_p90"),
        ("p2,9e7,0,1e8", "partners.csv row 3, column baseline_gmv_p10"),
        ("p2,9e7,,1e8", "partners.csv row 3, column baseline_gmv_p10"),
        ("p2,9e7,8e7,", "partners.csv row 3, column baseline_gmv_p90"),
    ],
)
def test_bad_csv_bands_name_row_and_column(row: str, key: str) -> None:
    text = f"{HEADER}\np1,1e8,8e7,1.2e8\n{row}\n"
    with pytest.raises(RequestValidationError) as caught:
        read_partners_csv(io.StringIO(text), label="partners.csv")
    assert key in caught.value.flat()


def test_changes_set_confidence_and_uncertainty() -> None:
    base = parse_request(_request(uncertainty={"default_sigma": 0.1}))
    changed = apply_changes(base, {"confidence": 0.95, "uncertainty": {"correlation": 0.5}})
    assert changed.options.confidence == 0.95
    assert changed.options.uncertainty.correlation == 0.5
    assert changed.options.uncertainty.default_sigma == 0.1  # kept from the base
    back = apply_changes(changed, {"confidence": None})
    assert back.options.confidence is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"confidence": 0.3}, "changes.confidence"),
        ({"uncertainty": {"correlation": 1.5}}, "changes.uncertainty.correlation"),
        ({"uncertainty": {"group_by": "sector"}}, "changes.uncertainty.group_by"),
        ({"uncertainty": {"draws": 5}}, "changes.uncertainty.draws"),
    ],
)
def test_bad_changes_are_named(changes: dict[str, Any], field: str) -> None:
    base = parse_request(_request())
    with pytest.raises(RequestValidationError) as caught:
        apply_changes(base, changes)
    assert field in caught.value.flat()


def test_plan_round_trips_with_its_uncertainty_block() -> None:
    request = parse_request(_request(confidence=0.8))
    plan = build_plan(request, np.array([[5e6]]), SolverReport("t", SolveStatus.OPTIMAL))
    data = plan_to_dict(plan)
    assert data["uncertainty"]["method"] == "exact"
    assert data["allocations"][0]["p_reach"] == plan.allocations[0].p_reach
    assert plan_from_dict(data) == plan
