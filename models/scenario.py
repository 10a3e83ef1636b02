"""What-if scenarios: `changes` applied to a base request (docs/reference.md,
``POST /v1/comparisons``).

A scenario is ``{"name": ..., "changes": {...}}``; `changes` may hold

- ``budgets``: ``{resource: amount}`` — an absolute budget (``null``: unlimited) or a
  multiplier string ``"x1.2"`` of the base budget;
- ``targets``: ``{tier: count}``;
- ``objective``: one of the objectives;
- ``exclude_partners``: ``[partner ids]`` — removed, with any pins they had;
- ``pins``: ``[{"partner_id", "resource", "amount"}]`` — added as pin constraints,
  replacing existing pins of the same partner and resource;
- ``forecast``: ``{"baseline": m, "uplift": m}`` — multiply every baseline (and its
  p10/p90) by ``baseline``, and every curve's output (max_uplift, coef, roi, points y)
  and package uplift by ``uplift``;
- ``confidence``: plan at this confidence (docs/uncertainty.md; ``null``: on the median forecast);
- ``uncertainty``: ``{default_sigma, correlation, group_by, draws}`` — the fields given
  replace the base request's.

Errors are `RequestValidationError`s keyed ``changes.<field>`` (``scenarios.<i>...`` from
`parse_scenarios`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from models.curves import Curve, CurveKind
from models.finite import nonfinite_figures
from models.request import (
    AllocationRequest,
    GroupBudget,
    MaxShare,
    Objective,
    Partner,
    Pin,
    UncertaintyOptions,
)
from models.schemas import BaseSchema, Count, NamedMap, Real, RequestValidationError
from models.schemas.options import UncertaintySchema

BASE = "base"  # the name of the unchanged request in a comparison

_NON_NEGATIVE = validate.Range(min=0, error="must be >= 0")
_POSITIVE = validate.Range(min=0, min_inclusive=False, error="must be > 0")


@dataclass(frozen=True)
class Scenario:
    name: str
    changes: Mapping[str, Any]  # JSON-shaped, already checked by `ChangesSchema`

    def apply(self, base: AllocationRequest) -> AllocationRequest:
        return apply_changes(base, self.changes)


class BudgetChange(fields.Field[Any]):
    """A budget: a number >= 0, null (unlimited), or a multiplier string ``"x1.2"``."""

    invalid = 'must be a number >= 0, null, or a multiplier like "x1.2"'

    def __init__(self, **kwargs: Any):
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            factor = _multiplier(value)
            if factor is None:
                raise ValidationError(self.invalid)
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(self.invalid)
        if not math.isfinite(value) or value < 0:
            raise ValidationError("must be a finite number >= 0")
        return float(value)


def _multiplier(text: str) -> float | None:
    body = text.strip()
    if body[:1] not in ("x", "X"):
        return None
    try:
        factor = float(body[1:])
    except ValueError:
        return None
    return factor if math.isfinite(factor) and factor >= 0 else None


class PinChangeSchema(BaseSchema):
    partner_id = fields.String(required=True)
    resource = fields.String(required=True)
    amount = Real(required=True, validate=_NON_NEGATIVE)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Pin:
        return Pin(**data)


class ForecastSchema(BaseSchema):
    baseline = Real(load_default=1.0, validate=_POSITIVE)
    uplift = Real(load_default=1.0, validate=_POSITIVE)


class ChangesSchema(BaseSchema):
    budgets = NamedMap(values=BudgetChange())
    targets = NamedMap(values=Count(validate=_NON_NEGATIVE))
    objective = fields.Enum(Objective, by_value=True)
    exclude_partners = fields.List(fields.String(validate=validate.Length(min=1)))
    pins = fields.List(fields.Nested(PinChangeSchema))
    forecast = fields.Nested(ForecastSchema)
    confidence = Real(
        allow_none=True,
        validate=validate.Range(min=0.5, max=0.999, error="must be between 0.5 and 0.999"),
    )
    # Partial: the fields given replace the base request's (checked in `apply_changes`).
    uncertainty = fields.Dict(keys=fields.String())


class ScenarioSchema(BaseSchema):
    name = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, error="must not be empty"),
            validate.NoneOf([BASE], error=f"{BASE!r} is reserved for the unchanged request"),
        ],
    )
    changes = fields.Nested(ChangesSchema, load_default=dict)

    @post_load(pass_original=True)
    def _build(self, data: dict[str, Any], original_data: Any, **kwargs: Any) -> Scenario:
        # Keep the JSON the client sent (already checked) so it can be stored and shown.
        return Scenario(data["name"], dict(original_data.get("changes") or {}))


def parse_scenarios(data: Any, base: AllocationRequest | None = None) -> tuple[Scenario, ...]:
    """Scenarios from ``[{"name", "changes"}]``: names unique and not "base", changes well
    formed; with `base`, every scenario's changes must also apply to it. Errors are keyed
    ``scenarios.<index>.<field>``."""
    if not isinstance(data, list):
        raise RequestValidationError(
            {"scenarios": ['must be a list of {"name", "changes"}']}, "invalid scenarios"
        )
    errors: dict[Any, Any] = {}
    scenarios: list[Scenario | None] = []
    schema = ScenarioSchema()
    for index, item in enumerate(data):
        try:
            scenarios.append(schema.load(item))
        except ValidationError as error:
            errors[index] = error.messages
            scenarios.append(None)
    seen: set[str] = set()
    for index, scenario in enumerate(scenarios):
        if scenario is None:
            continue
        if scenario.name in seen:
            errors.setdefault(index, {}).setdefault("name", []).append(
                f"duplicate scenario name {scenario.name!r}"
            )
        seen.add(scenario.name)
        if base is not None:
            try:
                apply_changes(base, scenario.changes)
            except RequestValidationError as error:
                errors.setdefault(index, {}).update(error.messages)
    if errors:
        raise RequestValidationError({"scenarios": errors}, "invalid scenarios")
    return tuple(scenario for scenario in scenarios if scenario is not None)


def apply_changes(request: AllocationRequest, changes: Mapping[str, Any]) -> AllocationRequest:
    """A new request: `request` with `changes` applied (see the module docstring)."""
    try:
        loaded: dict[str, Any] = ChangesSchema().load(changes)  # type: ignore[arg-type]
    except ValidationError as error:
        raise RequestValidationError({"changes": error.messages}, "invalid changes") from None
    problems = _reference_errors(request, loaded)
    if problems:
        raise RequestValidationError({"changes": problems}, "invalid changes")

    if "confidence" in loaded or "uncertainty" in loaded:
        request = _uncertainty(request, loaded)
    if "forecast" in loaded:
        request = _forecast(request, loaded["forecast"]["baseline"], loaded["forecast"]["uplift"])
    if "budgets" in loaded:
        request = replace(
            request,
            resources=tuple(
                replace(resource, budget=_budget(resource.budget, loaded["budgets"][resource.name]))
                if resource.name in loaded["budgets"]
                else resource
                for resource in request.resources
            ),
        )
    if "targets" in loaded:
        request = replace(
            request,
            tiers=tuple(
                replace(tier, target=loaded["targets"][tier.name])
                if tier.name in loaded["targets"]
                else tier
                for tier in request.tiers
            ),
        )
    if "objective" in loaded:
        request = replace(request, objective=loaded["objective"])
    if loaded.get("exclude_partners"):
        excluded = set(loaded["exclude_partners"])
        request = replace(
            request,
            partners=tuple(p for p in request.partners if p.id not in excluded),
            constraints=tuple(
                rule
                for rule in request.constraints
                if not (isinstance(rule, Pin) and rule.partner_id in excluded)
            ),
        )
    if loaded.get("pins"):
        new = {(pin.partner_id, pin.resource): pin for pin in loaded["pins"]}
        kept = tuple(
            rule
            for rule in request.constraints
            if not (isinstance(rule, Pin) and (rule.partner_id, rule.resource) in new)
        )
        request = replace(request, constraints=(*kept, *new.values()))
    if "forecast" in loaded or "budgets" in loaded:
        _check_finite(request, "forecast" if "forecast" in loaded else "budgets")
    return request


def _check_finite(request: AllocationRequest, change: str) -> None:
    """A forecast multiplier or a larger budget can take a curve (or a baseline) past
    float64; say so now, against the change that did it, rather than fail in the solver."""
    problems = nonfinite_figures(request)
    if problems:
        messages = [
            f"partner {p.partner_id!r}, {p.resource or p.field}: {p.message}"
            if p.index >= 0
            else p.message
            for p in problems
        ]
        raise RequestValidationError({"changes": {change: messages}}, "invalid changes")


def _uncertainty(request: AllocationRequest, loaded: Mapping[str, Any]) -> AllocationRequest:
    """`changes.confidence` (null: plan on the median) and `changes.uncertainty` (the
    fields given replace the base's)."""
    options = request.options
    if "uncertainty" in loaded:
        merged = {**asdict(options.uncertainty), **loaded["uncertainty"]}
        try:
            spread: UncertaintyOptions = UncertaintySchema().load(merged)  # type: ignore[assignment]
        except ValidationError as error:
            raise RequestValidationError(
                {"changes": {"uncertainty": error.messages}}, "invalid changes"
            ) from None
        group_by = spread.group_by
        if group_by is not None and not any(group_by in p.attributes for p in request.partners):
            raise RequestValidationError(
                {
                    "changes": {
                        "uncertainty": {"group_by": [f"no partner has an attribute {group_by!r}"]}
                    }
                },
                "invalid changes",
            )
        options = replace(options, uncertainty=spread)
    if "confidence" in loaded:
        options = replace(options, confidence=loaded["confidence"])
    return replace(request, options=options)


def _budget(current: float | None, change: float | str | None) -> float | None:
    if isinstance(change, str):
        factor = _multiplier(change)
        assert factor is not None and current is not None  # checked by _reference_errors
        return current * factor
    return change


def _reference_errors(request: AllocationRequest, loaded: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    resources = {resource.name: resource for resource in request.resources}
    shared = {
        rule.resource for rule in request.constraints if isinstance(rule, MaxShare | GroupBudget)
    }
    for name, change in loaded.get("budgets", {}).items():
        if name not in resources:
            errors.setdefault("budgets", {})[name] = [f"unknown resource {name!r}"]
        elif isinstance(change, str) and resources[name].budget is None:
            errors.setdefault("budgets", {})[name] = [
                f"resource {name!r} has no budget to multiply; give an amount"
            ]
        elif change is None and name in shared:
            errors.setdefault("budgets", {})[name] = [
                f"cannot be unlimited: a constraint takes a share of {name!r}'s budget"
            ]
    tiers = {tier.name for tier in request.tiers}
    for name in loaded.get("targets", {}):
        if name not in tiers:
            errors.setdefault("targets", {})[name] = [f"unknown tier {name!r}"]
    ids = {partner.id for partner in request.partners}
    excluded = set(loaded.get("exclude_partners", ()))
    for index, pid in enumerate(loaded.get("exclude_partners", ())):
        if pid not in ids:
            errors.setdefault("exclude_partners", {})[index] = [f"unknown partner id {pid!r}"]
    if ids and ids <= excluded:
        errors.setdefault("exclude_partners", {})["_schema"] = ["would leave no partners"]
    for index, pin in enumerate(loaded.get("pins", ())):
        if pin.partner_id not in ids:
            errors.setdefault("pins", {}).setdefault(index, {})["partner_id"] = [
                f"unknown partner id {pin.partner_id!r}"
            ]
        elif pin.partner_id in excluded:
            errors.setdefault("pins", {}).setdefault(index, {})["partner_id"] = [
                f"partner {pin.partner_id!r} is excluded by this scenario"
            ]
        if pin.resource not in resources:
            errors.setdefault("pins", {}).setdefault(index, {})["resource"] = [
                f"unknown resource {pin.resource!r}"
            ]
    return errors


def _forecast(request: AllocationRequest, baseline: float, uplift: float) -> AllocationRequest:
    if baseline == 1.0 and uplift == 1.0:
        return request
    return replace(
        request,
        partners=tuple(
            _forecast_partner(partner, baseline, uplift) for partner in request.partners
        ),
    )


def _forecast_partner(partner: Partner, baseline: float, uplift: float) -> Partner:
    def scaled(value: float | None) -> float | None:
        return None if value is None else value * baseline

    return replace(
        partner,
        baseline_gmv=partner.baseline_gmv * baseline,
        baseline_gmv_p10=scaled(partner.baseline_gmv_p10),
        baseline_gmv_p90=scaled(partner.baseline_gmv_p90),
        curves={name: scale_curve(curve, uplift) for name, curve in partner.curves.items()},
        packages=tuple(
            replace(package, uplift=package.uplift * uplift) for package in partner.packages
        ),
    )


def scale_curve(curve: Curve, factor: float) -> Curve:
    """The curve whose output is `factor` times `curve`'s at every amount."""
    if factor == 1.0:
        return curve
    if curve.kind is CurveKind.POINTS:
        return replace(curve, ys=tuple(y * factor for y in curve.ys))
    if curve.kind is CurveKind.LOG:
        return replace(curve, coef=curve.coef * factor)
    if curve.kind is CurveKind.LINEAR:
        return replace(curve, roi=curve.roi * factor)
    return replace(curve, max_uplift=curve.max_uplift * factor)  # saturating, hill
