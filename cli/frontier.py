"""`windmaker frontier`: sweep one resource's budget and see what each point achieves,
through `service.frontiers.run_frontier` (the points and summary the API's jobs give)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.inputs import (
    Overrides,
    override_options,
    request_from_files,
    source_options,
    user_errors,
)
from cli.report import gap, table
from models.figures import money
from models.request import AllocationRequest
from service import frontiers


def _numbers(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        message = f"comma-separated numbers, got {text!r}"
        raise click.BadParameter(message, param_hint=option) from None


def _points_table(frontier: dict[str, Any], request: AllocationRequest) -> str:
    unit = request.resource(frontier["resource"]).unit
    rows = []
    for point in frontier["points"]:
        row: dict[str, Any] = {"budget": money(point["budget"], unit), "status": point["status"]}
        if point["status"] != "failed":
            for tier, achieved in point["achieved"].items():
                row[tier] = achieved
            row["shortfall"] = f"{point['weighted_shortfall']:g}"
            row["projected GMV"] = money(point["total_projected_gmv"])
            row["gap"] = gap(point["mip_gap"])
            if point.get("carried_from") is not None:
                row["note"] = f"plan of {money(point['carried_from'], unit)}"
        else:
            row["note"] = point.get("error", "")
        rows.append(row)
    return table(rows, indent="")


@click.command()
@source_options
@override_options
@click.option("--resource", required=True, help="The resource whose budget is swept.")
@click.option("--multipliers", help="Multiples of the base budget, e.g. 0.5,1,1.5,2.")
@click.option("--budgets", help="Absolute budgets, e.g. 2e7,2.5e7,3e7.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the frontier (the API's points) as JSON.",
)
def frontier(
    partners_csv: str | None,
    scenario_path: str | None,
    packages_csv: str | None,
    request_path: str | None,
    fixture: str | None,
    time_limit_s: float | None,
    mip_gap: float | None,
    plans: int | None,
    engine: str | None,
    resource: str,
    multipliers: str | None,
    budgets: str | None,
    json_path: str | None,
) -> None:
    """Solve the request at several budgets of one resource, in parallel, and tabulate
    what each achieves (a larger budget never shows a worse point).

    \b
      windmaker frontier --fixture pilot --resource subsidy --multipliers 0.5,1,1.5,2
      windmaker frontier PARTNERS.csv --scenario S.json --resource fund --budgets 1e7,2e7
    """
    overrides = Overrides(time_limit_s, mip_gap, plans, engine)
    base = request_from_files(
        partners_csv, scenario_path, packages_csv, request_path, fixture, overrides
    )
    with user_errors():
        points = frontiers.frontier_budgets(
            base,
            resource,
            budgets=_numbers(budgets, "--budgets"),
            multipliers=_numbers(multipliers, "--multipliers"),
        )
    click.echo(f"solving {len(points)} budget(s) of {resource} ...", err=True)
    result = frontiers.run_frontier(base, resource, points)
    click.echo(_points_table(result, base))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_path}")
    failed = [p for p in result["points"] if p["status"] == "failed"]
    if failed:
        raise click.ClickException(f"{len(failed)} point(s) failed")
