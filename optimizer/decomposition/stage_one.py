"""Stage 1 of the decomposition: the least weighted shortfall the prices find, and its proof.

A probe at the targets settles it when some plan meets every target; otherwise the
attainment dual (`stages.run_stage`) bounds it, the tier-option MILP (`assignment`) tries
for a plan with less shortfall, and the certificate (`certificate`: reduced-cost fixing
and a MILP relaxation over the partners in doubt) for a better bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.request import Objective
from optimizer.clock import Clock
from optimizer.decomposition.assignment import assign_by_milp
from optimizer.decomposition.certificate import shortfall_floor
from optimizer.decomposition.lagrangian import Lagrangian, Stage, initial_point
from optimizer.decomposition.menu_plans import at_prices, pinned
from optimizer.decomposition.primal import (
    ScoredAmounts,
    better,
    construct,
    evaluate_plan,
    missed_group_counts,
    within_groups,
)
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.repair import fill
from optimizer.decomposition.stages import run_stage
from optimizer.progress import Progress, ProgressEvent

# The tier-option MILP is tried only with at least this many seconds left for it.
MIN_ASSIGNMENT_S = 1.0
# The first tier-option MILP (price variants only) solves for at most this share of the
# limit.
FIRST_SOLVE_SHARE = 0.05
# The stage-1 certificate (reduced-cost fixing and its MILP) may run up to this share.
CERTIFICATE_SHARE = 0.55
# The tier-option MILP with the ticket grid's options, when the certificate leaves room.
# Stage 2 keeps the rest: at 50,000 family partners the two ran to 80% of the limit
# (for no fewer targets missed) and left stage 2 one price step (gap 40–90%).
GRID_ASSIGNMENT_SHARE = 0.6
GRID_EXTRA_SHARE = 0.2  # of the limit, at most: stage 2 needs the rest of its time


@dataclass
class StageOne:
    plan: ScoredAmounts | None  # None: no tiers count (max_gmv, or no tiers)
    proven: bool
    floor: float  # proven least weighted shortfall
    targets: NDArray[np.int64]  # the tier counts stage 2 keeps
    prices: FloatArray | None = None  # the attainment dual's best prices, when it ran


def stage_one(
    problem: Problem,
    clock: Clock,
    progress: Progress | None,
    warm: FloatArray | None,
    incumbent: ScoredAmounts | None = None,
    attain_warm: FloatArray | None = None,
) -> StageOne:
    """The least weighted shortfall the prices find, and whether the bound proves it.
    `attain_warm`: a sample's attainment prices, where the attainment dual starts (at
    1,000,000 partners it has time for a dozen steps; not in stage 2's trust box: from
    there, the tier-option LP's plan was 99 short instead of 95). The sample's own probe
    fell short of the targets, so the programme's is skipped (1,000,000 family partners:
    18 s for a plan 8,012 short), and so is the ticket grid's MILP (16 s for the plan the
    first MILP had found)."""
    minimise = problem.request.objective is Objective.MIN_COST
    if problem.n_tiers == 0 or problem.request.objective is Objective.MAX_GMV:
        return StageOne(None, True, 0.0, np.zeros_like(problem.targets))
    sampled = attain_warm is not None
    # Try the targets outright first: a plan meeting them settles stage 1 for free.
    seed_plan = None if sampled else _probe(problem, warm, clock)
    if incumbent is not None and better(incumbent, seed_plan, minimise):
        seed_plan = incumbent  # a start meeting every target settles stage 1 as well
    floor = 0.0
    attain_prices = None
    if seed_plan is None or seed_plan.shortfall > 0:
        weights_total = float((problem.weights * problem.targets).sum())
        integral = bool(np.all(problem.weights == np.round(problem.weights)))

        def least(bound: float) -> float:
            floor = max(weights_total - bound, 0.0)
            return float(math.ceil(floor - 1e-6)) if integral else floor

        def settled(bound: float, plan: ScoredAmounts | None) -> bool:
            return plan is not None and plan.shortfall <= least(bound) + 1e-9

        def hopeless(floor: float, plan: ScoredAmounts | None) -> bool:
            return plan is not None and plan.shortfall > least(floor) + 1e-9

        attain = Stage("attain", problem.targets, True)
        bound1, plan1, prices1 = run_stage(
            problem, attain, clock, 0.4, settled, problem.targets, progress,
            start=attain_warm, hopeless=hopeless,
        )  # fmt: skip
        attain_prices = prices1 if prices1.size else None
        # The dual's plan: tier mixes only (the MILP's come back with the rest spent on GMV),
        # lean options for the MILPs.
        lean = plan1.amounts if plan1 is not None else None
        floor = least(bound1)
        if not settled(bound1, plan1) and not settled(bound1, seed_plan):
            # The MILP on a short leash: it finds its plan early (0.3 s of 12 at 50,000
            # family partners) and spends the rest proving it, which the certificate does
            # in well under a second once it has that plan.
            exact = _assigned_plan(
                problem, attain, prices1, clock, 0.5, lean, grid=False, floor=floor,
                solve_s=FIRST_SOLVE_SHARE * clock.limit,
            )  # fmt: skip
            if exact is not None and (plan1 is None or better(exact, plan1, minimise)):
                plan1 = exact
        if seed_plan is not None:
            seed_plan = _better_stage_one(problem, plan1, seed_plan)
        elif plan1 is not None:
            seed_plan = _spent(problem, plan1)
        else:  # no probe (a sampled programme) and the dual had no time for a plan
            seed_plan = _probe(problem, warm, clock)
        floor = _certified(problem, prices1, seed_plan, floor, clock)
        if seed_plan.shortfall > floor + 1e-9 and prices1.size and not sampled:
            # The certificate leaves room: the ticket grid's mixes too (a larger MILP, so
            # only where a plan with less shortfall may exist).
            share = min(GRID_ASSIGNMENT_SHARE, clock.elapsed() / clock.limit + GRID_EXTRA_SHARE)
            exact = _assigned_plan(
                problem, attain, prices1, clock, share, lean, floor=floor, beats=seed_plan
            )
            seed_plan = _better_stage_one(problem, exact, seed_plan, keep_counts=True)
    proven = seed_plan.shortfall <= floor + 1e-9
    if progress is not None:
        progress(
            ProgressEvent(
                f"stage 1: shortfall {seed_plan.shortfall:g} (proven: {proven}, bound {floor:g})",
                elapsed_s=clock.elapsed(),
                stage="shortfall",
                shortfall=seed_plan.shortfall,
                shortfall_proven=proven,
            )
        )
    targets = np.minimum(seed_plan.achieved, problem.targets)
    return StageOne(seed_plan, proven, floor, targets, attain_prices)


def _probe(problem: Problem, warm: FloatArray | None, clock: Clock) -> ScoredAmounts:
    """A plan built at the prices of the stage asking for every target (`warm` when it
    fits that stage)."""
    minimise = problem.request.objective is Objective.MIN_COST
    probe = Stage("cost" if minimise else "gmv", problem.targets, True)
    lag = Lagrangian(problem, probe)
    z, _ = initial_point(problem, lag, probe)
    if warm is not None and warm.size == z.size:
        z = warm
    chosen = at_prices(problem, lag.evaluate(z), seconds=clock.left())
    return construct(*chosen, probe, problem.targets)


def _certified(
    problem: Problem, prices: FloatArray, plan: ScoredAmounts, floor: float, clock: Clock
) -> float:
    """`floor`, raised by the certificate (`certificate.shortfall_floor`) when `plan` is
    not on it."""
    if plan.shortfall <= floor + 1e-9 or not prices.size:
        return floor
    closer = shortfall_floor(
        problem, prices, plan.shortfall, clock, CERTIFICATE_SHARE, problem.request.options.seed
    )
    return floor if closer is None else max(floor, closer.floor)


def _better_stage_one(
    problem: Problem, plan: ScoredAmounts | None, best: ScoredAmounts, keep_counts: bool = False
) -> ScoredAmounts:
    """`plan` (with the rest of the budgets spent on GMV, group rules enforced) if it is
    better than `best` (and, with `keep_counts`, misses no group count)."""
    if plan is None:
        return best
    minimise = problem.request.objective is Objective.MIN_COST
    plan = _spent(problem, plan)
    if keep_counts and missed_group_counts(problem, plan.amounts):
        return best  # less shortfall is no gain when a hard group count is missed
    return plan if better(plan, best, minimise) else best


def _spent(problem: Problem, plan: ScoredAmounts) -> ScoredAmounts:
    """A stage-1 plan (only what the tiers need) with the rest of the budgets spent on GMV
    and the group rules enforced."""
    problem = pinned(problem, plan.amounts)  # its packages stay as they are
    if problem.request.objective is not Objective.MIN_COST:
        plan = evaluate_plan(problem, fill(problem, plan.amounts))
    reached = (problem.values(plan.amounts)[:, None] >= problem.thresholds).sum(1)
    return within_groups(problem, plan, reached.astype(np.int64))


def _assigned_plan(
    problem: Problem,
    stage: Stage,
    z: FloatArray,
    clock: Clock,
    share: float,
    incumbent: FloatArray | None = None,
    grid: bool = True,
    floor: float | None = None,
    solve_s: float = math.inf,
    beats: ScoredAmounts | None = None,
) -> ScoredAmounts | None:
    """The stage-1 plan of the tier-option MILP (`assignment`) at the prices `z`; it stops
    at the first plan reaching the proven `floor`, and (None) once it shows that no plan a
    unit of shortfall below `beats` is among its options."""
    if clock.left(share) < MIN_ASSIGNMENT_S:
        return None
    prices = Lagrangian(problem, stage).evaluate(z).prices
    found = assign_by_milp(
        problem,
        prices,
        problem.targets,
        clock,
        share,
        problem.request.options.seed,
        incumbent,
        grid,
        floor,
        solve_s,
        beats=None if beats is None or beats.count_gap else beats.shortfall,
    )
    if found is None:
        return None
    levels, amounts = found
    problem = pinned(problem, amounts)  # the packages it chose stay
    if problem.request.objective is not Objective.MIN_COST:
        amounts = fill(problem, amounts)
    return within_groups(problem, evaluate_plan(problem, amounts), levels)
