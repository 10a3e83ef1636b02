"""Independent checks of what the service returns, done in the test process with the
domain code: plans and plan CSVs re-checked against the exact curves."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Any

from fixtures import load_partners, scenario
from models.check import assert_plan_valid
from models.plan import Allocation, Plan
from models.request import AllocationRequest
from models.schemas import parse_request, plan_from_dict


def fixture_request(name: str, **options: Any) -> dict[str, Any]:
    """The bundled scenario of fixture `name`, partners by reference, options overridden."""
    body = dict(scenario(name))
    body["partners"] = {"fixture": name}
    body["options"] = {**body.get("options", {}), **options}
    return body


def local_request(body: dict[str, Any]) -> AllocationRequest:
    """The same request as the service sees it, built here."""
    return parse_request(body, resolve_fixture=load_partners)


def check_plans(request: AllocationRequest, plans: list[dict[str, Any]]) -> list[Plan]:
    """Every returned plan passes the exact checker; ranks run 1..n."""
    parsed = [plan_from_dict(plan) for plan in plans]
    assert [plan.rank for plan in parsed] == list(range(1, len(parsed) + 1))
    for plan in parsed:
        assert_plan_valid(request, plan)
    return parsed


def check_plan_csv(request: AllocationRequest, plan: Plan, text: str) -> None:
    """The CSV holds exactly the plan's allocations, and its figures are the exact ones:
    the plan with its allocations replaced by the CSV rows still passes the checker,
    which recomputes every GMV and tier from the amounts with the exact curves."""
    reader = csv.DictReader(io.StringIO(text))
    resources = [resource.name for resource in request.resources]
    package = ["package"] if request.uses_packages else []
    tail = ["baseline_gmv", "projected_gmv", "tier", "incremental_gmv"]
    if plan.uncertainty is not None:  # docs/uncertainty.md: forecasts with a spread add p_reach
        tail.append("p_reach")
    assert reader.fieldnames == ["partner_id", *resources, *package, *tail]
    rows = list(reader)
    allocations = [
        Allocation(
            partner_id=row["partner_id"],
            amounts={name: float(row[name]) for name in resources},
            baseline_gmv=float(row["baseline_gmv"]),
            projected_gmv=float(row["projected_gmv"]),
            tier=row["tier"] or None,
            incremental_gmv=float(row["incremental_gmv"]),
            package=(row.get("package") or None) if package else None,
            p_reach=float(row["p_reach"]) if "p_reach" in row else None,
        )
        for row in rows
    ]
    assert [a.partner_id for a in allocations] == [a.partner_id for a in plan.allocations]
    assert_plan_valid(request, replace(plan, allocations=allocations))
