"""`windmaker solve`: one request, the best plan summarized, files written on request."""

from __future__ import annotations

import click

from cli.explanation import explanation_summary
from cli.inputs import Overrides, override_options, request_from_files, source_options
from cli.progress import progress_options, progress_printer
from cli.report import alternatives_summary, plan_summary, write_outputs
from models.plan import Plan
from models.request import AllocationRequest, DomainError
from optimizer import OptimizerError
from optimizer.progress import Progress, ProgressEvent
from service import solving


def solve_or_fail(request: AllocationRequest, progress: Progress | None) -> list[Plan]:
    """`service.solving.solve_request`; a solver or domain failure is a clean exit 1."""
    try:
        return solving.solve_request(request, progress=progress)
    except (OptimizerError, DomainError) as error:
        raise click.ClickException(f"solve failed: {error}") from None


@click.command()
@source_options
@override_options
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
@click.option(
    "--xlsx",
    "xlsx_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the best plan as an Excel workbook (Summary, Plan, Tiers, Binding; "
    "alternatives next to it).",
)
@click.option(
    "--all-partners",
    is_flag=True,
    help="List every partner in the plan CSV/XLSX, unfunded ones too.",
)
@progress_options
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
    xlsx_path: str | None,
    all_partners: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Solve one allocation request and summarize the best plan.

    \b
      windmaker solve PARTNERS.csv --scenario SCENARIO.json [--packages P.csv] --out PLAN.csv
      windmaker solve --request REQUEST.json --out PLAN.csv --json PLAN.json
      windmaker solve --fixture tiny --time-limit 10 --out PLAN.csv
      windmaker solve --fixture pilot --xlsx PLAN.xlsx --out PLAN.csv --all-partners
    """
    overrides = Overrides(time_limit_s, mip_gap, plans, engine)
    request = request_from_files(
        partners_csv, scenario_path, packages_csv, request_path, fixture, overrides
    )
    progress = progress_printer(quiet, verbose)
    if progress:
        progress(
            ProgressEvent(
                f"solving {request.name or 'request'}: {len(request.partners)} partners, "
                f"{len(request.resources)} resources, {len(request.tiers)} tiers"
            )
        )
    found = solve_or_fail(request, progress)
    if not found:
        raise click.ClickException("no plan was produced")
    click.echo(plan_summary(found[0], request, total=len(found)))
    if found[0].explanation:
        click.echo(explanation_summary(found[0], request))
    if len(found) > 1:
        click.echo("Alternatives:")
        click.echo(alternatives_summary(found))
    written = write_outputs(
        found, request, out, json_path, xlsx=xlsx_path, all_partners=all_partners
    )
    for path in written:
        click.echo(f"wrote {path}")
