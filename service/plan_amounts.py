"""A plan's amounts back in the optimizer's terms, to re-evaluate or extend a plan under a
slightly different request (larger budgets, say) with the exact curves."""

from __future__ import annotations

import numpy as np

from models.plan import NO_PACKAGE, Plan, build_plan
from models.request import AllocationRequest


def plan_amounts(request: AllocationRequest, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """A plan's curve amounts and package choices, as `models.plan.build_plan` takes them."""
    index = {partner.id: i for i, partner in enumerate(request.partners)}
    names = [resource.name for resource in request.resources]
    amounts = np.zeros((len(request.partners), len(names)))
    choice = np.full(len(request.partners), NO_PACKAGE, dtype=np.intp)
    for allocation in plan.allocations:
        i = index[allocation.partner_id]
        partner = request.partners[i]
        amounts[i] = [allocation.amounts.get(name, 0.0) for name in names]
        if allocation.package is not None:
            k = next(k for k, p in enumerate(partner.packages) if p.name == allocation.package)
            choice[i] = k
            amounts[i] -= [partner.packages[k].amounts.get(name, 0.0) for name in names]
    return np.maximum(amounts, 0.0), choice


def rebuild(request: AllocationRequest, plan: Plan) -> Plan:
    """`plan`'s amounts evaluated under `request` (other budgets, say)."""
    amounts, choice = plan_amounts(request, plan)
    return build_plan(
        request, amounts, plan.solver, package_choice=choice, rank=plan.rank, label=plan.label
    )
