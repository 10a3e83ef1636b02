"""Figures for people: amounts rounded to what a planner reads, and whether a change is
one at all. JSON keeps exact numbers; only text (CLI tables, notes) goes through here."""

from __future__ import annotations

import math

_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))

# Changes smaller than this share of the larger figure (or than half a unit) are solver
# float noise or rounding, never a planning decision: shown as no change.
CHANGE_REL = 1e-6
CHANGE_ABS = 0.5


def human(value: float | None) -> str:
    """1.234e9 -> '1.234B': four significant digits."""
    if value is None:
        return "-"
    for size, suffix in _SUFFIXES:
        if abs(value) >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


def money(value: float | None, unit: str = "CNY") -> str:
    """¥25M for yuan, '3.2B impressions' for other units; None is an unlimited budget."""
    if value is None:
        return "unlimited"
    if unit == "CNY":
        return ("-¥" if value < 0 else "¥") + human(abs(value))
    return f"{human(value)} {unit}"


def is_change(before: float | None, after: float | None, *, abs_tol: float = CHANGE_ABS) -> bool:
    """Whether `before` -> `after` is a change worth showing."""
    if before is None or after is None:
        return before is not after
    return not math.isclose(before, after, rel_tol=CHANGE_REL, abs_tol=abs_tol)


def percent(share: float) -> str:
    """0.1023 -> '10.2%'; small shares keep two significant digits (0.0004 -> '0.04%')."""
    value = 100 * share
    return f"{value:.1f}%" if abs(value) >= 1 else f"{value:.2g}%"
