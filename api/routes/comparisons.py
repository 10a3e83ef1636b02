"""/v1/comparisons: what-if scenarios solved against a base request, side by side."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from adapters import exports
from api.bodies import ApiBlueprint
from api.routes.allocations import LOCATION, download, file_content, submitted
from api.routes.common import (
    IDEMPOTENCY_PARAMETER,
    actor,
    backends,
    documented_auth,
    handle_errors,
    list_page,
    require_api_key,
    retry_of,
)
from api.schemas import (
    ComparisonJobSchema,
    ComparisonQuerySchema,
    ComparisonRequestSchema,
    JobListQuerySchema,
    JobSchema,
    SubmittedSchema,
)
from models.schemas import MAX_PLANS
from service import comparison_downloads, jobs
from service.records import COMPARISON

blp = ApiBlueprint(
    "comparisons",
    __name__,
    url_prefix="/v1/comparisons",
    description="What-if comparisons: a base request and named scenarios of changes.",
)
blp.before_request(require_api_key)


@blp.route("")
class Comparisons(MethodView):
    @blp.arguments(ComparisonRequestSchema)
    @blp.doc(parameters=[IDEMPOTENCY_PARAMETER])
    @blp.response(202, SubmittedSchema, headers=LOCATION)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    @documented_auth(blp, write=True)
    @handle_errors
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Submit a comparison; the base and every scenario are solved in the background."""
        ctx = backends()
        job = jobs.submit_comparison(
            ctx.store, ctx.dispatcher.dispatch, body, retry_of(), submitted_by=actor()
        )
        url = url_for("comparisons.Comparison", job_id=job.id)
        return submitted(job, url), 202, {"Location": url}

    @blp.arguments(JobListQuerySchema, location="query")
    @blp.response(200, JobSchema(many=True))
    @blp.paginate()
    @blp.alt_response(404, response="NOT_FOUND")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """List comparisons, newest first (pagination metadata in `X-Pagination`)."""
        return list_page(COMPARISON, query, pagination_parameters)


COMPARISON_XLSX_SHEETS = (
    "An Excel workbook: Summary (a row per scenario, the base first: status, solver "
    "status, gap and caveat, weighted shortfall, projected GMV, achieved per tier, spend "
    "per resource), Differences (a row per changed partner and scenario) and one Plan "
    "sheet per scenario's best plan"
)


@blp.route("/<job_id>.xlsx")
class ComparisonXlsx(MethodView):
    @blp.response(200, content_type=exports.CONTENT_TYPE, description=COMPARISON_XLSX_SHEETS)
    @blp.doc(responses={"200": file_content(exports.CONTENT_TYPE, COMPARISON_XLSX_SHEETS)})
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, job_id: str) -> Response:
        """A finished comparison as an Excel workbook."""
        view, base = jobs.finished_comparison(backends().store, job_id)
        return download(
            exports.comparison_workbook(view, base),
            exports.CONTENT_TYPE,
            f"{job_id}-comparison.xlsx",
        )


@blp.route("/<job_id>")
class Comparison(MethodView):
    @blp.arguments(ComparisonQuerySchema, location="query")
    @blp.response(200, ComparisonJobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, query: dict[str, Any], job_id: str) -> dict[str, Any]:
        """Status and, once done, a row per scenario (base first) with KPIs, the best plan
        and per-partner differences against the base, a page at a time (`diff_page`,
        `diff_page_size`; every difference is in `diff.csv`)."""
        return jobs.get_comparison(
            backends().store,
            job_id,
            diff_page=query["diff_page"],
            diff_page_size=query["diff_page_size"],
        )

    @blp.response(200, JobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @documented_auth(blp, write=True)
    @handle_errors
    def delete(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running comparison."""
        return jobs.cancel_job(backends().store, job_id, COMPARISON, by=actor())


@blp.route(f"/<job_id>/scenarios/<path:name>/plans/<int(min=1, max={MAX_PLANS}):rank>.csv")
class ScenarioPlanCsv(MethodView):
    @blp.response(
        200,
        content_type="text/csv",
        description="the scenario's plan in the allocation plan CSV's columns",
    )
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, job_id: str, name: str, rank: int) -> Response:
        """A scenario's plan as CSV (`base` for the base row), once that scenario succeeded."""
        text = comparison_downloads.scenario_plan_csv(backends().store, job_id, name, rank)
        # Header values are Latin-1: a scenario named in Chinese must not break the download.
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "scenario"
        return download(text, "text/csv", f"{job_id}-{safe}-plan-{rank}.csv")


@blp.route("/<job_id>/diff.csv")
class DifferencesCsv(MethodView):
    @blp.response(
        200,
        content_type="text/csv",
        description="every changed partner of every scenario: scenario, partner_id, "
        "tier_change, tier_before, tier_after, projected_gmv before/after/delta, and per "
        "resource <resource>_before, <resource>_after, <resource>_delta",
    )
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, job_id: str) -> Response:
        """Every per-partner difference of a finished comparison as CSV."""
        text = comparison_downloads.differences_csv(backends().store, job_id)
        return download(text, "text/csv", f"{job_id}-diff.csv")
