"""Terminal reports: readable figures, tables, the summary of a plan, and the files a
solve writes (plan CSVs and workbooks, the JSON plan list)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import pandas as pd

from adapters.exports import plan_workbook
from models.csvio import write_plan_csv
from models.plan import Plan, SolveStatus
from models.request import AllocationRequest
from models.schemas import plan_to_dict

_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def human(value: float | None) -> str:
    """1.234e9 -> '1.234B'; four significant digits are what a planner reads."""
    if value is None:
        return "-"
    for size, suffix in _SUFFIXES:
        if abs(value) >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


def money(value: float | None, unit: str = "CNY") -> str:
    if value is None:
        return "unlimited"
    if unit == "CNY":
        return ("-¥" if value < 0 else "¥") + human(abs(value))
    return f"{human(value)} {unit}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def gap(value: float | None) -> str:
    # Significant digits, not decimals: a 0.001% gap must not print as 0.00%; float
    # noise below a millionth of a percent is no gap.
    if value is None:
        return "-"
    return "0%" if abs(value) < 1e-8 else f"{100 * value:.2g}%"


def table(rows: Sequence[dict[str, Any]], indent: str = "  ") -> str:
    if not rows:
        return f"{indent}(none)"
    text = pd.DataFrame(list(rows)).fillna("").to_string(index=False)
    return "\n".join(indent + line for line in text.splitlines())


def _loud(lines: Sequence[str]) -> str:
    bar = "!" * 72
    body = "\n".join(f"!!! {line}" for line in lines)
    return click.style(f"{bar}\n{body}\n{bar}", fg="red", bold=True)


def _warnings(plan: Plan) -> list[str]:
    lines = []
    status = plan.solver.status
    if status == SolveStatus.INFEASIBLE:
        lines.append("INFEASIBLE: no allocation satisfies the hard constraints; this is the")
        lines.append("closest plan found, NOT a plan that meets the request.")
    elif status == SolveStatus.ERROR:
        lines.append("SOLVER ERROR: the engine failed; the plan below is only a fallback.")
    short = [tier for tier in plan.tiers if tier.shortfall > 0]
    if short:
        parts = ", ".join(f"{t.name} {t.achieved}/{t.target} ({t.shortfall} short)" for t in short)
        lines.append(f"TARGETS NOT MET: {parts}")
        lines.append(f"weighted shortfall {plan.objective.weighted_shortfall:g}")
    if lines and plan.binding_constraints:
        lines.append("binding: " + "; ".join(plan.binding_constraints))
    return lines


def _uncertainty_lines(plan: Plan) -> list[str]:
    """One line per tier: how likely the target is, and the count at the confidence."""
    block = plan.uncertainty
    if block is None:
        return []
    how = "exact" if block.draws is None else f"Monte Carlo, {block.draws:,} draws"
    lines = [f"Forecast uncertainty ({how}, correlation {block.correlation:g}):"]
    level = f"{block.confidence * 100:g}%"
    for t in block.tiers:
        error = f" ± {t.std_error:.3f}" if t.std_error else ""
        lines.append(
            f"  {t.name}: P(≥ target) {t.p_target:.2f}{error} · at {level}: "
            f"{t.achieved_at_confidence} of {t.target} · expected {t.expected_achieved:.1f}"
        )
    return lines


def plan_summary(plan: Plan, request: AllocationRequest, total: int = 1) -> str:
    """The terminal summary of one plan: tiers, spend, objective, solver."""
    units = {resource.name: resource.unit for resource in request.resources}
    solver = plan.solver
    out = []
    title = f"Plan {plan.rank} of {total} ({plan.label}) — {request.name or 'request'}"
    out.append(click.style(title, bold=True))
    warnings = _warnings(plan)
    if warnings:
        out.append(_loud(warnings))
    elif solver.status == SolveStatus.TIME_LIMIT:
        out.append(
            click.style("Stopped at the time limit: the plan may not be optimal.", fg="yellow")
        )
    out.append("Tiers:")
    out.append(
        table(
            [
                {
                    "tier": t.name,
                    "min GMV": money(t.min_gmv),
                    "achieved": t.achieved,
                    "target": t.target,
                    "shortfall": t.shortfall,
                }
                for t in plan.tiers
            ]
        )
    )
    out.extend(_uncertainty_lines(plan))
    out.append("Spend:")
    out.append(
        table(
            [
                {
                    "resource": r.name,
                    "allocated": money(r.allocated, units.get(r.name, "")),
                    "budget": money(r.budget, units.get(r.name, "")),
                    "utilization": percent(r.utilization),
                }
                for r in plan.resources
            ]
        )
    )
    objective = plan.objective
    out.append(
        f"Objective ({objective.mode}): weighted shortfall {objective.weighted_shortfall:g}, "
        f"total projected GMV {money(objective.total_projected_gmv)}, "
        f"incremental GMV {money(objective.incremental_gmv)}, "
        f"total cost {money(objective.total_cost)}"
    )
    out.append(
        f"Solver: {solver.engine}, status {solver.status}, gap {gap(solver.mip_gap)}, "
        f"bound {money(solver.best_bound) if solver.best_bound is not None else '-'}, "
        f"{solver.seconds:.2f} s"
    )
    if solver.shortfall_proven is not None:
        proof = "proven least" if solver.shortfall_proven else "not proven least"
        floor = f", bound {solver.shortfall_bound:g}" if solver.shortfall_bound is not None else ""
        out.append(f"Stage 1: weighted shortfall {objective.weighted_shortfall:g} {proof}{floor}")
    funded = sum(1 for a in plan.allocations if any(v > 0 for v in a.amounts.values()))
    out.append(f"Partners funded: {funded} of {len(request.partners)}")
    return "\n".join(out)


def alternatives_summary(plans: Sequence[Plan]) -> str:
    return table(
        [
            {
                "rank": p.rank,
                "label": p.label,
                "status": str(p.solver.status),
                "weighted shortfall": f"{p.objective.weighted_shortfall:g}",
                **{f"{t.name}": f"{t.achieved}/{t.target}" for t in p.tiers},
                "projected GMV": money(p.objective.total_projected_gmv),
                "cost": money(p.objective.total_cost),
            }
            for p in plans
        ]
    )


# ---------------------------------------------------------------------------------------
# Output files.
# ---------------------------------------------------------------------------------------


def _alternative_path(out: Path, rank: int, suffix: str = ".csv") -> Path:
    return out.with_name(f"{out.stem}.rank{rank}{out.suffix or suffix}")


def _rank_path(out: str, rank: int, suffix: str) -> Path:
    """Rank 1 goes exactly where asked; alternatives next to it."""
    path = Path(out) if rank == 1 else _alternative_path(Path(out), rank, suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_outputs(
    plans: Sequence[Plan],
    request: AllocationRequest,
    out: str | None,
    json_path: str | None,
    *,
    xlsx: str | None = None,
    all_partners: bool = False,
) -> list[Path]:
    """Plan CSV(s), XLSX workbook(s) and the JSON plan list; returns the paths written."""
    written: list[Path] = []
    try:
        if out:
            for plan in plans:
                path = _rank_path(out, plan.rank, ".csv")
                with path.open("w", newline="", encoding="utf-8") as handle:
                    write_plan_csv(plan, request, handle, all_partners=all_partners)
                written.append(path)
        if xlsx:
            for plan in plans:
                path = _rank_path(xlsx, plan.rank, ".xlsx")
                path.write_bytes(plan_workbook(plan, request, all_partners=all_partners))
                written.append(path)
        if json_path:
            path = Path(json_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            plan_list = [plan_to_dict(plan) for plan in plans]
            path.write_text(json.dumps(plan_list, indent=2) + "\n", encoding="utf-8")
            written.append(path)
    except OSError as error:
        raise click.ClickException(f"cannot write {error.filename}: {error.strerror}") from None
    return written
