"""HTTP shapes of the API: what the routes accept and return, and what /openapi.json
documents. The AllocationRequest and Plan shapes come from `models.schemas`, the one
validation boundary of the domain."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from models.scenario import ScenarioSchema
from models.schemas import AllocationRequestSchema, PlanSchema
from service.records import AUDIT_ACTIONS

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
MAX_SCENARIOS = 50


class Stored(fields.Nested):
    """JSON stored exactly as produced by its schema's dump (a plan, a comparison row):
    documented as that schema, served as stored, without dumping it a second time."""

    def _serialize(self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return nested_obj


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class JobSchema(Schema):
    id = fields.String(required=True, metadata={"description": "job id (UUID)"})
    kind = fields.String(
        required=True, validate=validate.OneOf(("allocation", "comparison", "frontier"))
    )
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES))
    name = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(required=True, allow_none=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    error = fields.String(
        required=True, allow_none=True, metadata={"description": "why the job failed"}
    )
    progress = fields.Dict(
        required=True,
        allow_none=True,
        metadata={"description": "latest progress report of a running job"},
    )
    attempts = fields.Integer(
        required=True, metadata={"description": "workers that took the job (> 1 after a crash)"}
    )
    submitted_by = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "the submitting API key's name, or `anonymous` while "
            "authentication is off; null for jobs stored before this was recorded"
        },
    )


class SubmittedSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES))
    created_at = fields.DateTime(required=True)
    url = fields.String(required=True, metadata={"description": "where to poll the job"})


class AllocationJobSchema(JobSchema):
    plans = fields.List(
        Stored(PlanSchema),
        metadata={"description": "present once the job succeeded: plans in rank order"},
    )


class JobListQuerySchema(StrictSchema):
    status = fields.String(validate=validate.OneOf(JOB_STATUSES))


class PlanDownloadQuerySchema(StrictSchema):
    all_partners = fields.Boolean(
        data_key="all",
        load_default=False,
        metadata={
            "description": "1/true: every partner of the request, unfunded ones too "
            "(zero amounts, projected GMV = baseline); default: partners with an "
            "amount, a package or a tier"
        },
    )


class Unparsed(fields.Nested):
    """Documented as its schema, loaded as the raw JSON object: the domain parser
    (`models.scenario.parse_scenarios`) validates it, with the base request at hand."""

    def _deserialize(
        self,
        value: Any,
        attr: str | None,
        data: Mapping[str, Any] | None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("must be an object")
        return value


class ComparisonRequestSchema(StrictSchema):
    base = fields.Dict(
        required=True,
        metadata={"description": 'an AllocationRequest, or {"allocation_id": "<id>"}'},
    )
    scenarios = fields.List(
        Unparsed(ScenarioSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_SCENARIOS),
    )
    name = fields.String(load_default="", validate=validate.Length(max=200))


class KpisSchema(Schema):
    weighted_shortfall = fields.Float(required=True, allow_none=True)
    achieved = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    target = fields.Dict(keys=fields.String(), values=fields.Integer())
    spend = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True), required=True)
    total_projected_gmv = fields.Float(required=True, allow_none=True)
    solver_status = fields.String(required=True)
    mip_gap = fields.Float(required=True, allow_none=True)
    p_target = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        allow_none=True,
        metadata={"description": "P(count ≥ target) per tier; null when no forecast spreads"},
    )


class ScenarioRowSchema(Schema):
    name = fields.String(required=True)
    status = fields.String(required=True)
    error = fields.String(required=True, allow_none=True)
    kpis = fields.Nested(KpisSchema, required=True, allow_none=True)
    plan = Stored(PlanSchema, required=True, allow_none=True)


class AmountChangeSchema(Schema):
    base = fields.Float(required=True)
    scenario = fields.Float(required=True)
    delta = fields.Float(required=True)


class PartnerDifferenceSchema(Schema):
    partner_id = fields.String(required=True)
    tier_change = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(("gained", "lost"))
    )
    base_tier = fields.String(required=True, allow_none=True)
    scenario_tier = fields.String(required=True, allow_none=True)
    base_projected_gmv = fields.Float(required=True, allow_none=True)
    scenario_projected_gmv = fields.Float(required=True, allow_none=True)
    projected_gmv_delta = fields.Float(required=True, allow_none=True)
    amounts = fields.Dict(
        keys=fields.String(), values=fields.Nested(AmountChangeSchema), required=True
    )


class DifferencesSchema(Schema):
    scenario = fields.String(required=True)
    partners_changed = fields.Integer(required=True)
    tiers_gained = fields.Integer(required=True)
    tiers_lost = fields.Integer(required=True)
    partners = fields.List(fields.Nested(PartnerDifferenceSchema), required=True)
    truncated = fields.Boolean(required=True)


class ComparisonJobSchema(JobSchema):
    base_allocation_id = fields.String(allow_none=True)
    scenarios = fields.List(
        fields.Nested(ScenarioRowSchema),
        required=True,
        metadata={"description": "a row per scenario, the base first; kpis and plan once done"},
    )
    differences = fields.List(
        fields.Nested(DifferencesSchema),
        metadata={"description": "per scenario: partners whose tier or amounts differ"},
    )


class FrontierRequestSchema(StrictSchema):
    base = fields.Dict(
        required=True,
        metadata={"description": 'an AllocationRequest, or {"allocation_id": "<id>"}'},
    )
    resource = fields.String(required=True, metadata={"description": "the budget swept"})
    budgets = fields.List(
        fields.Float(), metadata={"description": "absolute budgets (or give multipliers)"}
    )
    multipliers = fields.List(
        fields.Float(), metadata={"description": "multiples of the base budget, e.g. 0.5, 1, 2"}
    )
    name = fields.String(load_default="", validate=validate.Length(max=200))


class FrontierPointSchema(Schema):
    budget = fields.Float(required=True, allow_none=True)
    status = fields.String(
        required=True, metadata={"description": "the point's solver status, or failed"}
    )
    achieved = fields.Dict(keys=fields.String(), values=fields.Integer())
    weighted_shortfall = fields.Float()
    total_projected_gmv = fields.Float()
    total_cost = fields.Float()
    mip_gap = fields.Float(allow_none=True)
    p_target = fields.Dict(
        keys=fields.String(),
        values=fields.Float(allow_none=True),
        allow_none=True,
        metadata={"description": "per tier, when the request has forecast uncertainty"},
    )
    carried_from = fields.Float(
        allow_none=True,
        metadata={"description": "the smaller budget whose plan this point kept (monotone)"},
    )
    error = fields.String()


class FrontierJobSchema(JobSchema):
    base_allocation_id = fields.String(allow_none=True)
    resource = fields.String(allow_none=True)
    base_budget = fields.Float(allow_none=True)
    points = fields.List(
        fields.Nested(FrontierPointSchema),
        required=True,
        metadata={"description": "in budget order, once done; never worse as budget grows"},
    )


class FixtureInfoSchema(Schema):
    name = fields.String(required=True)
    description = fields.String(required=True)
    partners = fields.Integer(required=True, metadata={"description": "how many partners"})
    resources = fields.List(
        fields.String(), required=True, metadata={"description": "resources with curves"}
    )
    has_scenario = fields.Boolean(
        required=True, metadata={"description": "a bundled request to go with it"}
    )
    has_packages = fields.Boolean(required=True, metadata={"description": "packages CSV too"})


class FixtureListSchema(Schema):
    fixtures = fields.List(fields.Nested(FixtureInfoSchema), required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("ok", "unavailable")))
    database = fields.Dict(required=True)
    job_runner = fields.Dict(required=True)
    version = fields.String(required=True)


class AdoptionSchema(Schema):
    programme = fields.String(required=True, metadata={"description": "the requests' `name`"})
    job_id = fields.String(required=True, metadata={"description": "the allocation job"})
    rank = fields.Integer(required=True, metadata={"description": "the plan's rank in the job"})
    adopted_by = fields.String(required=True)
    adopted_at = fields.DateTime(required=True)
    current = fields.Boolean(
        required=True, metadata={"description": "still the programme's adopted plan"}
    )


class AdoptedPlanSchema(AdoptionSchema):
    plan = Stored(PlanSchema, required=True, allow_none=True)


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor = fields.String(
        required=True, metadata={"description": "API key name, `anonymous` or CLI user"}
    )
    action = fields.String(required=True, validate=validate.OneOf(AUDIT_ACTIONS))
    target = fields.String(
        required=True, metadata={"description": "job id, programme name or key id"}
    )
    details = fields.Dict(required=True)


class AuditQuerySchema(StrictSchema):
    action = fields.String(validate=validate.OneOf(AUDIT_ACTIONS))


__all__ = [
    "AdoptedPlanSchema",
    "AdoptionSchema",
    "AllocationJobSchema",
    "AllocationRequestSchema",
    "AuditEntrySchema",
    "AuditQuerySchema",
    "ComparisonJobSchema",
    "ComparisonRequestSchema",
    "FixtureListSchema",
    "FrontierJobSchema",
    "FrontierRequestSchema",
    "HealthSchema",
    "JobListQuerySchema",
    "JobSchema",
    "PlanSchema",
    "SubmittedSchema",
]
