from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapters.store import Store
from api.app import create_app, start_job_runner
from tests.integration.db_support import database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    yield store
    store.dispose()


@pytest.fixture
def app(db_url: str) -> Iterator[Flask]:
    """The API on `db_url` with its in-process job runner started (modules that need
    another configuration define their own `app`). Jobs run on the runner's threads: a
    solver process would cost each test a spawn and the import of the whole solver (2-4 s
    on a 2-core machine); test_runner_processes and tests/e2e cover the process default."""
    app = create_app({"DATABASE_URL": db_url, "RUNNER_AUTOSTART": False, "JOB_ISOLATION": "thread"})
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
