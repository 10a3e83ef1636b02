"""Plan schemas (dumped for the API and CLI, loaded back for stored plans)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_dump, post_load

from models.plan import (
    Allocation,
    ObjectiveReport,
    Plan,
    ResourceReport,
    SolverReport,
    SolveStatus,
    TierReport,
    TierUncertainty,
    UncertaintyReport,
)
from models.schemas.base import BaseSchema, JsonFloat
from models.schemas.errors import RequestValidationError
from models.schemas.explanation import StoredExplanation


def _without_none(data: dict[str, Any], key: str) -> dict[str, Any]:
    """docs/uncertainty.md figures appear only where some forecast has a spread."""
    if data.get(key, 0) is None:
        del data[key]
    return data


class ObjectiveReportSchema(BaseSchema):
    mode = fields.String(required=True)
    weighted_shortfall = JsonFloat(required=True)
    total_cost = JsonFloat(required=True)
    total_projected_gmv = JsonFloat(required=True)
    incremental_gmv = JsonFloat(required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> ObjectiveReport:
        return ObjectiveReport(**data)


class TierReportSchema(BaseSchema):
    name = fields.String(required=True)
    min_gmv = JsonFloat(required=True)
    target = fields.Integer(required=True)
    achieved = fields.Integer(required=True)
    shortfall = fields.Integer(required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> TierReport:
        return TierReport(**data)


class ResourceReportSchema(BaseSchema):
    name = fields.String(required=True)
    budget = JsonFloat(required=True, allow_none=True)
    allocated = JsonFloat(required=True)
    utilization = JsonFloat(required=True, allow_none=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> ResourceReport:
        return ResourceReport(**data)


class SolverReportSchema(BaseSchema):
    engine = fields.String(required=True)
    status = fields.Enum(SolveStatus, by_value=True, required=True)
    mip_gap = JsonFloat(load_default=None, allow_none=True)
    best_bound = JsonFloat(load_default=None, allow_none=True)
    seconds = JsonFloat(load_default=0.0)
    shortfall_proven = fields.Boolean(load_default=None, allow_none=True)
    shortfall_bound = JsonFloat(load_default=None, allow_none=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> SolverReport:
        return SolverReport(**data)


class AllocationSchema(BaseSchema):
    partner_id = fields.String(required=True)
    amounts = fields.Dict(keys=fields.String(), values=JsonFloat(), required=True)
    baseline_gmv = JsonFloat(required=True)
    projected_gmv = JsonFloat(required=True)
    tier = fields.String(required=True, allow_none=True)
    incremental_gmv = JsonFloat(required=True)
    package = fields.String(load_default=None, allow_none=True)
    p_reach = JsonFloat(load_default=None, allow_none=True)

    @post_dump
    def _drop_absent(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return _without_none(data, "p_reach")

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Allocation:
        return Allocation(**data)


class TierUncertaintySchema(BaseSchema):
    name = fields.String(required=True)
    target = fields.Integer(required=True)
    expected_achieved = JsonFloat(required=True)
    p_target = JsonFloat(required=True)
    achieved_at_confidence = fields.Integer(required=True)
    std_error = JsonFloat(required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> TierUncertainty:
        return TierUncertainty(**data)


class UncertaintyReportSchema(BaseSchema):
    confidence = JsonFloat(required=True)
    correlation = JsonFloat(required=True)
    method = fields.String(required=True)
    draws = fields.Integer(load_default=None, allow_none=True)
    tiers = fields.List(fields.Nested(TierUncertaintySchema), required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> UncertaintyReport:
        return UncertaintyReport(**data)


class PlanSchema(BaseSchema):
    rank = fields.Integer(required=True)
    label = fields.String(required=True)
    objective = fields.Nested(ObjectiveReportSchema, required=True)
    tiers = fields.List(fields.Nested(TierReportSchema), required=True)
    resources = fields.List(fields.Nested(ResourceReportSchema), required=True)
    solver = fields.Nested(SolverReportSchema, required=True)
    allocations = fields.List(fields.Nested(AllocationSchema), required=True)
    binding_constraints = fields.List(fields.String(), load_default=list)
    uncertainty = fields.Nested(UncertaintyReportSchema, load_default=None, allow_none=True)

    @post_dump
    def _drop_absent(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return _without_none(data, "uncertainty")

    explanation = StoredExplanation(load_default=None, allow_none=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Plan:
        return Plan(**data)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    dumped: dict[str, Any] = PlanSchema().dump(plan)
    return dumped


def plans_to_list(plans: Iterable[Plan]) -> list[dict[str, Any]]:
    return [plan_to_dict(plan) for plan in plans]


def plan_from_dict(data: Mapping[str, Any]) -> Plan:
    """A plan stored as JSON (the shape of `plan_to_dict`) back as a Plan."""
    try:
        plan: Plan = PlanSchema().load(data)  # type: ignore[arg-type]
    except ValidationError as error:
        raise RequestValidationError(error.normalized_messages(), "invalid plan") from None
    return plan
