"""Constraint schemas, one per `type`, and the field that picks one by its type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, validates_schema

from models.request import (
    Constraint,
    Eligibility,
    GroupBudget,
    GroupCount,
    MaxShare,
    OnePackage,
    Pin,
)
from models.schemas.base import NON_NEGATIVE, SHARE, BaseSchema, Count, Real, where_field


class _ConstraintSchema(BaseSchema):
    kind: type

    type = fields.String(required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.kind(**data)


class MaxShareSchema(_ConstraintSchema):
    kind = MaxShare
    resource = fields.String(required=True)
    max_share = Real(required=True, validate=SHARE)


class GroupBudgetSchema(_ConstraintSchema):
    kind = GroupBudget
    resource = fields.String(required=True)
    where = where_field()
    min_share = Real(load_default=0.0, validate=SHARE)
    max_share = Real(load_default=1.0, validate=SHARE)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["min_share"] > data["max_share"]:
            raise ValidationError(f"must be <= max_share ({data['max_share']:g})", "min_share")


class GroupCountSchema(_ConstraintSchema):
    kind = GroupCount
    tier = fields.String(required=True)
    where = where_field()
    min = Count(required=True, validate=NON_NEGATIVE)


class EligibilitySchema(_ConstraintSchema):
    kind = Eligibility
    resource = fields.String(required=True)
    where = where_field()


class PinSchema(_ConstraintSchema):
    kind = Pin
    partner_id = fields.String(required=True)
    resource = fields.String(required=True)
    amount = Real(required=True, validate=NON_NEGATIVE)


class OnePackageSchema(_ConstraintSchema):
    kind = OnePackage
    where = where_field()


CONSTRAINT_SCHEMAS: dict[str, type[_ConstraintSchema]] = {
    "max_share": MaxShareSchema,
    "group_budget": GroupBudgetSchema,
    "group_count": GroupCountSchema,
    "eligibility": EligibilitySchema,
    "pin": PinSchema,
    "one_package": OnePackageSchema,
}


class ConstraintField(fields.Field[Constraint]):
    """A constraint, its schema chosen by its ``type``."""

    invalid = "must be an object with a 'type'"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError(self.invalid)
        kind = value.get("type")
        if "type" not in value:
            raise ValidationError({"type": ["Missing data for required field."]})
        if not isinstance(kind, str) or kind not in CONSTRAINT_SCHEMAS:
            raise ValidationError({"type": [f"Must be one of: {', '.join(CONSTRAINT_SCHEMAS)}."]})
        return CONSTRAINT_SCHEMAS[kind]().load(value)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return CONSTRAINT_SCHEMAS[value.type]().dump(value)
