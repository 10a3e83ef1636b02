"""The terminal summary of a plan's `explanation` (docs/insight.md): what binds and what a little
more of it would buy, who just misses a tier, and what meeting every target would take."""

from __future__ import annotations

from typing import Any

import click

from cli.report import percent, table
from models.figures import human, money
from models.plan import Plan
from models.request import AllocationRequest

NEAR_MISSES_SHOWN = 10


def _limit(entry: dict[str, Any]) -> str:
    kind = entry["kind"]
    if kind == "budget":
        return f"budget of {entry['resource']}"
    if kind == "max_share":
        return f"max_share {entry['max_share']:g} of {entry['resource']}"
    if kind == "group_budget":
        side = "cap" if entry["side"] == "max" else "floor"
        return f"group {side} of {entry['resource']} where {entry['where']}"
    if kind == "group_count":
        return f"at least {entry['min']} at {entry['tier']} where {entry['where']}"
    if kind == "pin":
        return f"pin {entry['partner_id']} {entry['resource']} = {human(entry['amount'])}"
    if kind == "eligibility":
        return f"eligibility for {entry['resource']} where {entry['where']}"
    if kind == "bound":
        return f"partner max bound on {entry['resource']}"
    return f"one package where {entry.get('where')}"


def _marginal(entry: dict[str, Any], units: dict[str, str]) -> str:
    value = entry.get("marginal_value")
    if not value:
        return "-"
    unit = units.get(entry.get("resource", ""), "")
    delta = value["delta"]
    text = (
        f"+{money(delta, unit)}: GMV {money(value['gmv'] * delta)}, "
        f"shortfall {value['weighted_shortfall'] * delta:+g}"
    )
    return text if value.get("proven") else f"{text} (not proven optimal)"


def _held(entry: dict[str, Any]) -> str:
    if "count" in entry:
        return f"{entry['count']} partner(s)"
    return percent(entry.get("utilization")) if entry.get("utilization") is not None else ""


def explanation_summary(plan: Plan, request: AllocationRequest) -> str:
    """Binding limits, near misses and to_targets, for the terminal."""
    explanation = plan.explanation
    if not explanation:
        return ""
    units = {resource.name: resource.unit for resource in request.resources}
    out = [click.style("Why this plan:", bold=True), "Binding limits:"]
    out.append(
        table(
            [
                {"limit": _limit(e), "holds": _held(e), "1% more buys": _marginal(e, units)}
                for e in explanation["binding"]
            ]
        )
    )
    misses = explanation["near_misses"][:NEAR_MISSES_SHOWN]
    out.append(f"Near misses (cheapest extra to the next tier, {len(misses)} shown):")
    out.append(
        table(
            [
                {
                    "partner": m["partner_id"],
                    "next tier": m["tier"],
                    "GMV gap": money(m["gmv_gap"]),
                    "extra": ", ".join(
                        f"{name} {money(amount, units.get(name, ''))}"
                        for name, amount in m["cheapest_extra"].items()
                    ),
                    "cost": money(m["extra_cost"]),
                }
                for m in misses
            ]
        )
    )
    to_targets = explanation.get("to_targets")
    if to_targets:
        out.append(_to_targets_line(to_targets, units))
    scope = explanation.get("scope") or {}
    if scope.get("level") == "basic":
        out.append("(explain: basic — no marginal values or to_targets; ask for full to get them)")
    elif scope.get("skipped"):
        out.append(f"({scope['skipped']} re-solve(s) skipped for time: their values are '-')")
    return "\n".join(out)


def _to_targets_line(to_targets: dict[str, Any], units: dict[str, str]) -> str:
    extra = ", ".join(
        f"{name} +{money(amount, units.get(name, ''))}"
        for name, amount in to_targets["extra"].items()
        if amount > 0
    )
    if not to_targets["met"]:
        why = to_targets.get("reason") or (
            f"not reachable even with budgets lifted ({extra or 'no extra'}); "
            f"weighted shortfall {to_targets['weighted_shortfall']:g} remains"
        )
        return click.style(f"To targets: not met: {why}", fg="yellow")
    cost = money(to_targets["extra_cost"])
    return f"To meet every target: {extra or 'no extra budget'} (extra cost {cost})"
