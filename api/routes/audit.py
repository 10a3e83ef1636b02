"""/v1/audit: who submitted, cancelled, adopted, created or revoked what, and when."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from api.bodies import ApiBlueprint
from api.routes.common import (
    backends,
    documented_auth,
    handle_errors,
    request_key,
    require_api_key,
)
from api.schemas import AuditEntrySchema, AuditQuerySchema
from service import provenance
from service.keys import require_planner

blp = ApiBlueprint(
    "audit",
    __name__,
    url_prefix="/v1/audit",
    description="The audit log: submissions, cancellations, adoptions and key changes.",
)
blp.before_request(require_api_key)


@blp.route("")
class Audit(MethodView):
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEntrySchema(many=True))
    @blp.paginate()
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @documented_auth(blp, write=True)  # planner keys only, though it only reads
    @handle_errors
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """The audit log, newest first; `action` keeps one kind of entry (planner keys
        only; pagination metadata in `X-Pagination`)."""
        require_planner(request_key(), "read the audit log")
        items, total = provenance.audit_log(
            backends().store,
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
            action=query.get("action"),
        )
        pagination_parameters.item_count = total
        return items
