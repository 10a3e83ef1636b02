"""Turning input into a validated `AllocationRequest`, and solving it.

`solve_request` is the one solve every entry point runs: the CLI's `solve`, `batch` and
`compare`, and the workers (in-process and Celery) for allocation and comparison jobs.
The optimizer checks every plan against the exact curves before returning it
(`optimizer.solve`), so nothing is checked a second time here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from fixtures import load_partners
from models.csvio import MAX_CSV_COLUMNS, CsvFormat, read_packages_table, read_partners_table
from models.plan import Plan
from models.request import AllocationRequest, Partner
from models.schemas import RequestValidationError, ordered_attributes, parse_request
from optimizer import solve
from optimizer.engines import available_engines, known_engines
from optimizer.progress import Progress, ProgressEvent
from optimizer.warm_start import WarmStart
from service.explain import FULL, NONE, explain_plans

StopCheck = Callable[[], bool]
_INVALID = "invalid allocation request"


def solve_request(
    request: AllocationRequest,
    *,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
    explain: bool = True,
    default_explain: str = FULL,
    warm_start: WarmStart | None = None,
) -> list[Plan]:
    """Ranked plans for `request`, best first, each exactly checked by the optimizer and,
    unless `explain` is false, carrying its `explanation` (`service.explain`) at the level
    the request's `options.explain` names, else `default_explain`. `warm_start`: a nearby
    request's plan to start from (a what-if scenario's base; `optimizer.warm_start`)."""
    plans = solve(request, progress=progress, should_stop=should_stop, warm_start=warm_start)
    level = (request.options.explain or default_explain) if explain else NONE
    if level != NONE and plans and not (should_stop is not None and should_stop()):
        if progress is not None:
            progress(ProgressEvent(f"explaining the plan ({level})"))
        explain_plans(request, plans, solve=solve, should_stop=should_stop, level=level)
    return plans


def resolve_fixture(name: str) -> Sequence[Partner]:
    """Partners of a bundled fixture; LookupError (KeyError) for an unknown name."""
    return load_partners(name)


def parse_allocation(
    data: Any,
    *,
    partners_csv: IO[Any] | None = None,
    packages_csv: IO[Any] | None = None,
    max_csv_columns: int = MAX_CSV_COLUMNS,
) -> AllocationRequest:
    """An AllocationRequest from its JSON, with partners inline, from a fixture, or from
    a partners CSV (plus an optional packages CSV)."""
    return parse_upload(
        data,
        partners_csv=partners_csv,
        packages_csv=packages_csv,
        max_csv_columns=max_csv_columns,
    ).request


@dataclass(frozen=True)
class Upload:
    """A parsed request and what was detected in each CSV file it came with, keyed
    ``partners`` / ``packages`` (empty without files)."""

    request: AllocationRequest
    csv_files: dict[str, CsvFormat] = field(default_factory=dict)


def parse_upload(
    data: Any,
    *,
    partners_csv: IO[Any] | None = None,
    packages_csv: IO[Any] | None = None,
    max_csv_columns: int = MAX_CSV_COLUMNS,
) -> Upload:
    """`parse_allocation`, also saying each CSV file's encoding, delimiter and rows."""
    if not isinstance(data, Mapping):
        raise RequestValidationError({"_schema": ["the request must be a JSON object"]}, _INVALID)
    partners = None
    files: dict[str, CsvFormat] = {}
    if partners_csv is not None:
        partners, files["partners"] = read_partners_table(
            partners_csv,
            resources=_resource_names(data),
            numeric=_numeric_attributes(data),
            max_columns=max_csv_columns,
        )
        if packages_csv is not None:
            partners, files["packages"] = read_packages_table(
                packages_csv, partners, max_columns=max_csv_columns
            )
    elif packages_csv is not None:
        raise RequestValidationError(
            {"packages": ["a packages CSV needs a partners CSV part as well"]}, _INVALID
        )
    request = parse_request(
        data,
        partners=partners,
        resolve_fixture=resolve_fixture,
        partners_label=files["partners"].label if "partners" in files else None,
    )
    check_engine(request)
    return Upload(request, files)


def _numeric_attributes(data: Mapping[str, Any]) -> dict[str, str]:
    # Read from the JSON before the request is parsed, so that a CSV cell breaking the
    # rule is named by its row and column rather than by partner.
    constraints = data.get("constraints")
    return ordered_attributes(constraints) if isinstance(constraints, list) else {}


def _resource_names(data: Mapping[str, Any]) -> list[str] | None:
    # The CSV's resource columns are checked against the request's resources.
    resources = data.get("resources")
    if not isinstance(resources, list):
        return None
    return [
        r["name"] for r in resources if isinstance(r, Mapping) and isinstance(r.get("name"), str)
    ]


def check_engine(request: AllocationRequest) -> None:
    """An engine this installation lacks fails at submission, not in the worker.
    (Engines are the optimizer's business, so the domain schema cannot know them.)"""
    engine = request.options.engine
    if engine == "auto" or engine in available_engines():
        return
    known = ", ".join(["auto", *available_engines()])
    why = "not installed here" if engine in known_engines() else "unknown engine"
    raise RequestValidationError(
        {"options": {"engine": [f"{why} {engine!r}; use one of {known}"]}}, _INVALID
    )
