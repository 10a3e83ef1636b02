"""Partners / packages / plan CSV ⇄ domain objects (SPEC §3).

Reading is vectorised over rows (pandas parses, numpy checks whole columns), so a
million-row partners file loads in seconds; only the domain objects are built row by row.
Problems are collected, not raised one at a time, and reported by
`RequestValidationError` with one key per cell: ``"partners.csv row 7, column
subsidy_scale"``. Rows are numbered as a spreadsheet shows them: the header is row 1, so
the first data row is row 2. At most `MAX_REPORTED` problems are listed, then a
``"<file>": ["... and N more problems"]`` entry.

Parsing rules: cells are UTF-8 text; an empty cell means "not given" (so "NA" is a
region, not a missing value); partner ids and names are text, stripped of surrounding
spaces. An attribute column is typed as a whole: numbers when every non-empty cell is a
number (whole numbers become ints), true/false when every cell is one, text otherwise.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from itertools import repeat
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.curves import CURVE_PARAMETERS, Curve, CurveKind, FloatArray
from models.plan import Plan
from models.request import AllocationRequest, Bounds, Package, Partner
from models.schemas import (
    NUMERIC_CURVE_PARAMETERS,
    RESERVED_ATTRIBUTES,
    RequestValidationError,
    curve_parameter_errors,
    points_errors,
)

Source = str | Path | IO[str] | IO[bytes]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

MAX_REPORTED = 50
PARTNER_COLUMNS = ("partner_id", "name", "baseline_gmv", "baseline_gmv_p10", "baseline_gmv_p90")
# Per resource R, the columns `R_<suffix>`.
RESOURCE_SUFFIXES = ("curve", *NUMERIC_CURVE_PARAMETERS, "points", "min", "max")
PACKAGE_COLUMNS = ("partner_id", "package", "uplift")
_KINDS = {str(kind) for kind in CurveKind}
_MANGLED = re.compile(r"^(?P<name>.*)\.\d+$")
_PARSER_LINE = re.compile(r"line (\d+)")


class _Problems:
    """Problems found in one file, gathered as whole row sets so that a million bad
    cells cost one array, and rendered (at most MAX_REPORTED of them) only at the end."""

    def __init__(self, label: str):
        self.label = label
        self._cells: list[tuple[IntArray, str, str | Callable[[int], str]]] = []
        self._columns: dict[str, list[str]] = {}

    def cells(
        self, rows: BoolArray | IntArray, column: str, message: str | Callable[[int], str]
    ) -> None:
        index = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows, np.intp)
        if index.size:
            self._cells.append((index, column, message))

    def column(self, column: str, message: str) -> None:
        self._columns.setdefault(column, []).append(message)

    def __bool__(self) -> bool:
        return bool(self._cells or self._columns)

    def raise_if_any(self) -> None:
        if not self:
            return
        messages: dict[str, list[str]] = {}
        for column, texts in self._columns.items():
            messages[f"{self.label} column {column}"] = list(texts)
        total = sum(len(texts) for texts in self._columns.values())
        total += sum(len(rows) for rows, _, _ in self._cells)
        room = max(0, MAX_REPORTED - len(messages))
        # The first `room` problems by row: each group contributes at most `room` rows.
        shown = sorted(
            (int(row), order, column, message)
            for order, (rows, column, message) in enumerate(self._cells)
            for row in rows[:room]
        )[:room]
        for row, _, column, message in shown:
            text = message(row) if callable(message) else message
            messages.setdefault(f"{self.label} row {row + 2}, column {column}", []).append(text)
        reported = sum(len(texts) for texts in messages.values())
        if total > reported:
            messages[self.label] = [f"... and {total - reported} more problems"]
        raise RequestValidationError(messages, f"invalid {self.label}")


def _label(source: Source, default: str) -> str:
    if isinstance(source, str | Path):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) and name else default


def _read_table(source: Source, label: str, text_columns: Sequence[str]) -> pd.DataFrame:
    problems = _Problems(label)
    try:
        frame = pd.read_csv(
            source,
            dtype=dict.fromkeys(text_columns, str),
            keep_default_na=False,
            na_values=[""],  # only an empty cell is "not given"; "NA" is a region
            encoding="utf-8-sig",
            low_memory=False,  # one dtype per column, not per chunk
        )
    except pd.errors.EmptyDataError:
        raise RequestValidationError(
            {label: ["the file is empty (no header row)"]}, f"invalid {label}"
        ) from None
    except pd.errors.ParserError as error:
        line = _PARSER_LINE.search(str(error))
        key = f"{label} row {line.group(1)}" if line else label
        raise RequestValidationError(
            {key: [f"cannot parse CSV: {error}".strip()]}, f"invalid {label}"
        ) from None
    except UnicodeDecodeError:
        raise RequestValidationError({label: ["not UTF-8 text"]}, f"invalid {label}") from None
    except OSError as error:
        raise RequestValidationError(
            {label: [f"cannot read: {error.strerror or error}"]}, f"invalid {label}"
        ) from None
    frame.columns = [str(column).strip() for column in frame.columns]
    for column in frame.columns:
        match = _MANGLED.match(column)
        if match and match["name"] in frame.columns:
            problems.column(match["name"], "appears more than once in the header")
    if frame.columns.duplicated().any():
        for column in frame.columns[frame.columns.duplicated()]:
            problems.column(column, "appears more than once in the header")
    problems.raise_if_any()
    return frame


def _is_number_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype
    )


def _texts(series: pd.Series) -> NDArray[np.object_]:
    """The column as stripped strings, "" where empty."""
    if isinstance(series.dtype, pd.StringDtype):
        return series.fillna("").str.strip().to_numpy(dtype=object)
    # Numbers, booleans, or mixed objects: few distinct values are typical, so format
    # each distinct value once.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    texts = np.array(
        ["" if value is None else str(value).strip() for value in uniques] + [""], dtype=object
    )
    return texts[codes]  # code -1 (empty) picks the trailing ""


def _parse_numbers(texts: NDArray[np.object_]) -> tuple[FloatArray, BoolArray]:
    """(values with NaN where empty or unparseable, mask of unparseable cells)."""
    given = texts != ""
    parsed = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")  # "" -> NaN
    numbers = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return numbers, given & np.isnan(numbers)


class _Table:
    """A read frame with its problem list, and its columns as text / numbers (memoised)."""

    def __init__(self, frame: pd.DataFrame, problems: _Problems):
        self.frame = frame
        self.problems = problems
        self.size = len(frame)
        self._texts: dict[str, NDArray[np.object_]] = {}
        self._numbers: dict[str, FloatArray] = {}
        self._given: dict[str, BoolArray] = {}

    def has(self, column: str) -> bool:
        return column in self.frame.columns

    def text(self, column: str) -> NDArray[np.object_]:
        if column not in self._texts:
            self._texts[column] = (
                _texts(self.frame[column])
                if self.has(column)
                else np.full(self.size, "", dtype=object)
            )
        return self._texts[column]

    def given(self, column: str) -> BoolArray:
        """Non-empty cells (parseable or not)."""
        if column not in self._given:
            if not self.has(column):
                self._given[column] = np.zeros(self.size, dtype=bool)
            elif _is_number_column(self.frame[column]):
                self._given[column] = self.frame[column].notna().to_numpy()
            else:
                self._given[column] = self.text(column) != ""
        return self._given[column]

    def number(self, column: str) -> FloatArray:
        """Column values (NaN where empty or absent); unparseable cells are reported."""
        if column not in self._numbers:
            if not self.has(column):
                values = np.full(self.size, np.nan)
            else:
                series = self.frame[column]
                if _is_number_column(series):
                    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                else:
                    texts = self.text(column)
                    values, bad = _parse_numbers(texts)
                    self.problems.cells(bad, column, lambda row: f"not a number: {texts[row]!r}")
            self._numbers[column] = values
        return self._numbers[column]

    def require(self, *columns: str) -> bool:
        missing = [column for column in columns if not self.has(column)]
        for column in missing:
            self.problems.column(column, "required column is missing")
        return not missing

    def non_negative(self, column: str, values: FloatArray) -> None:
        self.problems.cells(values < 0, column, "must be >= 0")
        self.problems.cells(np.isinf(values), column, "must be finite")

    def ids(self, column: str = "partner_id") -> NDArray[np.object_]:
        ids = self.text(column)
        self.problems.cells(ids == "", column, "required")
        return ids


def read_partners_csv(
    source: Source, resources: Sequence[str] | None = None, *, label: str | None = None
) -> tuple[Partner, ...]:
    """Partners from a partners CSV (a path, or an open text or binary file).

    A resource R is any `R_curve` column, plus every name in `resources` (whose `R_*`
    columns are then never mistaken for attributes). Its curve comes from `R_curve`
    (empty: no curve for that partner) and the parameter columns of that kind; `R_points`
    holds ``x:y;x:y;…``; `R_min` / `R_max` are bounds. Every column that is neither a
    partner field nor a resource column is an attribute. Raises RequestValidationError
    naming each bad cell (see the module docstring for the row numbering).
    """
    label = label or _label(source, "partners.csv")
    frame = _read_table(source, label, ("partner_id", "name"))
    table = _Table(frame, _Problems(label))
    if not table.require("partner_id", "baseline_gmv"):
        table.problems.raise_if_any()
    if frame.empty:
        raise RequestValidationError(
            {label: ["has no partner rows, only a header"]}, f"invalid {label}"
        )

    names = _resource_names(frame, resources)
    claimed = {*PARTNER_COLUMNS, *(f"{r}_{suffix}" for r in names for suffix in RESOURCE_SUFFIXES)}
    attribute_columns = [column for column in frame.columns if column not in claimed]
    for column in attribute_columns:
        if column in RESERVED_ATTRIBUTES:
            table.problems.column(column, "is reserved: `where` reads 'id' as the partner id")

    ids = table.ids()
    _check_unique(table, ids)
    baseline = table.number("baseline_gmv")
    table.problems.cells(
        np.isnan(baseline) & ~table.given("baseline_gmv"), "baseline_gmv", "required"
    )
    table.non_negative("baseline_gmv", baseline)
    p10 = table.number("baseline_gmv_p10")
    p90 = table.number("baseline_gmv_p90")
    table.non_negative("baseline_gmv_p10", p10)
    table.non_negative("baseline_gmv_p90", p90)
    table.problems.cells(p10 > baseline, "baseline_gmv_p10", "must be <= baseline_gmv")
    table.problems.cells(p90 < baseline, "baseline_gmv_p90", "must be >= baseline_gmv")

    curves = {name: _curve_column(table, name) for name in names}
    bounds = {name: _bounds_column(table, name) for name in names}
    attributes = [(column, _attribute_values(table, column)) for column in attribute_columns]
    table.problems.raise_if_any()

    partner_names = table.text("name")
    columns = (
        ids.tolist(),
        baseline.tolist(),
        partner_names.tolist(),
        _optional(p10),
        _optional(p90),
        _row_maps(attributes, len(frame)),
        _row_maps(list(curves.items()), len(frame)),
        _row_maps(list(bounds.items()), len(frame)),
    )
    return tuple(
        Partner(
            id=pid,
            baseline_gmv=base,
            name=name,
            baseline_gmv_p10=low,
            baseline_gmv_p90=high,
            attributes=attrs,
            curves=curve_map,
            bounds=bound_map,
        )
        for pid, base, name, low, high, attrs, curve_map, bound_map in zip(*columns, strict=True)
    )


def _resource_names(frame: pd.DataFrame, given: Sequence[str] | None) -> list[str]:
    found = [
        column[: -len("_curve")]
        for column in frame.columns
        if column.endswith("_curve") and len(column) > len("_curve")
    ]
    names = list(dict.fromkeys([*(given or ()), *found]))
    return [name for name in names if name]


def _check_unique(table: _Table, ids: NDArray[np.object_]) -> None:
    series = pd.Series(ids)
    repeated = series.duplicated(keep="first").to_numpy() & (ids != "")
    if repeated.any():
        first = series.drop_duplicates(keep="first")
        first_row = dict(zip(first.tolist(), first.index.tolist(), strict=True))
        table.problems.cells(
            repeated,
            "partner_id",
            lambda row: (
                f"duplicate partner id {ids[row]!r} (first in row {first_row[ids[row]] + 2})"
            ),
        )


def _optional(values: FloatArray) -> list[float | None]:
    return [None if math.isnan(value) else value for value in values.tolist()]


def _row_maps(columns: Sequence[tuple[str, Sequence[Any]]], size: int) -> list[dict[str, Any]]:
    """Per row, {column name: value} for the columns whose value is not None."""
    # Columns without gaps go in with one C-level dict(zip()) per row; only the gappy
    # ones need a Python-level test per cell.
    dense = [(key, values) for key, values in columns if None not in values]
    sparse = [(key, values) for key, values in columns if None in values]
    if dense:
        keys = [key for key, _ in dense]
        maps = [
            dict(zip(keys, row, strict=True))
            for row in zip(*(values for _, values in dense), strict=True)
        ]
    else:
        maps = [{} for _ in range(size)]
    for key, values in sparse:
        for row, value in enumerate(values):
            if value is not None:
                maps[row][key] = value
    return maps


def _attribute_values(table: _Table, column: str) -> list[Any]:
    """The column's values typed as a whole (see module docstring); None where empty."""
    series = table.frame[column]
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.tolist()
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.tolist()  # no empty cells, or pandas would have made it float
    if _is_number_column(series):
        return _numeric_attribute(series.to_numpy(dtype=np.float64, na_value=np.nan))
    texts = table.text(column)
    given = texts != ""
    present = texts[given]
    if present.size and np.isin(_lower(present), ["true", "false"]).all():
        flags = _lower(texts) == "true"
        return [
            bool(flag) if keep else None
            for flag, keep in zip(flags.tolist(), given.tolist(), strict=True)
        ]
    # pandas reads a column as text only when some cell is not a number; mixed object
    # columns (booleans with gaps, say) may still hold only numbers.
    if not isinstance(series.dtype, pd.StringDtype):
        numbers, bad = _parse_numbers(texts)
        if given.any() and not bad.any() and np.isfinite(numbers[given]).all():
            return _numeric_attribute(numbers)
    if given.all():
        return texts.tolist()  # type: ignore[no-any-return]
    return [
        text if keep else None for text, keep in zip(texts.tolist(), given.tolist(), strict=True)
    ]


