"""The AllocationRequest wire format and the public `parse_request` / `request_to_dict`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema
from marshmallow.error_store import merge_errors

from models.finite import NonFinite, nonfinite_figures
from models.request import AllocationRequest, Objective, Options, Partner
from models.schemas.base import BaseSchema
from models.schemas.constraints import ConstraintField
from models.schemas.errors import RequestValidationError
from models.schemas.options import OptionsSchema
from models.schemas.ordered import non_numeric_errors, ordered_attributes
from models.schemas.partners import FixturePartners, PartnersField
from models.schemas.references import reference_errors
from models.schemas.resources import ResourceSchema, TierSchema


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
        elif isinstance(data.get("partners"), FixturePartners):
            partners = data["partners"].partners
        elif isinstance(data.get("partners"), list):
            partners, inline = data["partners"], True
        elif "partners" not in original_data:
            errors["partners"] = ["Missing data for required field."]
        if partners is not None and not inline and not partners:
            errors.setdefault("partners", []).append("needs a partner")
        errors = merge_errors(
            errors,
            reference_errors(
                resources=data.get("resources"),
                tiers=data.get("tiers"),
                partners=partners,
                inline=inline,
                constraints=data.get("constraints", ()),
            ),
        )
        errors = merge_errors(errors, _group_by_errors(data.get("options"), partners))
        ordered = ordered_attributes(data.get("constraints", ()))
        errors = merge_errors(errors, non_numeric_errors(partners or (), ordered, inline=inline))
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


def _group_by_errors(options: Any, partners: Sequence[Any] | None) -> dict[str, Any]:
    """`options.uncertainty.group_by` must name an attribute some partner has."""
    group_by = options.uncertainty.group_by if isinstance(options, Options) else None
    if group_by is None or partners is None or not all(isinstance(p, Partner) for p in partners):
        return {}
    if any(group_by in p.attributes for p in partners):
        return {}
    known = ", ".join(sorted({key for p in partners for key in p.attributes})[:20]) or "none"
    return {
        "options": {
            "uncertainty": {
                "group_by": [f"no partner has an attribute {group_by!r} (known: {known})"]
            }
        }
    }


def _only_declared(partner: Partner, declared: set[str]) -> Partner:
    if set(partner.curves) <= declared and set(partner.bounds) <= declared:
        return partner
    return replace(
        partner,
        curves={name: curve for name, curve in partner.curves.items() if name in declared},
        bounds={name: bounds for name, bounds in partner.bounds.items() if name in declared},
    )


def parse_request(
    data: Mapping[str, Any],
    *,
    partners: Sequence[Partner] | None = None,
    resolve_fixture: Callable[[str], Sequence[Partner]] | None = None,
    partners_label: str | None = None,
) -> AllocationRequest:
    """Validate JSON-shaped `data` into an AllocationRequest, or raise
    RequestValidationError listing every problem.

    `partners` (already validated, e.g. by `csvio.read_partners_csv`) supplies the
    partners; `data` must then not contain `partners`. Without it, `data["partners"]` is
    an inline list or ``{"fixture": name}``, resolved by `resolve_fixture` (a LookupError
    from it becomes an error on ``partners.fixture``). Curves and bounds that supplied or
    fixture partners hold for undeclared resources are dropped; package amounts of
    undeclared resources are errors.

    Every curve must stay finite over the amounts its partner may get (`models.finite`);
    problems of supplied partners are keyed ``"<partners_label> row <n>, column <c>"``
    when `partners_label` names the CSV file they came from (in row order).
    """
    schema = AllocationRequestSchema(partners=partners, resolve_fixture=resolve_fixture)
    try:
        request: AllocationRequest = schema.load(data)  # type: ignore[arg-type]
    except ValidationError as error:
        raise RequestValidationError(
            error.normalized_messages(), "invalid allocation request"
        ) from None
    problems = nonfinite_figures(request)
    if problems:
        inline = partners is None and isinstance(data.get("partners"), list)
        raise RequestValidationError(
            nonfinite_messages(problems, inline=inline, csv_label=partners_label),
            "invalid allocation request",
        )
    return request


def nonfinite_messages(
    problems: Sequence[NonFinite], *, inline: bool, csv_label: str | None = None
) -> dict[str, Any]:
    """`models.finite` problems keyed like every other error: by field for inline
    partners, by row and column for a CSV file, else under ``partners`` by partner id."""
    errors: dict[str, Any] = {}
    for problem in problems:
        field = problem.field
        if field == "response":
            field = f"response.{problem.resource}"
        if problem.index < 0:
            errors.setdefault("partners", {}).setdefault("_schema", []).append(problem.message)
        elif inline:
            node = errors.setdefault("partners", {}).setdefault(str(problem.index), {})
            for key in field.split(".")[:-1]:
                node = node.setdefault(key, {})
            node.setdefault(field.split(".")[-1], []).append(problem.message)
        elif csv_label is not None:
            column = f"{problem.resource}_curve" if problem.resource else problem.field
            key = f"{csv_label} row {problem.index + 2}, column {column}"
            errors.setdefault(key, []).append(problem.message)
        else:
            errors.setdefault("partners", {}).setdefault("_schema", []).append(
                f"partner {problem.partner_id!r}: {field} {problem.message}"
            )
    return errors


def request_to_dict(request: AllocationRequest) -> dict[str, Any]:
    """The request in its JSON wire format (partners inline); `parse_request` inverts it."""
    dumped: dict[str, Any] = AllocationRequestSchema().dump(request)
    return dumped
