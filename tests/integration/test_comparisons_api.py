"""Comparisons through the HTTP API with the in-process job runner, on SQLite and
PostgreSQL: a base given by `allocation_id` is the stored plan (also from a restarted
app, proven with a spy solver), scenario plans and the full diff download, the diff
pages, and every response matches the OpenAPI document."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app, start_job_runner
from models.plan import Plan
from models.request import AllocationRequest
from service import solving
from tests.integration.api_support import small_request, validate_against_spec, wait_for_job

FINAL = ("succeeded", "failed", "cancelled")
SCENARIOS = [
    {"name": "more", "changes": {"budgets": {"subsidy": "x1.5"}}},
    {"name": "少补贴", "changes": {"budgets": {"subsidy": "x0.5"}}},
]


@pytest.fixture
def make_app(db_url: str) -> Iterator[Callable[[], Flask]]:
    """Apps on one database, each with its own runner: a second one is a restart."""
    apps: list[Flask] = []

    def make() -> Flask:
        # Threads: the spy on the solver lives in this process.
        app = create_app(
            {"DATABASE_URL": db_url, "RUNNER_AUTOSTART": False, "JOB_ISOLATION": "thread"}
        )
        start_job_runner(app)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["windmaker"].dispatcher.runner.stop()
        app.extensions["windmaker"].store.dispose()


def _solved(client: FlaskClient) -> dict[str, Any]:
    submitted = client.post("/v1/allocations", json=small_request(8, budget=2e8)).get_json()
    job = wait_for_job(client, "allocations", submitted["id"])
    assert job["status"] == "succeeded", job["error"]
    return job


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    budgets: list[float] = []
    real = solving.solve_request

    def spy(request: AllocationRequest, **kwargs: Any) -> list[Plan]:
        budgets.append(request.resource("subsidy").budget or 0.0)
        return real(request, **kwargs)

    monkeypatch.setattr(solving, "solve_request", spy)
    return budgets


def _compare(client: FlaskClient, base_id: str) -> dict[str, Any]:
    body = {"base": {"allocation_id": base_id}, "scenarios": SCENARIOS}
    response = client.post("/v1/comparisons", json=body)
    assert response.status_code == 202, response.get_json()
    return wait_for_job(client, "comparisons", response.get_json()["id"])


def test_a_restarted_app_compares_on_the_stored_plan_without_solving_the_base(
    make_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_app().test_client()
    allocation = _solved(first)
    plan = allocation["plans"][0]

    restarted = make_app().test_client()  # a new app (and runner) on the same database
    budgets = _spy(monkeypatch)
    comparison = _compare(restarted, allocation["id"])
    spec = restarted.get("/openapi.json").get_json()
    validate_against_spec(spec, "/v1/comparisons/{job_id}", "GET", 200, comparison)
    assert comparison["status"] == "succeeded", comparison["error"]
    assert sorted(budgets) == [1e8, 3e8]  # the two scenarios only: the base was not solved

    base = comparison["scenarios"][0]
    assert base["name"] == "base" and base["plan"] == plan
    assert base["kpis"]["weighted_shortfall"] == plan["objective"]["weighted_shortfall"]
    assert base["kpis"]["total_projected_gmv"] == plan["objective"]["total_projected_gmv"]
    assert base["kpis"]["achieved"] == {t["name"]: t["achieved"] for t in plan["tiers"]}
    assert base["kpis"]["spend"] == {r["name"]: r["allocated"] for r in plan["resources"]}
    assert base["kpis"]["solver_status"] == plan["solver"]["status"]
    assert base["kpis"]["mip_gap"] == plan["solver"]["mip_gap"]
    for row in comparison["scenarios"]:
        assert set(row) >= {"status", "caveat", "reason", "kpis"}
        optimal = row["kpis"]["solver_status"] == "optimal"
        assert (row["caveat"] is None) == optimal


def test_scenario_plans_and_the_whole_diff_download(make_app: Callable[[], Flask]) -> None:
    client = make_app().test_client()
    allocation = _solved(client)
    comparison = _compare(client, allocation["id"])
    assert comparison["status"] == "succeeded", comparison["error"]
    url = f"/v1/comparisons/{comparison['id']}"

    base_csv = client.get(f"{url}/scenarios/base/plans/1.csv")
    assert base_csv.status_code == 200 and base_csv.mimetype == "text/csv"
    plan_csv = client.get(f"/v1/allocations/{allocation['id']}/plans/1.csv")
    assert base_csv.get_data(as_text=True) == plan_csv.get_data(as_text=True)
    for name, budget in (("more", 3e8), ("少补贴", 1e8)):
        response = client.get(f"{url}/scenarios/{name}/plans/1.csv")
        assert response.status_code == 200, response.get_json()
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert rows and sum(float(row["subsidy"]) for row in rows) <= budget * (1 + 1e-9)

    unknown = client.get(f"{url}/scenarios/nope/plans/1.csv")
    assert unknown.status_code == 404 and "'nope'" in unknown.get_json()["message"]
    rank = client.get(f"{url}/scenarios/more/plans/5.csv")
    assert rank.status_code == 404 and "rank 5" in rank.get_json()["message"]

    diff = client.get(f"{url}/diff.csv")
    assert diff.status_code == 200 and diff.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(diff.get_data(as_text=True))))
    assert len(rows) == sum(entry["partners_changed"] for entry in comparison["differences"])
    assert {row["scenario"] for row in rows} == {"more", "少补贴"}
    header = set(rows[0])
    assert {"tier_before", "tier_after", "subsidy_before", "subsidy_after"} <= header


def test_the_diff_pages_in_get(make_app: Callable[[], Flask]) -> None:
    client = make_app().test_client()
    comparison = _compare(client, _solved(client)["id"])
    url = f"/v1/comparisons/{comparison['id']}"
    spec = client.get("/openapi.json").get_json()
    counts = [entry["partners_changed"] for entry in comparison["differences"]]
    assert comparison["diff_page"] == {"page": 1, "page_size": 100, "pages": 1}
    assert [len(e["partners"]) for e in comparison["differences"]] == counts  # none cut off

    longest = max(counts)
    assert longest >= 2
    pages = []
    for page in range(1, longest + 1):
        view = client.get(f"{url}?diff_page={page}&diff_page_size=1").get_json()
        validate_against_spec(spec, "/v1/comparisons/{job_id}", "GET", 200, view)
        assert view["diff_page"] == {"page": page, "page_size": 1, "pages": longest}
        assert [e["partners_changed"] for e in view["differences"]] == counts
        pages.append(view["differences"])
    for idx, entry in enumerate(comparison["differences"]):
        assert [row for page in pages for row in page[idx]["partners"]] == entry["partners"]

    past = client.get(f"{url}?diff_page={longest + 1}&diff_page_size=1")
    assert past.status_code == 404 and "diff_page" in past.get_json()["errors"]
    for query, field in (("diff_page_size=0", "diff_page_size"), ("diff_page=x", "diff_page")):
        bad = client.get(f"{url}?{query}")
        assert bad.status_code == 422 and field in bad.get_json()["errors"]["query"]


def test_a_base_allocation_must_have_succeeded(
    make_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    # Nothing takes the allocation: it stays queued.
    monkeypatch.setattr(app.extensions["windmaker"].dispatcher, "dispatch", lambda job: None)
    client = app.test_client()
    queued = client.post("/v1/allocations", json=small_request(4)).get_json()["id"]
    body = {"base": {"allocation_id": queued}, "scenarios": SCENARIOS}
    response = client.post("/v1/comparisons", json=body)
    assert response.status_code == 422
    (message,) = response.get_json()["errors"]["base"]["allocation_id"]
    assert f"'{queued}' is queued" in message and "succeeded" in message


def test_celery_fan_out_tasks_reuse_the_stored_base(
    make_app: Callable[[], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the Celery chord does, without Celery: one task per scenario in any order,
    the base task taking the stored plan, then the summary."""
    from service import jobs
    from service.execution import JobSettings, finish_comparison, run_scenario

    app = make_app()
    client = app.test_client()
    allocation = _solved(client)
    app.extensions["windmaker"].dispatcher.runner.stop()
    store = app.extensions["windmaker"].store
    body = {"base": {"allocation_id": allocation["id"]}, "scenarios": SCENARIOS}
    job = jobs.submit_comparison(store, lambda job: None, body)
    assert store.claim_job(job.id, "celery-task")
    budgets = _spy(monkeypatch)
    settings = JobSettings(heartbeat_s=0.2, stale_after_s=1.0, max_attempts=3)
    for idx in (2, 0, 1):
        run_scenario(store, job.id, idx, settings)
    assert finish_comparison(store, job.id, None)
    assert sorted(budgets) == [1e8, 3e8]
    view = jobs.get_comparison(store, job.id)
    assert [row["name"] for row in view["scenarios"]] == ["base", "more", "少补贴"]
    assert view["scenarios"][0]["plan"] == allocation["plans"][0]