def _lower(texts: NDArray[np.object_]) -> NDArray[np.object_]:
    codes, uniques = pd.factorize(texts)
    return np.array([str(value).lower() for value in uniques] + [""], dtype=object)[codes]


def _numeric_attribute(values: FloatArray) -> list[Any]:
    present = ~np.isnan(values)
    kept = values[present]
    if np.all((kept == np.round(kept)) & (np.abs(kept) < 2.0**53)):
        typed: list[Any] = np.where(present, values, 0).astype(np.int64).tolist()
    else:
        typed = values.tolist()
    if present.all():
        return typed
    return [value if keep else None for value, keep in zip(typed, present.tolist(), strict=True)]


def _curve_column(table: _Table, resource: str) -> list[Curve | None]:
    """Resource `resource`'s curve per row (None: no curve), problems reported."""
    problems = table.problems
    column = f"{resource}_curve"
    kinds = _lower(table.text(column))
    unknown = (kinds != "") & ~np.isin(kinds, list(_KINDS))
    problems.cells(
        unknown,
        column,
        lambda row: f"unknown curve {kinds[row]!r}; use one of {', '.join(sorted(_KINDS))}",
    )

    params = {
        name: table.number(f"{resource}_{name}")
        for name in NUMERIC_CURVE_PARAMETERS
        if f"{resource}_{name}" in table.frame.columns
    }
    bad = {
        name: table.given(f"{resource}_{name}") & np.isnan(values)
        for name, values in params.items()
    }
    points_column = f"{resource}_points"
    has_points = table.given(points_column)

    no_curve = kinds == ""
    for name in params:
        problems.cells(
            no_curve & table.given(f"{resource}_{name}"),
            f"{resource}_{name}",
            f"given, but {column} is empty",
        )
    problems.cells(no_curve & has_points, points_column, f"given, but {column} is empty")

    curves: list[Curve | None] = [None] * table.size
    for kind in CurveKind:
        rows = np.flatnonzero(kinds == str(kind))
        if not rows.size:
            continue
        subset = {name: values[rows] for name, values in params.items()}
        for name, failing, message in curve_parameter_errors(kind, subset, len(rows)):
            if name in bad:  # an unparseable cell is already reported as such
                failing = failing & ~bad[name][rows]
            problems.cells(rows[failing], f"{resource}_{name}", message)
        if kind is CurveKind.POINTS:
            texts = table.text(points_column)
            for row in rows.tolist():
                curve = _points_curve(texts[row], row, points_column, problems)
                curves[row] = curve
            continue
        problems.cells(rows[has_points[rows]], points_column, f"not a parameter of a {kind} curve")
        if all(name in params for name in CURVE_PARAMETERS[kind]):
            built = _build_curves(kind, {name: params[name][rows] for name in params})
            for row, curve in zip(rows.tolist(), built, strict=True):
                curves[row] = curve
    return curves


