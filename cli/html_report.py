"""`windmaker report`: one self-contained HTML file of a plan list or a comparison, with
the planner page's charts and tables, for sending by e-mail (`adapters.browser.report`)."""

from __future__ import annotations

from typing import Any

import click

from adapters.browser.report import ReportError, request_context, write_report
from cli.inputs import json_object, read_json


@click.command("report")
@click.argument("data_path", metavar="PLANS.json", type=click.Path(dir_okay=False))
@click.option(
    "--out", "-o", "out", required=True, type=click.Path(dir_okay=False), help="HTML file to write"
)
@click.option(
    "--request",
    "request_path",
    type=click.Path(dir_okay=False),
    help="the AllocationRequest (or scenario) JSON the plans came from: adds units, and "
    "partner names and attributes when its partners are inline or a fixture",
)
@click.option("--fixture", help="the bundled fixture the plans came from (units, names)")
@click.option("--title", help="the report's title")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
def report(
    data_path: str,
    out: str,
    request_path: str | None,
    fixture: str | None,
    title: str | None,
    lang: str,
) -> None:
    """Write PLANS.json (`solve --json`, `compare --json`, or a job from the API) as one
    self-contained HTML report: no server and no internet needed to open it.

    \b
      windmaker solve --fixture pilot --out plan.csv --json plans.json
      windmaker report plans.json --fixture pilot --out report.html
    """
    data = read_json(data_path)
    context: dict[str, Any] = {}
    if request_path:
        context = request_context(json_object(request_path))
    elif fixture:
        context = _fixture_context(fixture)
    try:
        path = write_report(data, out, title=title, lang=lang, **context)
    except ReportError as error:
        raise click.ClickException(f"{data_path}: {error}") from None
    except OSError as error:
        raise click.ClickException(f"cannot write {error.filename}: {error.strerror}") from None
    click.echo(f"wrote {path}")


def _fixture_context(name: str) -> dict[str, Any]:
    import fixtures

    try:
        request = {**fixtures.scenario(name), "partners": {"fixture": name}}
    except KeyError as error:
        raise click.BadParameter(str(error.args[0]), param_hint="--fixture") from None
    return request_context(request)
