"""`windmaker adopt` and `windmaker audit`: adopt a stored plan for its programme and read
the audit log, in the configured database (the one `windmaker serve` uses)."""

from __future__ import annotations

import getpass
import json
from typing import Any

import click

from adapters.store import default_store
from cli.report import table
from service import provenance
from service.errors import ServiceError
from service.records import AUDIT_ACTIONS


def cli_actor() -> str:
    """Who acts from the command line: the OS user, or "cli" when it has none."""
    try:
        return getpass.getuser() or "cli"
    except (KeyError, OSError):  # no passwd entry / no login name in a bare container
        return "cli"


def _when(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


@click.command("adopt")
@click.argument("job_id")
@click.argument("rank", type=click.IntRange(min=1))
def adopt(job_id: str, rank: int) -> None:
    """Make plan RANK of allocation JOB_ID the adopted plan of its programme."""
    try:
        view, created = provenance.adopt(default_store(), job_id, rank, by=cli_actor())
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    if created:
        click.echo(f"adopted plan {rank} of {job_id} for programme {view['programme']!r}")
    else:
        click.echo(f"plan {rank} of {job_id} already is the adopted plan of {view['programme']!r}")


@click.command("audit")
@click.option("--action", type=click.Choice(AUDIT_ACTIONS), default=None, help="Only this action.")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def audit(action: str | None, limit: int, as_json: bool) -> None:
    """The newest audit entries: submissions, cancellations, adoptions, key changes."""
    entries, total = provenance.audit_log(default_store(), page=1, page_size=limit, action=action)
    if as_json:
        for entry in entries:
            click.echo(json.dumps({**entry, "at": _when(entry["at"])}, sort_keys=True))
        return
    rows = [
        {
            "when": _when(entry["at"]),
            "who": entry["actor"],
            "action": entry["action"],
            "target": entry["target"],
            "details": json.dumps(entry["details"], sort_keys=True),
        }
        for entry in entries
    ]
    click.echo(table(rows, indent=""))
    if total > len(entries):
        click.echo(f"({len(entries)} of {total} entries; --limit shows more)", err=True)
