"""The service end to end over HTTP, on every backend: SQLite or PostgreSQL, in-process
runner or Celery workers on Redis. Fixtures are submitted by reference and as CSV
uploads, plans are re-checked against the exact curves, and a what-if comparison is run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate as validate_spec

from fixtures import scenario
from models.scenario import apply_changes
from tests.e2e.conftest import Service
from tests.e2e.plan_checks import (
    check_plan_csv,
    check_plans,
    fixture_request,
    local_request,
)
from tests.integration.api_support import small_request

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "data"
# The pilot solve runs to its time limit (it never proves optimality sooner); two seconds
# are enough to find a plan meeting its targets.
PILOT_OPTIONS = {"time_limit_s": 2, "plans": 2}
TINY_OPTIONS = {"mip_gap": 1e-3}

SCENARIOS: list[dict[str, Any]] = [
    {"name": "subsidy +50%", "changes": {"budgets": {"subsidy": "x1.5"}}},
    {"name": "half the fund", "changes": {"budgets": {"fund": "x0.5"}}},
    {"name": "three at 1B", "changes": {"targets": {"1B": 3}}},
    {"name": "pessimistic", "changes": {"forecast": {"baseline": 0.9, "uplift": 0.8}}},
]


def _plan_csv(service: Service, job_id: str, rank: int) -> str:
    response = service.call(
        "GET",
        "/v1/allocations/{job_id}/plans/{rank}.csv",
        path={"job_id": job_id, "rank": rank},
        expect=200,
    )
    assert response.headers["Content-Type"].startswith("text/csv")
    return response.text


def _check_succeeded(job: dict[str, Any], submitted: dict[str, Any]) -> None:
    assert job["status"] == "succeeded", job.get("error")
    assert job["id"] == submitted["id"] and job["error"] is None
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]


def test_openapi_document_is_valid_and_docs_are_served(service: Service) -> None:
    validate_spec(service.spec)
    assert service.spec["openapi"].startswith("3.")
    docs = service.call("GET", "/docs", validate=False)
    assert docs.status_code == 200 and "text/html" in docs.headers["Content-Type"]
    assert "openapi.json" in docs.text
    health = service.call("GET", "/v1/health", expect=200).json()
    assert health["database"]["ok"] and health["job_runner"]["ok"]
    assert health["job_runner"]["mode"] == ("celery" if service.celery else "in-process")


def test_fixtures_are_listed(service: Service) -> None:
    listed = service.call("GET", "/v1/fixtures", expect=200).json()["fixtures"]
    by_name = {item["name"]: item for item in listed}
    assert {"tiny", "pilot", "programme"} <= set(by_name)
    assert by_name["pilot"]["partners"] == 200


def test_tiny_fixture_by_reference(service: Service) -> None:
    body = fixture_request("tiny", **TINY_OPTIONS)
    submitted = service.submit(body)
    assert submitted["status"] == "queued"
    job = service.wait("allocations", submitted["id"])
    _check_succeeded(job, submitted)

    request = local_request(body)
    plans = check_plans(request, job["plans"])
    assert plans[0].objective.weighted_shortfall == 0  # tiny's targets are reachable
    check_plan_csv(request, plans[0], _plan_csv(service, job["id"], 1))
    service.call(
        "GET",
        "/v1/allocations/{job_id}/plans/{rank}.csv",
        path={"job_id": job["id"], "rank": len(plans) + 1},
        expect=404,
    )


def test_pilot_fixture_uploaded_as_csv(service: Service) -> None:
    body = dict(scenario("pilot"))
    body["options"] = {**body["options"], **PILOT_OPTIONS}
    with open(DATA / "pilot.csv", "rb") as partners:
        submitted = service.submit(
            files={
                "partners": ("pilot.csv", partners, "text/csv"),
                "request": (None, json.dumps(body), "application/json"),
            }
        )
    job = service.wait("allocations", submitted["id"])
    _check_succeeded(job, submitted)

    request = local_request(fixture_request("pilot", **PILOT_OPTIONS))
    plans = check_plans(request, job["plans"])
    assert 1 <= len(plans) <= 2  # alternatives as far as the time limit allows
    # Alternatives differ in who reaches the tiers, not just in amounts.
    achievers = [
        frozenset((a.partner_id, a.tier) for a in plan.allocations if a.tier) for plan in plans
    ]
    assert len(set(achievers)) == len(achievers)
    for plan in plans:
        check_plan_csv(request, plan, _plan_csv(service, job["id"], plan.rank))


def test_bundles_uploaded_with_a_packages_csv(service: Service) -> None:
    body = dict(scenario("bundles"))
    with (
        open(DATA / "bundles.csv", "rb") as partners,
        open(DATA / "bundles.packages.csv", "rb") as packages,
    ):
        submitted = service.submit(
            files={
                "partners": ("bundles.csv", partners, "text/csv"),
                "packages": ("bundles.packages.csv", packages, "text/csv"),
                "request": (None, json.dumps(body), "application/json"),
            }
        )
    job = service.wait("allocations", submitted["id"])
    _check_succeeded(job, submitted)
    request = local_request(fixture_request("bundles"))
    assert request.uses_packages
    (best, *_) = check_plans(request, job["plans"])
    assert any(allocation.package for allocation in best.allocations)
    check_plan_csv(request, best, _plan_csv(service, job["id"], 1))


def test_comparison_of_four_scenarios(service: Service) -> None:
    base_body = fixture_request("tiny", **TINY_OPTIONS)
    base = service.submit(base_body)
    # The base row is the allocation's stored plan: a comparison starts once it exists.
    base_job = service.wait("allocations", base["id"])
    comparison = {"base": {"allocation_id": base["id"]}, "scenarios": SCENARIOS}
    response = service.call("POST", "/v1/comparisons", json=comparison, expect=202)
    submitted = response.json()
    assert response.headers["Location"].endswith(f"/v1/comparisons/{submitted['id']}")
    job = service.wait("comparisons", submitted["id"])
    assert job["status"] == "succeeded", job.get("error")
    assert job["base_allocation_id"] == base["id"]
    assert job["scenarios"][0]["plan"] == base_job["plans"][0]  # reused, not re-solved

    rows = job["scenarios"]
    assert [row["name"] for row in rows] == ["base", *(s["name"] for s in SCENARIOS)]
    base_request = local_request(base_body)
    for row, changes in zip(rows, [{}, *(s["changes"] for s in SCENARIOS)], strict=True):
        assert row["status"] == "succeeded", row["error"]
        request = apply_changes(base_request, changes)
        (plan,) = check_plans(request, [row["plan"]])
        kpis = row["kpis"]
        assert kpis["achieved"] == {tier.name: tier.achieved for tier in plan.tiers}
        assert kpis["spend"] == {r.name: r.allocated for r in plan.resources}
        assert kpis["weighted_shortfall"] == plan.objective.weighted_shortfall
        assert kpis["solver_status"] == plan.solver.status
        for resource in request.resources:
            assert resource.budget is None or kpis["spend"][resource.name] <= resource.budget * (
                1 + 1e-9
            )

    # More subsidy never makes the best plan worse; the differences name real partners.
    assert rows[1]["kpis"]["weighted_shortfall"] <= rows[0]["kpis"]["weighted_shortfall"]
    partner_ids = {partner.id for partner in base_request.partners}
    differences = {entry["scenario"]: entry for entry in job["differences"]}
    assert set(differences) == {s["name"] for s in SCENARIOS}
    for entry in differences.values():
        assert {row["partner_id"] for row in entry["partners"]} <= partner_ids
        assert (
            entry["tiers_gained"]
            == sum(row["tier_change"] == "gained" for row in entry["partners"])
            or entry["truncated"]
        )


def test_list_is_newest_first_and_paginated(service: Service) -> None:
    first = service.submit(small_request(partners=4))
    second = service.submit(small_request(partners=4))
    listed = service.call("GET", "/v1/allocations", expect=200).json()
    assert [item["id"] for item in listed[:2]] == [second["id"], first["id"]]
    page = service.call("GET", "/v1/allocations", params={"page": 2, "page_size": 1}, expect=200)
    assert [item["id"] for item in page.json()] == [first["id"]]
    meta = json.loads(page.headers["X-Pagination"])
    assert meta["page"] == 2 and meta["total"] >= 2 and meta["previous_page"] == 1
    for job in (first, second):
        service.wait("allocations", job["id"])


def test_cancel_a_long_job(service: Service) -> None:
    submitted = service.submit(fixture_request("programme"))
    cancelled = service.call(
        "DELETE", "/v1/allocations/{job_id}", path={"job_id": submitted["id"]}, expect=200
    ).json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    # Cancelling again is harmless; the job never turns into a success.
    service.call("DELETE", "/v1/allocations/{job_id}", path={"job_id": submitted["id"]}, expect=200)
    quick = service.submit(small_request())
    assert service.wait("allocations", quick["id"])["status"] == "succeeded"
    job = service.wait("allocations", submitted["id"])
    assert job["status"] == "cancelled" and "plans" not in job
    if not service.celery:
        # The solve noticed the cancellation and freed its runner thread.
        deadline = time.monotonic() + 15
        while service.call("GET", "/v1/health", expect=200).json()["job_runner"]["busy"]:
            assert time.monotonic() < deadline, "the cancelled solve is still running"
            time.sleep(0.2)
