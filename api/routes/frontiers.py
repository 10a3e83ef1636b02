"""/v1/frontiers: one resource's budget swept over points, each solved, in budget order."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from api.bodies import ApiBlueprint
from api.routes.allocations import LOCATION, submitted
from api.routes.common import (
    actor,
    backends,
    documented_auth,
    handle_errors,
    list_page,
    require_api_key,
)
from api.schemas import (
    FrontierJobSchema,
    FrontierRequestSchema,
    JobListQuerySchema,
    JobSchema,
    SubmittedSchema,
)
from service import frontiers, jobs
from service.records import FRONTIER

blp = ApiBlueprint(
    "frontiers",
    __name__,
    url_prefix="/v1/frontiers",
    description="Budget frontiers: what each budget of one resource achieves.",
)
blp.before_request(require_api_key)


@blp.route("")
class Frontiers(MethodView):
    @blp.arguments(FrontierRequestSchema)
    @blp.response(202, SubmittedSchema, headers=LOCATION)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    @documented_auth(blp, write=True)
    @handle_errors
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Submit a frontier; its points are solved in parallel in the background."""
        ctx = backends()
        job = frontiers.submit_frontier(
            ctx.store, ctx.dispatcher.dispatch, body, submitted_by=actor()
        )
        url = url_for("frontiers.Frontier", job_id=job.id)
        return submitted(job, url), 202, {"Location": url}

    @blp.arguments(JobListQuerySchema, location="query")
    @blp.response(200, JobSchema(many=True))
    @blp.paginate()
    @blp.alt_response(404, response="NOT_FOUND")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """List frontiers, newest first (pagination metadata in `X-Pagination`)."""
        return list_page(FRONTIER, query, pagination_parameters)


@blp.route("/<job_id>")
class Frontier(MethodView):
    @blp.response(200, FrontierJobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, job_id: str) -> dict[str, Any]:
        """Status and, once done, the points in budget order (each no worse than the one
        before it)."""
        return frontiers.get_frontier(backends().store, job_id)

    @blp.response(200, JobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @documented_auth(blp, write=True)
    @handle_errors
    def delete(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running frontier."""
        return jobs.cancel_job(backends().store, job_id, FRONTIER, by=actor())
