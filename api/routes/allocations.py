"""/v1/allocations: submit an allocation request, poll it, download plans, cancel it."""

from __future__ import annotations

import io
from typing import IO, Any

from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from werkzeug.datastructures import FileStorage

from adapters import exports
from api.bodies import ApiBlueprint, parse_json
from api.errors import BadBody, UnsupportedMediaType
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
    AllocationJobSchema,
    JobListQuerySchema,
    JobSchema,
    PlanDownloadQuerySchema,
    SubmittedSchema,
)
from models.schemas import MAX_PLANS, RequestValidationError
from service import jobs, solving
from service.records import ALLOCATION, Job

blp = ApiBlueprint(
    "allocations",
    __name__,
    url_prefix="/v1/allocations",
    description="Allocation jobs: submit a request, poll it, download its plans, cancel it.",
)
blp.before_request(require_api_key)

REQUEST_BODY = {
    "required": True,
    "description": "An AllocationRequest as JSON (partners inline or "
    '`{"fixture": "<name>"}`), or multipart/form-data with a `partners` CSV file, an '
    "optional `packages` CSV file and a `request` part holding the AllocationRequest "
    "JSON without `partners`.",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/AllocationRequest"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["partners", "request"],
                "properties": {
                    "partners": {"type": "string", "format": "binary"},
                    "packages": {"type": "string", "format": "binary"},
                    "request": {"type": "string", "description": "AllocationRequest JSON"},
                },
            }
        },
    },
}
LOCATION = {"Location": {"description": "the job's URL", "schema": {"type": "string"}}}
_INVALID = "invalid allocation request"


def submitted(job: Job, url: str) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "created_at": job.created_at,
        "url": url,
    }


@blp.route("")
class Allocations(MethodView):
    @blp.doc(requestBody=REQUEST_BODY, parameters=[IDEMPOTENCY_PARAMETER])
    @blp.response(202, SubmittedSchema, headers=LOCATION)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    @documented_auth(blp, write=True)
    @handle_errors
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Submit an allocation request; solving happens in the background."""
        retry = retry_of()
        allocation = _read_allocation()
        ctx = backends()
        job = jobs.submit_allocation(
            ctx.store, ctx.dispatcher.dispatch, allocation, retry, submitted_by=actor()
        )
        url = url_for("allocations.Allocation", job_id=job.id)
        return submitted(job, url), 202, {"Location": url}

    @blp.arguments(JobListQuerySchema, location="query")
    @blp.response(200, JobSchema(many=True))
    @blp.paginate()
    @blp.alt_response(404, response="NOT_FOUND")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """List allocation jobs, newest first (pagination metadata in `X-Pagination`)."""
        return list_page(ALLOCATION, query, pagination_parameters)


@blp.route("/<job_id>")
class Allocation(MethodView):
    @blp.response(200, AllocationJobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, job_id: str) -> dict[str, Any]:
        """The job: status, timestamps, error, and its plans once it succeeded."""
        return jobs.get_allocation(backends().store, job_id)

    @blp.response(200, JobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @documented_auth(blp, write=True)
    @handle_errors
    def delete(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (a running solve stops at its next check)."""
        return jobs.cancel_job(backends().store, job_id, ALLOCATION, by=actor())


PLAN_CSV_COLUMNS = (
    "partner_id, name, one column per resource (named after it), package (when packages "
    "are used), baseline_gmv, tier_before, projected_gmv, tier, incremental_gmv, p_reach "
    "(when forecasts have a spread), then one column per partner attribute; amounts in "
    "whole units (or steps), GMV rounded to the yuan, text cells spreadsheet-safe"
)

PLAN_XLSX_SHEETS = (
    "An Excel workbook with sheets Summary (objective, solver, budgets), Plan (the plan "
    "CSV's columns), Tiers (target, achieved, shortfall) and Binding (the explanation's "
    "binding constraints with utilization and marginal values); frozen header rows, "
    "filters, ¥ and count number formats"
)


def file_content(content_type: str, description: str) -> dict[str, Any]:
    """The OpenAPI 200 answer of a file download (a body without a JSON schema)."""
    return {
        "description": description,
        "content": {content_type: {"schema": {"type": "string", "format": "binary"}}},
    }


