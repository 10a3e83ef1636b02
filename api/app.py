"""The Flask application: `create_app()` wires configuration, the store, the job queue
and one blueprint per resource; every error leaves as JSON."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError

from adapters.config import load_config, truthy
from adapters.queue import InProcessDispatcher, make_dispatcher
from adapters.store import Store
from api.bodies import cap_body
from api.errors import ApiError
from api.limits import init_rate_limits
from api.routes import allocations, audit, comparisons, fixtures, frontiers, health, programmes
from api.routes.common import Backends, auth_in_force
from api.web import init_app as init_web
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
        if code == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            if "message" not in payload:
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

    def handle_api_error(self, error: ApiError) -> Any:
        """An ApiError raised outside a view's own handling (e.g. while webargs reads the
        body, or in before_request): the same JSON body as any other 4xx."""
        http_error = HTTPException(error.message)
        http_error.code = error.status
        http_error.data = {"message": error.message, "errors": error.errors}  # type: ignore[attr-defined]
        return self.handle_http_exception(http_error)

    def _openapi_json(self) -> Response:
        """The document, with bearer-key security only while keys are in force (auth
        required by configuration, or keys exist): a client is never told to send a key
        the service would not ask for."""
        spec = self.spec.to_dict()
        if not auth_in_force():  # copies: to_dict() shares the spec's own path objects
            spec["paths"] = {
                path: {method: _without_security(op) for method, op in operations.items()}
                for path, operations in spec.get("paths", {}).items()
            }
        return current_app.response_class(
            current_app.json.dumps(spec, indent=2, sort_keys=False),
            mimetype="application/json",
        )


def _without_security(operation: Any) -> Any:
    if not isinstance(operation, dict):
        return operation
    return {key: value for key, value in operation.items() if key != "security"}


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
    for module in (allocations, programmes, comparisons, frontiers, fixtures, health, audit):
        api.register_blueprint(module.blp)
    init_rate_limits(app)
    init_web(app)

    app.register_error_handler(ApiError, api.handle_api_error)
    app.register_error_handler(Exception, lambda error: _unexpected(api, error))
    app.before_request(cap_body)

    if truthy(app.config.get("RUNNER_AUTOSTART", True)):
        app.before_request(lambda: start_job_runner(app))
    return app


def _unexpected(api: WindmakerApi, error: Exception) -> Any:
    """A 500 the client can quote: an error id, and one log line under that id (where
    and what), not a traceback per request."""
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "error %s: %s %s: %s: %s%s",
        error_id,
        request.method,
        request.path,
        type(error).__name__,
        str(error)[:300],
        _origin(error),
    )
    internal = InternalServerError()
    internal.data = {  # type: ignore[attr-defined]
        "message": f"internal error, id {error_id}: the service logged the details under it",
        "errors": {},
    }
    return api.handle_http_exception(internal)


def _origin(error: BaseException) -> str:
    """' at file:line in function' of the innermost frame of the error's traceback."""
    tb = error.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f" (at {code.co_filename}:{tb.tb_lineno} in {code.co_name})"


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
