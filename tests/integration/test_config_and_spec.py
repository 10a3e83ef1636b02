"""Configuration precedence and the OpenAPI document of the app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate as validate_spec

from adapters.config import database_url, load_config
from api.app import create_app
from tests.integration.api_support import validate_against_spec


def test_defaults_file_environment_then_overrides(tmp_path: Path) -> None:
    config_file = tmp_path / "windmaker.json"
    config_file.write_text(json.dumps({"JOB_WORKERS": 4, "CELERY_QUEUE": "from-file"}))
    env = {
        "WINDMAKER_CONFIG": str(config_file),
        "WINDMAKER_CELERY_QUEUE": "from-env",
        "WINDMAKER_REQUIRE_AUTH": "1",
        "WINDMAKER_MAX_CONTENT_LENGTH": "5000",
    }
    config = load_config({"JOB_WORKERS": 3}, env=env)
    assert config["JOB_WORKERS"] == 3  # explicit override beats the file
    assert config["CELERY_QUEUE"] == "from-env"  # environment beats the file
    assert config["REQUIRE_AUTH"] == 1 and config["MAX_CONTENT_LENGTH"] == 5000
    assert config["HEARTBEAT_S"] == 5.0  # untouched default


def test_toml_config_file(tmp_path: Path) -> None:
    config_file = tmp_path / "windmaker.toml"
    config_file.write_text('CELERY_QUEUE = "toml-queue"\n')
    assert load_config(env={"WINDMAKER_CONFIG": str(config_file)})["CELERY_QUEUE"] == "toml-queue"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "sqlite:///"),
        ({"DATABASE_URL": "postgresql://u@db:5432/w"}, "postgresql+psycopg://u@db:5432/w"),
        ({"DATABASE_URL": "postgres://u@db/w"}, "postgresql+psycopg://u@db/w"),
        (
            {"DATABASE_URL": "postgres://ignored/x", "WINDMAKER_DATABASE_URL": "sqlite:///a.db"},
            "sqlite:///a.db",
        ),
    ],
)
def test_database_url_sources_and_rewrites(env: dict[str, str], expected: str) -> None:
    assert load_config(env=env)["DATABASE_URL"].startswith(expected)


def test_default_sqlite_file_is_absolute() -> None:
    url = database_url(None)
    assert url.startswith("sqlite:////") and url.endswith("windmaker.db")


def test_openapi_document_validates_and_documents_errors(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "RUNNER_AUTOSTART": 0})
    client = app.test_client()
    spec = client.get("/openapi.json").get_json()
    validate_spec(spec)
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    post = spec["paths"]["/v1/allocations"]["post"]
    assert {"application/json", "multipart/form-data"} <= set(post["requestBody"]["content"])
    assert {"202", "401", "403", "413", "415", "422"} <= set(post["responses"])
    # A documented error matches the service's actual error body.
    missing = client.get("/v1/allocations/nope")
    validate_against_spec(spec, "/v1/allocations/{job_id}", "GET", 404, missing.get_json())
    for path in ("/v1/health", "/v1/fixtures", "/v1/allocations", "/v1/comparisons"):
        response = client.get(path)
        validate_against_spec(spec, path, "GET", response.status_code, response.get_json())
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.data
