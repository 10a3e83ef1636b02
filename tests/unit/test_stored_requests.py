"""A stored request read back through the fast path is the request that was stored."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.families import family_request
from models.curves import Curve, CurveKind
from models.request import AllocationRequest, Partner
from models.schemas import parse_request, parse_stored_request, request_to_dict
from service.solving import parse_allocation
from tests.support.instances import small_requests


def _round_trip(request: AllocationRequest) -> None:
    stored = json.loads(json.dumps(request_to_dict(request)))  # as the database holds it
    assert parse_stored_request(stored) == parse_request(stored) == request


@settings(max_examples=60, deadline=None)
@given(small_requests())
def test_random_requests_round_trip(request: AllocationRequest) -> None:
    _round_trip(request)


def test_generated_programmes_and_bundled_menus_round_trip() -> None:
    _round_trip(family_request(5, 200, 0.9, resources=3)[0])  # tickets, S-curves, rules
    _round_trip(parse_allocation({**_scenario("bundles"), "partners": {"fixture": "bundles"}}))


def test_points_curves_forecast_bands_and_integers_round_trip() -> None:
    request = parse_request(
        {
            "objective": "max_attainment",
            "resources": [{"name": "subsidy", "unit": "CNY", "budget": 10}],
            "tiers": [{"name": "t", "min_gmv": 100, "target": 1}],
            "partners": [
                {
                    "id": "a",
                    "baseline_gmv": 90,  # an integer in JSON
                    "baseline_gmv_p10": 80,
                    "baseline_gmv_p90": 95,
                    "attributes": {"n": 3, "s": "x", "b": True},
                    "response": {"subsidy": {"curve": "points", "x": [0, 5, 10], "y": [0, 6, 8]}},
                    "bounds": {"subsidy": {"min": 1}},
                }
            ],
        }
    )
    _round_trip(request)
    partner: Partner = parse_stored_request(request_to_dict(request)).partners[0]
    assert partner.curves["subsidy"] == Curve(
        CurveKind.POINTS, xs=(0.0, 5.0, 10.0), ys=(0.0, 6.0, 8.0)
    )
    assert isinstance(partner.baseline_gmv, float) and partner.bounds["subsidy"].max is None


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_generated_partner_files_round_trip(seed: int) -> None:
    _round_trip(family_request(seed, 30, 0.8, resources=2)[0])


def _scenario(name: str) -> dict[str, object]:
    path = Path(__file__).resolve().parents[2] / "fixtures" / "data" / f"{name}.scenario.json"
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded
