"""The `windmaker` command line: solve, batch, compare, fixtures, serve, worker, keys.

Every solve goes through `api.services.solve_request`, the same service function the API's
jobs call, so a plan printed here is exactly what the API would return. Progress goes to
stderr, summaries to stdout, files for machines via `--out` / `--json` / `--csv`.

Exit status: 0 when a plan was produced (even one that misses its targets, which the
summary says loudly); 1 on bad input or when no plan could be produced; 2 on wrong usage.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import click

from models.plan import Plan, SolveStatus
from models.request import AllocationRequest, DomainError

ProgressCallback = Callable[..., None]

# ---------------------------------------------------------------------------------------
# Errors: every kind of bad input becomes one clear message and exit status 1.
# ---------------------------------------------------------------------------------------


@contextmanager
def _user_errors(source: str | None = None) -> Iterator[None]:
    """Turn validation / CSV / domain errors into a ClickException (message, exit 1).

    RequestValidationError (a DomainError) already lists every problem with its field path,
    or, for CSV files, its row and column.
    """
    try:
        yield
    except DomainError as error:
        where = f"{source}: " if source else ""
        raise click.ClickException(f"{where}{error}") from None


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise click.ClickException(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: cannot read: {error}") from None


def _json_object(path: str) -> dict[str, Any]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------------------------------
# Loading requests: PARTNERS.csv + --scenario, --request, or --fixture (+ --scenario).
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overrides:
    time_limit_s: float | None = None
    mip_gap: float | None = None
    plans: int | None = None
    engine: str | None = None

    def apply(self, data: dict[str, Any]) -> None:
        """Write the overrides into the request's JSON `options` so they are validated
        exactly like the API validates them."""
        given = {key: value for key, value in vars(self).items() if value is not None}
        if not given:
            return
        options = data.setdefault("options", {})
        if isinstance(options, dict):  # anything else: parse_request names the field
            options.update(given)


def _source_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The three ways to name a request, shared by `solve` and `compare`."""
    decorators = [
        click.argument(
            "partners_csv",
            metavar="[PARTNERS.csv]",
            required=False,
            type=click.Path(exists=True, dir_okay=False),
        ),
        click.option(
            "--scenario",
            "scenario_path",
            type=click.Path(exists=True, dir_okay=False),
            help="AllocationRequest JSON without partners (with PARTNERS.csv or --fixture).",
        ),
        click.option(
            "--packages",
            "packages_csv",
            type=click.Path(exists=True, dir_okay=False),
            help="Packages CSV (partner_id, package, one column per resource, uplift).",
        ),
        click.option(
            "--request",
            "request_path",
            type=click.Path(exists=True, dir_okay=False),
            help="A whole AllocationRequest JSON, exactly as the API takes it.",
        ),
        click.option(
            "--fixture",
            "fixture",
            help="A bundled fixture (see `windmaker fixtures`); its scenario unless --scenario.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _override_options(func: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.option(
            "--time-limit",
            "time_limit_s",
            type=click.FloatRange(min=0, min_open=True),
            help="Solver time limit in seconds.",
        ),
        click.option(
            "--gap",
            "mip_gap",
            type=click.FloatRange(min=0),
            help="Relative MIP gap at which to stop (e.g. 0.001).",
        ),
        click.option(
            "--plans", type=click.IntRange(min=1), help="How many alternative plans to return."
        ),
        click.option("--engine", help="Solver engine: auto or a named one."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _fixture_request_data(name: str, scenario_path: str | None) -> dict[str, Any]:
    import fixtures

    try:
        fixtures.partners_path(name)  # an unknown name fails here, listing the known ones
        data = _json_object(scenario_path) if scenario_path else fixtures.scenario(name)
    except KeyError as error:
        raise click.ClickException(f"--fixture: {error.args[0]}") from None
    _reject_partners(data, scenario_path or f"fixture {name!r} scenario")
    data["partners"] = {"fixture": name}
    return data


def _reject_partners(data: dict[str, Any], source: str) -> None:
    if "partners" in data:
        raise click.ClickException(
            f"{source}: field 'partners' is not allowed here: the partners come from the "
            "CSV file or fixture (use --request for a whole request)"
        )


def load_request(
    partners_csv: str | None,
    scenario_path: str | None,
    packages_csv: str | None,
    request_path: str | None,
    fixture: str | None,
    overrides: Overrides = Overrides(),
) -> AllocationRequest:
    """Build and validate the AllocationRequest named by exactly one source, through the
    same `parse_allocation` the API uses (validation messages name every bad field, or
    the CSV file, row and column)."""
    from api.services import parse_allocation

    sources = [s for s in (partners_csv, request_path, fixture) if s]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of PARTNERS.csv, --request or --fixture")
    if packages_csv and not partners_csv:
        raise click.UsageError("--packages goes with PARTNERS.csv")
    if request_path and scenario_path:
        raise click.UsageError("--scenario does not go with --request (it is a whole request)")
    if partners_csv and not scenario_path:
        raise click.UsageError("PARTNERS.csv needs --scenario SCENARIO.json")

    if fixture:
        data = _fixture_request_data(fixture, scenario_path)
    else:
        json_path = request_path or scenario_path
        assert json_path is not None  # guaranteed by the usage checks above
        data = _json_object(json_path)
    overrides.apply(data)
    with ExitStack() as files, _user_errors():
        partners = files.enter_context(_open_csv(partners_csv)) if partners_csv else None
        packages = files.enter_context(_open_csv(packages_csv)) if packages_csv else None
        return parse_allocation(data, partners_csv=partners, packages_csv=packages)


def _open_csv(path: str) -> IO[str]:
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as error:
        raise click.ClickException(f"{path}: cannot read: {error}") from None


# ---------------------------------------------------------------------------------------
# Solving, with stage messages on stderr.
# ---------------------------------------------------------------------------------------


_NUMBER = re.compile(r"[-+]?\d[\d.,]*(?:e[-+]?\d+)?%?")
REPEAT_INTERVAL_S = 2.0


def _stderr_progress(verbose: bool = False) -> ProgressCallback:
    """Stage messages on stderr with the elapsed time.

    Engines report every iteration ("gmv it 57: bound ..."); unless `verbose`, a message
    that differs from the last shown one only in its numbers is shown at most every
    REPEAT_INTERVAL_S, so a new stage always appears but iterations do not flood.
    """
    started = time.monotonic()
    last_kind, last_at = "", -math.inf

    def show(message: Any, *_args: Any, **_kwargs: Any) -> None:
        nonlocal last_kind, last_at
        now = time.monotonic()
        text = str(message)
        kind = _NUMBER.sub("#", text)
        if not verbose and kind == last_kind and now - last_at < REPEAT_INTERVAL_S:
            return
        last_kind, last_at = kind, now
        click.echo(f"[{now - started:6.1f}s] {text}", err=True)

    return show


def _progress_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Every progress message (by default repeats are thinned).",
    )(func)
    return click.option("-q", "--quiet", is_flag=True, help="No progress messages.")(func)


def _progress(quiet: bool, verbose: bool) -> ProgressCallback | None:
    return None if quiet else _stderr_progress(verbose)


def _solve(request: AllocationRequest, progress: ProgressCallback | None) -> list[Plan]:
    from api.services import solve_request
    from optimizer import OptimizerError

    try:
        return solve_request(request, progress=progress)
    except (OptimizerError, DomainError) as error:
        raise click.ClickException(f"solve failed: {error}") from None


# ---------------------------------------------------------------------------------------
# Formatting: readable figures and tables.
# ---------------------------------------------------------------------------------------

_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def human(value: float | None) -> str:
    """1.234e9 -> '1.234B'; four significant digits are what a planner reads."""
    if value is None:
        return "-"
    for size, suffix in _SUFFIXES:
        if abs(value) >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


def money(value: float | None, unit: str = "CNY") -> str:
    if value is None:
        return "unlimited"
    if unit == "CNY":
        return ("-¥" if value < 0 else "¥") + human(abs(value))
    return f"{human(value)} {unit}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def gap(value: float | None) -> str:
    # Significant digits, not decimals: a 0.001% gap must not print as 0.00%; float
    # noise below a millionth of a percent is no gap.
    if value is None:
        return "-"
    return "0%" if abs(value) < 1e-8 else f"{100 * value:.2g}%"


def table(rows: Sequence[dict[str, Any]], indent: str = "  ") -> str:
    if not rows:
        return f"{indent}(none)"
    import pandas as pd

    text = pd.DataFrame(list(rows)).fillna("").to_string(index=False)
    return "\n".join(indent + line for line in text.splitlines())


def _loud(lines: Sequence[str]) -> str:
    bar = "!" * 72
    body = "\n".join(f"!!! {line}" for line in lines)
    return click.style(f"{bar}\n{body}\n{bar}", fg="red", bold=True)


def _warnings(plan: Plan) -> list[str]:
    lines = []
    status = plan.solver.status
    if status == SolveStatus.INFEASIBLE:
        lines.append("INFEASIBLE: no allocation satisfies the hard constraints; this is the")
        lines.append("closest plan found, NOT a plan that meets the request.")
    elif status == SolveStatus.ERROR:
        lines.append("SOLVER ERROR: the engine failed; the plan below is only a fallback.")
    short = [tier for tier in plan.tiers if tier.shortfall > 0]
    if short:
        parts = ", ".join(f"{t.name} {t.achieved}/{t.target} ({t.shortfall} short)" for t in short)
        lines.append(f"TARGETS NOT MET: {parts}")
        lines.append(f"weighted shortfall {plan.objective.weighted_shortfall:g}")
    if lines and plan.binding_constraints:
        lines.append("binding: " + "; ".join(plan.binding_constraints))
    return lines


def plan_summary(plan: Plan, request: AllocationRequest, total: int = 1) -> str:
    """The terminal summary of one plan: tiers, spend, objective, solver."""
    units = {resource.name: resource.unit for resource in request.resources}
    solver = plan.solver
    out = []
    title = f"Plan {plan.rank} of {total} ({plan.label}) — {request.name or 'request'}"
    out.append(click.style(title, bold=True))
    warnings = _warnings(plan)
    if warnings:
        out.append(_loud(warnings))
    elif solver.status == SolveStatus.TIME_LIMIT:
        out.append(
            click.style("Stopped at the time limit: the plan may not be optimal.", fg="yellow")
        )
    out.append("Tiers:")
    out.append(
        table(
            [
                {
                    "tier": t.name,
                    "min GMV": money(t.min_gmv),
                    "achieved": t.achieved,
                    "target": t.target,
                    "shortfall": t.shortfall,
                }
                for t in plan.tiers
            ]
        )
    )
    out.append("Spend:")
    out.append(
        table(
            [
                {
                    "resource": r.name,
                    "allocated": money(r.allocated, units.get(r.name, "")),
                    "budget": money(r.budget, units.get(r.name, "")),
                    "utilization": percent(r.utilization),
                }
                for r in plan.resources
            ]
        )
    )
    objective = plan.objective
    out.append(
        f"Objective ({objective.mode}): weighted shortfall {objective.weighted_shortfall:g}, "
        f"total projected GMV {money(objective.total_projected_gmv)}, "
        f"incremental GMV {money(objective.incremental_gmv)}, "
        f"total cost {money(objective.total_cost)}"
    )
    out.append(
        f"Solver: {solver.engine}, status {solver.status}, gap {gap(solver.mip_gap)}, "
        f"bound {money(solver.best_bound) if solver.best_bound is not None else '-'}, "
        f"{solver.seconds:.2f} s"
    )
    if solver.shortfall_proven is not None:
        proof = "proven least" if solver.shortfall_proven else "not proven least"
        floor = f", bound {solver.shortfall_bound:g}" if solver.shortfall_bound is not None else ""
        out.append(f"Stage 1: weighted shortfall {objective.weighted_shortfall:g} {proof}{floor}")
    funded = sum(1 for a in plan.allocations if any(v > 0 for v in a.amounts.values()))
    out.append(f"Partners funded: {funded} of {len(request.partners)}")
    return "\n".join(out)


def alternatives_summary(plans: Sequence[Plan]) -> str:
    return table(
        [
            {
                "rank": p.rank,
                "label": p.label,
                "status": str(p.solver.status),
                "weighted shortfall": f"{p.objective.weighted_shortfall:g}",
                **{f"{t.name}": f"{t.achieved}/{t.target}" for t in p.tiers},
                "projected GMV": money(p.objective.total_projected_gmv),
                "cost": money(p.objective.total_cost),
            }
            for p in plans
        ]
    )


# ---------------------------------------------------------------------------------------
# Output files.
# ---------------------------------------------------------------------------------------


def _alternative_path(out: Path, rank: int) -> Path:
    return out.with_name(f"{out.stem}.rank{rank}{out.suffix or '.csv'}")


def write_outputs(
    plans: Sequence[Plan], request: AllocationRequest, out: str | None, json_path: str | None
) -> list[Path]:
    """Plan CSV(s) and the JSON plan list; returns the paths written."""
    from models.csvio import write_plan_csv
    from models.schemas import plan_to_dict

    written: list[Path] = []
    try:
        if out:
            for plan in plans:
                # Rank 1 goes exactly where asked; alternatives next to it.
                path = Path(out) if plan.rank == 1 else _alternative_path(Path(out), plan.rank)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("w", newline="", encoding="utf-8") as handle:
                    write_plan_csv(plan, request, handle)
                written.append(path)
        if json_path:
            path = Path(json_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            plan_list = [plan_to_dict(plan) for plan in plans]
            path.write_text(json.dumps(plan_list, indent=2) + "\n", encoding="utf-8")
            written.append(path)
    except OSError as error:
        raise click.ClickException(f"cannot write {error.filename}: {error.strerror}") from None
    return written


# ---------------------------------------------------------------------------------------
# Commands.
# ---------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Windmaker: allocate incentive resources so partners reach their GMV tiers."""


@main.command()
@_source_options
@_override_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the best plan's allocations as CSV (alternatives next to it).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the full plan list (the API's plan shape) as JSON.",
)
@_progress_options
def solve(
    partners_csv: str | None,
    scenario_path: str | None,
    packages_csv: str | None,
    request_path: str | None,
    fixture: str | None,
    time_limit_s: float | None,
    mip_gap: float | None,
    plans: int | None,
    engine: str | None,
    out: str | None,
    json_path: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Solve one allocation request and summarize the best plan.

    \b
      windmaker solve PARTNERS.csv --scenario SCENARIO.json [--packages P.csv] --out PLAN.csv
      windmaker solve --request REQUEST.json --out PLAN.csv --json PLAN.json
      windmaker solve --fixture tiny --time-limit 10 --out PLAN.csv
    """
    overrides = Overrides(time_limit_s, mip_gap, plans, engine)
    request = load_request(
        partners_csv, scenario_path, packages_csv, request_path, fixture, overrides
    )
    progress = _progress(quiet, verbose)
    if progress:
        progress(
            f"solving {request.name or 'request'}: {len(request.partners)} partners, "
            f"{len(request.resources)} resources, {len(request.tiers)} tiers"
        )
    found = _solve(request, progress)
    if not found:
        raise click.ClickException("no plan was produced")
    click.echo(plan_summary(found[0], request, total=len(found)))
    if len(found) > 1:
        click.echo("Alternatives:")
        click.echo(alternatives_summary(found))
    for path in write_outputs(found, request, out, json_path):
        click.echo(f"wrote {path}")


# --- batch -----------------------------------------------------------------------------


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
    whole = [p for p in scenario_paths if "partners" in _json_object(str(p))]
    partial = [p for p in scenario_paths if p not in whole]
    if partial and not fixtures:
        names = ", ".join(str(p) for p in partial)
        raise click.UsageError(f"scenario files without partners need --fixture: {names}")

    def loader(**kwargs: Any) -> Callable[[], AllocationRequest]:
        def load() -> AllocationRequest:
            return load_request(
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
        found = _solve(request, progress=None)
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


@main.command()
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
@_override_options
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
        import pandas as pd

        pd.DataFrame([_batch_record(result) for result in results]).to_csv(csv_path, index=False)
        click.echo(f"wrote {csv_path}")
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} runs failed")


# --- compare ---------------------------------------------------------------------------


def _load_scenarios(path: str, base: AllocationRequest) -> Any:
    """The what-if scenarios of CHANGES.json, every one checked against the base before
    anything is solved (as the API does at submission)."""
    from models.scenario import parse_scenarios
    from models.schemas import RequestValidationError

    data = _read_json(path)
    if isinstance(data, dict) and "scenarios" in data:
        data = data["scenarios"]
    with _user_errors(path):
        try:
            return parse_scenarios(data, base)
        except RequestValidationError as error:
            raise _with_scenario_names(error, data) from None


def _with_scenario_names(error: Any, data: Any) -> Any:
    """`scenarios.0.changes...` -> `scenarios.0 (name).changes...`: a planner knows the
    scenarios by name, not by position."""
    from models.schemas import RequestValidationError

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
        put("solver", name, f"{kpis['solver_status']} gap {gap(kpis['mip_gap'])}")
    table_rows = [{"": label, **values} for label, values in lines.items()]
    return table(table_rows, indent="")


def _signed(text: str, value: float) -> str:
    return f"+{text}" if value > 0 else text


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


@main.command()
@_source_options
@_override_options
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
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="Partner differences to show per scenario.",
)
@_progress_options
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
    top: int,
    quiet: bool,
    verbose: bool,
) -> None:
    """Compare what-if scenarios against a base request, side by side.

    \b
      windmaker compare --fixture pilot --changes whatif.json --json comparison.json
      windmaker compare PARTNERS.csv --scenario BASE.json --changes whatif.json
    """
    from api.comparisons import run_comparison

    overrides = Overrides(time_limit_s, mip_gap, plans, engine)
    base = load_request(partners_csv, scenario_path, packages_csv, request_path, fixture, overrides)
    scenarios = _load_scenarios(changes_path, base)
    from api.services import solve_request

    comparison = run_comparison(
        base, scenarios, solve=solve_request, progress=_progress(quiet, verbose)
    )
    click.echo(_kpi_table(comparison, base))
    click.echo(_differences_text(comparison, top))
    if json_path:
        Path(json_path).write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_path}")
    failed = [row["name"] for row in comparison["scenarios"] if row["status"] != "succeeded"]
    if failed:
        raise click.ClickException(f"{len(failed)} scenario(s) failed: {', '.join(failed)}")


# --- fixtures, serve, worker, keys -----------------------------------------------------


@main.command("fixtures")
def list_fixtures() -> None:
    """List the bundled fixtures.

    Use one as `--fixture NAME` here, or as `"partners": {"fixture": NAME}` in a request.
    """
    import fixtures

    rows = [
        {
            "name": info.name,
            "partners": info.partners,
            "resources": ", ".join(info.resources),
            "scenario": "yes" if info.has_scenario else "no",
            "packages": "yes" if info.has_packages else "no",
            "description": info.description,
        }
        for info in fixtures.list_fixtures()
    ]
    click.echo(table(rows, indent=""))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="gunicorn worker processes.",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Request threads per worker.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option("--access-log", is_flag=True, help="Log every request.")
def serve(
    host: str, port: int, workers: int, threads: int, log_level: str, access_log: bool
) -> None:
    """Run the HTTP API.

    SQLite and an in-process job runner unless WINDMAKER_DATABASE_URL /
    WINDMAKER_BROKER_URL say otherwise.
    """
    from api.server import run

    run(host, port, workers, threads, log_level=log_level, access_log=access_log)


@main.command()
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Solver processes (default: WINDMAKER_WORKER_CONCURRENCY or CPU count).",
)
@click.option(
    "--log-level",
    "loglevel",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option("--pool", help="Celery pool implementation (e.g. prefork, solo).")
def worker(concurrency: int | None, loglevel: str, pool: str | None) -> None:
    """Run a Celery worker for solves and comparisons.

    Needs WINDMAKER_BROKER_URL (and the same WINDMAKER_DATABASE_URL as the server).
    """
    from api.celery_app import run_worker

    run_worker(concurrency=concurrency, loglevel=loglevel.upper(), pool=pool)


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["planner", "viewer"]))
@click.option("--name", default=None, help="A note on who or what uses the key.")
def keys_create(role: str, name: str | None) -> None:
    """Create a key; its token is printed once."""
    from api.auth import create_key

    key_id, token = create_key(role, name=name)
    click.echo(f"key id: {key_id}")
    click.echo(f"token:  {token}")
    click.echo("Store the token now: it is not shown again.", err=True)


@keys.command("list")
def keys_list() -> None:
    """List API keys (never their tokens)."""
    from api.auth import list_keys

    def when(moment: Any) -> str:
        return moment.isoformat(timespec="seconds") if moment is not None else "-"

    click.echo(
        table(
            [
                {
                    "id": key.id,
                    "name": key.name or "-",
                    "role": key.role,
                    "status": "active" if key.revoked_at is None else "revoked",
                    "created": when(key.created_at),
                    "last used": when(key.last_used_at),
                }
                for key in list_keys()
            ],
            indent="",
        )
    )


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: its token stops working at once."""
    from api.auth import revoke_key

    if not revoke_key(key_id):
        raise click.ClickException(f"no active key with id {key_id!r}")
    click.echo(f"revoked {key_id}")


if __name__ == "__main__":
    main()
