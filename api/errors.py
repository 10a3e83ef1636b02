"""Errors of the HTTP layer itself (a body it cannot read), and the HTTP status of every
service error, applied at the views (`api.routes.common.abort_with`)."""

from __future__ import annotations

from typing import Any

from service.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    ServiceUnavailable,
    Unauthorized,
)


class ApiError(Exception):
    """Base class of the errors the HTTP layer raises on purpose."""

    status = 400

    def __init__(self, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class BadBody(ApiError):
    """The body (or a part of it) is not valid JSON."""


class UnsupportedMediaType(ApiError):
    status = 415


# Most specific first: the first class an error is an instance of decides.
SERVICE_STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Unauthorized, 401),
    (Forbidden, 403),
    (ServiceUnavailable, 503),
    (ServiceError, 400),
)


def http_status(error: ServiceError | ApiError) -> int:
    if isinstance(error, ApiError):
        return error.status
    return next(status for kind, status in SERVICE_STATUS if isinstance(error, kind))
