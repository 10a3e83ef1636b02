"""Access control: once a key exists (or auth is required), /v1 needs a valid key;
viewers read, planners also write; refused requests store nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapters.store import Store
from api.app import create_app
from service import keys
from tests.integration.api_support import small_request
from tests.support.fakes import FakeStore


def _store(app: Flask) -> Store:
    store: Store = app.extensions["windmaker"].store
    return store


def _job_count(app: Flask) -> int:
    return sum(
        _store(app).list_jobs(kind, offset=0, limit=1)[1] for kind in ("allocation", "comparison")
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_error(response: Any, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == status and body["message"] and isinstance(body["errors"], dict)


def test_without_keys_the_api_is_open(client: FlaskClient) -> None:
    assert client.get("/v1/allocations").status_code == 200


def test_require_auth_closes_the_api_even_without_keys(db_url: str) -> None:
    app = create_app({"DATABASE_URL": db_url, "RUNNER_AUTOSTART": False, "REQUIRE_AUTH": "1"})
    client = app.test_client()
    _assert_error(client.get("/v1/allocations"), 401)
    assert client.get("/v1/health").status_code in (200, 503)  # health stays open


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wm_not-a-real-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["no key", "wrong key", "wrong scheme", "empty token"],
)
def test_missing_or_wrong_keys_get_401_and_store_nothing(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    keys.create_key(_store(app), "planner")
    response = client.post("/v1/allocations", json=small_request(), headers=headers)
    _assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    _assert_error(client.get("/v1/allocations", headers=headers), 401)
    _assert_error(client.get("/v1/fixtures", headers=headers), 401)
    assert _job_count(app) == 0


def test_viewers_read_but_cannot_submit_or_cancel(app: Flask, client: FlaskClient) -> None:
    _, planner = keys.create_key(_store(app), "planner")
    _, viewer = keys.create_key(_store(app), "viewer")
    submitted = client.post("/v1/allocations", json=small_request(), headers=_bearer(planner))
    assert submitted.status_code == 202
    location = submitted.headers["Location"]

    assert client.get(location, headers=_bearer(viewer)).status_code == 200
    assert client.get("/v1/allocations", headers=_bearer(viewer)).status_code == 200
    _assert_error(
        client.post("/v1/allocations", json=small_request(), headers=_bearer(viewer)), 403
    )
    comparison = {
        "base": {"allocation_id": submitted.get_json()["id"]},
        "scenarios": [{"name": "more", "changes": {"budgets": {"subsidy": "x1.2"}}}],
    }
    _assert_error(client.post("/v1/comparisons", json=comparison, headers=_bearer(viewer)), 403)
    _assert_error(client.delete(location, headers=_bearer(viewer)), 403)
    assert _job_count(app) == 1
    assert _store(app).job_status(submitted.get_json()["id"]) != "cancelled"

    assert client.delete(location, headers=_bearer(planner)).status_code in (200, 409)


def test_revoked_keys_stop_working_at_once(app: Flask, client: FlaskClient) -> None:
    key_id, token = keys.create_key(_store(app), "planner")
    _, other = keys.create_key(_store(app), "viewer")  # keeps auth switched on
    assert client.get("/v1/allocations", headers=_bearer(token)).status_code == 200
    assert keys.revoke_key(_store(app), key_id)
    response = client.post("/v1/allocations", json=small_request(), headers=_bearer(token))
    _assert_error(response, 401)
    assert "revoked" in response.get_json()["message"]
    assert _job_count(app) == 0
    assert client.get("/v1/allocations", headers=_bearer(other)).status_code == 200


def test_health_never_needs_a_key(app: Flask, client: FlaskClient) -> None:
    keys.create_key(_store(app), "planner")
    assert client.get("/v1/health").status_code in (200, 503)
    assert client.get("/openapi.json").status_code == 200


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role"):
        keys.create_key(FakeStore(), "admin")
