"""Failures inside the service still answer in JSON, without internals."""

from __future__ import annotations

import io
import json
import re
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


def test_a_500_logs_one_line_with_the_id_the_client_got(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs, "get_allocation", broken)
    with caplog.at_level("ERROR", logger="api.app"):
        response = app.test_client().get("/v1/allocations/some-id")
    match = re.search(r"\bid ([0-9a-f]{12})\b", response.get_json()["message"])
    assert match is not None
    error_id = match.group(1)
    (record,) = caplog.records
    line = record.getMessage()
    assert error_id in line and "RuntimeError: disk on fire" in line and "\n" not in line
    assert record.exc_info is None  # no traceback in the log


def test_streamed_body_over_the_limit_is_413_and_within_it_is_read_whole(
    tmp_path: Path,
) -> None:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
            "RUNNER_AUTOSTART": 0,
            "MAX_UPLOAD_MB": 0.01,
        }
    )
    limit = app.config["MAX_CONTENT_LENGTH"]
    client = app.test_client()

    def streamed(payload: bytes) -> Any:
        # No Content-Length: the body ends where the stream ends (chunked transfer).
        return client.post(
            "/v1/comparisons",
            input_stream=io.BytesIO(payload),
            headers={"Content-Type": "application/json"},
            environ_overrides={"wsgi.input_terminated": True},
        )

    valid = json.dumps({"base": {"allocation_id": "nope"}, "scenarios": [{"name": "a"}]})
    too_big = valid[:-1] + ', "name": "' + "x" * limit + '"}'
    refused = streamed(too_big.encode())
    assert refused.status_code == 413 and refused.get_json()["errors"] == {
        "body": [f"larger than {limit} bytes"]
    }
    read_whole = streamed(valid.encode())  # reaches validation: the whole body was read
    assert read_whole.status_code == 422
    assert "allocation_id" in read_whole.get_json()["errors"]["base"]
    app.extensions["windmaker"].store.dispose()


def test_every_error_status_the_app_sees_is_json(app: Flask) -> None:
    client = app.test_client()
    answers = {
        404: client.get("/v1/nowhere"),
        405: client.put("/v1/allocations"),
        400: client.post("/v1/comparisons", data="[" * 5000, content_type="application/json"),
        413: client.post("/v1/allocations", data=b"x" * (21 << 20), content_type="text/csv"),
    }
    for status, response in answers.items():
        body = response.get_json()
        assert response.status_code == status and body["code"] == status, response.data[:300]
        assert body["message"] and isinstance(body["errors"], dict)


def test_a_multipart_part_without_a_name_is_named_in_a_4xx(app: Flask) -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; filename="x.csv"\r\n\r\n'
        f"partner_id\r\n--{boundary}--\r\n"
    ).encode()
    response = app.test_client().post(
        "/v1/allocations", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 422, response.data[:500]
    assert {"None", "partners", "request"} <= set(response.get_json()["errors"])
