"""Which constraints limit a plan (docs/insight.md, `explanation.binding`), read off the plan's
exact amounts: no solver internals, so it works for every engine and for stored plans.

A constraint binds when the plan sits at it and something would gain from moving it:

- `budget`: at least `FULL` of the budget is spent (or less than one step is left);
- `max_share`: a partner receives the cap (`max_share` · budget);
- `group_budget`: the group's spend is at its cap (side `max`) or at its floor (`min`);
- `group_count`: exactly `min` matching partners reach the tier;
- `bound`: a partner receives its own `max` bound and its curve still rises there;
- `eligibility`: a partner the rule excludes has a rising curve for the resource;
- `pin`: always (the amount is fixed);
- `one_package`: a matching partner had to take a package.

Marginal values are added by `service.explain`, which re-solves.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.plan import Plan
from models.request import (
    AllocationRequest,
    Bounds,
    Eligibility,
    GroupBudget,
    GroupCount,
    MaxShare,
    OnePackage,
    Pin,
    Where,
)

FULL = 0.995  # a budget this used is binding
_TOL = 1e-6
MAX_LISTED = 20  # partner ids listed per constraint (`count` has them all)


def _where(where: Where) -> dict[str, Any]:
    return dict(where.conditions)


def _listed(ids: list[str]) -> dict[str, Any]:
    return {"partners": ids[:MAX_LISTED], "count": len(ids)}


class _PlanView:
    def __init__(self, request: AllocationRequest, plan: Plan) -> None:
        self.request = request
        self.plan = plan
        self.names = [resource.name for resource in request.resources]
        self.amounts = np.zeros((len(request.partners), len(self.names)))
        self.tier_of: dict[str, str | None] = {}
        self.gmv: dict[str, float] = {}
        index = {partner.id: i for i, partner in enumerate(request.partners)}
        self.index = index
        for allocation in plan.allocations:
            i = index[allocation.partner_id]
            self.amounts[i] = [allocation.amounts.get(name, 0.0) for name in self.names]
            self.tier_of[allocation.partner_id] = allocation.tier
            self.gmv[allocation.partner_id] = allocation.projected_gmv

    def column(self, resource: str) -> np.ndarray:
        return self.amounts[:, self.names.index(resource)]

    def at_or_above(self, value: float, limit: float, unit: float) -> bool:
        return value >= limit - max(_TOL * abs(limit), _TOL * unit)


def find_binding(request: AllocationRequest, plan: Plan) -> list[dict[str, Any]]:
    """Every constraint that limits `plan`, budgets first, in the request's order."""
    view = _PlanView(request, plan)
    found = _budgets(view)
    for rule in request.constraints:
        entry = _rule(view, rule)
        if entry is not None:
            found.append(entry)
    found.extend(_bounds(view))
    return found


def _budgets(view: _PlanView) -> list[dict[str, Any]]:
    found = []
    for resource, report in zip(view.request.resources, view.plan.resources, strict=True):
        if resource.budget is None or report.utilization is None:
            continue
        left = resource.budget - report.allocated
        if report.utilization >= FULL or (resource.step and left < resource.step):
            found.append(
                {"kind": "budget", "resource": resource.name, "utilization": report.utilization}
            )
    return found


def _rule(view: _PlanView, rule: Any) -> dict[str, Any] | None:
    if isinstance(rule, MaxShare):
        return _max_share(view, rule)
    if isinstance(rule, GroupBudget):
        return _group_budget(view, rule)
    if isinstance(rule, GroupCount):
        return _group_count(view, rule)
    if isinstance(rule, Eligibility):
        return _eligibility(view, rule)
    if isinstance(rule, Pin):
        return {
            "kind": "pin",
            "partner_id": rule.partner_id,
            "resource": rule.resource,
            "amount": rule.amount,
            "utilization": 1.0,
        }
    if isinstance(rule, OnePackage):
        return _one_package(view, rule)
    return None


