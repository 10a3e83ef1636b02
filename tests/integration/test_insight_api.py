"""Explanations and frontiers through the HTTP API with the in-process job runner, every
response validated against the service's OpenAPI document."""

from __future__ import annotations

import itertools
from typing import Any

from flask.testing import FlaskClient

from models.check import check_plan
from models.schemas import parse_request, plan_from_dict
from tests.integration.api_support import small_request, validate_against_spec, wait_for_job

FINAL = ("succeeded", "failed", "cancelled")


def _short_request() -> dict[str, Any]:
    """The integration request with targets its subsidy budget cannot all meet."""
    body = small_request(8, budget=2e8)
    body["tiers"][0]["target"] = 4  # 1B
    body["options"]["near_misses"] = 3
    return body


def test_a_plan_carries_its_explanation(client: FlaskClient, spec: dict[str, Any]) -> None:
    body = _short_request()
    submitted = client.post("/v1/allocations", json=body).get_json()
    job = wait_for_job(client, "allocations", submitted["id"])
    assert job["status"] == "succeeded", job["error"]
    validate_against_spec(spec, "/v1/allocations/{job_id}", "GET", 200, job)
    plan = job["plans"][0]
    explanation = plan["explanation"]
    assert plan_from_dict(plan).explanation == explanation  # stored as served
    (budget,) = [e for e in explanation["binding"] if e["kind"] == "budget"]
    assert budget["resource"] == "subsidy" and budget["utilization"] >= 0.995
    assert budget["marginal_value"]["per_unit"] == 1
    assert 0 < len(explanation["near_misses"]) <= 3
    to_targets = explanation["to_targets"]
    assert plan["objective"]["weighted_shortfall"] > 0
    assert to_targets["met"] and to_targets["extra"]["subsidy"] > 0


def test_explain_level_is_validated_and_honoured(client: FlaskClient, spec: dict[str, Any]) -> None:
    body = _short_request()
    body["options"]["explain"] = "everything"
    refused = client.post("/v1/allocations", json=body)
    assert 400 <= refused.status_code < 500
    assert "explain" in str(refused.get_json())
    body["options"]["explain"] = "basic"
    job = wait_for_job(
        client, "allocations", client.post("/v1/allocations", json=body).get_json()["id"]
    )
    assert job["status"] == "succeeded", job["error"]
    validate_against_spec(spec, "/v1/allocations/{job_id}", "GET", 200, job)
    explanation = job["plans"][0]["explanation"]
    assert explanation["scope"]["level"] == "basic" and explanation["to_targets"] is None
    assert explanation["near_misses"] and explanation["scope"]["resolves"] == 0


def test_every_binding_kind_matches_the_documented_shape(
    client: FlaskClient, spec: dict[str, Any]
) -> None:
    body = _short_request()
    body["constraints"] = [
        {"type": "max_share", "resource": "subsidy", "max_share": 0.2},
        {"type": "group_budget", "resource": "subsidy", "where": {"region": "south"},
         "max_share": 0.3},
        {"type": "group_count", "tier": "100M", "where": {"region": "north"}, "min": 1},
        {"type": "eligibility", "resource": "subsidy", "where": {"capability": {">=": 41}}},
        {"type": "pin", "partner_id": "P003", "resource": "subsidy", "amount": 1e7},
    ]  # fmt: skip
    job = wait_for_job(
        client, "allocations", client.post("/v1/allocations", json=body).get_json()["id"]
    )
    assert job["status"] == "succeeded", job["error"]
    validate_against_spec(spec, "/v1/allocations/{job_id}", "GET", 200, job)
    kinds = {entry["kind"] for entry in job["plans"][0]["explanation"]["binding"]}
    assert {"budget", "max_share", "eligibility", "pin"} <= kinds


