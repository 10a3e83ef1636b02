"""The partners CSV reader: partner fields, resource curve and bound columns, attributes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields as dataclass_fields
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.csvio.cells import (
    Problems,
    Table,
    is_number_column,
    optional,
    parse_numbers,
    read_table,
    row_maps,
    source_label,
)
from models.csvio.text import MAX_CSV_COLUMNS, CsvFormat, Source
from models.curves import CURVE_PARAMETERS, Curve, CurveKind, FloatArray
from models.request import Bounds, Partner
from models.schemas import (
    NUMERIC_CURVE_PARAMETERS,
    RESERVED_ATTRIBUTES,
    RequestValidationError,
    curve_parameter_errors,
    points_errors,
)

PARTNER_COLUMNS = ("partner_id", "name", "baseline_gmv", "baseline_gmv_p10", "baseline_gmv_p90")
# Per resource R, the columns `R_<suffix>`.
RESOURCE_SUFFIXES = ("curve", *NUMERIC_CURVE_PARAMETERS, "points", "min", "max")


_KINDS = {str(kind) for kind in CurveKind}


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
    return read_partners_table(source, resources, label=label)[0]


def read_partners_table(
    source: Source,
    resources: Sequence[str] | None = None,
    *,
    label: str | None = None,
    numeric: Mapping[str, str] | None = None,
    max_columns: int = MAX_CSV_COLUMNS,
) -> tuple[tuple[Partner, ...], CsvFormat]:
    """`read_partners_csv`, and the file's detected encoding, delimiter and row count.

    `numeric` maps attribute columns that must hold a number in every non-empty cell (they
    are compared by order in some `where`) to why, said in each bad cell's message.
    """
    label = label or source_label(source, "partners.csv")
    frame, detected = read_table(source, label, ("partner_id", "name"), max_columns=max_columns)
    table = Table(frame, Problems(label))
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
    table.problems.cells(p10 == 0, "baseline_gmv_p10", "must be > 0")
    low_given, high_given = table.given("baseline_gmv_p10"), table.given("baseline_gmv_p90")
    table.problems.cells(
        high_given & ~low_given, "baseline_gmv_p10", "required when baseline_gmv_p90 is given"
    )
    table.problems.cells(
        low_given & ~high_given, "baseline_gmv_p90", "required when baseline_gmv_p10 is given"
    )
    table.problems.cells(p10 > baseline, "baseline_gmv_p10", "must be <= baseline_gmv")
    table.problems.cells(p90 < baseline, "baseline_gmv_p90", "must be >= baseline_gmv")

    curves = {name: _curve_column(table, name) for name in names}
    bounds = {name: _bounds_column(table, name) for name in names}
    attributes = [
        (column, _attribute_values(table, column, (numeric or {}).get(column)))
        for column in attribute_columns
    ]
    table.problems.raise_if_any()

    partner_names = table.text("name")
    columns = (
        ids.tolist(),
        baseline.tolist(),
        partner_names.tolist(),
        optional(p10),
        optional(p90),
        row_maps(attributes, len(frame)),
        row_maps(list(curves.items()), len(frame)),
        row_maps(list(bounds.items()), len(frame)),
    )
    partners = tuple(
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
    return partners, detected


def _resource_names(frame: pd.DataFrame, given: Sequence[str] | None) -> list[str]:
    found = [
        column[: -len("_curve")]
        for column in frame.columns
        if column.endswith("_curve") and len(column) > len("_curve")
    ]
    names = list(dict.fromkeys([*(given or ()), *found]))
    return [name for name in names if name]


def _check_unique(table: Table, ids: NDArray[np.object_]) -> None:
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


def _attribute_values(table: Table, column: str, numeric_because: str | None) -> list[Any]:
    """The column's values typed as a whole (see module docstring); None where empty.
    With `numeric_because`, every non-empty cell must be a number."""
    series = table.frame[column]
    if numeric_because is not None and not is_number_column(series):
        texts = table.text(column)
        numbers, bad = parse_numbers(texts)
        bad |= np.isinf(numbers)
        table.problems.cells(
            bad, column, lambda row: f"not a number: {texts[row]!r} ({numeric_because})"
        )
        return _numeric_attribute(np.where(bad, np.nan, numbers))
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.tolist()
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.tolist()  # no empty cells, or pandas would have made it float
    if is_number_column(series):
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
        numbers, bad = parse_numbers(texts)
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


def _curve_column(table: Table, resource: str) -> list[Curve | None]:
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


def _points_curve(text: str, row: int, column: str, problems: Problems) -> Curve | None:
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


def _bounds_column(table: Table, resource: str) -> list[Bounds | None]:
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
