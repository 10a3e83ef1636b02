"""Provenance through the HTTP API with the in-process job runner (SQLite and
PostgreSQL): the stored request, `submitted_by`, adoption and history, protection of
adopted jobs and the audit log, every response checked against the OpenAPI document."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app, start_job_runner
from service import keys
from tests.integration.api_support import small_request, validate_against_spec

FINAL = ("succeeded", "failed", "cancelled")


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


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").get_json()
    return document


def _wait(
    client: FlaskClient, kind: str, job_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/{kind}/{job_id}", headers=headers).get_json()
        if job["status"] in FINAL:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{kind} {job_id} not done in time")


def _error(response: Any, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == status and body["message"]
    if field is not None:
        assert field in body["errors"], body


def _solved(client: FlaskClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    body = small_request(8, plans=2)
    body["name"] = "spring / north"  # a programme name a URL must quote
    response = client.post("/v1/allocations", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    job = _wait(client, "allocations", response.get_json()["id"], headers)
    assert job["status"] == "succeeded", job["error"]
    assert len(job["plans"]) == 2, "the test adopts plan 2: the request asks for two"
    return job


PROGRAMME = "/v1/programmes/spring%20%2F%20north"


def test_the_stored_request_and_its_submitter(client: FlaskClient, spec: dict[str, Any]) -> None:
    job = _solved(client)
    validate_against_spec(spec, "/v1/allocations/{job_id}", "GET", 200, job)
    assert job["submitted_by"] == "anonymous"
    response = client.get(f"/v1/allocations/{job['id']}/request")
    assert response.status_code == 200
    stored = response.get_json()
    validate_against_spec(spec, "/v1/allocations/{job_id}/request", "GET", 200, stored)
    assert stored["name"] == "spring / north"
    assert [p["id"] for p in stored["partners"]] == [f"P{i:03d}" for i in range(8)]
    assert stored["resources"][0]["budget"] == 3e8 and stored["options"]["plans"] == 2
    listed = client.get("/v1/allocations").get_json()
    assert listed[0]["submitted_by"] == "anonymous"
    _error(client.get("/v1/allocations/no-such-job/request"), 404)

    # A fixture reference is stored as the partners it held, so the stored request
    # reproduces the job even if the bundled file changes; no need to wait for the solve.
    by_fixture = {**small_request(8), "partners": {"fixture": "tiny"}}
    queued = client.post("/v1/allocations", json=by_fixture).get_json()
    stored = client.get(f"/v1/allocations/{queued['id']}/request").get_json()
    validate_against_spec(spec, "/v1/allocations/{job_id}/request", "GET", 200, stored)
    assert isinstance(stored["partners"], list) and len(stored["partners"]) > 0
    client.delete(f"/v1/allocations/{queued['id']}")


def test_adopting_a_plan_and_the_programme_s_history(
    client: FlaskClient, spec: dict[str, Any]
) -> None:
    first, second = _solved(client), _solved(client)
    path = f"/v1/allocations/{first['id']}/plans/2/adopt"
    template = "/v1/allocations/{job_id}/plans/{rank}/adopt"
    _error(client.get(f"{PROGRAMME}/adopted"), 404)

    response = client.post(path)
    assert response.status_code == 201, response.get_json()
    adopted = response.get_json()
    validate_against_spec(spec, template, "POST", 201, adopted)
    followed = client.get(response.headers["Location"])  # the programme's adopted plan
    assert followed.status_code == 200 and followed.get_json() == adopted
    assert adopted["plan"] == first["plans"][1]
    assert (adopted["programme"], adopted["job_id"], adopted["rank"]) == (
        "spring / north",
        first["id"],
        2,
    )
    assert adopted["adopted_by"] == "anonymous" and adopted["current"]
    again = client.post(path)
    assert again.status_code == 200 and again.get_json()["adopted_at"] == adopted["adopted_at"]
    validate_against_spec(spec, template, "POST", 200, again.get_json())

    assert client.post(f"/v1/allocations/{second['id']}/plans/1/adopt").status_code == 201
    current = client.get(f"{PROGRAMME}/adopted")
    assert current.status_code == 200
    validate_against_spec(spec, "/v1/programmes/{name}/adopted", "GET", 200, current.get_json())
    assert current.get_json()["job_id"] == second["id"]
    assert current.get_json()["plan"] == second["plans"][0]

    history = client.get(f"{PROGRAMME}/history?page_size=1")
    assert history.status_code == 200
    validate_against_spec(spec, "/v1/programmes/{name}/history", "GET", 200, history.get_json())
    assert [(h["job_id"], h["current"]) for h in history.get_json()] == [(second["id"], True)]
    assert '"total": 2' in history.headers["X-Pagination"]
    older = client.get(f"{PROGRAMME}/history?page=2&page_size=1").get_json()
    assert [(h["job_id"], h["rank"], h["current"]) for h in older] == [(first["id"], 2, False)]
    assert client.get("/v1/programmes/never/history").get_json() == []


def test_what_can_and_cannot_be_adopted(client: FlaskClient) -> None:
    job = _solved(client)
    _error(client.post("/v1/allocations/no-such-job/plans/1/adopt"), 404)
    _error(client.post(f"/v1/allocations/{job['id']}/plans/3/adopt"), 404, "rank")
    _error(client.post(f"/v1/allocations/{job['id']}/plans/0/adopt"), 404)
    body = small_request(8)
    body["options"]["time_limit_s"] = 60
    queued = client.post("/v1/allocations", json=body).get_json()
    client.delete(f"/v1/allocations/{queued['id']}")
    _error(client.post(f"/v1/allocations/{queued['id']}/plans/1/adopt"), 409, "job_id")
    unnamed = {**small_request(8), "name": ""}
    done = _wait(
        client, "allocations", client.post("/v1/allocations", json=unnamed).get_json()["id"]
    )
    _error(client.post(f"/v1/allocations/{done['id']}/plans/1/adopt"), 409, "name")


def test_an_adopted_plan_is_protected(client: FlaskClient) -> None:
    job = _solved(client)
    assert client.post(f"/v1/allocations/{job['id']}/plans/1/adopt").status_code == 201
    _error(client.delete(f"/v1/allocations/{job['id']}"), 409, "job_id")
    comparison = {
        "base": {"allocation_id": job["id"]},
        "scenarios": [{"name": "richer", "changes": {"budgets": {"subsidy": "x2"}}}],
    }
    submitted = client.post("/v1/comparisons", json=comparison).get_json()
    done = _wait(client, "comparisons", submitted["id"])
    assert done["status"] == "succeeded", done["error"]
    # The what-if on the adopted job left its plans and the adoption as they were.
    after = client.get(f"/v1/allocations/{job['id']}").get_json()
    assert after["plans"] == job["plans"] and after["status"] == "succeeded"
    adopted = client.get(f"{PROGRAMME}/adopted").get_json()
    assert adopted["job_id"] == job["id"] and adopted["plan"] == job["plans"][0]


def test_the_audit_log(app: Flask, client: FlaskClient, spec: dict[str, Any]) -> None:
    store = app.extensions["windmaker"].store
    job = _solved(client)
    client.post(f"/v1/allocations/{job['id']}/plans/1/adopt")
    body = small_request(8)
    body["options"]["time_limit_s"] = 60
    cancelled = client.post("/v1/allocations", json=body).get_json()
    assert client.delete(f"/v1/allocations/{cancelled['id']}").status_code == 200

    response = client.get("/v1/audit")
    assert response.status_code == 200
    entries = response.get_json()
    validate_against_spec(spec, "/v1/audit", "GET", 200, entries)
    assert [(e["action"], e["target"]) for e in entries] == [
        ("cancel", cancelled["id"]),
        ("submit", cancelled["id"]),
        ("adopt", "spring / north"),
        ("submit", job["id"]),
    ]
    assert {e["actor"] for e in entries} == {"anonymous"}
    assert entries[2]["details"] == {"job_id": job["id"], "rank": 1, "previous": None}
    adoptions = client.get("/v1/audit?action=adopt").get_json()
    assert [e["action"] for e in adoptions] == ["adopt"]
    refused = client.get("/v1/audit?action=delete")
    _error(refused, 422, "query")
    assert "action" in refused.get_json()["errors"]["query"]

    # Keys made from the command line are audited too; from then on the API wants keys.
    _, planner = keys.create_key(store, keys.PLANNER, "alice", by="root")
    _, viewer = keys.create_key(store, keys.VIEWER, "dashboards", by="root")
    _error(client.get("/v1/audit"), 401)
    _error(client.get("/v1/audit", headers={"Authorization": f"Bearer {viewer}"}), 403)
    as_alice = {"Authorization": f"Bearer {planner}"}
    latest = client.get("/v1/audit?page_size=2", headers=as_alice).get_json()
    assert [(e["action"], e["actor"], e["details"]["name"]) for e in latest] == [
        ("key.create", "root", "dashboards"),
        ("key.create", "root", "alice"),
    ]


def test_keys_name_submitters_adopters_and_viewers_cannot_adopt(
    app: Flask, client: FlaskClient
) -> None:
    store = app.extensions["windmaker"].store
    _, planner = keys.create_key(store, keys.PLANNER, "alice")
    _, viewer = keys.create_key(store, keys.VIEWER, "dashboards")
    as_alice = {"Authorization": f"Bearer {planner}"}
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    job = _solved(client, as_alice)
    assert job["submitted_by"] == "alice"
    assert client.get(f"/v1/allocations/{job['id']}/request", headers=as_viewer).status_code == 200
    adopt = f"/v1/allocations/{job['id']}/plans/1/adopt"
    _error(client.post(adopt, headers=as_viewer), 403)
    _error(client.post(adopt), 401)
    _error(client.get(f"{PROGRAMME}/adopted", headers=as_viewer), 404)
    assert client.post(adopt, headers=as_alice).status_code == 201
    adopted = client.get(f"{PROGRAMME}/adopted", headers=as_viewer).get_json()
    assert adopted["adopted_by"] == "alice" and adopted["job_id"] == job["id"]
