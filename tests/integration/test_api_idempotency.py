"""Idempotency-Key on POSTs over HTTP: a client's retry never makes a second job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from api.app import create_app
from service.keys import create_key
from tests.integration.api_support import small_request, validate_against_spec


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    # Threads: a spawned solver pool would outlive the test (see test_runner_processes).
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
            "RUNNER_AUTOSTART": 0,
            "JOB_ISOLATION": "thread",
        }
    )
    yield app
    app.extensions["windmaker"].dispatcher.runner.stop()
    app.extensions["windmaker"].store.dispose()


def test_retries_answer_with_the_first_job_and_other_bodies_are_refused(app: Flask) -> None:
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    store = app.extensions["windmaker"].store
    key = {"Idempotency-Key": "0b7c1c8e-retry"}

    first = client.post("/v1/allocations", json=small_request(), headers=key)
    again = client.post("/v1/allocations", json=small_request(), headers=key)
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert store.list_jobs("allocation", offset=0, limit=10)[1] == 1

    other = client.post("/v1/allocations", json=small_request(partners=3), headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["errors"]
    validate_against_spec(spec, "/v1/allocations", "POST", 422, other.get_json())
    malformed = client.post(
        "/v1/allocations", json=small_request(), headers={"Idempotency-Key": "x" * 201}
    )
    assert malformed.status_code == 400 and "Idempotency-Key" in malformed.get_json()["errors"]
    unkeyed = [client.post("/v1/allocations", json=small_request()) for _ in range(2)]
    assert unkeyed[0].get_json()["id"] != unkeyed[1].get_json()["id"]

    # Keys are per client: another API key's identical retry is its own submission.
    headers = [{"Authorization": f"Bearer {create_key(store, 'planner')[1]}", **key} for _ in "ab"]
    ids = {
        client.post("/v1/allocations", json=small_request(), headers=h).get_json()["id"]
        for h in headers
    }
    assert len(ids) == 2 and first.get_json()["id"] not in ids
    store.dispose()