def download(body: bytes | str, mimetype: str, filename: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@blp.route(f"/<job_id>/plans/<int(min=1, max={MAX_PLANS}):rank>.csv")
class PlanCsv(MethodView):
    @blp.arguments(PlanDownloadQuerySchema, location="query")
    @blp.response(200, content_type="text/csv", description=PLAN_CSV_COLUMNS)
    @blp.doc(responses={"200": file_content("text/csv", PLAN_CSV_COLUMNS)})
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, query: dict[str, Any], job_id: str, rank: int) -> Response:
        """A plan's allocations as CSV (`?all=1`: every partner, unfunded ones too)."""
        text = backends().plan_csv(job_id, rank, all_partners=query["all_partners"])
        return download(text, "text/csv", f"{job_id}-plan-{rank}.csv")


@blp.route(f"/<job_id>/plans/<int(min=1, max={MAX_PLANS}):rank>.xlsx")
class PlanXlsx(MethodView):
    @blp.arguments(PlanDownloadQuerySchema, location="query")
    @blp.response(200, content_type=exports.CONTENT_TYPE, description=PLAN_XLSX_SHEETS)
    @blp.doc(responses={"200": file_content(exports.CONTENT_TYPE, PLAN_XLSX_SHEETS)})
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @documented_auth(blp, write=False)
    @handle_errors
    def get(self, query: dict[str, Any], job_id: str, rank: int) -> Response:
        """A plan as an Excel workbook (`?all=1`: every partner on the Plan sheet)."""
        plan, allocation = jobs.plan_and_request(backends().store, job_id, rank)
        body = exports.plan_workbook(plan, allocation, all_partners=query["all_partners"])
        return download(body, exports.CONTENT_TYPE, f"{job_id}-plan-{rank}.xlsx")


def _read_allocation() -> Any:
    """The AllocationRequest from a JSON body or a multipart upload."""
    if request.mimetype == "multipart/form-data":
        return _read_multipart()
    if not request.is_json:
        raise UnsupportedMediaType(
            f"unsupported content type {request.mimetype or '(none)'}: send "
            "application/json, or multipart/form-data with CSV files",
            {"Content-Type": [f"unsupported: {request.mimetype or '(none)'}"]},
        )
    return solving.parse_allocation(parse_json(request.get_data(), "body"))


def _read_multipart() -> Any:
    errors: dict[str, Any] = {}
    # A part may come without a name (None): str() keeps it listable and sortable.
    names = {str(name) for name in (*request.files, *request.form)}
    unknown = sorted(names - {"partners", "packages", "request"})
    for name in unknown:
        errors[name] = ["unknown part; expected partners, packages and request"]
    partners = _csv_part("partners", errors, required=True)
    packages = _csv_part("packages", errors, required=False)
    raw = request.form.get("request")
    if raw is None and "request" in request.files:
        raw = request.files["request"].read().decode("utf-8", errors="replace")
    data: Any = None
    if raw is None:
        errors["request"] = ["missing part: the AllocationRequest JSON (without partners)"]
    else:
        try:
            data = parse_json(raw, "request")
        except BadBody as error:
            errors.update(error.errors)
    if errors:
        raise RequestValidationError(errors, _INVALID)
    return solving.parse_allocation(data, partners_csv=partners, packages_csv=packages)


def _csv_part(name: str, errors: dict[str, Any], *, required: bool) -> IO[bytes] | None:
    upload: FileStorage | None = request.files.get(name)
    if upload is None:
        if name in request.form:  # sent as a plain field rather than a file
            return _named(request.form[name].encode("utf-8"), f"{name}.csv")
        if required:
            errors[name] = [f"missing part: the {name} CSV file"]
        return None
    # Named after the upload so CSV errors say "<its file name> row 7, column ...".
    return _named(upload.read(), upload.filename or f"{name}.csv")


def _named(data: bytes, name: str) -> IO[bytes]:
    buffer = io.BytesIO(data)
    buffer.name = name  # type: ignore[misc]
    return buffer
