"""The `explanation` block of a plan (docs/insight.md): documented field by field for the OpenAPI
page, stored and served as the JSON `service.explain` builds (never re-dumped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields


class _Documented(Schema):
    """Documentation only: the block is produced by the service, never parsed from clients."""


class MarginalValueSchema(_Documented):
    per_unit = fields.Float(required=True, metadata={"description": "always 1: per extra unit"})
    gmv = fields.Float(
        required=True, allow_none=True, metadata={"description": "ΔGMV (CNY) per extra unit"}
    )
    weighted_shortfall = fields.Float(
        required=True, allow_none=True, metadata={"description": "Δ weighted shortfall per unit"}
    )
    method = fields.String(metadata={"description": "resolve: a re-solve with the budget +1%"})
    delta = fields.Float(metadata={"description": "extra units the re-solve was given"})
    status = fields.String(metadata={"description": "solver status of the re-solve"})
    mip_gap = fields.Float(allow_none=True)
    proven = fields.Boolean(
        metadata={"description": "both solves proven optimal (else the value may be MIP noise)"}
    )
    note = fields.String(allow_none=True)


class BindingSchema(_Documented):
    kind = fields.String(
        required=True,
        metadata={
            "description": "budget|max_share|group_budget|group_count|bound|eligibility|pin|"
            "one_package"
        },
    )
    resource = fields.String()
    tier = fields.String()
    where = fields.Dict()
    side = fields.String(metadata={"description": "group_budget: max (cap) or min (floor)"})
    utilization = fields.Float(
        allow_none=True, metadata={"description": "used / limit (1.0: at the limit)"}
    )
    max_share = fields.Float(metadata={"description": "max_share, group_budget: the rule's"})
    min_share = fields.Float(metadata={"description": "group_budget: the rule's floor share"})
    spent = fields.Float(metadata={"description": "group_budget: the group's spend"})
    min = fields.Integer(metadata={"description": "group_count: the rule's minimum"})
    achieved = fields.Integer(metadata={"description": "group_count: how many reach the tier"})
    partner_id = fields.String(metadata={"description": "pin: the pinned partner"})
    amount = fields.Float(metadata={"description": "pin: the pinned amount"})
    partners = fields.List(fields.String(), metadata={"description": "partners it holds back"})
    count = fields.Integer(metadata={"description": "how many partners it holds back"})
    marginal_value = fields.Nested(MarginalValueSchema, allow_none=True)


class NearMissSchema(_Documented):
    partner_id = fields.String(required=True)
    tier = fields.String(required=True, metadata={"description": "the tier it misses next"})
    gmv_gap = fields.Float(required=True)
    cheapest_extra = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    extra_cost = fields.Float(required=True, metadata={"description": "Σ unit_cost · extra"})
    projected_gmv_after = fields.Float()
    fits_unspent = fields.Boolean(
        metadata={"description": "what the plan leaves unspent already pays for the extra"}
    )


class ToTargetsSchema(_Documented):
    met = fields.Boolean(required=True, metadata={"description": "every target met"})
    budgets = fields.Dict(
        keys=fields.String(), values=fields.Float(), metadata={"description": "budget needed"}
    )
    extra = fields.Dict(keys=fields.String(), values=fields.Float())
    extra_cost = fields.Float(allow_none=True)
    weighted_shortfall = fields.Float()
    status = fields.String(
        allow_none=True, metadata={"description": "the min_cost re-solve's (null: none ran)"}
    )
    verified = fields.Boolean(
        metadata={"description": "the min_cost plan re-checked exactly under these budgets"}
    )
    note = fields.String(allow_none=True)
    reason = fields.String(
        allow_none=True,
        metadata={"description": "when not met: why (e.g. too few partners can reach a tier)"},
    )


class ExplanationSchema(_Documented):
    binding = fields.List(fields.Nested(BindingSchema), required=True)
    near_misses = fields.List(fields.Nested(NearMissSchema), required=True)
    to_targets = fields.Nested(ToTargetsSchema, allow_none=True)
    scope = fields.Dict(metadata={"description": "what was computed and in what time"})


class StoredExplanation(fields.Nested):
    """Documented as `ExplanationSchema`; loaded and dumped as the JSON object it is."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ExplanationSchema, **kwargs)

    def _serialize(self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return nested_obj

    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("must be an object")
        return dict(value)
