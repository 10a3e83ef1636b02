"""Errors the service layer raises on purpose. They say what went wrong in domain terms;
the HTTP views and the CLI decide what each means to their user (status code, exit code).

Invalid input is `models.schemas.RequestValidationError` (every bad field named), which is
not a `ServiceError`: it belongs to the domain.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base class of every error the service layer raises on purpose."""

    def __init__(self, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFound(ServiceError):
    """No such job, plan or key."""


class Conflict(ServiceError):
    """The job is not in a state that allows this (e.g. cancelling a finished job)."""


class Unauthorized(ServiceError):
    """No valid API key."""


class Forbidden(ServiceError):
    """A valid key whose role does not allow this."""


class ServiceUnavailable(ServiceError):
    """Something the service depends on (the job queue) cannot be reached."""
