"""Solver options."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, post_load, validate

from models.request import Options
from models.schemas.base import NAME, POSITIVE, BaseSchema, Count, Real

MAX_PLANS = 20
MAX_NEAR_MISSES = 200


class OptionsSchema(BaseSchema):
    time_limit_s = Real(load_default=Options.time_limit_s, validate=POSITIVE)
    mip_gap = Real(
        load_default=Options.mip_gap,
        validate=validate.Range(min=0, max=1, max_inclusive=False, error="must be >= 0 and < 1"),
    )
    plans = Count(
        load_default=Options.plans,
        validate=validate.Range(min=1, max=MAX_PLANS, error=f"must be between 1 and {MAX_PLANS}"),
    )
    engine = fields.String(load_default=Options.engine, validate=NAME)
    seed = Count(load_default=Options.seed)
    near_misses = Count(
        load_default=Options.near_misses,
        validate=validate.Range(
            min=0, max=MAX_NEAR_MISSES, error=f"must be between 0 and {MAX_NEAR_MISSES}"
        ),
        metadata={"description": "how many near misses each plan's explanation lists"},
    )

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Options:
        return Options(**data)
