"""Rate limits per API key: 429 with Retry-After and the usual JSON body; each key its
own budget; made-up keys count against their sender's address; health never limited."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from api.app import create_app
from service.keys import create_key
from tests.integration.db_support import REDIS_SERVER, redis_available


def _app(tmp_path: Path, **config: object) -> Flask:
    return create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "RUNNER_AUTOSTART": 0, **config}
    )


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.celery)])
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    storage = "memory://"
    if request.param == "redis":
        if not redis_available():
            pytest.skip(f"Redis is not reachable at {REDIS_SERVER}")
        storage = f"{REDIS_SERVER}/14"
    # A fresh database per test, so a Redis bucket keyed by a key id is fresh too.
    app = _app(tmp_path, RATE_LIMIT="3/minute", RATE_LIMIT_STORAGE_URI=storage)
    yield app
    app.extensions["windmaker"].store.dispose()


def test_a_client_over_its_limit_gets_429_with_retry_after(limited: Flask) -> None:
    client = limited.test_client()
    address = {"REMOTE_ADDR": f"127.0.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    answers = [client.get("/v1/fixtures", environ_base=address) for _ in range(4)]
    assert [response.status_code for response in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) > 0
    body = refused.get_json()
    assert body["code"] == 429 and body["message"] and body["errors"] == {}
    for _ in range(10):  # health is for load balancers: never limited
        assert client.get("/v1/health", environ_base=address).status_code != 429


def test_each_key_has_its_own_budget_and_fake_keys_share_the_address(limited: Flask) -> None:
    store = limited.extensions["windmaker"].store
    tokens = [create_key(store, "viewer")[1] for _ in range(2)]
    client = limited.test_client()
    address = {"REMOTE_ADDR": f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    for token in tokens:
        headers = {"Authorization": f"Bearer {token}"}
        codes = [
            client.get("/v1/fixtures", headers=headers, environ_base=address).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
    made_up = [
        client.get(
            "/v1/fixtures", headers={"Authorization": f"Bearer wm_{i}"}, environ_base=address
        ).status_code
        for i in range(4)
    ]
    assert made_up == [401, 401, 401, 429]


def test_no_limit_by_default(tmp_path: Path) -> None:
    app = _app(tmp_path)
    client = app.test_client()
    assert all(client.get("/v1/fixtures").status_code == 200 for _ in range(50))
    app.extensions["windmaker"].store.dispose()
