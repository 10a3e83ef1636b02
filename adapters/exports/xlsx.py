"""Excel workbooks of plans and comparisons (openpyxl): an output format over the data
the service returns. Every sheet has a frozen header row, an autofilter and widths that
fit its content; money shows as `¥ #,##0`, other amounts as `#,##0`, shares and
probabilities as `0.0%`; text cells are spreadsheet-safe (models.spreadsheet)."""

from __future__ import annotations

import datetime
import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from models.plan import Plan
from models.plan_table import GMV, PROBABILITY, RESOURCE, plan_table
from models.request import AllocationRequest
from models.schemas import plan_from_dict
from models.spreadsheet import cell_value, formula_safe

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CNY = '"¥" #,##0'
COUNT = "#,##0"
DECIMAL = "#,##0.00"
SHARE = "0.0%"
_MONEY_UNITS = frozenset({"cny", "rmb", "yuan", "¥", "元"})
_MAX_WIDTH = 60
# The creation and modification time of every workbook (see `_save`); zip dates start in 1980.
SAVED_AT = datetime.datetime(1980, 1, 1)
_STAMP = SAVED_AT.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
_CORE_PROPERTIES = "docProps/core.xml"
_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def amount_format(unit: str) -> str:
    """`¥ #,##0` for money resources, `#,##0` for impressions and other units."""
    return CNY if unit.strip().lower() in _MONEY_UNITS else COUNT


def _units(request: AllocationRequest | None) -> dict[str, str]:
    return {r.name: amount_format(r.unit) for r in request.resources} if request else {}


class _Sheet:
    """One table: a bold frozen header, rows of safe values, per-column number formats."""

    def __init__(self, book: Workbook, title: str, header: Sequence[str]) -> None:
        self.ws: Worksheet = book.create_sheet(title)
        self.header = list(header)
        self.ws.append([formula_safe(name) for name in self.header])
        for cell in self.ws[1]:
            cell.font = Font(bold=True)
        self.widths = [len(name) for name in self.header]

    def row(self, values: Iterable[Any], formats: Sequence[str | None] = ()) -> None:
        cells = [_cell(value) for value in values]
        self.ws.append(cells)
        row = self.ws.max_row
        for c, value in enumerate(cells):
            fmt = formats[c] if c < len(formats) else None
            if fmt and isinstance(value, int | float) and not isinstance(value, bool):
                self.ws.cell(row=row, column=c + 1).number_format = fmt
            shown = _shown_width(value, fmt)
            if c < len(self.widths):
                self.widths[c] = max(self.widths[c], shown)
            else:
                self.widths.append(shown)

    def finish(self) -> None:
        self.ws.freeze_panes = "A2"
        last = get_column_letter(max(len(self.widths), 1))
        self.ws.auto_filter.ref = f"A1:{last}{max(self.ws.max_row, 1)}"
        for c, width in enumerate(self.widths, start=1):
            self.ws.column_dimensions[get_column_letter(c)].width = min(width + 2, _MAX_WIDTH)


