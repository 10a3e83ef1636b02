"""Service configuration: defaults, then an optional file, then `WINDMAKER_*` environment.

The same loader serves the Flask app, the in-process runner and the Celery worker, so
every process started from one environment agrees on the database and the broker.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Config

ENV_PREFIX = "WINDMAKER"
DEFAULT_SQLITE_FILE = "windmaker.db"

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: a SQLite file in the working directory
    "BROKER_URL": None,  # None: the in-process job runner
    "RESULT_BACKEND": None,  # None: the broker (Redis) also keeps chord results
    "CELERY_QUEUE": "windmaker",
    "WORKER_CONCURRENCY": None,  # None: one Celery process per core
    "REQUIRE_AUTH": False,
    # Request bodies (JSON or multipart uploads) above this many MiB get 413. About
    # 115,000 partners fit in 20 MiB of CSV; raise it for larger programmes.
    "MAX_UPLOAD_MB": 20,
    "MAX_JSON_DEPTH": 64,  # nesting levels of a JSON body (deeper: 400)
    "MAX_CSV_COLUMNS": 1000,  # columns of an uploaded CSV file (wider: 422, before parsing)
    "THREADS": 8,  # request threads of `windmaker serve`
    "CHANNEL_TIMEOUT_S": 30,  # a connection silent this long is closed
    "CONNECTION_LIMIT": 500,  # open connections; further ones wait in the backlog
    "MAX_HEADER_KB": 64,  # request line plus headers
    "RATE_LIMIT": "",  # per API key or client address, e.g. "20/second;600/minute"; "" = off
    "RATE_LIMIT_STORAGE_URI": "memory://",  # or redis://host:6379/n, shared by every server
    "JOB_WORKERS": 2,  # jobs the in-process runner solves at once
    # "process": solve in child processes, so solves never slow requests; "thread": here
    "JOB_ISOLATION": "process",
    "JOB_POLL_S": 1.0,
    "HEARTBEAT_S": 5.0,
    "STALE_AFTER_S": 30.0,  # a running job silent this long belonged to a dead worker
    "MAX_ATTEMPTS": 3,  # a job that killed this many workers fails instead of looping
    "RUN_MIGRATIONS": True,
    "RUNNER_AUTOSTART": True,  # start the in-process runner on the first request
    "API_TITLE": "Windmaker",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    # Swagger UI from the vendored swagger-ui-dist: /docs works with no internet.
    "OPENAPI_SWAGGER_UI_URL": "/assets/vendor/swagger-ui-dist-5.35.0/",
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},  # no call to an online validator
    "API_SPEC_OPTIONS": {
        "info": {"description": "Allocate incentive resources across partners to reach GMV tiers."},
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API key"}
            }
        },
    },
}


def load_config(
    overrides: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None
) -> Config:
    """Defaults → `WINDMAKER_CONFIG` file (.json, .toml or .py) → environment → overrides."""
    environ = os.environ if env is None else env
    config = Config(os.getcwd())
    config.from_mapping(DEFAULTS)
    path = environ.get(f"{ENV_PREFIX}_CONFIG")
    if path:
        _load_file(config, Path(path))
    if "DATABASE_URL" in environ:
        config["DATABASE_URL"] = environ["DATABASE_URL"]
    _from_prefixed_env(config, environ)
    if overrides:
        config.update(overrides)
    config["DATABASE_URL"] = database_url(config.get("DATABASE_URL"))
    # Flask's own name for the body limit, so Werkzeug enforces it too.
    config["MAX_CONTENT_LENGTH"] = upload_limit_bytes(config["MAX_UPLOAD_MB"])
    # A CSV sent as a plain form field rather than a file part is held in memory; without
    # this Flask would refuse one over 500 kB with a 413 that names the wrong limit.
    config["MAX_FORM_MEMORY_SIZE"] = config["MAX_CONTENT_LENGTH"]
    config["MAX_CSV_COLUMNS"] = _positive_int("MAX_CSV_COLUMNS", config["MAX_CSV_COLUMNS"])
    if config["JOB_ISOLATION"] not in ("process", "thread"):
        isolation = config["JOB_ISOLATION"]
        raise ValueError(f"JOB_ISOLATION must be process or thread, not {isolation!r}")
    return config


def _positive_int(name: str, value: Any) -> int:
    # Checked at start-up: a bad value must stop the server, not fail every upload.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    return value


def upload_limit_bytes(megabytes: Any) -> int:
    """WINDMAKER_MAX_UPLOAD_MB (MiB, fractions allowed) in bytes."""
    try:
        value = float(megabytes)
    except (TypeError, ValueError):
        raise ValueError(f"MAX_UPLOAD_MB must be a number, not {megabytes!r}") from None
    if not value > 0 or value > 1 << 20:
        raise ValueError(f"MAX_UPLOAD_MB must be above 0 and at most 1048576, not {value}")
    return int(value * 1024 * 1024)


def _load_file(config: Config, path: Path) -> None:
    if path.suffix == ".json":
        config.from_file(str(path.resolve()), load=json.load)
    elif path.suffix == ".toml":
        config.from_file(str(path.resolve()), load=tomllib.load, text=False)
    else:
        config.from_pyfile(str(path.resolve()))


def _from_prefixed_env(config: Config, environ: Mapping[str, str]) -> None:
    # Flask's from_prefixed_env reads os.environ only; mirror it for an explicit mapping.
    if environ is os.environ:
        config.from_prefixed_env(ENV_PREFIX)
        return
    prefix = f"{ENV_PREFIX}_"
    for key, value in environ.items():
        if key.startswith(prefix) and key != f"{prefix}CONFIG":
            try:
                config[key[len(prefix) :]] = json.loads(value)
            except ValueError:
                config[key[len(prefix) :]] = value


def database_url(url: str | None) -> str:
    """Normalise a database URL: default SQLite file, psycopg 3 for PostgreSQL."""
    if not url:
        return f"sqlite:///{Path(DEFAULT_SQLITE_FILE).resolve()}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def truthy(value: Any) -> bool:
    """Config flags arrive as bools, numbers or strings ("1", "true", "yes")."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)
