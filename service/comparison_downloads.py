"""Downloads of a comparison (docs/comparisons.md): any scenario's plans as the plan CSV
of an allocation, and every per-partner difference as one CSV.

The plan CSV is the allocation's own writer (`models.csvio.plan_to_csv_text`) with the
scenario's request (the base request with that scenario's changes applied), so columns
and rounding are those of `GET /v1/allocations/{id}/plans/{rank}.csv`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from models.csvio import plan_to_csv_text
from models.schemas import plan_from_dict
from models.spreadsheet import cell_value, clean_number
from service.comparisons import prepare_scenarios
from service.errors import Conflict, NotFound
from service.jobs import get_job, stored_request
from service.ports import JobStore
from service.records import COMPARISON, SUCCEEDED, ScenarioResult


def _scenario(store: JobStore, job_id: str, name: str) -> ScenarioResult:
    results = store.scenario_results(job_id)
    found = next((r for r in results if r.name == name), None)
    if found is None:
        known = ", ".join(repr(r.name) for r in results)
        message = f"no scenario {name!r} in comparison {job_id}; its scenarios: {known}"
        raise NotFound(message, {"name": [f"unknown scenario {name!r}"]})
    return found


def scenario_plan_csv(store: JobStore, job_id: str, name: str, rank: int) -> str:
    """Plan `rank` of scenario `name` (`base` for the base) as the plan CSV. Available as
    soon as that scenario succeeded, before the whole comparison ends."""
    job = get_job(store, job_id, COMPARISON)
    result = _scenario(store, job_id, name)
    if result.status != SUCCEEDED:
        detail = f": {result.error}" if result.error else ""
        raise Conflict(
            f"scenario {name!r} is {result.status}{detail}; its plans exist once it succeeded"
        )
    stored = store.plan(job_id, rank, result.idx)
    if stored is None:
        count = len(store.plans(job_id, result.idx))
        message = f"no plan of rank {rank} in scenario {name!r}; it has {count} plan(s)"
        raise NotFound(message, {"rank": [message]})
    comparison = store.comparison(job_id) or {}
    prepared = prepare_scenarios(stored_request(store, job), comparison.get("scenarios", []))
    request = prepared[result.idx].request
    if request is None:  # its changes applied at submission; they cannot fail now
        raise Conflict(f"scenario {name!r} has no request: {prepared[result.idx].error}")
    return plan_to_csv_text(plan_from_dict(stored), request)


def differences_csv(store: JobStore, job_id: str) -> str:
    """Every per-partner difference of a finished comparison, a row per scenario and
    partner (columns in docs/comparisons.md)."""
    job = get_job(store, job_id, COMPARISON)
    summary = (store.comparison(job_id) or {}).get("rows")
    if job.status != SUCCEEDED or not summary:
        raise Conflict(f"the comparison is {job.status}; its differences exist once it succeeded")
    return differences_csv_text(summary)


def _amounts_by_partner(plan: Mapping[str, Any] | None) -> dict[str, Mapping[str, float]]:
    if not plan:
        return {}
    return {row["partner_id"]: row["amounts"] for row in plan.get("allocations", [])}


def differences_csv_text(summary: Mapping[str, Any]) -> str:
    """The CSV of a comparison summary's `differences` (`summarize_comparison`'s shape):
    exact numbers; an amount is 0 where the plan gives the partner nothing, and empty
    where the partner is not in that side's request."""
    rows: Sequence[Mapping[str, Any]] = summary.get("scenarios", [])
    plans = {row["name"]: row.get("plan") for row in rows}
    base_amounts = _amounts_by_partner(plans.get("base"))
    resources: list[str] = []
    for plan in plans.values():
        for resource in (plan or {}).get("resources", []):
            if resource["name"] not in resources:
                resources.append(resource["name"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["scenario", "partner_id", "tier_change", "tier_before", "tier_after"]
    header += ["projected_gmv_before", "projected_gmv_after", "projected_gmv_delta"]
    for resource in resources:
        header += [f"{resource}_before", f"{resource}_after", f"{resource}_delta"]
    writer.writerow([cell_value(name) for name in header])
    for entry in summary.get("differences", []):
        after_amounts = _amounts_by_partner(plans.get(entry["scenario"]))
        for item in entry["partners"]:
            line = [
                entry["scenario"],
                item["partner_id"],
                item["tier_change"] or "",
                item["base_tier"] or "",
                item["scenario_tier"] or "",
                _cell(item["base_projected_gmv"]),
                _cell(item["scenario_projected_gmv"]),
                _cell(item["projected_gmv_delta"]),
            ]
            present_before = item["base_projected_gmv"] is not None
            present_after = item["scenario_projected_gmv"] is not None
            for resource in resources:
                before = _amount(base_amounts, item["partner_id"], resource, present_before)
                after = _amount(after_amounts, item["partner_id"], resource, present_after)
                delta = None if before is None or after is None else after - before
                line += [_cell(before), _cell(after), _cell(delta)]
            # Partner ids and scenario names are planners' text: formula-safe.
            writer.writerow([cell_value(value) for value in line])
    return buffer.getvalue()


def _amount(
    amounts: Mapping[str, Mapping[str, float]], partner: str, resource: str, present: bool
) -> float | None:
    if not present:
        return None
    return float(amounts.get(partner, {}).get(resource, 0.0))


def _cell(value: float | None) -> int | float | str:
    return "" if value is None else clean_number(float(value))