def _cell(value: Any) -> Any:
    if isinstance(value, Mapping | list):
        return formula_safe(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return cell_value(value)


def _shown_width(value: Any, fmt: str | None) -> int:
    if value is None:
        return 0
    if isinstance(value, int | float) and not isinstance(value, bool):
        if fmt == SHARE:
            return 7
        return len(f"{value:,.0f}") + (2 if fmt == CNY else 0)
    return len(str(value))


def _save(book: Workbook) -> bytes:
    """The workbook's bytes, the same for the same content whenever it is saved: openpyxl
    stamps the save time into docProps/core.xml and every zip entry, so two downloads of
    one plan differed (caches, checksums and diffs saw a new file each time). Both stamps
    are set to `SAVED_AT`."""
    book.properties.created = SAVED_AT
    buffer = io.BytesIO()
    book.save(buffer)
    return _restamped(buffer.getvalue())


def _restamped(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            content = source.read(entry)
            if entry.filename == _CORE_PROPERTIES:
                content = _MODIFIED.sub(rb"\g<1>" + _STAMP + rb"\g<2>", content)
            stamped = zipfile.ZipInfo(entry.filename, date_time=SAVED_AT.timetuple()[:6])
            stamped.compress_type = zipfile.ZIP_DEFLATED
            stamped.external_attr = entry.external_attr
            target.writestr(stamped, content)
    return out.getvalue()


def _new_book() -> Workbook:
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    return book


# -- plans ------------------------------------------------------------------------------


def plan_workbook(
    plan: Plan, request: AllocationRequest, *, all_partners: bool = False, title: str = ""
) -> bytes:
    """Sheets Summary, Plan, Tiers and Binding of one plan."""
    book = _new_book()
    _summary_sheet(book, plan, request, title)
    _plan_sheet(book, "Plan", plan, request, all_partners)
    _tiers_sheet(book, plan)
    _binding_sheet(book, plan, request)
    return _save(book)


def _summary_sheet(book: Workbook, plan: Plan, request: AllocationRequest, title: str) -> None:
    sheet = _Sheet(book, "Summary", ["item", "value"])
    objective = plan.objective
    sheet.row(["programme", title or request.name or ""])
    sheet.row(["rank", plan.rank])
    sheet.row(["label", plan.label])
    sheet.row(["objective", objective.mode])
    sheet.row(["weighted_shortfall", objective.weighted_shortfall], [None, DECIMAL])
    sheet.row(["total_cost", objective.total_cost], [None, CNY])
    sheet.row(["total_projected_gmv", objective.total_projected_gmv], [None, CNY])
    sheet.row(["incremental_gmv", objective.incremental_gmv], [None, CNY])
    sheet.row(["solver_engine", plan.solver.engine])
    sheet.row(["solver_status", str(plan.solver.status)])
    sheet.row(["mip_gap", plan.solver.mip_gap], [None, SHARE])
    sheet.row(["seconds", plan.solver.seconds], [None, DECIMAL])
    units = _units(request)
    for resource in plan.resources:
        fmt = units.get(resource.name, COUNT)
        sheet.row([f"{resource.name} budget", resource.budget], [None, fmt])
        sheet.row([f"{resource.name} allocated", resource.allocated], [None, fmt])
        sheet.row([f"{resource.name} utilization", resource.utilization], [None, SHARE])
    sheet.finish()


def _plan_sheet(
    book: Workbook, title: str, plan: Plan, request: AllocationRequest, all_partners: bool
) -> None:
    table = plan_table(plan, request, all_partners=all_partners)
    units = _units(request)
    formats: list[str | None] = []
    for column in table.columns:
        if column.kind == RESOURCE:
            formats.append(units.get(column.resource or "", COUNT))
        elif column.kind == GMV:
            formats.append(CNY)
        elif column.kind == PROBABILITY:
            formats.append(SHARE)
        else:
            formats.append(None)
    sheet = _Sheet(book, title, table.header)
    for row in table.rows:
        sheet.row(row, formats)
    sheet.finish()


def _tiers_sheet(book: Workbook, plan: Plan) -> None:
    reach = {t.name: t.p_target for t in plan.uncertainty.tiers} if plan.uncertainty else None
    header = ["tier", "min_gmv", "target", "achieved", "shortfall"]
    sheet = _Sheet(book, "Tiers", [*header, *(["p_target"] if reach is not None else [])])
    for tier in plan.tiers:
        values = [tier.name, tier.min_gmv, tier.target, tier.achieved, tier.shortfall]
        if reach is not None:
            values.append(reach.get(tier.name))
        sheet.row(values, [None, CNY, COUNT, COUNT, COUNT, SHARE])
    sheet.finish()


BINDING_HEADER = [
    "kind",
    "resource",
    "tier",
    "where",
    "utilization",
    "marginal_gmv_per_unit",
    "marginal_weighted_shortfall_per_unit",
    "detail",
]


def _binding_sheet(book: Workbook, plan: Plan, request: AllocationRequest) -> None:
    """One row per binding constraint of the plan's explanation (or, on a plan without
    one, per entry of `binding_constraints`, as text)."""
    sheet = _Sheet(book, "Binding", BINDING_HEADER)
    explanation = plan.explanation or {}
    units = _units(request)
    for entry in explanation.get("binding", []):
        marginal = entry.get("marginal_value") or {}
        where = entry.get("where")
        detail = {
            key: value
            for key, value in entry.items()
            if key not in {"kind", "resource", "tier", "where", "utilization", "marginal_value"}
        }
        sheet.row(
            [
                entry.get("kind"),
                entry.get("resource"),
                entry.get("tier"),
                json.dumps(where, ensure_ascii=False, sort_keys=True) if where else None,
                entry.get("utilization"),
                marginal.get("gmv"),
                marginal.get("weighted_shortfall"),
                json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else None,
            ],
            [None, None, None, None, SHARE, CNY if entry.get("resource") in units else None],
        )
    if not explanation.get("binding"):
        for text in plan.binding_constraints:
            sheet.row([None, None, None, None, None, None, None, text])
    sheet.finish()


# -- comparisons ------------------------------------------------------------------------

SUMMARY_HEADER = ["scenario", "status", "solver_status", "mip_gap", "caveat"]


def comparison_workbook(view: Mapping[str, Any], request: AllocationRequest | None) -> bytes:
    """A Summary sheet (a row per scenario: status, gap, KPIs), a Differences sheet (a row
    per partner and scenario) and, per scenario with a plan, its plan; `view` is what
    `service.jobs.get_comparison` returns, `request` the comparison's base request."""
    book = _new_book()
    scenarios = list(view.get("scenarios") or [])
    _comparison_summary(book, scenarios, request)
    _differences_sheet(book, view.get("differences") or [], request)
    if request is not None:
        used = {"Summary", "Differences"}
        for scenario in scenarios:
            if scenario.get("plan"):
                title = _sheet_title(f"Plan {scenario.get('name')}", used)
                _plan_sheet(book, title, plan_from_dict(scenario["plan"]), request, False)
    return _save(book)


def _comparison_summary(
    book: Workbook, scenarios: list[Mapping[str, Any]], request: AllocationRequest | None
) -> None:
    tiers = list(
        dict.fromkeys(t for s in scenarios for t in (s.get("kpis") or {}).get("achieved", {}))
    )
    spends = list(
        dict.fromkeys(r for s in scenarios for r in (s.get("kpis") or {}).get("spend", {}))
    )
    header = [*SUMMARY_HEADER, "weighted_shortfall", "total_projected_gmv"]
    header += [f"achieved {t}" for t in tiers] + [f"spend {r}" for r in spends]
    units = _units(request)
    formats = [None, None, None, SHARE, None, DECIMAL, CNY]
    formats += [COUNT] * len(tiers) + [units.get(r, COUNT) for r in spends]
    sheet = _Sheet(book, "Summary", header)
    for scenario in scenarios:
        kpis = scenario.get("kpis") or {}
        achieved, spend = kpis.get("achieved") or {}, kpis.get("spend") or {}
        sheet.row(
            [
                scenario.get("name"),
                scenario.get("status"),
                kpis.get("solver_status"),
                kpis.get("mip_gap"),
                scenario.get("caveat") or scenario.get("error") or _caveat(kpis),
                kpis.get("weighted_shortfall"),
                kpis.get("total_projected_gmv"),
                *(achieved.get(t) for t in tiers),
                *(spend.get(r) for r in spends),
            ],
            formats,
        )
    sheet.finish()


def _caveat(kpis: Mapping[str, Any]) -> str | None:
    status = kpis.get("solver_status")
    if status is None or status == "optimal":
        return None
    gap = kpis.get("mip_gap")
    gap_text = f" (gap {gap:.1%})" if isinstance(gap, int | float) else ""
    return f"not proven optimal: {status}{gap_text}; figures may improve with more time"


DIFFERENCES_HEADER = [
    "scenario",
    "partner_id",
    "tier_change",
    "base_tier",
    "scenario_tier",
    "base_projected_gmv",
    "scenario_projected_gmv",
    "projected_gmv_delta",
]


def _differences_sheet(
    book: Workbook, differences: list[Mapping[str, Any]], request: AllocationRequest | None
) -> None:
    rows = [(d.get("scenario"), row) for d in differences for row in d.get("partners") or []]
    resources = list(dict.fromkeys(r for _, row in rows for r in row.get("amounts") or {}))
    header = list(DIFFERENCES_HEADER)
    for name in resources:
        header += [f"{name} base", f"{name} scenario", f"{name} delta"]
    units = _units(request)
    formats: list[str | None] = [None, None, None, None, None, CNY, CNY, CNY]
    for name in resources:
        formats += [units.get(name, COUNT)] * 3
    sheet = _Sheet(book, "Differences", header)
    for scenario, row in rows:
        amounts = row.get("amounts") or {}
        values = [scenario, *(row.get(key) for key in DIFFERENCES_HEADER[1:])]
        for name in resources:
            change = amounts.get(name) or {}
            values += [change.get("base"), change.get("scenario"), change.get("delta")]
        sheet.row(values, formats)
    sheet.finish()


def _sheet_title(name: str, used: set[str]) -> str:
    """A unique sheet title Excel accepts: at most 31 characters, none of []:*?/\\."""
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)[:31] or "Plan"
    title, n = clean, 2
    while title.lower() in {u.lower() for u in used}:
        suffix = f" ({n})"
        title, n = clean[: 31 - len(suffix)] + suffix, n + 1
    used.add(title)
    return title
