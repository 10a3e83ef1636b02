"""JSON ⇄ domain: the one validation boundary of Windmaker's domain layer.

Every request that enters the system — an API body, a CLI scenario file, a stored job —
goes through `parse_request`, which turns JSON-shaped data into the frozen dataclasses of
`models.request` or raises `RequestValidationError` naming *every* offending field.
Plans leave through `plan_to_dict` / `PlanSchema`.

Error paths follow marshmallow's nesting (list indices become string keys so the dict is
plain JSON), e.g. ``{"partners": {"3": {"response": {"subsidy": {"scale": ["must be > 0"]}}}}}``.

The curve rules (`curve_parameter_errors`, `points_errors`) live here once and are shared
with `models.csvio`, which checks whole CSV columns with the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_dump,
    validate,
    validates_schema,
)
from marshmallow.error_store import merge_errors
from numpy.typing import NDArray

from models.curves import CURVE_PARAMETERS, Curve, CurveKind, FloatArray
from models.plan import (
    Allocation,
    ObjectiveReport,
    Plan,
    ResourceReport,
    SolverReport,
    SolveStatus,
    TierReport,
)
from models.request import (
    COMPARISON_OPERATORS,
    AllocationRequest,
    Bounds,
    Constraint,
    DomainError,
    Eligibility,
    GroupBudget,
    GroupCount,
    MaxShare,
    Objective,
    OnePackage,
    Options,
    Package,
    Partner,
    Pin,
    Resource,
    Tier,
    Where,
)

BoolArray = NDArray[np.bool_]

# Columns of the plan CSV; a resource of the same name would collide with them.
PLAN_CSV_COLUMNS = (
    "partner_id",
    "package",
    "baseline_gmv",
    "projected_gmv",
    "tier",
    "incremental_gmv",
)
# `where` reads these as the partner id, so an attribute with such a name is unreachable.
RESERVED_ATTRIBUTES = frozenset({"id", "partner_id"})
MAX_PLANS = 20


class RequestValidationError(DomainError):
    """Bad input, with every problem found.

    `messages` maps field paths to lists of messages, nested like the input
    (``{"resources": {"0": {"budget": ["must be >= 0"]}}}``); list indices are strings so
    the dict is plain JSON. CSV problems use one flat key per cell:
    ``"<file> row <n>, column <c>"`` (rows counted as a spreadsheet shows them: the header
    is row 1, so the first data row is row 2), ``"<file> column <c>"`` for a whole column
    and ``"<file>"`` for the file itself. `flat()` gives ``{"a.b.c": [messages]}``;
    ``str()`` lists every problem on its own line.
    """

    def __init__(
        self, messages: Mapping[str, Any] | Sequence[Any] | str, summary: str = "invalid input"
    ):
        if isinstance(messages, str) or not isinstance(messages, Mapping):
            messages = {"_schema": messages if isinstance(messages, list) else [messages]}
        self.messages: dict[str, Any] = _json_keys(messages)
        self.summary = summary
        super().__init__(str(self))

    def flat(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for path, message in _flatten(self.messages, ()):
            out.setdefault(path, []).append(message)
        return out

    def __str__(self) -> str:
        flat = self.flat()
        count = sum(len(messages) for messages in flat.values())
        lines = [f"{self.summary} ({count} problem{'s' if count != 1 else ''}):"]
        for path, messages in flat.items():
            lines.extend(f"  {path}: {message}" if path else f"  {message}" for message in messages)
        return "\n".join(lines)


def _json_keys(messages: Any) -> Any:
    if isinstance(messages, Mapping):
        return {str(key): _json_keys(value) for key, value in messages.items()}
    if isinstance(messages, list | tuple):
        return [_json_keys(item) for item in messages]
    return messages


def _flatten(messages: Any, path: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from _flatten(value, path if key == "_schema" else (*path, str(key)))
    elif isinstance(messages, list | tuple):
        for item in messages:
            yield from _flatten(item, path)
    else:
        yield ".".join(path), str(messages)


# ---------------------------------------------------------------------------------------
# Curve rules, shared with csvio (vectorised so a million CSV rows are checked at once)

# JSON names of each kind's parameters (the dataclass stores points as xs / ys).
CURVE_FIELDS: dict[CurveKind, tuple[str, ...]] = {
    kind: tuple({"xs": "x", "ys": "y"}.get(name, name) for name in names)
    for kind, names in CURVE_PARAMETERS.items()
}
NUMERIC_CURVE_PARAMETERS: tuple[str, ...] = tuple(
    sorted(
        {
            name
            for kind, names in CURVE_PARAMETERS.items()
            if kind is not CurveKind.POINTS
            for name in names
        }
    )
)


def curve_parameter_errors(
    kind: CurveKind, values: Mapping[str, FloatArray], size: int
) -> Iterator[tuple[str, BoolArray, str]]:
    """Which of `size` rows break the rules of a `kind` curve, as (parameter, row mask,
    message).

    `values` maps numeric parameter names to arrays of `size` values, NaN where a row does
    not give the parameter; parameters absent from `values` count as not given. Every
    parameter the kind takes is required and must be finite and > 0; parameters of other
    kinds must not be given. (`points` is checked by `points_errors`.)
    """
    wanted = CURVE_FIELDS[kind]
    for name in NUMERIC_CURVE_PARAMETERS:
        column = values.get(name)
        given = ~np.isnan(column) if column is not None else np.zeros(size, dtype=bool)
        if name not in wanted:
            yield name, given, f"not a parameter of a {kind} curve (it takes {', '.join(wanted)})"
            continue
        yield name, ~given, f"required for a {kind} curve"
        if column is not None:
            yield name, given & np.isinf(column), "must be finite"
            yield name, given & ~(column > 0), "must be > 0"


def points_errors(xs: Sequence[float], ys: Sequence[float]) -> dict[str, list[str]]:
    """Problems of a `points` curve, keyed "x" / "y" (empty when the curve is valid)."""
    errors: dict[str, list[str]] = {}

    def fail(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        fail("x", "must be finite numbers")
    if not np.all(np.isfinite(y)):
        fail("y", "must be finite numbers")
    if errors:
        return errors
    if len(x) != len(y):
        fail("y", f"must have as many values as x ({len(y)} != {len(x)})")
    if len(x) < 2:
        fail("x", "needs at least 2 points")
    if len(x) and x[0] != 0:
        fail("x", "must start at 0")
    if np.any(np.diff(x) <= 0):
        fail("x", "must be strictly increasing")
    if len(y) and y[0] < 0:
        fail("y", "must start at a value >= 0")
    if np.any(np.diff(y) < 0):
        fail("y", "must be non-decreasing")
    return errors


def curve_to_dict(curve: Curve) -> dict[str, Any]:
    """A curve in the JSON shape: ``{"curve": kind, <its parameters>}``."""
    out: dict[str, Any] = {"curve": str(curve.kind)}
    if curve.kind is CurveKind.POINTS:
        out["x"], out["y"] = list(curve.xs), list(curve.ys)
    else:
        out.update({name: getattr(curve, name) for name in CURVE_PARAMETERS[curve.kind]})
    return out


# ---------------------------------------------------------------------------------------
# Fields


class BaseSchema(Schema):
    """Every schema rejects fields it does not know, at every level of nesting."""

    class Meta:
        unknown = RAISE


class Real(fields.Float):
    """A JSON number: numeric strings, booleans, NaN and infinities are type errors."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class Count(fields.Integer):
    """A JSON whole number (100 or 100.0); strings, booleans and fractions are type errors."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return int(value)


class JsonFloat(fields.Float):
    """Dumps NaN and infinities as null: JSON has no spelling for them."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None or not math.isfinite(value):
            return None
        return float(value)


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)  # bool is an int


