"""The `windmaker` command line: solve, batch, compare, frontier, report, fixtures, serve, worker,
keys, adopt, audit.

Every solve goes through `service.solving.solve_request`, the same service function the
API's workers call, so a plan printed here is exactly what the API would return. Progress
goes to stderr, summaries to stdout, files for machines via `--out` / `--json` / `--csv`.

Exit status: 0 when a plan was produced (even one that misses its targets, which the
summary says loudly); 1 on bad input or when no plan could be produced; 2 on wrong usage.
"""

from __future__ import annotations

import click

from cli.batch import batch
from cli.compare import compare
from cli.fixture_list import list_fixtures
from cli.frontier import frontier
from cli.html_report import report
from cli.keys import keys
from cli.provenance import adopt, audit
from cli.serve import serve, worker
from cli.solve import solve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Windmaker: allocate incentive resources so partners reach their GMV tiers."""


for command in (
    solve, batch, compare, frontier, report, list_fixtures, serve, worker, keys, adopt, audit
):  # fmt: skip
    main.add_command(command)


if __name__ == "__main__":
    main()
