"""Independent checks of what the service returns, done in the test process with the
domain code: plans and plan CSVs re-checked against the exact curves."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Any

from fixtures import load_partners, scenario
from models.check import assert_plan_valid
from models.plan import Plan
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
    the plan with its amounts replaced by the CSV's still passes the checker (which
    recomputes every GMV and tier from the amounts with the exact curves), and the CSV's
    GMV figures are the plan's to the yuan (docs/exports.md)."""
    reader = csv.DictReader(io.StringIO(text))
    resources = [resource.name for resource in request.resources]
    package = ["package"] if request.uses_packages else []
    tail = ["baseline_gmv", "tier_before", "projected_gmv", "tier", "incremental_gmv"]
    if plan.uncertainty is not None:  # docs/uncertainty.md: forecasts with a spread add p_reach
        tail.append("p_reach")
    columns = ["partner_id", "name", *resources, *package, *tail]
    assert reader.fieldnames is not None
    assert reader.fieldnames[: len(columns)] == columns
    rows = list(reader)
    assert [row["partner_id"] for row in rows] == [a.partner_id for a in plan.allocations]
    allocations = []
    for row, exact in zip(rows, plan.allocations, strict=True):
        for name in ("baseline_gmv", "projected_gmv", "incremental_gmv"):
            assert float(row[name]) == round(getattr(exact, name)), (row["partner_id"], name)
        assert (row["tier"] or None) == exact.tier
        assert (row.get("package") or None if package else None) == exact.package
        amounts = {name: float(row[name]) for name in resources}
        allocations.append(replace(exact, amounts=amounts))
    assert_plan_valid(request, replace(plan, allocations=allocations))
