"""Per-partner differences between two plans: who gained or lost a tier, whose amounts
moved, by how much their projected GMV changed. Pure functions over domain objects."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.plan import Plan
from models.request import AllocationRequest

# Per scenario, at most this many partners are listed in `differences` (the most
# significant first); the counts always cover every partner.
MAX_LISTED_DIFFERENCES = 50


@dataclass(frozen=True)
class _PartnerState:
    tier: str | None
    amounts: Mapping[str, float]
    projected_gmv: float | None  # None: the partner is not in that scenario's request


def _partner_states(request: AllocationRequest, plan: Plan) -> dict[str, _PartnerState]:
    # Partners without an allocation received nothing and reached no tier: their
    # projected GMV is their (possibly scenario-adjusted) baseline.
    states = {
        partner.id: _PartnerState(None, {}, partner.baseline_gmv) for partner in request.partners
    }
    for allocation in plan.allocations:
        states[allocation.partner_id] = _PartnerState(
            allocation.tier, allocation.amounts, allocation.projected_gmv
        )
    return states


def _changed(before: float, after: float) -> bool:
    # Solvers return amounts with float noise; anything below this is not a decision.
    return not math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-6)


def partner_differences(
    base_request: AllocationRequest,
    base_plan: Plan,
    request: AllocationRequest,
    plan: Plan,
    *,
    limit: int = MAX_LISTED_DIFFERENCES,
) -> dict[str, Any]:
    """Partners whose tier or amounts differ between two plans.

    Counts cover every partner; `partners` lists at most `limit` of them, tier changes
    first, then by the size of the projected-GMV change.
    """
    tier_order = {tier.name: rank for rank, tier in enumerate(base_request.sorted_tiers())}
    for rank, tier in enumerate(request.sorted_tiers()):
        tier_order.setdefault(tier.name, rank)
    resources = [resource.name for resource in base_request.resources]
    resources += [r.name for r in request.resources if r.name not in resources]

    before_states = _partner_states(base_request, base_plan)
    after_states = _partner_states(request, plan)
    missing = _PartnerState(None, {}, None)

    rows: list[dict[str, Any]] = []
    gained = lost = 0
    for partner_id in sorted(before_states.keys() | after_states.keys()):
        before = before_states.get(partner_id, missing)
        after = after_states.get(partner_id, missing)
        before_rank = tier_order[before.tier] if before.tier is not None else -1
        after_rank = tier_order[after.tier] if after.tier is not None else -1
        change = None
        if after_rank != before_rank:
            change = "gained" if after_rank > before_rank else "lost"
        amounts = {}
        for name in resources:
            old, new = before.amounts.get(name, 0.0), after.amounts.get(name, 0.0)
            if _changed(old, new):
                amounts[name] = {"base": old, "scenario": new, "delta": new - old}
        if change is None and not amounts:
            continue
        gained += change == "gained"
        lost += change == "lost"
        gmv_delta = (
            after.projected_gmv - before.projected_gmv
            if after.projected_gmv is not None and before.projected_gmv is not None
            else None
        )
        rows.append(
            {
                "partner_id": partner_id,
                "tier_change": change,
                "base_tier": before.tier,
                "scenario_tier": after.tier,
                "base_projected_gmv": before.projected_gmv,
                "scenario_projected_gmv": after.projected_gmv,
                "projected_gmv_delta": gmv_delta,
                "amounts": amounts,
            }
        )
    rows.sort(
        key=lambda row: (
            row["tier_change"] is None,
            -abs(row["projected_gmv_delta"] or 0.0),
            row["partner_id"],
        )
    )
    return {
        "partners_changed": len(rows),
        "tiers_gained": gained,
        "tiers_lost": lost,
        "partners": rows[:limit],
        "truncated": len(rows) > limit,
    }
