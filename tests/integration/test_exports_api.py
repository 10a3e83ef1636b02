"""Plan CSV (`?all=1`) and XLSX downloads of plans and comparisons through the HTTP API,
with the in-process job runner (docs/exports.md)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app, start_job_runner
from tests.integration.api_support import small_request

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HOSTILE = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)"]


@pytest.fixture
def app(db_url: str) -> Iterator[Flask]:
    app = create_app({"DATABASE_URL": db_url, "RUNNER_AUTOSTART": False})
    start_job_runner(app)
    yield app
    app.extensions["windmaker"].dispatcher.runner.stop()
    app.extensions["windmaker"].store.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _wait(client: FlaskClient, kind: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/{kind}/{job_id}").get_json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"{kind} {job_id} not done after {timeout} s")


def _hostile_request() -> dict[str, Any]:
    body = small_request(8)
    for partner, pid in zip(body["partners"], HOSTILE, strict=False):
        partner["id"] = pid
    body["partners"].append({"id": "P-cold", "name": "Cold", "baseline_gmv": 1e6})
    body["options"]["near_misses"] = 2
    return body


@pytest.fixture
def allocation(client: FlaskClient) -> dict[str, Any]:
    submitted = client.post("/v1/allocations", json=_hostile_request()).get_json()
    job = _wait(client, "allocations", submitted["id"])
    assert job["status"] == "succeeded", job["error"]
    return job


def test_the_plan_csv_is_safe_whole_and_lists_every_partner_on_request(
    client: FlaskClient, allocation: dict[str, Any]
) -> None:
    job_id, plan = allocation["id"], allocation["plans"][0]
    response = client.get(f"/v1/allocations/{job_id}/plans/1.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{job_id}-plan-1.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["partner_id"] for row in rows] == [
        "'" + a["partner_id"] if a["partner_id"] in HOSTILE else a["partner_id"]
        for a in plan["allocations"]
    ]
    for row, allocation_row in zip(rows, plan["allocations"], strict=True):
        assert float(row["subsidy"]) == allocation_row["amounts"]["subsidy"]
        assert float(row["subsidy"]).is_integer() and "." not in row["subsidy"]
        assert row["name"].startswith("Partner ")
        assert row["region"] in ("north", "south")

    everyone = client.get(f"/v1/allocations/{job_id}/plans/1.csv?all=1")
    assert everyone.status_code == 200
    listed = list(csv.DictReader(io.StringIO(everyone.get_data(as_text=True))))
    assert len(listed) == len(_hostile_request()["partners"])
    assert listed[-1]["partner_id"] == "P-cold" and listed[-1]["subsidy"] == "0"


def test_a_bad_all_flag_is_a_422_naming_it(client: FlaskClient, allocation: dict[str, Any]) -> None:
    for suffix in ("csv", "xlsx"):
        response = client.get(f"/v1/allocations/{allocation['id']}/plans/1.{suffix}?all=maybe")
        assert response.status_code == 422
        assert "all" in response.get_json()["errors"]["query"]


def test_the_plan_workbook(client: FlaskClient, allocation: dict[str, Any]) -> None:
    job_id, plan = allocation["id"], allocation["plans"][0]
    response = client.get(f"/v1/allocations/{job_id}/plans/1.xlsx")
    assert response.status_code == 200
    assert response.mimetype == XLSX
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{job_id}-plan-1.xlsx"'
    )
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    assert book.sheetnames == ["Summary", "Plan", "Tiers", "Binding"]
    rows = list(book["Plan"].iter_rows(values_only=True))
    header = list(rows[0])
    amounts = [row[header.index("subsidy")] for row in rows[1:]]
    assert amounts == [a["amounts"]["subsidy"] for a in plan["allocations"]]
    binding = list(book["Binding"].iter_rows(values_only=True))
    kinds = [row[0] for row in binding[1:]]
    assert kinds == [entry["kind"] for entry in plan["explanation"]["binding"]]
    assert book["Plan"].freeze_panes == "A2" and book["Plan"].auto_filter.ref

    everyone = client.get(f"/v1/allocations/{job_id}/plans/1.xlsx?all=true")
    book = openpyxl.load_workbook(io.BytesIO(everyone.get_data()))
    assert book["Plan"].max_row - 1 == len(_hostile_request()["partners"])


def test_missing_plans_and_jobs_are_json_4xx(
    client: FlaskClient, allocation: dict[str, Any]
) -> None:
    for path in (
        f"/v1/allocations/{allocation['id']}/plans/2.xlsx",
        "/v1/allocations/nope/plans/1.xlsx",
        "/v1/comparisons/nope.xlsx",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["message"]


def test_the_comparison_workbook(client: FlaskClient, allocation: dict[str, Any]) -> None:
    body = {
        "base": {"allocation_id": allocation["id"]},
        "scenarios": [{"name": "half", "changes": {"budgets": {"subsidy": "x0.5"}}}],
    }
    submitted = client.post("/v1/comparisons", json=body).get_json()
    job = _wait(client, "comparisons", submitted["id"])
    assert job["status"] == "succeeded", job["error"]
    response = client.get(f"/v1/comparisons/{submitted['id']}.xlsx")
    assert response.status_code == 200
    assert response.mimetype == XLSX
    assert "attachment" in response.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    assert book.sheetnames[:2] == ["Summary", "Differences"]
    summary = list(book["Summary"].iter_rows(values_only=True))
    header = list(summary[0])
    assert [row[0] for row in summary[1:]] == [s["name"] for s in job["scenarios"]]
    for row, scenario in zip(summary[1:], job["scenarios"], strict=True):
        kpis = scenario["kpis"]
        gmv = row[header.index("total_projected_gmv")]
        assert gmv == pytest.approx(kpis["total_projected_gmv"], rel=1e-14)
        assert row[header.index("solver_status")] == kpis["solver_status"]
    changed = sum(len(d["partners"]) for d in job["differences"])
    assert book["Differences"].max_row - 1 == changed


def test_the_openapi_document_lists_the_downloads(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    plan = paths["/v1/allocations/{job_id}/plans/{rank}.xlsx"]["get"]
    assert XLSX in plan["responses"]["200"]["content"]
    assert "Summary" in plan["responses"]["200"]["description"]
    assert any(p["name"] == "all" for p in plan["parameters"])
    comparison = paths["/v1/comparisons/{job_id}.xlsx"]["get"]
    assert XLSX in comparison["responses"]["200"]["content"]
    csv_op = paths["/v1/allocations/{job_id}/plans/{rank}.csv"]["get"]
    assert any(p["name"] == "all" for p in csv_op["parameters"])
