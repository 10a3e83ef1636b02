"""The packages CSV reader: packages attached to already-read partners."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from models.csvio.cells import Problems, Table, optional, read_table, row_maps, source_label
from models.csvio.text import MAX_CSV_COLUMNS, CsvFormat, Source
from models.request import Package, Partner

PACKAGE_COLUMNS = ("partner_id", "package", "uplift")


def read_packages_csv(
    source: Source, partners: Sequence[Partner], *, label: str | None = None
) -> tuple[Partner, ...]:
    """`partners` with the packages of a packages CSV attached.

    Columns `partner_id`, `package`, `uplift`; every other column is a resource amount
    (empty: none of it). Partners keep their order; a partner listed here must be one of
    `partners` and must not have response curves (packages are instead of curves).
    """
    return read_packages_table(source, partners, label=label)[0]


def read_packages_table(
    source: Source,
    partners: Sequence[Partner],
    *,
    label: str | None = None,
    max_columns: int = MAX_CSV_COLUMNS,
) -> tuple[tuple[Partner, ...], CsvFormat]:
    """`read_packages_csv`, and the file's detected encoding, delimiter and row count."""
    label = label or source_label(source, "packages.csv")
    frame, detected = read_table(source, label, ("partner_id", "package"), max_columns=max_columns)
    table = Table(frame, Problems(label))
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
        amounts.append((column, optional(values)))
    table.problems.raise_if_any()

    packages: dict[str, list[Package]] = {}
    for pid, name, gain, amount in zip(
        ids.tolist(), names.tolist(), uplift.tolist(), row_maps(amounts, len(frame)), strict=True
    ):
        packages.setdefault(pid, []).append(Package(name, amount, gain))
    attached = tuple(
        replace(partner, packages=(*partner.packages, *packages[partner.id]))
        if partner.id in packages
        else partner
        for partner in partners
    )
    return attached, detected