# Curve's numeric fields in declaration order, so curves can be built positionally
# (a million keyword calls cost seconds) whatever order curves.py declares them in.
_CURVE_NUMERIC_FIELDS = [
    (field.name, field.default)
    for field in dataclass_fields(Curve)
    if field.name in NUMERIC_CURVE_PARAMETERS
]


def _build_curves(kind: CurveKind, params: Mapping[str, FloatArray]) -> list[Curve]:
    wanted = CURVE_PARAMETERS[kind]
    columns = [
        params[name].tolist() if name in wanted else repeat(default)
        for name, default in _CURVE_NUMERIC_FIELDS
    ]
    return list(map(Curve, repeat(kind), *columns))


def _points_curve(text: str, row: int, column: str, problems: _Problems) -> Curve | None:
    if not text:
        problems.cells(np.array([row]), column, "required for a points curve (x:y;x:y;…)")
        return None
    try:
        pairs = [part.split(":") for part in text.strip().strip(";").split(";")]
        xs = [float(pair[0]) for pair in pairs]
        ys = [float(pair[1]) for pair in pairs]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(text)
    except (ValueError, IndexError):
        problems.cells(
            np.array([row]), column, f"expected x:y;x:y;… (e.g. 0:0;1000000:50000000), got {text!r}"
        )
        return None
    errors = points_errors(xs, ys)
    if errors:
        for key, messages in errors.items():
            for message in messages:
                problems.cells(np.array([row]), column, f"{key} {message}")
        return None
    return Curve(CurveKind.POINTS, xs=tuple(xs), ys=tuple(ys))


