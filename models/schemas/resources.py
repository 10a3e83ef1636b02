"""Resources (what is allocated) and tiers (the GMV thresholds partners are counted against)."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, post_load, validate

from models.request import Resource, Tier
from models.schemas.base import NAME, NON_NEGATIVE, POSITIVE, BaseSchema, Count, Real

# Columns of the plan CSV; a resource of the same name would collide with them.
PLAN_CSV_COLUMNS = (
    "partner_id",
    "name",
    "package",
    "baseline_gmv",
    "tier_before",
    "projected_gmv",
    "tier",
    "incremental_gmv",
    "p_reach",
)


class ResourceSchema(BaseSchema):
    name = fields.String(
        required=True,
        validate=[
            NAME,
            validate.NoneOf(
                PLAN_CSV_COLUMNS, error="is reserved (a plan CSV column has this name)"
            ),
        ],
    )
    unit = fields.String(load_default="CNY")
    budget = Real(
        load_default=None,
        allow_none=True,
        validate=NON_NEGATIVE,
        metadata={"description": "null: unlimited"},
    )
    unit_cost = Real(load_default=1.0, validate=NON_NEGATIVE)
    step = Real(
        load_default=None,
        allow_none=True,
        validate=POSITIVE,
        metadata={"description": "allocations are integer multiples of step"},
    )

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Resource:
        return Resource(**data)


class TierSchema(BaseSchema):
    name = fields.String(required=True, validate=NAME)
    min_gmv = Real(required=True, validate=POSITIVE)
    target = Count(required=True, validate=NON_NEGATIVE)
    weight = Real(load_default=1.0, validate=POSITIVE)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Tier:
        return Tier(**data)
