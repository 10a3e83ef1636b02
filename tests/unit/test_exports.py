"""Planner-ready exports (docs/exports.md): the plan table, spreadsheet-safe cells, and
the XLSX workbooks of plans and comparisons opened back with openpyxl."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from typing import Any

import openpyxl
import pytest

from adapters.exports import comparison_workbook, plan_workbook
from adapters.exports.xlsx import CNY, COUNT, SAVED_AT, SHARE
from models.csvio import plan_to_csv_text
from models.plan import Plan
from models.request import AllocationRequest
from models.schemas import parse_request, plan_from_dict, plan_to_dict
from models.spreadsheet import clean_number, formula_safe
from optimizer import solve

HOSTILE = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)"]


def _request() -> AllocationRequest:
    """Three hostile partner ids that reach the 100M tier with subsidy, one partner the
    plan leaves unfunded (below every tier), one already in the tier at baseline."""
    partners: list[dict[str, Any]] = [
        {
            "id": pid,
            "name": f"-name {n}",
            "baseline_gmv": 9.0e7,
            "attributes": {"region": "=east" if n == 0 else "north", "score": 40 + n},
            "response": {"subsidy": {"curve": "saturating", "max_uplift": 4e7, "scale": 1.3e6}},
        }
        for n, pid in enumerate(HOSTILE)
    ]
    partners.append({"id": "P-cold", "name": "Cold", "baseline_gmv": 1.0e6})
    partners.append({"id": "P-warm", "name": "Warm", "baseline_gmv": 2.0e8})
    return parse_request(
        {
            "name": "exports",
            "resources": [
                {"name": "subsidy", "unit": "CNY", "budget": 1.0e7},
                {"name": "traffic", "unit": "impressions", "budget": 0},
            ],
            "tiers": [{"name": "100M", "min_gmv": 1e8, "target": 4}],
            "partners": partners,
            "options": {"time_limit_s": 10},
        }
    )


@pytest.fixture(scope="module")
def solved() -> tuple[AllocationRequest, Plan]:
    request = _request()
    plan = solve(request)[0]
    plan.explanation = {
        "binding": [
            {
                "kind": "budget",
                "resource": "subsidy",
                "utilization": 1.0,
                "marginal_value": {"per_unit": 1, "gmv": 2.5, "weighted_shortfall": -1e-7},
            },
            {"kind": "group_count", "tier": "100M", "where": {"region": "north"}, "min": 2},
        ],
        "near_misses": [],
        "to_targets": None,
    }
    return request, plan


def test_formula_safe_prefixes_what_a_spreadsheet_would_run() -> None:
    for text in [*HOSTILE, "-abc", "\tx", "\rx", "=1+1"]:
        assert formula_safe(text) == "'" + text
    for text in ["plain", "P0001", "-12", "+3.5", "-1e6", "", "a=b"]:
        assert formula_safe(text) == text


def test_clean_number_drops_float_noise_and_keeps_signs() -> None:
    assert clean_number(7416919.0000000001) == 7416919
    assert isinstance(clean_number(7416919.0000000001), int)
    assert clean_number(7416919.343135325) == 7416919.34313533
    assert clean_number(4375959648.64353) == 4375959648.64353  # large, not whole
    assert clean_number(-250.0) == -250
    assert clean_number(0.1 + 0.2) == 0.3


def test_plans_are_whole_and_the_plan_csv_is_safe(solved: tuple[AllocationRequest, Plan]) -> None:
    request, plan = solved
    rows = list(csv.reader(io.StringIO(plan_to_csv_text(plan, request))))
    header, body = rows[0], rows[1:]
    assert header == [
        "partner_id",
        "name",
        "subsidy",
        "traffic",
        "baseline_gmv",
        "tier_before",
        "projected_gmv",
        "tier",
        "incremental_gmv",
        "region",
        "score",
    ]
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    assert set(by_id) == {"'" + pid for pid in HOSTILE} | {"P-warm"}  # unfunded P-cold left out
    first = by_id["'" + HOSTILE[0]]
    assert first["name"] == "'-name 0" and first["region"] == "'=east" and first["score"] == "40"
    allocations = {a.partner_id: a for a in plan.allocations}
    for pid in HOSTILE:
        row, allocation = by_id["'" + pid], allocations[pid]
        assert row["subsidy"] == str(round(allocation.amounts["subsidy"]))  # whole yuan
        assert float(row["subsidy"]) == allocation.amounts["subsidy"]
        assert row["projected_gmv"] == str(round(allocation.projected_gmv))
        assert row["tier_before"] == "" and row["tier"] == "100M"
    assert by_id["P-warm"]["tier_before"] == "100M"


def test_negative_numbers_stay_numbers(solved: tuple[AllocationRequest, Plan]) -> None:
    request, plan = solved
    shrunk = plan_from_dict(plan_to_dict(plan))
    shrunk.allocations[0].incremental_gmv = -1234.4
    rows = list(csv.reader(io.StringIO(plan_to_csv_text(shrunk, request))))
    assert rows[1][rows[0].index("incremental_gmv")] == "-1234"


def test_all_partners_lists_unfunded_partners_in_request_order(
    solved: tuple[AllocationRequest, Plan],
) -> None:
    request, plan = solved
    text = plan_to_csv_text(plan, request, all_partners=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["partner_id"].lstrip("'") for row in rows] == [p.id for p in request.partners]
    cold = rows[3]
    assert cold["subsidy"] == "0" and cold["traffic"] == "0"
    assert cold["projected_gmv"] == cold["baseline_gmv"] == "1000000"
    assert cold["tier"] == cold["tier_before"] == "" and cold["incremental_gmv"] == "0"


def _open(data: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(data))


def _table(sheet: Any) -> list[list[Any]]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_the_plan_workbook(solved: tuple[AllocationRequest, Plan]) -> None:
    request, plan = solved
    book = _open(plan_workbook(plan, request))
    assert book.sheetnames == ["Summary", "Plan", "Tiers", "Binding"]
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref is not None and sheet.auto_filter.ref.startswith("A1:")
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet.column_dimensions["A"].width >= len(str(sheet["A1"].value))

    sheet = book["Plan"]
    rows = _table(sheet)
    header = rows[0]
    assert header[:9] == [
        "partner_id",
        "name",
        "subsidy",
        "traffic",
        "baseline_gmv",
        "tier_before",
        "projected_gmv",
        "tier",
        "incremental_gmv",
    ]
    assert sheet.auto_filter.ref == f"A1:K{len(plan.allocations) + 1}"
    assert len(rows) - 1 == len(plan.allocations)
    for n, allocation in enumerate(plan.allocations, start=2):
        values = dict(zip(header, rows[n - 1], strict=True))
        assert str(values["partner_id"]).lstrip("'") == allocation.partner_id
        assert values["subsidy"] == allocation.amounts["subsidy"]
        assert values["projected_gmv"] == round(allocation.projected_gmv)
        assert values["tier"] == allocation.tier
        assert sheet.cell(row=n, column=3).number_format == CNY  # subsidy is CNY
        assert sheet.cell(row=n, column=4).number_format == COUNT  # traffic: impressions
        assert sheet.cell(row=n, column=7).number_format == CNY
    ids = [row[0] for row in rows[1:]]
    assert "'" + HOSTILE[0] in ids and HOSTILE[0] not in ids
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)

    tiers = _table(book["Tiers"])
    assert tiers[0] == ["tier", "min_gmv", "target", "achieved", "shortfall"]
    assert tiers[1] == ["100M", 1e8, 4, plan.tiers[0].achieved, plan.tiers[0].shortfall]

    summary = {row[0]: row[1] for row in _table(book["Summary"])[1:]}
    assert summary["total_projected_gmv"] == pytest.approx(plan.objective.total_projected_gmv)
    assert summary["solver_status"] == str(plan.solver.status)
    assert summary["subsidy allocated"] == plan.resources[0].allocated

    binding = _table(book["Binding"])
    assert binding[0][:7] == [
        "kind",
        "resource",
        "tier",
        "where",
        "utilization",
        "marginal_gmv_per_unit",
        "marginal_weighted_shortfall_per_unit",
    ]
    assert binding[1][:7] == ["budget", "subsidy", None, None, 1, 2.5, -1e-7]
    assert book["Binding"]["E2"].number_format == SHARE
    assert binding[2][0] == "group_count" and binding[2][3] == '{"region": "north"}'


def test_the_plan_workbook_lists_every_partner_on_request(
    solved: tuple[AllocationRequest, Plan],
) -> None:
    request, plan = solved
    rows = _table(_open(plan_workbook(plan, request, all_partners=True))["Plan"])
    assert len(rows) - 1 == len(request.partners)


def test_the_comparison_workbook(solved: tuple[AllocationRequest, Plan]) -> None:
    request, plan = solved
    kpis = {
        "weighted_shortfall": 1.0,
        "achieved": {"100M": 3},
        "target": {"100M": 4},
        "spend": {"subsidy": 1e7, "traffic": 0},
        "total_projected_gmv": 4.9e8,
        "solver_status": "optimal",
        "mip_gap": 0.0,
    }
    view = {
        "status": "succeeded",
        "scenarios": [
            {"name": "base", "status": "succeeded", "kpis": kpis, "plan": plan_to_dict(plan)},
            {
                "name": "=cut/half",
                "status": "succeeded",
                "kpis": {**kpis, "solver_status": "feasible", "mip_gap": 0.1},
                "plan": plan_to_dict(plan),
            },
            {"name": "broken", "status": "failed", "error": "boom", "kpis": None, "plan": None},
        ],
        "differences": [
            {
                "scenario": "=cut/half",
                "partners": [
                    {
                        "partner_id": HOSTILE[1],
                        "tier_change": "lost",
                        "base_tier": "100M",
                        "scenario_tier": None,
                        "base_projected_gmv": 1.2e8,
                        "scenario_projected_gmv": 9e7,
                        "projected_gmv_delta": -3e7,
                        "amounts": {"subsidy": {"base": 3e6, "scenario": 0.0, "delta": -3e6}},
                    }
                ],
            }
        ],
    }
    book = _open(comparison_workbook(view, request))
    assert book.sheetnames[:2] == ["Summary", "Differences"]
    assert book.sheetnames[2:] == ["Plan base", "Plan =cut_half"]
    summary = _table(book["Summary"])
    assert summary[0][:5] == ["scenario", "status", "solver_status", "mip_gap", "caveat"]
    assert [row[0] for row in summary[1:]] == ["base", "'=cut/half", "broken"]
    assert summary[1][4] is None
    assert "not proven optimal" in summary[2][4] and "10.0%" in summary[2][4]
    assert summary[3][4] == "boom"
    assert book["Summary"]["D3"].number_format == SHARE
    header = summary[0]
    assert summary[1][header.index("achieved 100M")] == 3
    assert book["Summary"].freeze_panes == "A2"

    differences = _table(book["Differences"])
    assert differences[0][-3:] == ["subsidy base", "subsidy scenario", "subsidy delta"]
    row = differences[1]
    assert row[:3] == ["'=cut/half", "'" + HOSTILE[1], "lost"]
    assert row[7] == -3e7 and row[-1] == -3e6  # negative numbers stay numbers
    assert book["Differences"].cell(row=2, column=8).number_format == CNY


def test_a_workbook_saved_later_is_the_same_file(
    solved: tuple[AllocationRequest, Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Downloads of one plan are byte-identical (checksums, caches and diffs see one
    file): openpyxl's save time, in the document properties and every zip entry, does not
    leak into the bytes."""
    request, plan = solved
    first = plan_workbook(plan, request)
    later = time.time() + 3 * 24 * 3600  # a save three days on: other zip dates
    monkeypatch.setattr(time, "time", lambda: later)
    assert plan_workbook(plan, request) == first
    book = _open(first)
    assert book.properties.created == SAVED_AT and book.properties.modified == SAVED_AT
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {entry.date_time for entry in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.testzip() is None
