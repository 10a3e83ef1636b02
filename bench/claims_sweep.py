"""Every claim `auto` makes, checked against a long CBC run on the same programme:

    python -m bench.claims_sweep FIRST_SEED COUNT [--sizes 50,100,200,300] [--limit 30]
                                  [--plans K] [--points SHARE]

Seed s builds `fixtures.families.family_programme(s, size, ambition, resources=...)` with
its size, 2-4 resources, ambition (0.5-0.98) and objective cycling with the seed; some
seeds give 20% of the partners menus (`bench.menu_run.with_menus`), others 3% menus that
trade one resource for another under a `one_package` rule, every third three pins. `auto`
solves it within `--limit` s at the gap 0.1%, CBC within 60 s at 0.01%. One line per
programme: both statuses, times and shortfalls, the objective against CBC's at equal
shortfall, and in capitals any claim the reference refutes: an invalid plan, `infeasible`
where CBC has a plan, a shortfall proof or bound CBC beats, a GMV (cost) bound CBC's plan
beats, `optimal` with CBC's plan better by more than the gap, or a `group_count` missed
that CBC meets. With `--plans K` auto returns K plans, and each alternative must pass the
exact check too, hold a set of tier achievers no other plan holds, and not beat the plan
ranked first. With `--points SHARE` about that share of the partners' curves are given as
`points` knots (`fixtures.points.as_points`). The defects found this way are in
BENCHMARKS.md ("Claims checked").
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bench.menu_run import with_menus
from fixtures.families import family_programme
from fixtures.points import as_points
from models.check import check_plan
from models.plan import Plan, SolveStatus
from models.request import AllocationRequest, GroupCount, Objective, OnePackage, Package, Pin
from optimizer import solve

AMBITIONS = (0.5, 0.8, 0.9, 0.95, 0.98)
TRADES = ((0.9, 0.2), (0.2, 0.9), (0.5, 0.5))  # shares of the first and other resources


def programme(
    seed: int, sizes: Sequence[int], limit_s: float, points: float = 0.0
) -> tuple[AllocationRequest, str]:
    size, resources = sizes[seed % len(sizes)], 2 + seed % 3
    ambition, objective = AMBITIONS[seed % 5], list(Objective)[(seed // 5) % 3]
    request = family_programme(
        seed, size, ambition, resources=resources, time_limit_s=limit_s
    ).request()
    menus = seed % 6
    if menus in (1, 4):
        request = with_menus(request, 0.2, seed)
    elif menus == 2:
        request = _trading_menus(request, 0.03, seed)
    pinned = seed % 3 == 0
    if pinned:
        request = _with_pins(request, seed)
    if points > 0:
        request = as_points(request, points, seed)
    label = (
        f"seed {seed}: {size} partners, {resources} resources, ambition {ambition}, "
        f"{objective.value}, menus {menus in (1, 2, 4)}, pins {pinned}, points {points:g}"
    )
    return replace(request, objective=objective), label


def _trading_menus(request: AllocationRequest, share: float, seed: int) -> AllocationRequest:
    """A seeded share of the partners with two or more resources on three packages that
    trade the first resource for the others, bound by a one_package rule."""
    rng = np.random.default_rng(seed)
    partners = []
    for partner in request.partners:
        names = [name for name in partner.curves if request.eligible(partner, name)]
        if rng.random() >= share or len(names) < 2:
            partners.append(partner)
            continue
        packages = []
        for k, (first, others) in enumerate(TRADES):
            amounts: dict[str, float] = {}
            for j, name in enumerate(names):
                low, high = request.amount_range(partner, name)
                step = request.resource(name).step or 0.0
                amount = (first if j == 0 else others) * high
                amount = max(math.floor(amount / step) * step if step > 0 else amount, low)
                if math.isfinite(high) and 0 < amount <= high:
                    amounts[name] = amount
            uplift = sum(float(partner.curves[n].value(a)) for n, a in amounts.items())
            if amounts and uplift > 0:
                packages.append(Package(f"trade{k}", amounts, uplift))
        menu = replace(partner, curves={}, bounds={}, packages=tuple(packages))
        partners.append(menu if packages else partner)
    rules = (*request.constraints, OnePackage())
    return replace(request, partners=tuple(partners), constraints=rules)


def _with_pins(request: AllocationRequest, seed: int) -> AllocationRequest:
    """Three seeded partners pinned at half the max of their first resource (on its step)."""
    rng = np.random.default_rng(seed + 7)
    pins = []
    for i in rng.choice(len(request.partners), 3, replace=False):
        partner = request.partners[int(i)]
        names = [name for name in partner.curves if request.eligible(partner, name)]
        if not names:
            continue
        low, high = request.amount_range(partner, names[0])
        step = request.resource(names[0]).step or 1.0
        amount = max(math.floor(0.5 * high / step) * step, low) if math.isfinite(high) else 0.0
        if 0 < amount <= high:
            pins.append(Pin(partner.id, names[0], amount))
    return replace(request, constraints=(*request.constraints, *pins))


def _value(plan: Plan, objective: Objective) -> float:
    """The stage-2 objective as a figure to maximise."""
    if objective is Objective.MIN_COST:
        return -plan.objective.total_cost
    return plan.objective.total_projected_gmv


def _group_counts_missed(request: AllocationRequest, plan: Plan) -> int:
    gmv = {a.partner_id: a.projected_gmv for a in plan.allocations}
    missed = 0
    for rule in (c for c in request.constraints if isinstance(c, GroupCount)):
        threshold = request.tier(rule.tier).min_gmv
        reached = sum(
            1
            for p in request.partners
            if rule.where.matches(p) and gmv.get(p.id, p.baseline_gmv) >= threshold
        )
        missed += max(rule.min - reached, 0)
    return missed


def refuted(request: AllocationRequest, ours: Plan, ref: Plan) -> list[str]:
    """The claims of `ours` (auto's plan) that `ref` (CBC's, on the same request) refutes."""
    found: list[str] = []
    mine, theirs = ours.solver, ref.solver
    if mine.status is not SolveStatus.INFEASIBLE and check_plan(request, ours):
        found.append("INVALID PLAN")
    if mine.status is SolveStatus.INFEASIBLE or theirs.status is SolveStatus.INFEASIBLE:
        if mine.status is SolveStatus.INFEASIBLE and theirs.status is not SolveStatus.INFEASIBLE:
            found.append("FALSE INFEASIBLE")
        return found
    short, their_short = ours.objective.weighted_shortfall, ref.objective.weighted_shortfall
    staged = request.objective is not Objective.MAX_GMV
    if staged and mine.shortfall_proven and their_short < short - 1e-9:
        found.append(f"FALSE SHORTFALL PROOF ({short:g} against {their_short:g})")
    if staged and mine.shortfall_bound is not None and their_short < mine.shortfall_bound - 1e-9:
        found.append(f"SHORTFALL BOUND ABOVE A PLAN ({mine.shortfall_bound:g})")
    if abs(short - their_short) < 1e-9 or not staged:
        minimise = request.objective is Objective.MIN_COST
        theirs_value = _value(ref, request.objective)
        if mine.best_bound is not None:
            bound = -mine.best_bound if minimise else mine.best_bound
            if theirs_value > bound + 1e-6 * abs(bound) + 1.0:
                found.append(f"BOUND BEATEN ({bound:.6g} against {theirs_value:.6g})")
        if mine.status is SolveStatus.OPTIMAL:
            value = _value(ours, request.objective)
            if theirs_value > value + 1.001 * request.options.mip_gap * abs(value):
                found.append(f"FALSE OPTIMAL ({value:.6g} against {theirs_value:.6g})")
    if mine.status is SolveStatus.OPTIMAL and _group_counts_missed(
        request, ours
    ) > _group_counts_missed(request, ref):
        found.append("GROUP COUNT MISSED")
    return found


def _achievers(plan: Plan) -> frozenset[tuple[str, str]]:
    return frozenset((a.partner_id, a.tier) for a in plan.allocations if a.tier is not None)


def _ahead(request: AllocationRequest, plan: Plan, first: Plan) -> bool:
    """Does `plan` beat `first`: less shortfall, or as little and a better objective?"""
    short, first_short = plan.objective.weighted_shortfall, first.objective.weighted_shortfall
    if request.objective is not Objective.MAX_GMV and abs(short - first_short) > 1e-9:
        return short < first_short
    value, first_value = _value(plan, request.objective), _value(first, request.objective)
    return value > first_value + 1e-9 * abs(first_value)


def refuted_alternatives(request: AllocationRequest, plans: Sequence[Plan]) -> list[str]:
    """What the plans after the first break: the exact check, no copies (each a set of
    tier achievers of its own), and the first plan the best."""
    found: list[str] = []
    for rank, plan in enumerate(plans[1:], start=2):
        if check_plan(request, plan):
            found.append(f"INVALID ALTERNATIVE {rank}")
        if any(_achievers(plan) == _achievers(other) for other in plans[: rank - 1]):
            found.append(f"ALTERNATIVE {rank} A COPY")
        if _ahead(request, plan, plans[0]):
            found.append(f"ALTERNATIVE {rank} BEATS THE FIRST")
    return found


def check(
    seed: int, sizes: Sequence[int], limit_s: float, plans: int = 1, points: float = 0.0
) -> str:
    request, label = programme(seed, sizes, limit_s, points)
    request = replace(request, options=replace(request.options, plans=plans))
    started = time.perf_counter()
    returned = solve(request)
    ours = returned[0]
    ours_s = time.perf_counter() - started
    reference = replace(
        request,
        options=replace(request.options, engine="cbc", time_limit_s=60, mip_gap=1e-4, plans=1),
    )
    started = time.perf_counter()
    ref = solve(reference)[0]
    ref_s = time.perf_counter() - started
    mine, theirs = ours.solver, ref.solver
    line = (
        f"{label}: auto {mine.engine} {mine.status.value} {ours_s:.1f} s, shortfall "
        f"{ours.objective.weighted_shortfall:g} | CBC {theirs.status.value} {ref_s:.1f} s, "
        f"shortfall {ref.objective.weighted_shortfall:g}"
    )
    feasible = SolveStatus.INFEASIBLE not in (mine.status, theirs.status)
    if feasible and ours.objective.weighted_shortfall == ref.objective.weighted_shortfall:
        ratio = _value(ours, request.objective) / _value(ref, request.objective) - 1
        line += f", objective {ratio:+.4%} against CBC's"
    if plans > 1:
        line += f", {len(returned)} plans"
    return " ".join([line, *refuted(request, ours, ref), *refuted_alternatives(request, returned)])


def main(argv: Sequence[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first_seed", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--sizes", default="50,100,200,300")
    parser.add_argument("--limit", type=float, default=30.0)
    parser.add_argument("--plans", type=int, default=1)
    parser.add_argument("--points", type=float, default=0.0, metavar="SHARE")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    lines = []
    for seed in range(args.first_seed, args.first_seed + args.count):
        lines.append(check(seed, sizes, args.limit, args.plans, args.points))
        print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main()
