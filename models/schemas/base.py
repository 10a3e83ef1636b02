"""Schema building blocks: the strict base schema, JSON number/count/scalar fields, named maps
and the `where` partner selector."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from numpy.typing import NDArray

from models.request import COMPARISON_OPERATORS, Where

BoolArray = NDArray[np.bool_]


# `where` reads these as the partner id, so an attribute with such a name is unreachable.
RESERVED_ATTRIBUTES = frozenset({"id", "partner_id"})


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


OPERATOR_LIST = " ".join(sorted(COMPARISON_OPERATORS))
_SCALAR_HINT = "a string, a number or true/false"


def _operator_error(key: str, op: Any, operand: Any) -> str | None:
    if op not in COMPARISON_OPERATORS:
        return f"unknown operator {op!r}; use one of {OPERATOR_LIST}"
    if op == "in":
        if not isinstance(operand, list) or not all(_is_scalar(item) for item in operand):
            return f"'in' takes a list of values ({_SCALAR_HINT})"
    elif not _is_scalar(operand):
        hint = "; use 'in' for a list" if isinstance(operand, list) else ""
        return f"{op!r} takes a single value ({_SCALAR_HINT}){hint}"
    elif (
        op in ("<", "<=", ">", ">=")
        and key not in RESERVED_ATTRIBUTES
        and (isinstance(operand, bool) or not isinstance(operand, int | float))
    ):
        # Attributes compared by order must be numbers (models.schemas.ordered), so a
        # text or true/false operand could never match.
        return f"{op!r} compares numbers; got {operand!r}"
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
                    errors[key] = [f"needs at least one operator ({OPERATOR_LIST})"]
                    continue
                problems = {
                    str(op): [message]
                    for op, operand in condition.items()
                    if (message := _operator_error(key, op, operand))
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


def where_field() -> WhereField:
    return WhereField(
        load_default=Where(),
        metadata={
            "description": "partner selector: every key must hold; a plain value means equality, "
            f"or {{operator: value}} with operators {OPERATOR_LIST}"
        },
    )


NAME = validate.Length(min=1, error="must not be empty")
POSITIVE = validate.Range(min=0, min_inclusive=False, error="must be > 0")
NON_NEGATIVE = validate.Range(min=0, error="must be >= 0")
SHARE = validate.Range(min=0, max=1, error="must be between 0 and 1")
