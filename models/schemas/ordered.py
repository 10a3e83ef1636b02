"""Attributes compared by order in a `where` must be numbers.

`"north" < 60` cannot be decided, and `Where.matches` treats it as no match; a single
`49%` cell among numbers would thus quietly drop a partner from an eligibility or group
rule. So every attribute that some `where` compares with `<`, `<=`, `>` or `>=` must hold
a number wherever a partner has it (a partner without it simply never matches).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.request import Partner, Where
from models.schemas.base import RESERVED_ATTRIBUTES

ORDERING_OPERATORS = ("<", "<=", ">", ">=")
_MAX_LISTED = 50  # partners named per attribute; a million bad rows need not all be listed


def ordered_attributes(constraints: Sequence[Any]) -> dict[str, str]:
    """{attribute: why it must be numeric} for every attribute a constraint's `where`
    compares by order. Takes loaded constraints or their JSON (anything else is skipped:
    it has its own error)."""
    found: dict[str, str] = {}
    for index, rule in enumerate(constraints):
        where = rule.get("where") if isinstance(rule, Mapping) else getattr(rule, "where", None)
        conditions = where.conditions if isinstance(where, Where) else where
        if not isinstance(conditions, Mapping):
            continue
        for key, condition in conditions.items():
            if not isinstance(key, str) or key in RESERVED_ATTRIBUTES:
                continue
            if isinstance(condition, Mapping):
                ops = [op for op in ORDERING_OPERATORS if op in condition]
                if ops:
                    found.setdefault(key, f"constraints.{index}.where compares it with {ops[0]!r}")
    return found


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def non_numeric_errors(
    partners: Sequence[Any], ordered: Mapping[str, str], *, inline: bool
) -> dict[str, Any]:
    """Errors for partners whose ordered attribute is not a number: under
    ``partners.<i>.attributes.<key>`` for inline partners, else under ``partners``."""
    errors: dict[str, Any] = {}
    if not ordered:
        return errors
    for key, why in ordered.items():
        listed = 0
        for index, partner in enumerate(partners):
            if not isinstance(partner, Partner) or key not in partner.attributes:
                continue
            value = partner.attributes[key]
            if is_number(value):
                continue
            listed += 1
            if listed > _MAX_LISTED:
                continue
            message = f"must be a number, not {value!r} ({why})"
            if inline:
                node = errors.setdefault("partners", {}).setdefault(index, {})
                node.setdefault("attributes", {})[key] = [message]
            else:
                errors.setdefault("partners", []).append(f"partner {partner.id!r}: {key} {message}")
        if listed > _MAX_LISTED:
            more = f"... and {listed - _MAX_LISTED} more partners with a non-numeric {key}"
            if inline:
                errors["partners"].setdefault("_schema", []).append(more)
            else:
                errors["partners"].append(more)
    return errors