def _max_share(view: _PlanView, rule: MaxShare) -> dict[str, Any] | None:
    budget = view.request.resource(rule.resource).budget
    if budget is None:
        return None
    cap = rule.max_share * budget
    column = view.column(rule.resource)
    at_cap = [
        partner.id
        for i, partner in enumerate(view.request.partners)
        if column[i] > 0 and view.at_or_above(column[i], cap, 1.0)
    ]
    if not at_cap:
        return None
    return {
        "kind": "max_share",
        "resource": rule.resource,
        "max_share": rule.max_share,
        "utilization": float(column.max() / cap) if cap > 0 else 1.0,
        **_listed(at_cap),
    }


def _group_budget(view: _PlanView, rule: GroupBudget) -> dict[str, Any] | None:
    budget = view.request.resource(rule.resource).budget
    if budget is None:
        return None
    column = view.column(rule.resource)
    members = [i for i, p in enumerate(view.request.partners) if rule.where.matches(p)]
    spent = float(column[members].sum()) if members else 0.0
    cap, floor = rule.max_share * budget, rule.min_share * budget
    side = None
    if rule.max_share < 1.0 and view.at_or_above(spent, cap * FULL, 1.0):
        side, limit = "max", cap
    elif floor > 0 and spent <= floor / FULL:
        side, limit = "min", floor
    if side is None:
        return None
    return {
        "kind": "group_budget",
        "resource": rule.resource,
        "where": _where(rule.where),
        "side": side,
        "min_share": rule.min_share,
        "max_share": rule.max_share,
        "spent": spent,
        "utilization": spent / limit if limit > 0 else 1.0,
    }


def _group_count(view: _PlanView, rule: GroupCount) -> dict[str, Any] | None:
    if rule.min <= 0:
        return None
    threshold = view.request.tier(rule.tier).min_gmv
    reached = sum(
        1
        for p in view.request.partners
        if rule.where.matches(p) and view.gmv.get(p.id, p.baseline_gmv) >= threshold
    )
    if reached > rule.min:
        return None
    return {
        "kind": "group_count",
        "tier": rule.tier,
        "where": _where(rule.where),
        "min": rule.min,
        "achieved": reached,
        "utilization": reached / rule.min,
    }


def _rises(view: _PlanView, partner_index: int, resource: str, amount: float) -> bool:
    curve = view.request.partners[partner_index].curves.get(resource)
    if curve is None:
        return False
    return float(curve.value(amount * 1.01 + 1.0)) > float(curve.value(amount))


def _eligibility(view: _PlanView, rule: Eligibility) -> dict[str, Any] | None:
    excluded = [
        partner.id
        for i, partner in enumerate(view.request.partners)
        if not rule.where.matches(partner) and _rises(view, i, rule.resource, 0.0)
    ]
    if not excluded:
        return None
    return {
        "kind": "eligibility",
        "resource": rule.resource,
        "where": _where(rule.where),
        "utilization": None,
        **_listed(excluded),
    }


def _one_package(view: _PlanView, rule: OnePackage) -> dict[str, Any] | None:
    held = [
        allocation.partner_id
        for allocation in view.plan.allocations
        if allocation.package is not None
        and rule.where.matches(view.request.partners[view.index[allocation.partner_id]])
    ]
    if not held:
        return None
    return {"kind": "one_package", "where": _where(rule.where), "utilization": 1.0, **_listed(held)}


def _bounds(view: _PlanView) -> list[dict[str, Any]]:
    """Partners held at their own `max` bound while their curve still rises."""
    found = []
    for r, name in enumerate(view.names):
        held = []
        for i, partner in enumerate(view.request.partners):
            upper = partner.bounds.get(name, Bounds()).max
            amount = float(view.amounts[i, r])
            if upper is None or not math.isfinite(upper) or amount <= 0:
                continue
            if view.at_or_above(amount, upper, 1.0) and _rises(view, i, name, amount):
                held.append(partner.id)
        if held:
            found.append({"kind": "bound", "resource": name, "utilization": 1.0, **_listed(held)})
    return found
