"""One family programme through `auto`, for A/B timings (issue 12; BENCHMARKS.md's
"before and after" tables):

    python -m bench.family_run SEED PARTNERS AMBITION LIMIT_S [RESOURCES] [--progress]
                               [--points SHARE] [--objective NAME] [--plans N]
                               [--engine NAME]

Builds `fixtures.families.family_programme(seed, partners, ambition, resources=...,
time_limit_s=LIMIT_S)` (gap 0.1%), solves it with `optimizer.solve`, and prints one line:
wall time of the solve, engine, status, certified gap, weighted shortfall (proven, bound)
and total projected GMV and cost. `--progress` prints the engine's progress events as they come;
`--points SHARE` gives about that share of the partners `points` curves (`fixtures.points`).
`--objective` sets the request's objective; `--plans N` asks for N plans and prints a line
per alternative (its label, status, shortfall, GMV and cost) and how many distinct sets of
tier achievers the plans hold, after the best plan's line. `--engine` names the engine
(default `auto`).
Run it with PYTHONPATH pointing at another checkout to time that one on the same input.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace

from fixtures.families import family_programme
from fixtures.points import as_points
from models.plan import Plan
from models.request import Objective
from optimizer import solve
from optimizer.progress import ProgressEvent


def _progress(event: ProgressEvent) -> None:
    print(f"  {event.elapsed_s or 0.0:7.1f} s  {event}", flush=True)


def summary(plan: Plan, seconds: float) -> str:
    solver = plan.solver
    gap = "none" if solver.mip_gap is None else f"{solver.mip_gap:.4%}"
    return (
        f"{seconds:.2f} s  {solver.engine}  {solver.status}  gap {gap}  "
        f"shortfall {plan.objective.weighted_shortfall:g} (proven {solver.shortfall_proven}, "
        f"bound {solver.shortfall_bound})  GMV {plan.objective.total_projected_gmv:,.0f}  "
        f"cost {plan.objective.total_cost:,.0f}"
    )


def programme_parser(description: str) -> argparse.ArgumentParser:
    """The family programme's four positional arguments: SEED PARTNERS AMBITION LIMIT_S."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("seed", type=int)
    parser.add_argument("partners", type=int)
    parser.add_argument("ambition", type=float)
    parser.add_argument("limit_s", type=float)
    return parser


def main(argv: Sequence[str] | None = None) -> str:
    parser = programme_parser(__doc__.splitlines()[0])
    parser.add_argument("resources", type=int, nargs="?", default=3)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--points", type=float, default=0.0, metavar="SHARE")
    parser.add_argument("--objective", choices=[o.value for o in Objective], default=None)
    parser.add_argument("--plans", type=int, default=1)
    parser.add_argument("--engine", default="auto")
    args = parser.parse_args(argv)
    request = family_programme(
        args.seed, args.partners, args.ambition, resources=args.resources,
        time_limit_s=args.limit_s,
    ).request()  # fmt: skip
    if args.points > 0:
        request = as_points(request, args.points, args.seed)
    if args.objective is not None:
        request = replace(request, objective=Objective(args.objective))
    options = replace(request.options, plans=args.plans, engine=args.engine)
    request = replace(request, options=options)
    started = time.perf_counter()
    plans = solve(request, progress=_progress if args.progress else None)
    line = summary(plans[0], time.perf_counter() - started)
    print(line, flush=True)
    if len(plans) > 1 or args.plans > 1:
        for plan in plans[1:]:
            print(f"  {plan.label}: {_alternative(plan)}")
        sets = {frozenset((a.partner_id, a.tier) for a in p.allocations if a.tier) for p in plans}
        print(f"  {len(plans)} plans, {len(sets)} distinct sets of tier achievers", flush=True)
    return line


def _alternative(plan: Plan) -> str:
    o = plan.objective
    return (
        f"{plan.solver.status}  shortfall {o.weighted_shortfall:g}  "
        f"GMV {o.total_projected_gmv:,.0f}  cost {o.total_cost:,.0f}"
    )


if __name__ == "__main__":
    main()
