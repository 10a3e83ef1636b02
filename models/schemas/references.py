"""Cross-section checks of a request: unique names and references that resolve."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from models.request import GroupBudget, MaxShare, Partner, Pin, Resource, Where
from models.schemas.base import RESERVED_ATTRIBUTES


def _get(item: Any, name: str) -> Any:
    """A field of a loaded object, or of the partial dict marshmallow keeps for an item
    that failed to load (so references are still checked when something else is wrong)."""
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def duplicates(names: Iterable[Any]) -> Iterator[tuple[int, Any]]:
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


def reference_errors(
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
    for index, name in duplicates(_get(r, "name") for r in resources or ()):
        add(("resources", index, "name"), f"duplicate resource name {name!r}")
    for index, name in duplicates(_get(t, "name") for t in tiers or ()):
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
