"""`windmaker compare`: what-if scenarios against a base request, side by side, through
`service.comparisons.run_comparison` (the loop the API's workers run too)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click

from adapters.exports import comparison_workbook
from cli.inputs import (
    Overrides,
    override_options,
    read_json,
    request_from_files,
    source_options,
    user_errors,
)
from cli.progress import progress_options, progress_printer
from cli.report import gap, human, money, table
from models.request import AllocationRequest
from models.scenario import parse_scenarios
from models.schemas import RequestValidationError
from service import comparisons


def _load_scenarios(path: str, base: AllocationRequest) -> Any:
    """The what-if scenarios of CHANGES.json, every one checked against the base before
    anything is solved (as the API does at submission)."""
    data = read_json(path)
    if isinstance(data, dict) and "scenarios" in data:
        data = data["scenarios"]
    with user_errors(path):
        try:
            return parse_scenarios(data, base)
        except RequestValidationError as error:
            raise _with_scenario_names(error, data) from None


def _with_scenario_names(error: Any, data: Any) -> Any:
    """`scenarios.0.changes...` -> `scenarios.0 (name).changes...`: a planner knows the
    scenarios by name, not by position."""
    by_index = error.messages.get("scenarios")
    if not isinstance(by_index, dict) or not isinstance(data, list):
        return error
    named = {}
    for key, value in by_index.items():
        item = data[int(key)] if key.isdigit() and int(key) < len(data) else None
        name = item.get("name") if isinstance(item, dict) else None
        named[f"{key} ({name})" if isinstance(name, str) else key] = value
    return RequestValidationError({**error.messages, "scenarios": named}, error.summary)


def _kpi_table(comparison: dict[str, Any], request: AllocationRequest) -> str:
    units = {resource.name: resource.unit for resource in request.resources}
    rows = comparison["scenarios"]
    base = rows[0]["kpis"] if rows and rows[0]["name"] == "base" else None
    lines: dict[str, dict[str, str]] = {}

    def put(label: str, name: str, text: str) -> None:
        lines.setdefault(label, {})[name] = text

    def delta(value: float, base_value: float | None, fmt: Callable[[float], str]) -> str:
        if base_value is None or abs(value - base_value) < 1e-9:
            return fmt(value)
        sign = "+" if value > base_value else "-"
        return f"{fmt(value)} ({sign}{fmt(abs(value - base_value))})"

    for row in rows:
        name, kpis = row["name"], row["kpis"]
        put("status", name, row["status"] if kpis else "FAILED")
        if kpis is None:
            continue
        is_base = row["name"] == "base"
        for tier, achieved in kpis["achieved"].items():
            target = kpis["target"].get(tier)
            base_achieved = None if is_base or base is None else base["achieved"].get(tier)
            text = delta(achieved, base_achieved, lambda v: f"{v:g}")
            put(f"{tier} achieved", name, f"{text} / {target}")
        put(
            "weighted shortfall",
            name,
            delta(
                kpis["weighted_shortfall"],
                None if is_base or base is None else base["weighted_shortfall"],
                lambda v: f"{v:g}",
            ),
        )
        for resource, amount in kpis["spend"].items():
            unit = units.get(resource, "")
            base_amount = None if is_base or base is None else base["spend"].get(resource)
            put(f"spend {resource}", name, delta(amount, base_amount, partial(money, unit=unit)))
        put(
            "projected GMV",
            name,
            delta(
                kpis["total_projected_gmv"],
                None if is_base or base is None else base["total_projected_gmv"],
                money,
            ),
        )
        for tier, p in (kpis.get("p_target") or {}).items():
            put(f"{tier} P(≥ target)", name, f"{p:.3f}")
        put("solver", name, f"{kpis['solver_status']} gap {gap(kpis['mip_gap'])}")
    table_rows = [{"": label, **values} for label, values in lines.items()]
    return table(table_rows, indent="")


def _differences_text(comparison: dict[str, Any], top: int) -> str:
    out = []
    for entry in comparison["differences"]:
        out.append(
            click.style(
                f"{entry['scenario']} vs base: {entry['partners_changed']} partners changed, "
                f"{entry['tiers_gained']} gained a tier, {entry['tiers_lost']} lost one",
                bold=True,
            )
        )
        rows = []
        for item in entry["partners"][:top]:
            amounts = ", ".join(
                f"{name} {'+' if change['delta'] > 0 else '-'}{human(abs(change['delta']))}"
                for name, change in item["amounts"].items()
            )
            rows.append(
                {
                    "partner": item["partner_id"],
                    "tier": f"{item['base_tier'] or '-'} -> {item['scenario_tier'] or '-'}",
                    "GMV change": "-"
                    if item["projected_gmv_delta"] is None
                    else money(item["projected_gmv_delta"]),
                    "amount changes": amounts or "-",
                }
            )
        out.append(table(rows))
    for row in comparison["scenarios"]:
        if row["status"] != "succeeded":
            out.append(click.style(f"FAILED {row['name']}: {row['error']}", fg="red", bold=True))
    return "\n".join(out)


def _write_file(path: str, data: bytes) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    except OSError as error:
        raise click.ClickException(f"cannot write {error.filename}: {error.strerror}") from None


@click.command()
@source_options
@override_options
@click.option(
    "--changes",
    "changes_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help='JSON list of {"name", "changes"} what-if scenarios.',
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the comparison (the API's comparison result shape) as JSON.",
)
@click.option(
    "--xlsx",
    "xlsx_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the comparison as an Excel workbook (Summary, Differences, a plan per scenario).",
)
@click.option(
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="Partner differences to show per scenario.",
)
@progress_options
def compare(
    partners_csv: str | None,
    scenario_path: str | None,
    packages_csv: str | None,
    request_path: str | None,
    fixture: str | None,
    time_limit_s: float | None,
    mip_gap: float | None,
    plans: int | None,
    engine: str | None,
    changes_path: str,
    json_path: str | None,
    xlsx_path: str | None,
    top: int,
    quiet: bool,
    verbose: bool,
) -> None:
    """Compare what-if scenarios against a base request, side by side.

    \b
      windmaker compare --fixture pilot --changes whatif.json --json comparison.json
      windmaker compare PARTNERS.csv --scenario BASE.json --changes whatif.json
      windmaker compare --fixture pilot --changes whatif.json --xlsx comparison.xlsx
    """
    overrides = Overrides(time_limit_s, mip_gap, plans, engine)
    base = request_from_files(
        partners_csv, scenario_path, packages_csv, request_path, fixture, overrides
    )
    scenarios = _load_scenarios(changes_path, base)
    comparison = comparisons.run_comparison(
        base, scenarios, progress=progress_printer(quiet, verbose)
    )
    click.echo(_kpi_table(comparison, base))
    click.echo(_differences_text(comparison, top))
    if json_path:
        Path(json_path).write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_path}")
    if xlsx_path:
        _write_file(xlsx_path, comparison_workbook(comparison, base))
        click.echo(f"wrote {xlsx_path}")
    failed = [row["name"] for row in comparison["scenarios"] if row["status"] != "succeeded"]
    if failed:
        raise click.ClickException(f"{len(failed)} scenario(s) failed: {', '.join(failed)}")
