"""CSV writers: the plan CSV, and partners / packages CSVs their readers read back exactly.

The plan CSV goes to people: its cells are spreadsheet-safe (models.spreadsheet). The
partners and packages CSVs are inputs written for the readers to read back unchanged."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from models.csvio.cells import Source
from models.curves import CURVE_PARAMETERS, CurveKind
from models.plan import Plan
from models.plan_table import plan_table
from models.request import AllocationRequest, Partner
from models.schemas import NUMERIC_CURVE_PARAMETERS
from models.spreadsheet import cell_value, formula_safe


def _write(frame: pd.DataFrame, dest: Source) -> None:
    # repr-precision floats (pandas' default) so that what is written reads back exactly.
    frame.to_csv(dest, index=False, lineterminator="\n")  # type: ignore[arg-type]


def plan_csv_rows(
    plan: Plan, request: AllocationRequest, *, all_partners: bool = False
) -> list[list[Any]]:
    """The plan CSV's header and rows (models.plan_table), every cell spreadsheet-safe."""
    table = plan_table(plan, request, all_partners=all_partners)
    return [
        [formula_safe(name) for name in table.header],
        *([_csv_cell(value) for value in row] for row in table.rows),
    ]


def _csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else cell_value(value)


def write_plan_csv(
    plan: Plan, request: AllocationRequest, dest: Source, *, all_partners: bool = False
) -> None:
    """The plan CSV (docs/exports.md) to a path or an open text file."""
    rows = plan_csv_rows(plan, request, all_partners=all_partners)
    if isinstance(dest, str | os.PathLike):
        with open(dest, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)
    else:
        csv.writer(dest, lineterminator="\n").writerows(rows)  # type: ignore[arg-type]


def plan_to_csv_text(plan: Plan, request: AllocationRequest, *, all_partners: bool = False) -> str:
    buffer = io.StringIO()
    write_plan_csv(plan, request, buffer, all_partners=all_partners)
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
