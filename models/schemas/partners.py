"""Partners (inline or from a fixture), their bounds and packages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from models.request import Bounds, Package, Partner
from models.schemas.base import (
    NAME,
    NON_NEGATIVE,
    RESERVED_ATTRIBUTES,
    BaseSchema,
    NamedMap,
    Real,
    Scalar,
)
from models.schemas.curves import CurveSchema
from models.schemas.references import duplicates


class BoundsSchema(BaseSchema):
    min = Real(load_default=0.0, validate=NON_NEGATIVE)
    max = Real(
        load_default=None,
        allow_none=True,
        validate=NON_NEGATIVE,
        metadata={"description": "null: the resource budget"},
    )

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["max"] is not None and data["min"] > data["max"]:
            raise ValidationError(f"must be <= max ({data['max']:g})", "min")

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Bounds:
        return Bounds(**data)


class PackageSchema(BaseSchema):
    name = fields.String(required=True, validate=NAME)
    amounts = NamedMap(values=Real(validate=NON_NEGATIVE), required=True)
    uplift = Real(required=True, validate=NON_NEGATIVE)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Package:
        return Package(**data)


class PartnerSchema(BaseSchema):
    id = fields.String(required=True, validate=NAME)
    name = fields.String(load_default="")
    baseline_gmv = Real(required=True, validate=NON_NEGATIVE)
    baseline_gmv_p10 = Real(load_default=None, allow_none=True, validate=NON_NEGATIVE)
    baseline_gmv_p90 = Real(load_default=None, allow_none=True, validate=NON_NEGATIVE)
    attributes = NamedMap(
        values=Scalar(),
        load_default=dict,
        validate=validate.ContainsNoneOf(
            sorted(RESERVED_ATTRIBUTES),
            error="'id' and 'partner_id' are reserved: `where` reads them as the partner id",
        ),
    )
    curves = NamedMap(values=fields.Nested(CurveSchema), data_key="response", load_default=dict)
    bounds = NamedMap(values=fields.Nested(BoundsSchema), load_default=dict)
    packages = fields.List(fields.Nested(PackageSchema), load_default=list)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        base = data["baseline_gmv"]
        p10, p90 = data["baseline_gmv_p10"], data["baseline_gmv_p90"]
        if p10 is not None and p10 > base:
            errors["baseline_gmv_p10"] = [f"must be <= baseline_gmv ({base:g})"]
        if p90 is not None and p90 < base:
            errors["baseline_gmv_p90"] = [f"must be >= baseline_gmv ({base:g})"]
        if data["curves"] and data["packages"]:
            errors["packages"] = [
                "a partner has either response curves or packages, "
                "not both (packages are instead of curves)"
            ]
        else:
            for index, name in duplicates(package.name for package in data["packages"]):
                errors.setdefault("packages", {})[index] = {
                    "name": [f"duplicate package name {name!r}"]
                }
        if errors:
            raise ValidationError(errors)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Partner:
        return Partner(**{**data, "packages": tuple(data["packages"])})


class FixtureSchema(BaseSchema):
    fixture = fields.String(required=True, validate=NAME)


@dataclass(frozen=True)
class FixturePartners:
    name: str
    partners: tuple[Partner, ...]


class PartnersField(fields.Field[Any]):
    """Inline partners, or ``{"fixture": name}`` resolved by the schema's resolver."""

    invalid = 'must be a list of partners or {"fixture": "<name>"}'

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._inline = fields.List(
            fields.Nested(PartnerSchema), validate=validate.Length(min=1, error="needs a partner")
        )
        self._fixture = fields.Nested(FixtureSchema)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, list):
            return self._inline.deserialize(value, **kwargs)
        if not isinstance(value, Mapping):
            raise ValidationError(self.invalid)
        name = self._fixture.deserialize(value, **kwargs)["fixture"]
        resolve = getattr(self.root, "resolve_fixture", None)
        if resolve is None:
            raise ValidationError({"fixture": ["fixtures cannot be used here"]})
        try:
            partners = tuple(resolve(name))
        except LookupError:
            raise ValidationError({"fixture": [f"unknown fixture {name!r}"]}) from None
        return FixturePartners(name, partners)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return PartnerSchema(many=True).dump(value)
