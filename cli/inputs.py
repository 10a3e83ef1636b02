"""Reading a request from the command line: PARTNERS.csv + --scenario, --request, or
--fixture (+ --scenario), with option overrides, validated by the same
`service.solving.parse_upload` the API uses. Bad input becomes one clear message
and exit status 1 (`click.ClickException`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

import fixtures
from models.request import AllocationRequest, DomainError
from service.solving import Upload, parse_upload


@contextmanager
def user_errors(source: str | None = None) -> Iterator[None]:
    """Turn validation / CSV / domain errors into a ClickException (message, exit 1).

    RequestValidationError (a DomainError) already lists every problem with its field path,
    or, for CSV files, its row and column.
    """
    try:
        yield
    except DomainError as error:
        where = f"{source}: " if source else ""
        raise click.ClickException(f"{where}{error}") from None


def read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise click.ClickException(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: cannot read: {error}") from None


def json_object(path: str) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


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


def source_options(func: Callable[..., Any]) -> Callable[..., Any]:
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


def override_options(func: Callable[..., Any]) -> Callable[..., Any]:
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
    try:
        fixtures.partners_path(name)  # an unknown name fails here, listing the known ones
        data = json_object(scenario_path) if scenario_path else fixtures.scenario(name)
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


def request_from_files(
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
    return upload_from_files(
        partners_csv, scenario_path, packages_csv, request_path, fixture, overrides
    ).request


def upload_from_files(
    partners_csv: str | None,
    scenario_path: str | None,
    packages_csv: str | None,
    request_path: str | None,
    fixture: str | None,
    overrides: Overrides = Overrides(),
) -> Upload:
    """`request_from_files`, with each CSV file's detected encoding, delimiter and rows."""
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
        data = json_object(json_path)
    overrides.apply(data)
    with ExitStack() as files, user_errors():
        partners = files.enter_context(_open_csv(partners_csv)) if partners_csv else None
        packages = files.enter_context(_open_csv(packages_csv)) if packages_csv else None
        return parse_upload(data, partners_csv=partners, packages_csv=packages)


def _open_csv(path: str) -> IO[bytes]:
    try:
        # Bytes: the reader detects the encoding (UTF-8, with or without BOM, or GB18030).
        return open(path, "rb")
    except OSError as error:
        raise click.ClickException(f"{path}: cannot read: {error}") from None
