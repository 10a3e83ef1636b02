"""`windmaker fixtures`: the bundled partner fixtures."""

from __future__ import annotations

import click

import fixtures
from cli.report import table


@click.command("fixtures")
def list_fixtures() -> None:
    """List the bundled fixtures.

    Use one as `--fixture NAME` here, or as `"partners": {"fixture": NAME}` in a request.
    """
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
