"""`to_targets` of an explanation (docs/insight.md): the cheapest extra budget per resource
with which every missed target is met, found by `min_cost` re-solves with the budgets lifted.

The lifts are tried in `LIFTS` order, cheapest first:

1. budgets ×4 with each partner's `max_share` cap held at today's amount: a larger budget
   would raise the caps, and a plan that uses the raised caps makes the share rule ask
   for an inflated budget (a partner at `a` needs a budget of `a / max_share`);
2. budgets ×4 with the caps growing with them, for programmes where a target needs some
   partner above today's cap (holding the caps then misses the target at any budget);
3. budgets ×16, caps growing.

The budgets reported are what the min-cost plan spends, raised where a `max_share` or group
cap needs a larger total, rounded up to steps (else whole units) and never below today's;
that plan is re-checked exactly under them (`verified`). Before any re-solve,
`unreachable` asks whether some tier has fewer partners able to reach it at any budget than
its target: then no re-solve can help and `met: false` says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from models.check import check_plan
from models.plan import Plan, projected_gmv
from models.request import AllocationRequest, GroupBudget, MaxShare, Objective, Resource
from service.plan_amounts import rebuild

# (budget factor, whether each partner's `max_share` cap grows with the budget)
LIFTS = ((4.0, False), (4.0, True), (16.0, True))
HEADROOM = 0.01  # reported budgets above what the min-cost plan needs, where raised
# "At any budget": every budget this many times over (curves are evaluated at finite amounts).
CEILING_FACTOR = 1000.0

# Solves a lifted request (warm-started from the plan) given how many lifts may still
# follow; None when it failed or was skipped for time.
Resolve = Callable[[AllocationRequest, int], Plan | None]
NO_TIME = "no re-solve finished in the explanation's time share"


def find_to_targets(request: AllocationRequest, plan: Plan, resolve: Resolve) -> dict[str, Any]:
    """`to_targets` for `plan` (which misses a target)."""
    reason = unreachable(request)
    if reason is not None:
        return not_met(reason, plan)
    # Where holding the caps alone puts a target out of reach, that lift is not tried.
    lifts = [
        (factor, grow)
        for factor, grow in LIFTS
        if grow or unreachable(request, caps_held=True) is None
    ]
    result = None
    for step, (factor, caps_grow) in enumerate(lifts):
        lifted = lifted_request(request, factor, caps_grow=caps_grow)
        found = resolve(lifted, len(lifts) - step)
        if found is None:
            continue
        result = needed_budgets(request, lifted, found, factor)
        if result["met"]:
            return result
    if result is None:
        return not_met(NO_TIME, plan)
    shortfall = f"a weighted shortfall of {result['weighted_shortfall']:g}"
    if result["status"] == "optimal":
        result["reason"] = f"not met even with every budget ×{LIFTS[-1][0]:g}: {shortfall} remains"
    else:  # the re-solve stopped at its time limit: a plan meeting them may still exist
        result["reason"] = (
            f"no plan meeting every target found in the explanation's time share (the last "
            f"re-solve stopped {result['status']} with {shortfall})"
        )
    return result


def not_met(reason: str, plan: Plan) -> dict[str, Any]:
    return {
        "met": False,
        "budgets": {},
        "extra": {},
        "extra_cost": None,
        "weighted_shortfall": plan.objective.weighted_shortfall,
        "status": None,
        "verified": False,
        "note": None,
        "reason": reason,
    }


def unreachable(request: AllocationRequest, *, caps_held: bool = False) -> str | None:
    """Why no budget meets the targets, when a tier has fewer partners able to reach it
    than its target; None otherwise. Each partner is taken at its most of every resource
    (its own bound, else `CEILING_FACTOR` × the budget, or today's `max_share` cap when
    `caps_held`; a pin's amount; nothing where ineligible). Partners with packages count
    as able (a safe over-count)."""
    caps = {
        rule.resource: rule.max_share * (request.resource(rule.resource).budget or math.inf)
        for rule in request.constraints
        if caps_held and isinstance(rule, MaxShare)
    }
    pins = request.pins()
    amounts = np.zeros((len(request.partners), len(request.resources)))
    able = np.zeros(len(request.partners), dtype=bool)
    for i, partner in enumerate(request.partners):
        able[i] = bool(partner.packages)
        for r, resource in enumerate(request.resources):
            if (partner.id, resource.name) in pins:
                amounts[i, r] = pins[(partner.id, resource.name)]
            elif request.eligible(partner, resource.name) and resource.name in partner.curves:
                bound = partner.bounds.get(resource.name)
                most = bound.max if bound is not None and bound.max is not None else math.inf
                if resource.budget is not None:
                    most = min(most, CEILING_FACTOR * resource.budget)
                most = min(most, caps.get(resource.name, math.inf))
                if math.isinf(most):
                    able[i] = True  # no finite ceiling to evaluate: assume it can
                else:
                    amounts[i, r] = most
    with np.errstate(all="ignore"):
        gmv = projected_gmv(request, amounts)
    for tier in request.sorted_tiers():
        count = int(np.count_nonzero(able | (gmv >= tier.min_gmv)))
        if count < tier.target:
            return (
                f"at most {count} partners can reach tier {tier.name} at any budget (their "
                f"curves level off below {tier.min_gmv:g} or their bounds stop them); the "
                f"target is {tier.target}"
            )
    return None


def lifted_request(
    request: AllocationRequest, factor: float, *, caps_grow: bool
) -> AllocationRequest:
    """Budgets × factor, `min_cost`; unless `caps_grow`, each partner's `max_share` cap is
    held at today's amount."""
    resources = tuple(
        replace(r, budget=r.budget * factor) if r.budget is not None else r
        for r in request.resources
    )
    rules = request.constraints
    if not caps_grow:
        rules = tuple(
            replace(rule, max_share=rule.max_share / factor) if isinstance(rule, MaxShare) else rule
            for rule in rules
        )
    return replace(request, resources=resources, constraints=rules, objective=Objective.MIN_COST)


def needed_budgets(
    request: AllocationRequest, lifted: AllocationRequest, found: Plan, factor: float
) -> dict[str, Any]:
    """The least budgets under which `found` (solved under `lifted`) still holds."""
    spent = {report.name: report.allocated for report in found.resources}
    amounts = total_amounts_of(lifted, found)
    needed: dict[str, float] = {}
    for r, resource in enumerate(request.resources):
        need = max(resource.budget or 0.0, spent[resource.name])
        for rule in request.constraints:
            if isinstance(rule, MaxShare) and rule.resource == resource.name:
                need = max(need, float(amounts[:, r].max()) / rule.max_share)
            if isinstance(rule, GroupBudget) and rule.resource == resource.name:
                members = [i for i, p in enumerate(request.partners) if rule.where.matches(p)]
                need = max(need, float(amounts[members, r].sum()) / rule.max_share)
        # Headroom over the plan's exact spend: a re-solve with budgets tight to the yuan
        # can miss the plan that fits them (the MILP works on approximated curves).
        if need > (resource.budget or 0.0):
            need *= 1 + HEADROOM
        needed[resource.name] = _round_up(need, resource)
    verified = _verified(request, needed, found)
    note = None
    if not verified:
        # A group floor (min_share) grows with the budget: the rounded-up least budgets
        # may ask more of a group than the plan gives it. The lifted budgets hold it.
        needed = {r.name: r.budget for r in lifted.resources if r.budget is not None}
        note = f"budgets ×{factor:g}: the cheapest plan needs them as lifted (a group floor)"
        verified = _verified(request, needed, found)
    extra = {
        r.name: max(0.0, needed[r.name] - r.budget)
        for r in request.resources
        if r.budget is not None
    }
    return {
        "met": found.objective.weighted_shortfall == 0,
        "budgets": {name: value for name, value in needed.items() if value},
        "extra": extra,
        "extra_cost": sum(request.resource(name).unit_cost * v for name, v in extra.items()),
        "weighted_shortfall": found.objective.weighted_shortfall,
        "status": str(found.solver.status),
        "verified": verified,
        "note": note,
        "reason": None,
    }


def total_amounts_of(request: AllocationRequest, plan: Plan) -> np.ndarray:
    """Per partner and resource, everything the plan gives (packages included)."""
    index = {partner.id: i for i, partner in enumerate(request.partners)}
    names = [resource.name for resource in request.resources]
    amounts = np.zeros((len(request.partners), len(names)))
    for allocation in plan.allocations:
        amounts[index[allocation.partner_id]] = [allocation.amounts.get(n, 0.0) for n in names]
    return amounts


def _round_up(amount: float, resource: Resource) -> float:
    # Budgets a planner can hand over: whole steps, else whole units.
    unit = resource.step or 1.0
    return math.ceil(amount / unit - 1e-9) * unit


def _verified(request: AllocationRequest, budgets: dict[str, float], found: Plan) -> bool:
    resources = tuple(
        replace(r, budget=budgets[r.name]) if r.budget is not None else r for r in request.resources
    )
    priced = replace(request, resources=resources)
    return not check_plan(priced, rebuild(priced, found))
