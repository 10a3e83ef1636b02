"""/v1/health: liveness and readiness (database and job runner). Never needs a key."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api.routes.common import backends
from api.schemas import HealthSchema

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, url_prefix="/v1/health", description="Liveness and readiness.")


def _version() -> str:
    try:
        return version("windmaker")
    except PackageNotFoundError:
        return "unknown"


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema, description="ready")
    @blp.alt_response(503, schema=HealthSchema, description="not ready")
    def get(self) -> tuple[dict[str, Any], int]:
        """200 when the database answers and the job runner (or broker) is up; else 503."""
        ctx = backends()
        try:
            ctx.store.ping()
            database: dict[str, Any] = {"ok": True, "backend": ctx.store.engine.dialect.name}
        except Exception as error:
            log.warning("health: database unreachable: %s", error)
            database = {"ok": False, "backend": ctx.store.engine.dialect.name}
        runner = ctx.dispatcher.health()
        ok = bool(database["ok"] and runner.get("ok"))
        body = {
            "status": "ok" if ok else "unavailable",
            "database": database,
            "job_runner": runner,
            "version": _version(),
        }
        return body, 200 if ok else 503
