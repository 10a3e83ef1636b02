"""`windmaker batch`: many fixtures × scenarios solved, one summary table."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pandas as pd

from cli.inputs import Overrides, json_object, override_options, request_from_files
from cli.report import gap, money, table
from cli.solve import solve_or_fail
from models.plan import Plan
from models.request import AllocationRequest
from models.spreadsheet import formula_safe


@dataclass(frozen=True)
class BatchRun:
    fixture: str
    scenario: str
    load: Callable[[], AllocationRequest]

    @property
    def label(self) -> str:
        return f"{self.fixture} × {self.scenario}"


def _expand_json_paths(paths: Sequence[str]) -> list[Path]:
    expanded: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise click.ClickException(f"--scenario: no *.json files in directory {path}")
            expanded += found
        else:
            expanded.append(path)
    return expanded


def _batch_runs(
    fixtures: Sequence[str],
    scenarios: Sequence[str],
    requests: Sequence[str],
    overrides: Overrides,
) -> list[BatchRun]:
    """Whole requests run once each; partner-less scenarios run on every fixture; a
    fixture without scenarios runs its bundled one."""
    runs = []
    scenario_paths = _expand_json_paths(scenarios)
    whole = [p for p in scenario_paths if "partners" in json_object(str(p))]
    partial = [p for p in scenario_paths if p not in whole]
    if partial and not fixtures:
        names = ", ".join(str(p) for p in partial)
        raise click.UsageError(f"scenario files without partners need --fixture: {names}")

    def loader(**kwargs: Any) -> Callable[[], AllocationRequest]:
        def load() -> AllocationRequest:
            return request_from_files(
                None,
                kwargs.get("scenario"),
                None,
                kwargs.get("request"),
                kwargs.get("fixture"),
                overrides,
            )

        return load

    for path in [*map(Path, requests), *whole]:
        runs.append(BatchRun("(request)", path.name, loader(request=str(path))))
    for fixture in fixtures:
        if not partial:
            runs.append(BatchRun(fixture, "(bundled)", loader(fixture=fixture)))
        for path in partial:
            runs.append(BatchRun(fixture, path.name, loader(fixture=fixture, scenario=str(path))))
    if not runs:
        raise click.UsageError("nothing to run: give --fixture, --scenario or --request")
    return runs


@dataclass
class BatchResult:
    run: BatchRun
    plan: Plan | None
    request: AllocationRequest | None
    error: str | None
    seconds: float


def _run_one(run: BatchRun) -> BatchResult:
    started = time.monotonic()
    try:
        request = run.load()
        found = solve_or_fail(request, progress=None)
    except click.ClickException as error:
        return BatchResult(run, None, None, error.format_message(), time.monotonic() - started)
    except Exception as error:  # one broken run must not lose the table of the others
        message = f"{type(error).__name__}: {error}"
        return BatchResult(run, None, None, message, time.monotonic() - started)
    plan = found[0] if found else None
    problem = None if plan else "no plan was produced"
    return BatchResult(run, plan, request, problem, time.monotonic() - started)


def _batch_record(result: BatchResult) -> dict[str, Any]:
    """Raw figures of one run (the CSV row); the table formats them."""
    record: dict[str, Any] = {
        "fixture": result.run.fixture,
        "scenario": result.run.scenario,
        "status": str(result.plan.solver.status) if result.plan else "failed",
    }
    plan = result.plan
    if plan is not None:
        for tier in plan.tiers:
            record[f"{tier.name}_achieved"] = tier.achieved
            record[f"{tier.name}_target"] = tier.target
        record["weighted_shortfall"] = plan.objective.weighted_shortfall
        for resource in plan.resources:
            record[f"spend_{resource.name}"] = resource.allocated
        record["total_projected_gmv"] = plan.objective.total_projected_gmv
        record["mip_gap"] = plan.solver.mip_gap
    record["seconds"] = round(result.seconds, 3)
    record["error"] = result.error or ""
    return record


def _batch_row(result: BatchResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "fixture": result.run.fixture,
        "scenario": result.run.scenario,
        "status": str(result.plan.solver.status) if result.plan else "FAILED",
    }
    plan, request = result.plan, result.request
    if plan is not None and request is not None:
        units = {resource.name: resource.unit for resource in request.resources}
        for tier in plan.tiers:
            row[tier.name] = f"{tier.achieved}/{tier.target}"
        row["shortfall"] = f"{plan.objective.weighted_shortfall:g}"
        for resource in plan.resources:
            row[f"spend {resource.name}"] = money(resource.allocated, units[resource.name])
        row["GMV"] = money(plan.objective.total_projected_gmv)
        row["gap"] = gap(plan.solver.mip_gap)
    row["seconds"] = f"{result.seconds:.1f}"
    return row


@click.command()
@click.option("--fixture", "fixtures", multiple=True, help="A bundled fixture (repeatable).")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Path(exists=True),
    help="Scenario JSON file or a directory of them (repeatable).",
)
@click.option(
    "--request",
    "requests",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A whole AllocationRequest JSON (repeatable).",
)
@override_options
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the summary table (raw figures) as CSV.",
)
def batch(
    fixtures: tuple[str, ...],
    scenarios: tuple[str, ...],
    requests: tuple[str, ...],
    time_limit_s: float | None,
    mip_gap: float | None,
    plans: int | None,
    engine: str | None,
    csv_path: str | None,
) -> None:
    """Solve many fixtures × scenarios and print one summary table.

    \b
      windmaker batch --fixture tiny --fixture pilot --scenario a.json --scenario more/
      windmaker batch --request r1.json --request r2.json --csv summary.csv
    """
    overrides = Overrides(time_limit_s, mip_gap, plans, engine)
    runs = _batch_runs(fixtures, scenarios, requests, overrides)
    results = []
    with click.progressbar(
        runs,
        label=f"Solving {len(runs)} runs",
        file=sys.stderr,
        item_show_func=lambda run: run.label if run else "",
    ) as bar:
        for run in bar:
            results.append(_run_one(run))
    click.echo(table([_batch_row(result) for result in results], indent=""))
    failed = [result for result in results if result.plan is None]
    for result in failed:
        click.echo(click.style(f"FAILED {result.run.label}: {result.error}", fg="red"), err=True)
    short = [r for r in results if r.plan is not None and r.plan.objective.weighted_shortfall > 0]
    if short:
        labels = ", ".join(result.run.label for result in short)
        click.echo(
            click.style(f"TARGETS NOT MET in {len(short)} run(s): {labels}", fg="red", bold=True)
        )
    if csv_path:
        records = [
            {formula_safe(k): formula_safe(v) if isinstance(v, str) else v for k, v in r.items()}
            for r in map(_batch_record, results)
        ]  # labels and errors are text a spreadsheet must not run (docs/exports.md)
        pd.DataFrame(records).to_csv(csv_path, index=False)
        click.echo(f"wrote {csv_path}")
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} runs failed")
