"""What every route shares: the app's store and queue, key checks, and turning service
errors into HTTP answers (at the view, with flask-smorest's `abort`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, request
from flask_smorest import abort

from adapters.config import truthy
from adapters.queue import Dispatcher
from adapters.store import Store
from api.errors import ApiError, http_status
from models.schemas import RequestValidationError
from service.errors import ServiceError, Unauthorized
from service.keys import auth_required, authenticate, authorize

F = TypeVar("F", bound=Callable[..., Any])
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Backends:
    """The per-app store and job queue the views use (in `app.extensions["windmaker"]`)."""

    def __init__(self, store: Store, dispatcher: Dispatcher) -> None:
        self.store = store
        self.dispatcher = dispatcher


def backends() -> Backends:
    return cast(Backends, current_app.extensions["windmaker"])


def abort_with(error: ServiceError | ApiError | RequestValidationError) -> None:
    """abort() with the body every 4xx shares: message plus field-path errors."""
    if isinstance(error, RequestValidationError):
        abort(422, message=error.summary, errors=error.messages)
        return
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else None
    abort(
        http_status(error),
        message=error.message,
        errors=error.errors,
        **({"headers": headers} if headers else {}),
    )


def handle_errors(view: F) -> F:
    """Views raise domain/service errors; the client gets a 4xx naming the fields."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except (ServiceError, ApiError, RequestValidationError) as error:
            abort_with(error)

    return cast(F, wrapper)


def require_api_key() -> None:
    """before_request of every /v1 blueprint but health: once keys exist (or auth is
    required by configuration), a valid key is needed; viewers may only read."""
    store = backends().store
    if not auth_required(store, require_auth=truthy(current_app.config["REQUIRE_AUTH"])):
        return
    try:
        key = authenticate(store, request.headers.get("Authorization"))
        authorize(key, write=request.method in WRITE_METHODS)
    except ServiceError as error:
        abort_with(error)


def documented_auth(blp: Any, *, write: bool) -> Callable[[F], F]:
    """Document the bearer key and the 401/403 answers on an operation."""

    def decorate(view: F) -> F:
        view = blp.alt_response(401, response="UNAUTHORIZED")(view)
        if write:
            view = blp.alt_response(403, response="FORBIDDEN")(view)
        return cast(F, blp.doc(security=[{"bearerAuth": []}])(view))

    return decorate