class Scalar(fields.Field[str | int | float | bool]):
    """An attribute value: a string, a finite number or true/false."""

    invalid = "must be a string, a number or true/false"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not _is_scalar(value):
            raise ValidationError(self.invalid)
        return value


class NamedMap(fields.Dict):
    """An object keyed by names (resources, attributes); errors of a value are reported
    under its name directly (``response.subsidy.scale``), not marshmallow's ``value``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise self.make_error("invalid")
        errors: dict[str, Any] = {}
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key.strip():
                errors[str(key)] = ["name must be a non-empty string"]
                continue
            try:
                result[key] = (
                    self.value_field.deserialize(item, **kwargs) if self.value_field else item
                )
            except ValidationError as error:
                errors[key] = error.messages
        if errors:
            raise ValidationError(errors, valid_data=result)
        return result


_OPERATOR_LIST = " ".join(sorted(COMPARISON_OPERATORS))
_SCALAR_HINT = "a string, a number or true/false"


def _operator_error(op: Any, operand: Any) -> str | None:
    if op not in COMPARISON_OPERATORS:
        return f"unknown operator {op!r}; use one of {_OPERATOR_LIST}"
    if op == "in":
        if not isinstance(operand, list) or not all(_is_scalar(item) for item in operand):
            return f"'in' takes a list of values ({_SCALAR_HINT})"
    elif not _is_scalar(operand):
        hint = "; use 'in' for a list" if isinstance(operand, list) else ""
        return f"{op!r} takes a single value ({_SCALAR_HINT}){hint}"
    return None


class WhereField(fields.Field[Where]):
    """A partner selector: ``{"region": "east", "supply_chain": {">=": 60}}``."""

    invalid = "must be an object of attribute tests"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Where:
        if not isinstance(value, Mapping):
            raise ValidationError(self.invalid)
        errors: dict[str, Any] = {}
        conditions: dict[str, Any] = {}
        for key, condition in value.items():
            if not isinstance(key, str) or not key:
                errors[str(key)] = ["attribute name must be a non-empty string"]
            elif isinstance(condition, Mapping):
                if not condition:
                    errors[key] = [f"needs at least one operator ({_OPERATOR_LIST})"]
                    continue
                problems = {
                    str(op): [message]
                    for op, operand in condition.items()
                    if (message := _operator_error(op, operand))
                }
                if problems:
                    errors[key] = problems
                else:
                    conditions[key] = {
                        op: list(operand) if op == "in" else operand
                        for op, operand in condition.items()
                    }
            elif _is_scalar(condition):
                conditions[key] = condition
            else:
                errors[key] = [f'must be {_SCALAR_HINT}, or an object like {{">=": 60}}']
        if errors:
            raise ValidationError(errors)
        return Where(conditions)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return {}
        return {
            key: {op: list(operand) if op == "in" else operand for op, operand in condition.items()}
            if isinstance(condition, Mapping)
            else condition
            for key, condition in value.conditions.items()
        }


def _where() -> WhereField:
    return WhereField(
        load_default=Where(),
        metadata={
            "description": "partner selector: every key must hold; a plain value means equality, "
            f"or {{operator: value}} with operators {_OPERATOR_LIST}"
        },
    )


_NAME = validate.Length(min=1, error="must not be empty")
_POSITIVE = validate.Range(min=0, min_inclusive=False, error="must be > 0")
_NON_NEGATIVE = validate.Range(min=0, error="must be >= 0")
_SHARE = validate.Range(min=0, max=1, error="must be between 0 and 1")


# ---------------------------------------------------------------------------------------
# Request schemas


class ResourceSchema(BaseSchema):
    name = fields.String(
        required=True,
        validate=[
            _NAME,
            validate.NoneOf(
                PLAN_CSV_COLUMNS, error="is reserved (a plan CSV column has this name)"
            ),
        ],
    )
    unit = fields.String(load_default="CNY")
    budget = Real(
        load_default=None,
        allow_none=True,
        validate=_NON_NEGATIVE,
        metadata={"description": "null: unlimited"},
    )
    unit_cost = Real(load_default=1.0, validate=_NON_NEGATIVE)
    step = Real(
        load_default=None,
        allow_none=True,
        validate=_POSITIVE,
        metadata={"description": "allocations are integer multiples of step"},
    )

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Resource:
        return Resource(**data)


class TierSchema(BaseSchema):
    name = fields.String(required=True, validate=_NAME)
    min_gmv = Real(required=True, validate=_POSITIVE)
    target = Count(required=True, validate=_NON_NEGATIVE)
    weight = Real(load_default=1.0, validate=_POSITIVE)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Tier:
        return Tier(**data)


class CurveSchema(BaseSchema):
    curve = fields.Enum(CurveKind, by_value=True, required=True)
    max_uplift = Real()
    scale = Real()
    coef = Real()
    roi = Real()
    shape = Real()
    half_saturation = Real()
    x = fields.List(Real())
    y = fields.List(Real())

    @validates_schema
    def _check_parameters(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind: CurveKind = data["curve"]
        errors: dict[str, list[str]] = {}
        values = {
            name: np.array([data[name]], dtype=np.float64)
            for name in NUMERIC_CURVE_PARAMETERS
            if name in data
        }
        for name, rows, message in curve_parameter_errors(kind, values, 1):
            if rows[0]:
                errors.setdefault(name, []).append(message)
        if kind is CurveKind.POINTS:
            missing = [key for key in ("x", "y") if key not in data]
            for key in missing:
                errors[key] = ["required for a points curve"]
            if not missing:
                for key, messages in points_errors(data["x"], data["y"]).items():
                    errors.setdefault(key, []).extend(messages)
        else:
            for key in ("x", "y"):
                if key in data:
                    errors[key] = [
                        f"not a parameter of a {kind} curve (it takes "
                        f"{', '.join(CURVE_FIELDS[kind])})"
                    ]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Curve:
        kind = data.pop("curve")
        if kind is CurveKind.POINTS:
            return Curve(kind, xs=tuple(data["x"]), ys=tuple(data["y"]))
        return Curve(kind, **data)

    @pre_dump
    def _fields(self, curve: Curve, **kwargs: Any) -> dict[str, Any]:
        return {**curve_to_dict(curve), "curve": curve.kind}


class BoundsSchema(BaseSchema):
    min = Real(load_default=0.0, validate=_NON_NEGATIVE)
    max = Real(
        load_default=None,
        allow_none=True,
        validate=_NON_NEGATIVE,
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
    name = fields.String(required=True, validate=_NAME)
    amounts = NamedMap(values=Real(validate=_NON_NEGATIVE), required=True)
    uplift = Real(required=True, validate=_NON_NEGATIVE)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Package:
        return Package(**data)


class PartnerSchema(BaseSchema):
    id = fields.String(required=True, validate=_NAME)
    name = fields.String(load_default="")
    baseline_gmv = Real(required=True, validate=_NON_NEGATIVE)
    baseline_gmv_p10 = Real(load_default=None, allow_none=True, validate=_NON_NEGATIVE)
    baseline_gmv_p90 = Real(load_default=None, allow_none=True, validate=_NON_NEGATIVE)
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
            for index, name in _duplicates(package.name for package in data["packages"]):
                errors.setdefault("packages", {})[index] = {
                    "name": [f"duplicate package name {name!r}"]
                }
        if errors:
            raise ValidationError(errors)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Partner:
        return Partner(**{**data, "packages": tuple(data["packages"])})


class FixtureSchema(BaseSchema):
    fixture = fields.String(required=True, validate=_NAME)


@dataclass(frozen=True)
class _FixturePartners:
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
        return _FixturePartners(name, partners)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return PartnerSchema(many=True).dump(value)


class _ConstraintSchema(BaseSchema):
    kind: type

    type = fields.String(required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.kind(**data)


class MaxShareSchema(_ConstraintSchema):
    kind = MaxShare
    resource = fields.String(required=True)
    max_share = Real(required=True, validate=_SHARE)


class GroupBudgetSchema(_ConstraintSchema):
    kind = GroupBudget
    resource = fields.String(required=True)
    where = _where()
    min_share = Real(load_default=0.0, validate=_SHARE)
    max_share = Real(load_default=1.0, validate=_SHARE)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["min_share"] > data["max_share"]:
            raise ValidationError(f"must be <= max_share ({data['max_share']:g})", "min_share")


class GroupCountSchema(_ConstraintSchema):
    kind = GroupCount
    tier = fields.String(required=True)
    where = _where()
    min = Count(required=True, validate=_NON_NEGATIVE)


class EligibilitySchema(_ConstraintSchema):
    kind = Eligibility
    resource = fields.String(required=True)
    where = _where()


class PinSchema(_ConstraintSchema):
    kind = Pin
    partner_id = fields.String(required=True)
    resource = fields.String(required=True)
    amount = Real(required=True, validate=_NON_NEGATIVE)


class OnePackageSchema(_ConstraintSchema):
    kind = OnePackage
    where = _where()


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


class OptionsSchema(BaseSchema):
    time_limit_s = Real(load_default=Options.time_limit_s, validate=_POSITIVE)
    mip_gap = Real(
        load_default=Options.mip_gap,
        validate=validate.Range(min=0, max=1, max_inclusive=False, error="must be >= 0 and < 1"),
    )
    plans = Count(
        load_default=Options.plans,
        validate=validate.Range(min=1, max=MAX_PLANS, error=f"must be between 1 and {MAX_PLANS}"),
    )
    engine = fields.String(load_default=Options.engine, validate=_NAME)
    seed = Count(load_default=Options.seed)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Options:
        return Options(**data)


class AllocationRequestSchema(BaseSchema):
    """The AllocationRequest wire format; loads into `models.request.AllocationRequest`.

    `partners` (e.g. from a CSV upload) replaces the request's own: the data must then
    leave `partners` out. `resolve_fixture` turns ``{"fixture": name}`` into partners
    (raising `LookupError` for an unknown name). Partners from either source may carry
    curves and bounds for resources the request does not declare (a fixture describes
    every resource a programme might use); those are dropped. Inline partners must not.
    """

    name = fields.String(load_default="")
    objective = fields.Enum(Objective, by_value=True, load_default=Objective.MAX_ATTAINMENT)
    resources = fields.List(
        fields.Nested(ResourceSchema),
        required=True,
        validate=validate.Length(min=1, error="needs a resource"),
    )
    tiers = fields.List(fields.Nested(TierSchema), load_default=list)
    partners = PartnersField(
        metadata={"description": 'inline list of partners, or {"fixture": "<name>"}'}
    )
    constraints = fields.List(ConstraintField(), load_default=list)
    options = fields.Nested(OptionsSchema, load_default=Options)

    def __init__(
        self,
        *,
        partners: Sequence[Partner] | None = None,
        resolve_fixture: Callable[[str], Sequence[Partner]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.partners_override = tuple(partners) if partners is not None else None
        self.resolve_fixture = resolve_fixture

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _cross_check(self, data: dict[str, Any], original_data: Any, **kwargs: Any) -> None:
        if not isinstance(original_data, Mapping):
            return
        errors: dict[str, Any] = {}
        partners: Sequence[Any] | None = None
        inline = False
        if self.partners_override is not None:
            if "partners" in original_data:
                errors["partners"] = [
                    "partners were supplied separately (e.g. as a CSV "
                    "file); leave 'partners' out of the request"
                ]
            partners = self.partners_override
        elif isinstance(data.get("partners"), _FixturePartners):
            partners = data["partners"].partners
        elif isinstance(data.get("partners"), list):
            partners, inline = data["partners"], True
        elif "partners" not in original_data:
            errors["partners"] = ["Missing data for required field."]
        if partners is not None and not inline and not partners:
            errors.setdefault("partners", []).append("needs a partner")
        errors = merge_errors(
            errors,
            _reference_errors(
                resources=data.get("resources"),
                tiers=data.get("tiers"),
                partners=partners,
                inline=inline,
                constraints=data.get("constraints", ()),
            ),
        )
        if errors:
            raise ValidationError(errors)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> AllocationRequest:
        resources = tuple(data.pop("resources"))
        loaded = data.pop("partners", None)
        if isinstance(loaded, list):
            partners = tuple(loaded)
        else:
            source = (
                self.partners_override if self.partners_override is not None else loaded.partners
            )  # type: ignore[union-attr]
            declared = {resource.name for resource in resources}
            partners = tuple(_only_declared(partner, declared) for partner in source)
        return AllocationRequest(
            resources=resources,
            tiers=tuple(data.pop("tiers")),
            partners=partners,
            constraints=tuple(data.pop("constraints")),
            **data,
        )


def _only_declared(partner: Partner, declared: set[str]) -> Partner:
    if set(partner.curves) <= declared and set(partner.bounds) <= declared:
        return partner
    return replace(
        partner,
        curves={name: curve for name, curve in partner.curves.items() if name in declared},
        bounds={name: bounds for name, bounds in partner.bounds.items() if name in declared},
    )


def _get(item: Any, name: str) -> Any:
    """A field of a loaded object, or of the partial dict marshmallow keeps for an item
    that failed to load (so references are still checked when something else is wrong)."""
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _duplicates(names: Iterable[Any]) -> Iterator[tuple[int, Any]]:
    seen: set[Any] = set()
    for index, name in enumerate(names):
        if name is None:
            continue
        if name in seen:
            yield index, name
        seen.add(name)


def _unknown(what: str, name: Any, known: Iterable[str]) -> str:
    names = sorted(known)
    listing = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return f"unknown {what} {name!r} (known: {listing or 'none'})"


def _reference_errors(
    *,
    resources: Sequence[Any] | None,
    tiers: Sequence[Any] | None,
    partners: Sequence[Any] | None,
    inline: bool,
    constraints: Sequence[Any],
) -> dict[str, Any]:
    """Uniqueness and cross-references. A section that did not load at all (None) has
    its own error already and is not checked against, to avoid a cascade of follow-ups."""
    errors: dict[str, Any] = {}

    def add(path: tuple[Any, ...], message: str) -> None:
        node = errors
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1], []).append(message)

    resource_items = {_get(r, "name"): r for r in resources or ()}
    resource_names = {name for name in resource_items if isinstance(name, str)}
    tier_names = {name for t in tiers or () if isinstance(name := _get(t, "name"), str)}
    for index, name in _duplicates(_get(r, "name") for r in resources or ()):
        add(("resources", index, "name"), f"duplicate resource name {name!r}")
    for index, name in _duplicates(_get(t, "name") for t in tiers or ()):
        add(("tiers", index, "name"), f"duplicate tier name {name!r}")

    def unknown_resource(name: Any) -> str | None:
        if resources is None or name in resource_names:
            return None
        return _unknown("resource", name, resource_names)

    partner_ids: set[str] = set()
    attributes: set[str] = set()
    for index, partner in enumerate(partners or ()):
        pid = _get(partner, "id")
        where: tuple[Any, ...] = ("partners", index) if inline else ("partners",)
        if pid in partner_ids:
            add((*where, "id") if inline else where, f"duplicate partner id {pid!r}")
        if isinstance(pid, str):
            partner_ids.add(pid)
        attributes.update(_get(partner, "attributes") or ())
        if inline:  # supplied partners' extra curves are dropped instead (see parse_request)
            for section, data_key in (("curves", "response"), ("bounds", "bounds")):
                for name in _get(partner, section) or ():
                    if message := unknown_resource(name):
                        add((*where, data_key, name), message)
        for p_index, package in enumerate(_get(partner, "packages") or ()):
            for name in _get(package, "amounts") or ():
                if message := unknown_resource(name):
                    if inline:
                        add((*where, "packages", p_index, "amounts", name), message)
                    else:
                        add(where, f"partner {pid!r}: package {_get(package, 'name')!r}: {message}")

    # Attribute names are only all known when every partner loaded.
    all_attributes = partners is not None and all(isinstance(p, Partner) for p in partners)
    pins_seen: set[tuple[str, str]] = set()
    for index, rule in enumerate(constraints):
        path = ("constraints", index)
        resource = _get(rule, "resource")
        if resource is not None:
            spec = resource_items.get(resource)
            if message := unknown_resource(resource):
                add((*path, "resource"), message)
            elif (
                isinstance(rule, MaxShare | GroupBudget)
                and isinstance(spec, Resource)
                and spec.budget is None
            ):
                add(
                    (*path, "resource"),
                    f"resource {resource!r} has no budget, so a share of it is undefined",
                )
        tier = _get(rule, "tier")
        if tier is not None and tiers is not None and tier not in tier_names:
            add((*path, "tier"), _unknown("tier", tier, tier_names))
        pid = _get(rule, "partner_id")
        if pid is not None and partners is not None and pid not in partner_ids:
            add((*path, "partner_id"), f"unknown partner id {pid!r}")
        if isinstance(rule, Pin):
            if (rule.partner_id, rule.resource) in pins_seen:
                add(
                    (*path, "partner_id"),
                    f"a second pin of {rule.resource!r} for partner {rule.partner_id!r}",
                )
            pins_seen.add((rule.partner_id, rule.resource))
        where_rule = _get(rule, "where")
        if isinstance(where_rule, Where) and all_attributes:
            for key in where_rule.conditions:
                if key not in attributes and key not in RESERVED_ATTRIBUTES:
                    add((*path, "where", key), f"no partner has an attribute {key!r}")
    return errors


# ---------------------------------------------------------------------------------------
# Plan schemas (dump for the API and CLI; load back for stored plans)


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

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Allocation:
        return Allocation(**data)


class PlanSchema(BaseSchema):
    rank = fields.Integer(required=True)
    label = fields.String(required=True)
    objective = fields.Nested(ObjectiveReportSchema, required=True)
    tiers = fields.List(fields.Nested(TierReportSchema), required=True)
    resources = fields.List(fields.Nested(ResourceReportSchema), required=True)
    solver = fields.Nested(SolverReportSchema, required=True)
    allocations = fields.List(fields.Nested(AllocationSchema), required=True)
    binding_constraints = fields.List(fields.String(), load_default=list)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Plan:
        return Plan(**data)


# ---------------------------------------------------------------------------------------
# Public functions


def parse_request(
    data: Mapping[str, Any],
    *,
    partners: Sequence[Partner] | None = None,
    resolve_fixture: Callable[[str], Sequence[Partner]] | None = None,
) -> AllocationRequest:
    """Validate JSON-shaped `data` into an AllocationRequest, or raise
    RequestValidationError listing every problem.

    `partners` (already validated, e.g. by `csvio.read_partners_csv`) supplies the
    partners; `data` must then not contain `partners`. Without it, `data["partners"]` is
    an inline list or ``{"fixture": name}``, resolved by `resolve_fixture` (a LookupError
    from it becomes an error on ``partners.fixture``). Curves and bounds that supplied or
    fixture partners hold for undeclared resources are dropped; package amounts of
    undeclared resources are errors.
    """
    schema = AllocationRequestSchema(partners=partners, resolve_fixture=resolve_fixture)
    try:
        request: AllocationRequest = schema.load(data)  # type: ignore[arg-type]
    except ValidationError as error:
        raise RequestValidationError(
            error.normalized_messages(), "invalid allocation request"
        ) from None
    return request


def request_to_dict(request: AllocationRequest) -> dict[str, Any]:
    """The request in its JSON wire format (partners inline); `parse_request` inverts it."""
    dumped: dict[str, Any] = AllocationRequestSchema().dump(request)
    return dumped


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