def test_a_frontier_on_an_allocation(client: FlaskClient, spec: dict[str, Any]) -> None:
    body = _short_request()
    base = wait_for_job(
        client, "allocations", client.post("/v1/allocations", json=body).get_json()["id"]
    )
    frontier = {
        "base": {"allocation_id": base["id"]},
        "resource": "subsidy",
        "multipliers": [2, 0.5, 1, 1.5],
    }
    response = client.post("/v1/frontiers", json=frontier)
    assert response.status_code == 202, response.get_json()
    submitted = response.get_json()
    validate_against_spec(spec, "/v1/frontiers", "POST", 202, submitted)
    assert response.headers["Location"].endswith(f"/v1/frontiers/{submitted['id']}")
    job = wait_for_job(client, "frontiers", submitted["id"])
    validate_against_spec(spec, "/v1/frontiers/{job_id}", "GET", 200, job)
    assert job["status"] == "succeeded", job["error"]
    assert job["kind"] == "frontier" and job["base_allocation_id"] == base["id"]
    points = job["points"]
    assert [p["budget"] for p in points] == [1e8, 2e8, 3e8, 4e8]
    for smaller, larger in itertools.pairwise(points):
        assert (larger["weighted_shortfall"], -larger["total_projected_gmv"]) <= (
            smaller["weighted_shortfall"],
            -smaller["total_projected_gmv"],
        )
    # The 1.0 point is the base job's plan itself.
    base_plan = base["plans"][0]
    one = points[1]
    assert one["total_projected_gmv"] == base_plan["objective"]["total_projected_gmv"]
    assert one["weighted_shortfall"] == base_plan["objective"]["weighted_shortfall"]
    assert one["achieved"] == {t["name"]: t["achieved"] for t in base_plan["tiers"]}
    # Every point's stored plan holds under its own budget.
    store = client.application.extensions["windmaker"].store
    request = parse_request(body)
    for idx, point in enumerate(points):
        stored = store.plans(submitted["id"], idx)
        if point.get("carried_from") is None:
            at = parse_request(
                {**body, "resources": [{**body["resources"][0], "budget": point["budget"]}]}
            )
            assert check_plan(at, plan_from_dict(stored[0])) == []
    assert request.resource("subsidy").budget == 2e8
    listed = client.get("/v1/frontiers").get_json()
    assert [item["id"] for item in listed] == [submitted["id"]]


def test_an_inline_frontier_and_bad_ones(client: FlaskClient, spec: dict[str, Any]) -> None:
    body = _short_request()
    response = client.post(
        "/v1/frontiers", json={"base": body, "resource": "subsidy", "budgets": [3e8, 1e8]}
    )
    assert response.status_code == 202
    job = wait_for_job(client, "frontiers", response.get_json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert [p["budget"] for p in job["points"]] == [1e8, 3e8]

    bad = client.post("/v1/frontiers", json={"base": body, "resource": "fund", "budgets": [1]})
    assert bad.status_code == 422
    assert "resource" in bad.get_json()["errors"]
    both = client.post(
        "/v1/frontiers",
        json={"base": body, "resource": "subsidy", "budgets": [1], "multipliers": [1]},
    )
    assert both.status_code == 422
    missing = client.post(
        "/v1/frontiers",
        json={"base": {"allocation_id": "nope"}, "resource": "subsidy", "budgets": [1]},
    )
    assert missing.status_code == 422
    assert "base" in missing.get_json()["errors"]
    assert client.get("/v1/frontiers/nope").status_code == 404


def test_fan_out_functions_complete_a_frontier(db_url: str) -> None:
    """What the Celery chord does for a frontier, without Celery: a task per point in any
    order, then the summary."""
    from adapters.store import Store
    from service.execution import JobSettings, finish_comparison, run_scenario
    from service.frontiers import get_frontier, submit_frontier

    store = Store(db_url)
    try:
        body = {"base": _short_request(), "resource": "subsidy", "multipliers": [0.5, 1, 2]}
        job = submit_frontier(store, lambda job: None, body)
        assert store.claim_job(job.id, "celery-task")
        settings = JobSettings(heartbeat_s=0.2, stale_after_s=1.0, max_attempts=3)
        for idx in (2, 0, 1):
            run_scenario(store, job.id, idx, settings)
        assert finish_comparison(store, job.id, None)
        view = get_frontier(store, job.id)
        assert view["status"] == "succeeded"
        assert [p["budget"] for p in view["points"]] == [1e8, 2e8, 4e8]
        assert view["resource"] == "subsidy" and view["base_budget"] == 2e8
    finally:
        store.dispose()


def test_the_cli_frontier_and_solve_summary(tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    from cli.main import main

    request_path = tmp_path / "request.json"
    request_path.write_text(json.dumps(_short_request()), encoding="utf-8")
    out = tmp_path / "frontier.json"
    result = CliRunner().invoke(
        main,
        [
            "frontier",
            "--request",
            str(request_path),
            "--resource",
            "subsidy",
            "--multipliers",
            "0.5,1,2",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    frontier = json.loads(out.read_text(encoding="utf-8"))
    points = frontier["points"]
    assert [p["budget"] for p in points] == [1e8, 2e8, 4e8]
    assert points[0]["weighted_shortfall"] >= points[-1]["weighted_shortfall"]
    assert "¥100M" in result.output and "¥400M" in result.output

    solved = CliRunner().invoke(main, ["solve", "--request", str(request_path), "-q"])
    assert solved.exit_code == 0, solved.output
    assert "Binding limits:" in solved.output and "budget of subsidy" in solved.output
    assert "Near misses" in solved.output and "To meet every target" in solved.output

    bad = CliRunner().invoke(
        main, ["frontier", "--request", str(request_path), "--resource", "subsidy"]
    )
    assert bad.exit_code == 1 and "give exactly one of budgets or multipliers" in bad.output