def _bounds_column(table: _Table, resource: str) -> list[Bounds | None]:
    low_column, high_column = f"{resource}_min", f"{resource}_max"
    low, high = table.number(low_column), table.number(high_column)
    table.non_negative(low_column, low)
    table.non_negative(high_column, high)
    table.problems.cells(low > high, low_column, f"must be <= {high_column}")
    bounded = ~np.isnan(low) | ~np.isnan(high)
    if not bounded.any():
        return [None] * table.size
    lows = np.where(np.isnan(low), 0.0, low).tolist()
    return [
        Bounds(lo, None if math.isnan(hi) else hi) if keep else None
        for lo, hi, keep in zip(lows, high.tolist(), bounded.tolist(), strict=True)
    ]


def read_packages_csv(
    source: Source, partners: Sequence[Partner], *, label: str | None = None
) -> tuple[Partner, ...]:
    """`partners` with the packages of a packages CSV attached.

    Columns `partner_id`, `package`, `uplift`; every other column is a resource amount
    (empty: none of it). Partners keep their order; a partner listed here must be one of
    `partners` and must not have response curves (packages are instead of curves).
    """
    label = label or _label(source, "packages.csv")
    frame = _read_table(source, label, ("partner_id", "package"))
    table = _Table(frame, _Problems(label))
    if not table.require(*PACKAGE_COLUMNS):
        table.problems.raise_if_any()
    by_id = {partner.id: partner for partner in partners}
    ids = table.ids()
    known = np.array([pid in by_id for pid in ids.tolist()], dtype=bool)
    table.problems.cells(
        known.__invert__() & (ids != ""),
        "partner_id",
        lambda row: f"unknown partner id {ids[row]!r}",
    )
    with_curves = np.array(
        [bool(by_id[pid].curves) if pid in by_id else False for pid in ids.tolist()], dtype=bool
    )
    table.problems.cells(
        with_curves,
        "partner_id",
        lambda row: f"partner {ids[row]!r} has response curves; packages are instead of curves",
    )
    names = table.text("package")
    table.problems.cells(names == "", "package", "required")
    pairs = pd.Series(list(zip(ids.tolist(), names.tolist(), strict=True)), dtype=object)
    table.problems.cells(
        pairs.duplicated().to_numpy(),
        "package",
        lambda row: f"partner {ids[row]!r} already has a package {names[row]!r}",
    )
    uplift = table.number("uplift")
    table.problems.cells(np.isnan(uplift) & ~table.given("uplift"), "uplift", "required")
    table.non_negative("uplift", uplift)
    resource_columns = [column for column in frame.columns if column not in PACKAGE_COLUMNS]
    amounts = []
    for column in resource_columns:
        values = table.number(column)
        table.non_negative(column, values)
        amounts.append((column, _optional(values)))
    table.problems.raise_if_any()

    packages: dict[str, list[Package]] = {}
    for pid, name, gain, amount in zip(
        ids.tolist(), names.tolist(), uplift.tolist(), _row_maps(amounts, len(frame)), strict=True
    ):
        packages.setdefault(pid, []).append(Package(name, amount, gain))
    return tuple(
        replace(partner, packages=(*partner.packages, *packages[partner.id]))
        if partner.id in packages
        else partner
        for partner in partners
    )


