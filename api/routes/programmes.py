"""Provenance views: the request a job was submitted with, adopting a plan, and each
programme's adopted plan and adoption history."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from api.bodies import ApiBlueprint
from api.routes.common import actor, backends, documented_auth, handle_errors, require_api_key
from api.schemas import AdoptedPlanSchema, AdoptionSchema
from models.schemas import MAX_PLANS
from service import jobs, provenance

blp = ApiBlueprint(
    "programmes",
    __name__,
    url_prefix="/v1",
    description="Provenance: stored requests, adopted plans per programme and their history.",
)
blp.before_request(require_api_key)

STORED_REQUEST = {
    "description": "the AllocationRequest as stored: validated, defaults filled in, "
    "partners inline (a fixture or CSV upload is stored as the partners it held)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AllocationRequest"}}},
}


@blp.route("/allocations/<job_id>/request")
class AllocationRequestView(MethodView):
    @blp.doc(responses={"200": STORED_REQUEST})
    @blp.alt_response(404, response="NOT_FOUND")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, job_id: str) -> dict[str, Any]:
        """The request an allocation was submitted with, as stored."""
        return jobs.allocation_request(backends().store, job_id)


@blp.route(f"/allocations/<job_id>/plans/<int(min=1, max={MAX_PLANS}):rank>/adopt")
class Adopt(MethodView):
    @blp.response(200, AdoptedPlanSchema, description="the plan was already the adopted one")
    @blp.alt_response(
        201,
        schema=AdoptedPlanSchema,
        description="the plan is now adopted",
        headers={
            "Location": {
                "description": "the programme's adopted plan",
                "schema": {"type": "string"},
            }
        },
        success=True,
    )
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @documented_auth(blp, write=True)
    @handle_errors
    def post(self, job_id: str, rank: int) -> Any:
        """Make this plan the adopted plan of the programme named by the request's `name`
        (planner keys only). Earlier adoptions stay in the programme's history."""
        view, created = provenance.adopt(backends().store, job_id, rank, by=actor())
        if created:
            location = url_for("programmes.Adopted", name=view["programme"])
            return view, 201, {"Location": location}
        return view


@blp.route("/programmes/<path:name>/adopted")
class Adopted(MethodView):
    @blp.response(200, AdoptedPlanSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, name: str) -> dict[str, Any]:
        """The programme's adopted plan: who adopted it, when, its job and rank."""
        return provenance.adopted(backends().store, name)


@blp.route("/programmes/<path:name>/history")
class History(MethodView):
    @blp.response(200, AdoptionSchema(many=True))
    @blp.paginate()
    @blp.alt_response(404, response="NOT_FOUND")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, name: str, pagination_parameters: PaginationParameters) -> Any:
        """The programme's adoptions, newest first: the current one, then those it
        replaced (pagination metadata in `X-Pagination`)."""
        items, total = provenance.history(
            backends().store,
            name,
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return items
