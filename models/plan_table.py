"""A plan as the table planners get (the plan CSV and the XLSX `Plan` sheet).

Columns: `partner_id`, `name`, one column per resource (named exactly after it),
`package` (when the request uses packages), `baseline_gmv`, `tier_before` (the tier
reached at baseline GMV), `projected_gmv`, `tier`, `incremental_gmv`, `p_reach` (when
some forecast has a spread), then one column per partner attribute. Amounts are whole
units or steps already (the optimizer's whole-unit pass); GMV is rounded to the yuan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from models.plan import Allocation, Plan
from models.request import AllocationRequest, Partner
from models.spreadsheet import clean_number

# What a column holds, for number formats: a resource amount, GMV, a probability, anything else.
RESOURCE, GMV, PROBABILITY, GENERAL = "resource", "gmv", "probability", "general"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    resource: str | None = None  # for RESOURCE columns: which one


@dataclass(frozen=True)
class PlanTable:
    columns: list[Column]
    rows: list[list[Any]]

    @property
    def header(self) -> list[str]:
        return [column.name for column in self.columns]


def tier_at(request: AllocationRequest, gmv: float) -> str | None:
    """The highest tier `gmv` reaches (tiers count cumulatively), or None."""
    reached = [tier.name for tier in request.sorted_tiers() if gmv >= tier.min_gmv]
    return reached[-1] if reached else None


def _unfunded(partner: Partner, request: AllocationRequest) -> Allocation:
    return Allocation(
        partner_id=partner.id,
        amounts={resource.name: 0.0 for resource in request.resources},
        baseline_gmv=partner.baseline_gmv,
        projected_gmv=partner.baseline_gmv,
        tier=tier_at(request, partner.baseline_gmv),
        incremental_gmv=0.0,
    )


def _gmv(value: float) -> int | float:
    """GMV to the yuan (people read these; the JSON plan keeps full precision)."""
    return round(value) if math.isfinite(value) else value


def plan_table(plan: Plan, request: AllocationRequest, *, all_partners: bool = False) -> PlanTable:
    """The plan's allocations (or, with `all_partners`, every partner in request order,
    unfunded ones with zero amounts) as a table."""
    partners = {partner.id: partner for partner in request.partners}
    if all_partners:
        given = {allocation.partner_id: allocation for allocation in plan.allocations}
        rows = [given.get(p.id) or _unfunded(p, request) for p in request.partners]
    else:
        rows = list(plan.allocations)
    fixed = {"partner_id", "name", "package", "baseline_gmv", "tier_before", "projected_gmv"}
    fixed |= {"tier", "incremental_gmv", "p_reach"}
    columns = [Column("partner_id", GENERAL), Column("name", GENERAL)]
    columns += [Column(r.name, RESOURCE, r.name) for r in request.resources]
    if request.uses_packages:
        columns.append(Column("package", GENERAL))
    columns += [
        Column("baseline_gmv", GMV),
        Column("tier_before", GENERAL),
        Column("projected_gmv", GMV),
        Column("tier", GENERAL),
        Column("incremental_gmv", GMV),
    ]
    with_reach = plan.uncertainty is not None
    if with_reach:  # docs/uncertainty.md: reach probability of the reported tier
        columns.append(Column("p_reach", PROBABILITY))
    taken = fixed | {r.name for r in request.resources}
    attributes = list(dict.fromkeys(k for a in rows for k in _attributes(partners, a.partner_id)))
    # An attribute named like a plan column keeps its data under a prefixed name.
    columns += [Column(f"attribute.{k}" if k in taken else k, GENERAL) for k in attributes]

    table: list[list[Any]] = []
    for allocation in rows:
        partner = partners.get(allocation.partner_id)
        row: list[Any] = [allocation.partner_id, partner.name if partner else None]
        row += [clean_number(allocation.amounts.get(r.name, 0.0)) for r in request.resources]
        if request.uses_packages:
            row.append(allocation.package)
        row += [
            _gmv(allocation.baseline_gmv),
            tier_at(request, allocation.baseline_gmv),
            _gmv(allocation.projected_gmv),
            allocation.tier,
            _gmv(allocation.incremental_gmv),
        ]
        if with_reach:
            reach = allocation.p_reach
            row.append(None if reach is None else round(reach, 6))
        values = _attributes(partners, allocation.partner_id)
        row += [values.get(k) for k in attributes]
        table.append(row)
    return PlanTable(columns, table)


def _attributes(partners: dict[str, Partner], partner_id: str) -> dict[str, Any]:
    partner = partners.get(partner_id)
    return dict(partner.attributes) if partner is not None else {}
