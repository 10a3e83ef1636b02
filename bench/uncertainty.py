"""Forecast-uncertainty benchmarks (docs/uncertainty.md), written as a section of BENCHMARKS.md.

    python -m bench.uncertainty [--repeats 3] [--out BENCHMARKS.md] [--kpi-size 1000000]
                                [--only min_cost]

Measures, in one process on one machine run (so ratios are same-run):

1. on the bundled programme and on a generated 5,000-partner programme whose targets are
   hard (seed 11: the median plan only just meets them), the median plan's `p_target` and
   `achieved_at_confidence` against the plan made at confidence 0.9, and the solve times
   (median of `--repeats`; the ratio is confidence / deterministic);
2. `min_cost` on the bundled programme with every budget ×10 (so budgets do not bind and
   the cost is what the targets need) at α = 0.5 / 0.8 / 0.9 / 0.95;
3. the KPI computation (`models.uncertainty.outlook`, both tiers) for `--kpi-size` generated
   partners: exact, and Monte Carlo with ρ = 0.3 grouped by region.

Every plan is checked by `models.check` (inside `optimizer.solve`). Raw figures go to
bench/UNCERTAINTY_RESULTS.json. `--only min_cost` re-measures part 2 alone and keeps the
other parts' figures from that file.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.instances import load, scenario
from bench.sections import replace_section
from models.csvio import read_partners_csv
from models.forecast import tier_specs
from models.plan import Plan
from models.request import AllocationRequest, Objective
from models.schemas import parse_request
from models.uncertainty import outlook, sigma
from optimizer.solve import solve

ROOT = Path(__file__).resolve().parent.parent
HARD_SEED = 11
ALPHAS = (0.5, 0.8, 0.9, 0.95)
BUDGET_FACTOR = 10  # min_cost: budgets this many times the programme's, so they do not bind


def _with(request: AllocationRequest, **options: Any) -> AllocationRequest:
    return replace(request, options=replace(request.options, **options))


def _timed(request: AllocationRequest) -> tuple[float, Plan]:
    started = time.perf_counter()
    plan = solve(request)[0]
    return time.perf_counter() - started, plan


def _figures(plan: Plan) -> dict[str, Any]:
    block = plan.uncertainty
    assert block is not None
    return {
        "status": str(plan.solver.status),
        "shortfall_median": sum(t.shortfall for t in plan.tiers),
        "cost": plan.objective.total_cost,
        "tiers": {
            t.name: {
                "target": t.target,
                "p_target": t.p_target,
                "expected": t.expected_achieved,
                "at_confidence": t.achieved_at_confidence,
            }
            for t in block.tiers
        },
    }


def compare(name: str, request: AllocationRequest, repeats: int) -> dict[str, Any]:
    """Median plan vs the plan at 90%, both reported at 90%."""
    base = _with(request, confidence=None)
    at90 = _with(request, confidence=0.9)
    det_times, conf_times = [], []
    det_plan = conf_plan = None
    for _ in range(repeats):  # interleaved, so both see the same machine load
        seconds, det_plan = _timed(base)
        det_times.append(seconds)
        seconds, conf_plan = _timed(at90)
        conf_times.append(seconds)
    assert det_plan is not None and conf_plan is not None
    det, conf = statistics.median(det_times), statistics.median(conf_times)
    return {
        "name": name,
        "deterministic": {**_figures(det_plan), "seconds": det, "runs": det_times},
        "confidence_0.9": {**_figures(conf_plan), "seconds": conf, "runs": conf_times},
        "time_ratio": conf / det,
    }


def min_cost(request: AllocationRequest) -> list[dict[str, Any]]:
    roomy = replace(
        request,
        objective=Objective.MIN_COST,
        resources=tuple(
            replace(r, budget=None if r.budget is None else BUDGET_FACTOR * r.budget)
            for r in request.resources
        ),
    )
    rows = []
    for alpha in ALPHAS:
        seconds, plan = _timed(_with(roomy, confidence=alpha))
        spend = {r.name: r.allocated for r in plan.resources}
        rows.append({"alpha": alpha, "seconds": seconds, "spend": spend, **_figures(plan)})
    return rows


def hard_programme() -> AllocationRequest:
    """5,000 generated partners (not the bundled CSV) under the bundled scenario: on this
    seed the median plan only just meets the targets."""
    from fixtures.generate import generate_partners, write_partners_csv

    buffer = io.StringIO()
    write_partners_csv(generate_partners(5000, HARD_SEED), buffer)
    buffer.seek(0)
    partners = read_partners_csv(buffer, label=f"generated-5000-seed{HARD_SEED}.csv")
    return parse_request(scenario(5000), partners=partners)


def kpis(size: int) -> dict[str, Any]:
    from fixtures.generate import generate_partners

    frame = generate_partners(size, 5)
    gmv = frame["baseline_gmv"].to_numpy(dtype=np.float64)
    sigmas = sigma(gmv, frame["baseline_gmv_p10"].tolist(), frame["baseline_gmv_p90"].tolist())
    tiers = tier_specs(load(5000).tiers)
    tiers = [replace(t, target=round(t.target * size / 5000)) for t in tiers]
    started = time.perf_counter()
    exact = outlook(gmv, sigmas, tiers)
    exact_seconds = time.perf_counter() - started
    _, groups = np.unique(frame["region"].to_numpy(dtype=str), return_inverse=True)
    started = time.perf_counter()
    sampled = outlook(gmv, sigmas, tiers, correlation=0.3, groups=groups, draws=1000)
    mc_seconds = time.perf_counter() - started
    return {
        "size": size,
        "exact_seconds": exact_seconds,
        "exact": [t.__dict__ for t in exact.tiers],
        "monte_carlo_seconds_1000_draws": mc_seconds,
        "monte_carlo": [t.__dict__ for t in sampled.tiers],
    }


def _tier_cells(figures: dict[str, Any], level: str = "90%") -> str:
    return "; ".join(
        f"{name} ≥{t['target']}: P {t['p_target']:.3f}, E {t['expected']:.1f}, "
        f"{level} {t['at_confidence']}"
        for name, t in figures["tiers"].items()
    )


def render(results: dict[str, Any], command: str) -> str:
    lines = [
        "## Forecast uncertainty (docs/uncertainty.md)",
        "",
        f"Generated by `{command}` on the machine above (shared, so times are noisy;",
        "ratios are from the same run, repeats interleaved).",
        "Raw figures: `bench/UNCERTAINTY_RESULTS.json`.",
        "",
        "Median plan vs plan at confidence 0.9 (both reported at 90%; P = `p_target`, E =",
        "`expected_achieved`, 90% = `achieved_at_confidence`; time = median solve):",
        "",
        "| programme | plan | tiers | time (s) | time ratio |",
        "|---|---|---|---|---|",
    ]
    for row in results["compare"]:
        det, conf = row["deterministic"], row["confidence_0.9"]
        lines.append(f"| {row['name']} | median | {_tier_cells(det)} | {det['seconds']:.1f} | 1 |")
        lines.append(
            f"| {row['name']} | at 90% | {_tier_cells(conf)} | {conf['seconds']:.1f} | "
            f"{row['time_ratio']:.2f}× |"
        )
    lines += [
        "",
        f"`min_cost` on the bundled programme, budgets ×{BUDGET_FACTOR} (subsidy still binds,",
        "so the spend beyond the cheapest plan is bisected: docs/uncertainty.md)"
        + (f", re-measured by `{again}`" if (again := results.get("min_cost_command")) else "")
        + ":",
        "",
        "| α | cost (CNY) | subsidy | traffic | fund | tiers | time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["min_cost"]:
        spend = row["spend"]
        lines.append(
            f"| {row['alpha']} | {row['cost']:,.0f} | {spend.get('subsidy', 0):,.0f} | "
            f"{spend.get('traffic', 0):,.0f} | {spend.get('fund', 0):,.0f} | "
            f"{_tier_cells(row, 'at α')} | {row['seconds']:.1f} |"
        )
    kpi = results["kpis"]
    lines += [
        "",
        f"KPI computation for {kpi['size']:,} partners (both tiers, from projected GMV and",
        f"σ): exact {kpi['exact_seconds']:.2f} s; Monte Carlo (ρ = 0.3 by region, 1,000 draws)",
        f"{kpi['monte_carlo_seconds_1000_draws']:.2f} s.",
    ]
    return "\n".join(lines) + "\n"


def _write_section(out: Path, section: str) -> None:
    replace_section(out, "uncertainty", section)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--kpi-size", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["min_cost"], help="re-measure this part alone")
    args = parser.parse_args(argv)
    command = f"python -m bench.uncertainty --repeats {args.repeats} --kpi-size {args.kpi_size}"
    raw = ROOT / "bench" / "UNCERTAINTY_RESULTS.json"
    bundled = load(5000)
    if args.only == "min_cost":
        results = json.loads(raw.read_text())
        results["min_cost"] = min_cost(bundled)
        results["min_cost_command"] = "python -m bench.uncertainty --only min_cost"
        command = results.get("command", command)
    else:
        results = {
            "kpis": kpis(args.kpi_size),
            "compare": [
                compare("bundled programme (5,000)", bundled, args.repeats),
                compare(f"generated 5,000, seed {HARD_SEED}", hard_programme(), args.repeats),
            ],
            "min_cost": min_cost(bundled),
            "command": command,
        }
    raw.write_text(json.dumps(results, indent=1))
    _write_section(args.out, render(results, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