# ---------------------------------------------------------------------------------------
# Writing


def _write(frame: pd.DataFrame, dest: Source) -> None:
    # repr-precision floats (pandas' default) so that what is written reads back exactly.
    frame.to_csv(dest, index=False, lineterminator="\n")  # type: ignore[arg-type]


def plan_frame(plan: Plan, request: AllocationRequest) -> pd.DataFrame:
    """The plan CSV as a frame: partner_id, one column per resource (named after it),
    package (when the request uses packages), baseline_gmv, projected_gmv, tier,
    incremental_gmv."""
    names = [resource.name for resource in request.resources]
    rows = plan.allocations
    data: dict[str, list[Any]] = {"partner_id": [a.partner_id for a in rows]}
    for name in names:
        data[name] = [float(a.amounts.get(name, 0.0)) for a in rows]
    if request.uses_packages:
        data["package"] = [a.package for a in rows]
    data["baseline_gmv"] = [a.baseline_gmv for a in rows]
    data["projected_gmv"] = [a.projected_gmv for a in rows]
    data["tier"] = [a.tier for a in rows]
    data["incremental_gmv"] = [a.incremental_gmv for a in rows]
    return pd.DataFrame(data, columns=list(data))


def write_plan_csv(plan: Plan, request: AllocationRequest, dest: Source) -> None:
    _write(plan_frame(plan, request), dest)


