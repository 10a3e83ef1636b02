"""The Flask application: `create_app()` wires configuration, the store, the job queue
and one blueprint per resource; every error leaves as JSON."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import Flask, current_app, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError

from adapters.config import load_config, truthy
from adapters.queue import InProcessDispatcher, make_dispatcher
from adapters.store import Store
from api.routes import allocations, comparisons, fixtures, frontiers, health
from api.routes.common import Backends
from models.schemas import AllocationRequestSchema

log = logging.getLogger(__name__)


class ErrorSchema(ma.Schema):
    """Every 4xx/5xx body."""

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status name"})
    message = ma.fields.String(required=True, metadata={"description": "what went wrong"})
    errors = ma.fields.Dict(
        required=True,
        metadata={
            "description": "offending fields by path (JSON nesting; CSV cells as "
            "'<file> row <n>, column <c>'), each with its messages"
        },
    )


class WindmakerApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        """flask-smorest's handler, but `message` and `errors` are always present."""
        payload, code, headers = super().handle_http_exception(error)
        if code == 413 and "message" not in payload:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            payload["message"] = f"request body too large: the limit is {limit} bytes"
            payload["errors"] = {"body": [f"larger than {limit} bytes"]}
            _drain_body(limit)
        payload.setdefault("message", error.description or error.name)
        errors = payload.get("errors")
        if isinstance(errors, Mapping) and set(errors) == {"json"}:
            errors = payload["errors"] = errors["json"]  # body fields by their own paths
        if not isinstance(errors, Mapping):
            payload["errors"] = {} if errors is None else {"_schema": errors}
        if code == 422 and payload["message"] == error.description:
            payload["message"] = "invalid input: see errors"
        return payload, code, headers


def _drain_body(limit: int | None) -> None:
    """Read and drop a refused body that is not absurdly large.

    Left unread, the server would close the keep-alive connection only after answering
    "keep-alive", and a client reusing it for its next request would see the connection
    drop. Beyond twice the limit the connection is not worth saving.
    """
    length = request.content_length
    if not length or not limit or length > 2 * limit + (1 << 20):
        return
    stream = request.environ.get("wsgi.input")
    remaining = length
    try:
        while remaining > 0 and stream is not None:
            chunk = stream.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)
    except OSError:
        pass  # the client went away: nothing left to save


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The Windmaker API. `config` overrides defaults, the WINDMAKER_CONFIG file and
    the WINDMAKER_* environment. The in-process job runner starts lazily on the first
    request (or explicitly via `start_job_runner`), so forking servers stay safe."""
    app = Flask("api")
    app.config.update(load_config(config))
    store = Store(app.config["DATABASE_URL"], migrate=truthy(app.config["RUN_MIGRATIONS"]))
    app.extensions["windmaker"] = Backends(store, make_dispatcher(app.config, store))

    api = WindmakerApi(app)
    api.spec.components.schema("AllocationRequest", schema=AllocationRequestSchema)
    for module in (allocations, comparisons, frontiers, fixtures, health):
        api.register_blueprint(module.blp)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        # Log the details for operators; the client never sees a traceback.
        log.exception("unhandled error")
        internal = InternalServerError()
        internal.data = {"message": "internal error; the service logged the details"}  # type: ignore[attr-defined]
        return api.handle_http_exception(internal)

    if truthy(app.config.get("RUNNER_AUTOSTART", True)):
        app.before_request(lambda: start_job_runner(app))
    return app


def start_job_runner(app: Flask) -> None:
    """Start the in-process runner of `app` (no-op under Celery or when running)."""
    dispatcher = app.extensions["windmaker"].dispatcher
    if isinstance(dispatcher, InProcessDispatcher) and not dispatcher.runner.running:
        dispatcher.runner.start()


def release_job_runner(app: Flask) -> None:
    """Stop taking jobs and hand the ones still solving back to the queue (graceful
    shutdown: another process can resume them at once instead of after a timeout)."""
    dispatcher = app.extensions["windmaker"].dispatcher
    if isinstance(dispatcher, InProcessDispatcher):
        dispatcher.runner.release()
