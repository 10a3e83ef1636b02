"""Per-partner differences between two plans: who gained or lost a tier, whose amounts
moved, by how much their projected GMV changed. Pure functions over domain objects."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.plan import Plan
from models.request import AllocationRequest

# GET /v1/comparisons/{id} lists the differences a page at a time (every partner is in
# the stored summary and in diff.csv); these are its defaults and bound.
DIFF_PAGE_SIZE = 100
MAX_DIFF_PAGE_SIZE = 1000


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
) -> dict[str, Any]:
    """Every partner whose tier or amounts differ between two plans, tier changes first,
    then by the size of the projected-GMV change (`truncated` is always false here;
    a page of the list sets it, see `page_differences`)."""
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
        "partners": rows,
        "truncated": False,
    }


def diff_pages(differences: Sequence[Mapping[str, Any]], page_size: int) -> int:
    """How many pages the longest scenario's list takes (at least 1)."""
    longest = max((len(entry["partners"]) for entry in differences), default=0)
    return max(1, math.ceil(longest / page_size))


def page_differences(
    differences: Sequence[Mapping[str, Any]], page: int, page_size: int
) -> list[dict[str, Any]]:
    """Every scenario's entry with `partners` cut to one page (pages count from 1);
    `truncated` says partners exist outside that page; the counts stay totals."""
    start = (page - 1) * page_size
    paged = []
    for entry in differences:
        rows = list(entry["partners"])
        shown = rows[start : start + page_size]
        paged.append({**entry, "partners": shown, "truncated": len(shown) < len(rows)})
    return paged
