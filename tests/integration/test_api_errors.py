"""Failures inside the service still answer in JSON, without internals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from adapters.store import Store
from api.app import create_app
from service import jobs
from service.records import Job
from tests.integration.api_support import small_request, validate_against_spec


class _BrokerDown:
    mode = "celery"

    def dispatch(self, job: Job) -> None:
        raise ConnectionError("redis://broker:6379 refused the connection")

    def health(self) -> dict[str, Any]:
        return {"mode": self.mode, "ok": False}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "RUNNER_AUTOSTART": 0})
    yield app
    app.extensions["windmaker"].store.dispose()


def test_unreachable_queue_is_503_and_the_job_is_not_left_queued(app: Flask) -> None:
    app.extensions["windmaker"].dispatcher = _BrokerDown()
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    response = client.post("/v1/allocations", json=small_request())
    assert response.status_code == 503
    validate_against_spec(spec, "/v1/allocations", "POST", 503, response.get_json())
    store: Store = app.extensions["windmaker"].store
    (job,), total = store.list_jobs("allocation", offset=0, limit=10)
    assert total == 1 and job.status == "failed" and "job queue" in (job.error or "")
    health = client.get("/v1/health")
    assert health.status_code == 503 and health.get_json()["status"] == "unavailable"


def test_an_unexpected_error_is_a_generic_500(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(jobs, "get_allocation", broken)
    response = app.test_client().get("/v1/allocations/some-id")
    assert response.status_code == 500
    body = response.get_json()
    assert body["code"] == 500 and body["errors"] == {}
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
