"""What every CSV reader shares: reading a file as text cells, typed column access, and
problems gathered per cell (rows numbered as a spreadsheet shows them)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.csvio.text import MAX_CSV_COLUMNS, CsvFormat, Source, prepare
from models.curves import FloatArray
from models.schemas import RequestValidationError

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]


MAX_REPORTED = 50


_MANGLED = re.compile(r"^(?P<name>.*)\.\d+$")
_PARSER_LINE = re.compile(r"line (\d+)")


class Problems:
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


def source_label(source: Source, default: str) -> str:
    if isinstance(source, str | Path):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) and name else default


def read_table(
    source: Source,
    label: str,
    text_columns: Sequence[str],
    *,
    max_columns: int = MAX_CSV_COLUMNS,
) -> tuple[pd.DataFrame, CsvFormat]:
    """The file's cells (see `models.csvio.text` for encodings and delimiters) and what
    was detected, its `rows` counted."""
    problems = Problems(label)
    text = prepare(source, label, max_columns)
    try:
        frame = pd.read_csv(
            text.buffer,
            sep=text.format.delimiter,
            dtype=dict.fromkeys(text_columns, str),
            keep_default_na=False,
            na_values=[""],  # only an empty cell is "not given"; "NA" is a region
            encoding=text.codec,
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
    frame.columns = [str(column).strip() for column in frame.columns]
    for column in frame.columns:
        match = _MANGLED.match(column)
        if match and match["name"] in frame.columns:
            problems.column(match["name"], "appears more than once in the header")
    if frame.columns.duplicated().any():
        for column in frame.columns[frame.columns.duplicated()]:
            problems.column(column, "appears more than once in the header")
    problems.raise_if_any()
    return frame, replace(text.format, rows=len(frame))


def is_number_column(series: pd.Series) -> bool:
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


def parse_numbers(texts: NDArray[np.object_]) -> tuple[FloatArray, BoolArray]:
    """(values with NaN where empty or unparseable, mask of unparseable cells)."""
    given = texts != ""
    parsed = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")  # "" -> NaN
    numbers = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return numbers, given & np.isnan(numbers)


class Table:
    """A read frame with its problem list, and its columns as text / numbers (memoised)."""

    def __init__(self, frame: pd.DataFrame, problems: Problems):
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
            elif is_number_column(self.frame[column]):
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
                if is_number_column(series):
                    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                else:
                    texts = self.text(column)
                    values, bad = parse_numbers(texts)
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


def optional(values: FloatArray) -> list[float | None]:
    return [None if math.isnan(value) else value for value in values.tolist()]


def row_maps(columns: Sequence[tuple[str, Sequence[Any]]], size: int) -> list[dict[str, Any]]:
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
