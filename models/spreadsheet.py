"""Values as they go into files people open in a spreadsheet (CSV and XLSX exports).

Text that a spreadsheet would take for a formula (it starts with `=`, `+`, `-`, `@`, a
tab or a carriage return) is written behind a `'`, as OWASP's CSV-injection advice has
it, so that `=HYPERLINK(...)` in a partner id is shown, never run. Text that is just a
number (`-12`, `+3.5`) runs nothing and keeps its characters. Numbers are written as
numbers — a negative incremental GMV stays a number — and without float noise.
"""

from __future__ import annotations

import math
import re
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_SIGNIFICANT = 15  # digits kept of a non-whole number (float64 noise sits past them)


def formula_safe(text: str) -> str:
    """`text` as a spreadsheet shows it as text: `'`-prefixed when it could start a formula."""
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def clean_number(value: float) -> int | float:
    """A number without float noise: whole numbers (within a relative 1e-12) as ints, others
    to 15 significant digits."""
    if not math.isfinite(value):
        return value
    nearest = round(value)
    if abs(value - nearest) <= 1e-12 * max(1.0, abs(value)):
        return int(nearest)
    return float(f"{value:.{_SIGNIFICANT}g}")


def cell_value(value: Any) -> Any:
    """Any exported value made safe: text formula-safe, numbers clean, the rest as is."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return clean_number(value)
    if isinstance(value, str):
        return formula_safe(value)
    return formula_safe(str(value))
