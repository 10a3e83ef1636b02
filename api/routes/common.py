"""What every route shares: the app's store and queue, key checks, and turning service
errors into HTTP answers (at the view, with flask-smorest's `abort`)."""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, g, request
from flask_smorest import abort
from flask_smorest.pagination import PaginationParameters

from adapters.config import truthy
from adapters.queue import Dispatcher
from adapters.store import Store
from api.errors import ApiError, BadBody, http_status
from models.schemas import RequestValidationError
from service import jobs
from service.errors import ServiceError, Unauthorized
from service.keys import actor_of, auth_required, authenticate, authorize
from service.records import ApiKey

F = TypeVar("F", bound=Callable[..., Any])
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PLAN_CSV_CACHE = 32


class Backends:
    """The per-app store and job queue the views use (in `app.extensions["windmaker"]`)."""

    def __init__(self, store: Store, dispatcher: Dispatcher) -> None:
        self.store = store
        self.dispatcher = dispatcher
        # Plan CSVs by (job id, rank): a succeeded job's plans never change, and making
        # one re-validates the whole stored request.
        self.plan_csvs: OrderedDict[tuple[str, int, bool], str] = OrderedDict()
        self._csv_lock = threading.Lock()

    def plan_csv(self, job_id: str, rank: int, *, all_partners: bool = False) -> str:
        key = (job_id, rank, all_partners)
        text = self.plan_csvs.get(key)
        if text is None:
            # raises unless it exists
            text = jobs.plan_csv(self.store, job_id, rank, all_partners=all_partners)
            with self._csv_lock:
                self.plan_csvs[key] = text
                while len(self.plan_csvs) > _PLAN_CSV_CACHE:
                    self.plan_csvs.popitem(last=False)
        return text


def backends() -> Backends:
    return cast(Backends, current_app.extensions["windmaker"])


def list_page(kind: str, query: dict[str, Any], pagination: PaginationParameters) -> Any:
    """One page of a kind's jobs, newest first, for the list views (404 past the end of
    the allowed page range, via the caller's `handle_errors`)."""
    items, total = jobs.list_jobs(
        backends().store,
        kind,
        page=pagination.page,
        page_size=pagination.page_size,
        status=query.get("status"),
    )
    pagination.item_count = total
    return items


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


def auth_in_force() -> bool:
    """Whether /v1 calls need a key now: configured so, or active keys exist."""
    return auth_required(backends().store, require_auth=truthy(current_app.config["REQUIRE_AUTH"]))


def request_key() -> ApiKey | None:
    """The API key this request authenticates with (None while auth is off), looked up
    once per request and shared by the rate limiter and the auth check. Raises the
    service's Unauthorized for a missing, unknown or revoked key."""
    if "api_key" not in g:
        g.api_key = (
            authenticate(backends().store, request.headers.get("Authorization"))
            if auth_in_force()
            else None
        )
    return cast(ApiKey | None, g.api_key)


def actor() -> str:
    """Who this request acts as, for `submitted_by` and the audit log."""
    return actor_of(request_key())


def require_api_key() -> None:
    """before_request of every /v1 blueprint but health: once keys exist (or auth is
    required by configuration), a valid key is needed; viewers may only read."""
    try:
        key = request_key()
        if key is not None:
            authorize(key, write=request.method in WRITE_METHODS)
    except ServiceError as error:
        abort_with(error)


IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY_PATTERN = re.compile(r"[!-~]{1,200}")  # visible ASCII, as in the OpenAPI document
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": IDEMPOTENCY_KEY,
    "required": False,
    "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"},
    "description": "Any unique string (a UUID) chosen by the client per submission. A "
    "retry with the same key and the same body answers with the job the first attempt "
    "made, never a second one; the same key with a different body is refused (422).",
}


def retry_of() -> jobs.Retry | None:
    """The request's Idempotency-Key, scoped to its API key (400 when malformed)."""
    value = request.headers.get(IDEMPOTENCY_KEY)
    if value is None:
        return None
    if not _KEY_PATTERN.fullmatch(value):
        raise BadBody(
            "malformed Idempotency-Key: 1 to 200 visible ASCII characters",
            {IDEMPOTENCY_KEY: ["must be 1 to 200 visible ASCII characters"]},
        )
    key = g.get("api_key")
    return jobs.Retry(value, key.id if key is not None else "anonymous")


def documented_auth(blp: Any, *, write: bool) -> Callable[[F], F]:
    """Document the bearer key and the 401/403 answers on an operation, and the 429 of
    the rate limit (api.limits) every such operation is under."""

    def decorate(view: F) -> F:
        view = blp.alt_response(401, response="UNAUTHORIZED")(view)
        view = blp.alt_response(429, response="TOO_MANY_REQUESTS")(view)
        if write:
            view = blp.alt_response(403, response="FORBIDDEN")(view)
        return cast(F, blp.doc(security=[{"bearerAuth": []}])(view))

    return decorate
