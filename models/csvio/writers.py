"""CSV writers: the plan CSV, and partners / packages CSVs their readers read back exactly."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from models.csvio.cells import Source
from models.curves import CURVE_PARAMETERS, CurveKind
from models.plan import Plan
from models.request import AllocationRequest, Partner
from models.schemas import NUMERIC_CURVE_PARAMETERS


def _write(frame: pd.DataFrame, dest: Source) -> None:
    # repr-precision floats (pandas' default) so that what is written reads back exactly.
    frame.to_csv(dest, index=False, lineterminator="\n")  # type: ignore[arg-type]


def plan_frame(plan: Plan, request: AllocationRequest) -> pd.DataFrame:
    """The plan CSV as a frame: partner_id, one column per resource (named after it),
    package (when the request uses packages), baseline_gmv, projected_gmv, tier,
    incremental_gmv, p_reach (when some forecast has a spread)."""
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
    if plan.uncertainty is not None:  # docs/uncertainty.md: reach probability of the reported tier
        data["p_reach"] = [a.p_reach for a in rows]
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
