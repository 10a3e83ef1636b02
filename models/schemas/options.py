"""Solver options."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, post_load, validate

from models.request import EXPLAIN_LEVELS, Options, UncertaintyOptions
from models.schemas.base import NAME, NON_NEGATIVE, POSITIVE, BaseSchema, Count, Real
from models.uncertainty import MAX_DRAWS, MIN_DRAWS

MAX_PLANS = 20
MAX_NEAR_MISSES = 200


class UncertaintySchema(BaseSchema):
    """How forecasts spread (docs/uncertainty.md); `group_by` is checked against the
    partners later."""

    default_sigma = Real(load_default=UncertaintyOptions.default_sigma, validate=NON_NEGATIVE)
    correlation = Real(
        load_default=UncertaintyOptions.correlation,
        validate=validate.Range(min=0, max=1, max_inclusive=False, error="must be >= 0 and < 1"),
    )
    group_by = fields.String(load_default=None, allow_none=True, validate=NAME)
    draws = Count(
        load_default=UncertaintyOptions.draws,
        validate=validate.Range(
            min=MIN_DRAWS, max=MAX_DRAWS, error=f"must be between {MIN_DRAWS} and {MAX_DRAWS}"
        ),
    )

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> UncertaintyOptions:
        return UncertaintyOptions(**data)


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
    confidence = Real(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0.5, max=0.999, error="must be between 0.5 and 0.999"),
    )
    uncertainty = fields.Nested(UncertaintySchema, load_default=UncertaintyOptions)
    near_misses = Count(
        load_default=Options.near_misses,
        validate=validate.Range(
            min=0, max=MAX_NEAR_MISSES, error=f"must be between 0 and {MAX_NEAR_MISSES}"
        ),
        metadata={"description": "how many near misses each plan's explanation lists"},
    )
    explain = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(EXPLAIN_LEVELS, error="must be one of: full, basic, none"),
        metadata={
            "description": "full: binding limits, near misses and re-solves (marginal values,"
            " to_targets); basic: without re-solves; none: no explanation. Default: full for"
            " an allocation, basic for frontier points and comparison scenarios."
        },
    )

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Options:
        return Options(**data)
