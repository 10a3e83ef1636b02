"""The CLI, the HTTP API (in-process runner) and a Celery worker run the same service
functions: `service.solving.solve_request` for a solve and
`service.comparisons.solve_scenario` (the body of the one comparison loop) for every
scenario of a comparison. Each test replaces that function with a recording wrapper and
watches each entry point call it.

The Celery case uses the real Redis broker and a real Celery worker, run in this
process (celery.contrib.testing) so that it sees the patched function.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from adapters.config import load_config
from adapters.queue.celery_app import make_celery
from api.app import create_app
from cli.main import main
from service import comparisons, solving
from tests.integration.api_support import small_request
from tests.integration.db_support import REDIS_SERVER, redis_available

CHANGES = [{"name": "more", "changes": {"budgets": {"subsidy": "x1.5"}}}]
FINAL = ("succeeded", "failed", "cancelled")
# Only this module's requests are recorded: an earlier test's in-process runner may still
# be finishing a job of its own in the background while these tests run.
MARK = "entry-points: "


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the requests `service.solving.solve_request` was called with."""
    calls: list[str] = []
    real = solving.solve_request

    def recording(request: Any, **kwargs: Any) -> Any:
        if str(request.name).startswith(MARK):
            calls.append(request.name.removeprefix(MARK))
        return real(request, **kwargs)

    monkeypatch.setattr(solving, "solve_request", recording)
    return calls


@pytest.fixture
def scenarios(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the scenarios `service.comparisons.solve_scenario` was called with."""
    calls: list[str] = []
    real = comparisons.solve_scenario

    def recording(item: comparisons.PreparedScenario, **kwargs: Any) -> Any:
        if item.request is not None and str(item.request.name).startswith(MARK):
            calls.append(item.name)
        return real(item, **kwargs)

    monkeypatch.setattr(comparisons, "solve_scenario", recording)
    return calls


def _request(name: str) -> dict[str, Any]:
    return {**small_request(partners=4), "name": MARK + name}


def _wait(client: FlaskClient, url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(url).get_json()
        if job["status"] in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def _through_api(app: Flask, path: str, body: dict[str, Any]) -> dict[str, Any]:
    client = app.test_client()
    response = client.post(path, json=body)
    assert response.status_code == 202, response.get_data(as_text=True)
    return _wait(client, response.headers["Location"])


@pytest.fixture
def inprocess_app(tmp_path: Path) -> Iterator[Flask]:
    # Threads: the solver is recorded by a spy in this process.
    settings = {"DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}", "JOB_POLL_S": 0.1}
    app = create_app({**settings, "JOB_ISOLATION": "thread"})
    yield app
    app.extensions["windmaker"].dispatcher.runner.stop()
    app.extensions["windmaker"].store.dispose()


@pytest.fixture
def celery_app(tmp_path: Path) -> Iterator[Flask]:
    """The API configured for Celery, and a real worker on the same broker and queue."""
    if not redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_SERVER}")
    queue = f"windmaker-test-{uuid.uuid4().hex[:8]}"
    settings = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'celery.db'}",
        "BROKER_URL": f"{REDIS_SERVER}/{random.randint(1, 15)}",
        "CELERY_QUEUE": queue,
        "HEARTBEAT_S": 0.5,
    }
    app = create_app(settings)
    worker_app = make_celery(load_config(settings))
    with start_worker(worker_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app
    with worker_app.connection_for_write() as connection:
        connection.default_channel.client.delete(queue)
    app.extensions["windmaker"].store.dispose()


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def _files(tmp_path: Path, name: str) -> tuple[str, str]:
    request = tmp_path / f"{name}.json"
    request.write_text(json.dumps(_request(name)), encoding="utf-8")
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps(CHANGES), encoding="utf-8")
    return str(request), str(changes)


def test_cli_and_api_solve_through_solve_request(
    solves: list[str], inprocess_app: Flask, tmp_path: Path
) -> None:
    request, _ = _files(tmp_path, "from the cli")
    _cli("solve", "--request", request, "--quiet")
    job = _through_api(inprocess_app, "/v1/allocations", _request("from the api"))
    assert job["status"] == "succeeded"
    assert solves == ["from the cli", "from the api"]


def test_cli_and_api_compare_through_solve_scenario(
    scenarios: list[str], inprocess_app: Flask, tmp_path: Path
) -> None:
    request, changes = _files(tmp_path, "base")
    _cli("compare", "--request", request, "--changes", changes, "--quiet")
    assert scenarios == ["base", "more"]
    body = {"base": _request("base"), "scenarios": CHANGES}
    job = _through_api(inprocess_app, "/v1/comparisons", body)
    assert job["status"] == "succeeded"
    # The in-process runner solves a comparison's scenarios at once: in any order.
    assert scenarios[:2] == ["base", "more"] and sorted(scenarios[2:]) == ["base", "more"]


@pytest.mark.celery
def test_a_celery_worker_solves_through_solve_request(solves: list[str], celery_app: Flask) -> None:
    job = _through_api(celery_app, "/v1/allocations", _request("from celery"))
    assert job["status"] == "succeeded", job
    assert solves == ["from celery"]


@pytest.mark.celery
def test_a_celery_worker_compares_through_solve_scenario(
    scenarios: list[str], celery_app: Flask
) -> None:
    body = {"base": _request("base"), "scenarios": CHANGES}
    job = _through_api(celery_app, "/v1/comparisons", body)
    assert job["status"] == "succeeded", job
    assert sorted(scenarios) == ["base", "more"]  # one task each, in any order
