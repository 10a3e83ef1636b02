"""Rate limits per API key (per client address without one): Flask-Limiter, in process
memory by default or in Redis (`RATE_LIMIT_STORAGE_URI`) so that several servers share
one budget. Off unless `RATE_LIMIT` is set; a client over it gets 429 with Retry-After.
Health checks are never limited."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from api.routes import health
from api.routes.common import request_key
from service.errors import ServiceError


def client_key() -> str:
    """The bucket of a request: its API key when keys are in force and it sent a valid
    one, else the client address (so made-up keys share their sender's budget)."""
    try:
        key = request_key()
    except ServiceError:
        key = None  # refused a moment later by the auth check; counted all the same
    if key is not None:
        return f"key:{key.id}"
    return f"addr:{get_remote_address() or 'unknown'}"


def init_rate_limits(app: Flask) -> Limiter | None:
    """Attach the limiter when RATE_LIMIT is set (e.g. "20/second;600/minute")."""
    limit = str(app.config.get("RATE_LIMIT") or "").strip()
    if not limit:
        return None
    limiter = Limiter(
        client_key,
        app=app,
        default_limits=[limit],
        storage_uri=str(app.config.get("RATE_LIMIT_STORAGE_URI") or "memory://"),
        headers_enabled=True,  # X-RateLimit-* on every answer, Retry-After on a 429
        key_prefix="windmaker",
    )
    limiter.exempt(health.blp)
    return limiter