def plan_to_csv_text(plan: Plan, request: AllocationRequest) -> str:
    buffer = io.StringIO()
    write_plan_csv(plan, request, buffer)
    return buffer.getvalue()


def write_partners_csv(partners: Sequence[Partner], resources: Sequence[str], dest: Source) -> None:
    """The partners CSV `read_partners_csv(dest, resources)` reads back as `partners`
    (packages excluded: see `write_packages_csv`). Attribute columns come in first-seen
    order; only parameter columns some partner uses are written."""
    data: dict[str, list[Any]] = {
        "partner_id": [p.id for p in partners],
        "name": [p.name for p in partners],
        "baseline_gmv": [p.baseline_gmv for p in partners],
        "baseline_gmv_p10": [p.baseline_gmv_p10 for p in partners],
        "baseline_gmv_p90": [p.baseline_gmv_p90 for p in partners],
    }
    attribute_names = list(dict.fromkeys(key for p in partners for key in p.attributes))
    for key in attribute_names:
        data[key] = [_attribute_text(p.attributes.get(key)) for p in partners]
    for resource in resources:
        curves = [p.curves.get(resource) for p in partners]
        data[f"{resource}_curve"] = [str(c.kind) if c else None for c in curves]
        for name in NUMERIC_CURVE_PARAMETERS:
            column = [
                getattr(c, name) if c and name in CURVE_PARAMETERS[c.kind] else None for c in curves
            ]
            if any(value is not None for value in column):
                data[f"{resource}_{name}"] = column
        if any(c is not None and c.kind is CurveKind.POINTS for c in curves):
            data[f"{resource}_points"] = [
                ";".join(f"{x!r}:{y!r}" for x, y in zip(c.xs, c.ys, strict=True))
                if c is not None and c.kind is CurveKind.POINTS
                else None
                for c in curves
            ]
        bounds = [p.bounds.get(resource) for p in partners]
        if any(b is not None for b in bounds):
            data[f"{resource}_min"] = [b.min if b else None for b in bounds]
            data[f"{resource}_max"] = [b.max if b else None for b in bounds]
    _write(pd.DataFrame(data, columns=list(data)), dest)


def _attribute_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_packages_csv(partners: Sequence[Partner], resources: Sequence[str], dest: Source) -> None:
    """The packages CSV `read_packages_csv` reads back (one row per package)."""
    rows: list[dict[str, Any]] = []
    for partner in partners:
        for package in partner.packages:
            row: dict[str, Any] = {"partner_id": partner.id, "package": package.name}
            row.update({name: package.amounts.get(name) for name in resources})
            row["uplift"] = package.uplift
            rows.append(row)
    _write(pd.DataFrame(rows, columns=["partner_id", "package", *resources, "uplift"]), dest)
