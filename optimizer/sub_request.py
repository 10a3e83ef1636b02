"""The request over a neighbourhood's partners, everyone else holding their amounts: what
the neighbourhood search (`optimizer.neighbourhood`) re-solves with the CBC MILP. Its
shortfall equals the whole plan's and its objective differs by a constant (the GMV, or
the cost, of the partners held), so its optimum is the best plan of the neighbourhood."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from models.curves import CurveColumn, FloatArray
from models.plan import projected_gmv
from models.request import (
    AllocationRequest,
    Bounds,
    Constraint,
    GroupBudget,
    GroupCount,
    MaxShare,
    Pin,
    Resource,
)
from optimizer.arrays import ProblemArrays


def sub_request(
    arrays: ProblemArrays,
    columns: list[CurveColumn],
    amounts: FloatArray,
    inside: NDArray[np.intp],
    time_limit_s: float,
    mip_gap: float,
) -> AllocationRequest | None:
    """The request over the partners `inside`, the others holding `amounts`: None when a
    budget the others hold leaves nothing to share (its group shares would be undefined)."""
    request = arrays.request
    if arrays.packages:
        return None
    mask = np.zeros(arrays.n_partners, dtype=bool)
    mask[inside] = True
    gmv = projected_gmv(request, amounts, None, columns)
    outside_spend = amounts[~mask].sum(axis=0)
    resources: list[Resource] = []
    left = np.full(arrays.n_resources, math.inf)
    for r, resource in enumerate(request.resources):
        if resource.budget is None:
            resources.append(resource)
            continue
        left[r] = resource.budget - float(outside_spend[r])
        if left[r] <= 1e-9 * max(resource.budget, 1.0):
            return None
        resources.append(replace(resource, budget=left[r]))
    names = [resource.name for resource in request.resources]
    inside_ids = {request.partners[int(i)].id for i in inside}
    partners = []
    for i in inside:
        partner = request.partners[int(i)]
        bounds = dict(partner.bounds)
        for name in names:
            _, upper = request.amount_range(partner, name)
            if math.isfinite(upper):
                old = bounds.get(name, Bounds())
                bounds[name] = Bounds(min=old.min, max=upper)
        partners.append(replace(partner, bounds=bounds))
    outside_reach = [int(np.count_nonzero(gmv[~mask] >= t.min_gmv)) for t in request.tiers]
    tiers = tuple(
        replace(t, target=max(t.target - reached, 0))
        for t, reached in zip(request.tiers, outside_reach, strict=True)
    )
    constraints: list[Constraint] = []
    for rule in request.constraints:
        if isinstance(rule, MaxShare):
            continue  # carried by the partners' bounds
        if isinstance(rule, Pin):
            if rule.partner_id in inside_ids:
                constraints.append(rule)
            continue
        if isinstance(rule, GroupBudget):
            r = names.index(rule.resource)
            budget = float(request.resources[r].budget or 0.0)
            members = np.array([rule.where.matches(p) for p in request.partners])
            held = float(amounts[members & ~mask, r].sum())
            low = max(rule.min_share * budget - held, 0.0) / left[r]
            high = max(rule.max_share * budget - held, 0.0) / left[r]
            constraints.append(replace(rule, min_share=min(low, 1.0), max_share=min(high, 1.0)))
            continue
        if isinstance(rule, GroupCount):
            threshold = request.tier(rule.tier).min_gmv
            members = np.array([rule.where.matches(p) for p in request.partners])
            reached = int(np.count_nonzero(members & ~mask & (gmv >= threshold)))
            constraints.append(replace(rule, min=max(rule.min - reached, 0)))
            continue
        constraints.append(rule)
    options = replace(
        request.options,
        time_limit_s=time_limit_s,
        mip_gap=mip_gap,
        plans=1,
        engine="cbc",
        confidence=None,
        explain=None,
    )
    return replace(
        request,
        resources=tuple(resources),
        tiers=tiers,
        partners=tuple(partners),
        constraints=tuple(constraints),
        options=options,
    )
