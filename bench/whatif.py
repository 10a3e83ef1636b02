"""What-if scenarios: each scenario's solve time, status, gap, shortfall and GMV.

    python -m bench.whatif --fixture programme --changes CHANGES.json [--repeats 3]
    python -m bench.whatif --family 3:1200:0.9 --changes CHANGES.json [--time-limit 30]

The comparison loop of `windmaker compare` (`service.comparisons.prepare_scenarios` and
`solve_scenarios`, one worker: the base first, so every scenario may start from it) without
the explanations, repeated; one line per solve, then the medians per scenario. The time is
the solve's own (`solver.seconds`). `--family SEED:SIZE:AMBITION` is
`fixtures.families.family_request`. Run it on another checkout to compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import fixtures
from fixtures.families import family_request
from models.request import AllocationRequest
from service import comparisons, solving


def base_request(fixture: str | None, family: str | None) -> AllocationRequest:
    if family:
        seed, size, ambition = family.split(":")
        request, _ = family_request(int(seed), int(size), float(ambition))
        return request
    assert fixture is not None
    data = fixtures.scenario(fixture)
    data["partners"] = {"fixture": fixture}
    return solving.parse_allocation(data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fixture")
    source.add_argument("--family", help="SEED:SIZE:AMBITION")
    parser.add_argument("--changes", required=True, help='JSON list of {"name", "changes"}')
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=None)
    args = parser.parse_args(argv)
    base = base_request(args.fixture, args.family)
    if args.time_limit is not None:
        base = replace(base, options=replace(base.options, time_limit_s=args.time_limit))
    with open(args.changes, encoding="utf-8") as handle:
        scenarios = json.load(handle)
    runs: dict[str, list[dict[str, Any]]] = {}
    for repeat in range(args.repeats):
        prepared = comparisons.prepare_scenarios(base, scenarios)
        solve = partial(solving.solve_request, explain=False)
        for outcome in comparisons.solve_scenarios(prepared, solve=solve):
            if not outcome.plans:
                print(repeat, outcome.name, "failed:", outcome.error, flush=True)
                continue
            plan = outcome.plans[0]
            run = {
                "seconds": plan.solver.seconds,
                "status": str(plan.solver.status),
                "gap": plan.solver.mip_gap,
                "shortfall": plan.objective.weighted_shortfall,
                "proven": plan.solver.shortfall_proven,
                "gmv": plan.objective.total_projected_gmv,
            }
            runs.setdefault(outcome.name, []).append(run)
            print(repeat, outcome.name, json.dumps(run), flush=True)
    print("medians:")
    for name, found in runs.items():
        gaps = [r["gap"] for r in found if r["gap"] is not None]
        print(
            f"{name}: {statistics.median(r['seconds'] for r in found):.1f} s,",
            ", ".join(sorted({r["status"] for r in found})) + ",",
            f"gap {statistics.median(gaps):.3%}," if gaps else "no gap,",
            f"shortfall {statistics.median(r['shortfall'] for r in found):g},",
            f"GMV ¥{statistics.median(r['gmv'] for r in found) / 1e9:.3f}B",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
