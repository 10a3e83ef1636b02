"""Errors of the service layer; routes translate them to HTTP statuses at the view."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base class of every error the service layer raises on purpose."""

    status = 400

    def __init__(self, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class UnsupportedMediaType(ServiceError):
    status = 415


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Unauthorized(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403


class ServiceUnavailable(ServiceError):
    status = 503
