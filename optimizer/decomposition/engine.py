"""The decomposition engine: stages, price search, plans and the certificate.

Stage 1 bounds the best weighted attainment (tier prices in [0, weight]) and finds a plan
with the least shortfall it can; stage 2 keeps that attainment and bounds GMV (or cost).
Each stage minimises its Lagrangian (`lagrangian`) with the level bundle method (`dual`),
building exactly feasible plans (`primal`) at improving prices. Large programmes are first
priced on a random sample; small enough ones get their bound refined with exact ticket
grids. Every bound reported is a Lagrangian value, valid whatever the prices.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.plan import SolveStatus
from models.request import AllocationRequest, Objective
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.clock import Clock, StopCheck, relative_gap
from optimizer.decomposition.assignment import assign_by_milp
from optimizer.decomposition.dual import LevelBundle
from optimizer.decomposition.lagrangian import Evaluation, Lagrangian, Stage, initial_point
from optimizer.decomposition.primal import (
    ScoredAmounts,
    assign_only,
    better,
    breaks_hard_rows,
    broken_rows,
    construct,
    evaluate_plan,
    missed_group_counts,
    within_groups,
)
from optimizer.decomposition.problem import Problem, build_problem
from optimizer.decomposition.repair import enforce_group_budgets, fill, fixed_amounts
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.progress import Progress, ProgressEvent

ENGINE = "decomposition"


def _run_stage(
    problem: Problem,
    stage: Stage,
    clock: Clock,
    share: float,
    goal: Callable[[float, ScoredAmounts | None], bool],
    primal_targets: NDArray[np.int64],
    progress: Progress | None,
    max_iterations: int = 200,
    polish_tries: int = 40,
    dual_tolerance: float = 1e-6,
    start: FloatArray | None = None,
    refine_steps: int = 0,
) -> tuple[float, ScoredAmounts | None, FloatArray]:
    """Minimise the stage's dual, building plans on the way; (bound, best plan, best prices).

    Plans are built at improving dual points while that costs no more time than the dual
    itself; once the dual has converged, the rest of the stage's time goes to plans built
    at prices jittered around the best dual point (which partners are marginal, and so who
    reaches which tier, depends finely on the prices).
    """
    lagrangian = Lagrangian(problem, stage)
    z, scale = initial_point(problem, lagrangian, stage)
    if start is not None and start.size == z.size:
        z, scale = start.copy(), np.maximum(np.abs(start), 1e-3 * scale)
    minimise = stage.kind == "cost"
    bundle = LevelBundle(z, scale, lagrangian.upper())
    bound = math.inf
    best: ScoredAmounts | None = None
    build = assign_only if stage.kind == "attain" else construct

    def consider(evaluation: Evaluation) -> None:
        nonlocal best
        plan = build(problem, evaluation, stage, primal_targets)
        if better(plan, best, minimise):
            best = plan

    # Plans are built at improving dual points on a schedule that thins out geometrically
    # (iterations 0, 2, 4, …, then every quarter of the iterations so far): early points
    # are far from the optimum, later ones move little.
    next_plan = 0
    for iteration in range(max_iterations):
        evaluation = lagrangian.evaluate(z)
        improved = evaluation.value < bound
        bound = min(bound, evaluation.value)
        bundle.report(z, evaluation.value, evaluation.grad)
        if iteration == 0 or (improved and iteration >= next_plan):
            consider(evaluation)
            next_plan = iteration + max(2, iteration // 4)
        if progress is not None:
            progress(_iteration_event(f"{stage.kind} {iteration}", stage, bound, best, clock))
        if goal(bound, best) or clock.out(share):
            return bound, best, bundle.best
        z = bundle.propose()
        # Stop when the dual cannot fall much further, absolutely or next to the gap the
        # best plan leaves (a plan, not the dual, is then what is missing).
        enough = dual_tolerance
        if best is not None and best.shortfall == 0 and stage.kind != "attain":
            enough = max(enough, 0.05 * _gap(bound, best.objective, minimise))
        if iteration >= MIN_DUAL_STEPS and bundle.model_gap < enough:
            break
    if refine_steps and not goal(bound, best):
        bound = min(bound, _refine(problem, stage, bundle.best, clock, share, refine_steps))
        if progress is not None:
            progress(_iteration_event(f"{stage.kind} exact tickets", stage, bound, best, clock))
    rng = np.random.default_rng(problem.request.options.seed)
    stale = 0
    for attempt in range(polish_tries):
        if goal(bound, best) or clock.out(share) or stale >= POLISH_PATIENCE:
            break
        before = best
        jitter = (0.002, 0.005, 0.01, 0.02)[attempt % 4]
        trial = bundle.best * np.exp(jitter * rng.standard_normal(bundle.best.size))
        evaluation = lagrangian.evaluate(np.minimum(trial, lagrangian.upper()))
        bound = min(bound, evaluation.value)
        consider(evaluation)
        stale = stale + 1 if best is before else 0
        if progress is not None and best is not None:
            progress(_iteration_event(f"{stage.kind} polish {attempt}", stage, bound, best, clock))
    return bound, best, bundle.best


# The box model's predicted decrease means little before this many cuts.
MIN_DUAL_STEPS = 12
# Jittered plans stop after this many in a row bring nothing better.
POLISH_PATIENCE = 4
# Up to this many partners the bound is refined with exact ticket grids (_refine).
REFINE_UP_TO = 150_000
REFINE_STEPS = 8
# Above this many partners the prices are first found on a random sample this big.
SAMPLE_ABOVE = 150_000
SAMPLE_SIZE = 50_000


@dataclass
class _Result:
    plan: ScoredAmounts
    bound: float  # the stage-2 dual value (−cost bound for min_cost)
    stage1_proven: bool
    prices: FloatArray  # the best stage-2 prices


def solve_decomposition(
    request: AllocationRequest,
    *,
    time_limit_s: float,
    mip_gap: float,
    progress: Progress | None = None,
    should_stop: StopCheck = None,
    arrays: ProblemArrays | None = None,
) -> EngineOutcome:
    """`arrays`: the request's shared arrays when the caller has built them already."""
    clock = Clock(time_limit_s, should_stop)
    problem = build_problem(arrays if arrays is not None else build_arrays(request))
    minimise = request.objective is Objective.MIN_COST
    warm: FloatArray | None = None
    if problem.n > SAMPLE_ABOVE:
        sample = problem.sample(SAMPLE_SIZE, request.options.seed)
        sample_clock = Clock(time_limit_s * 0.2, should_stop)
        if progress is not None:
            progress(
                ProgressEvent(
                    f"pricing on a sample of {SAMPLE_SIZE:,} partners",
                    elapsed_s=clock.elapsed(),
                    stage="sample",
                )
            )
        warm = _solve(sample, sample_clock, mip_gap / 4, None, None).prices
    result = _solve(problem, clock, mip_gap, progress, warm)
    best, certified = result.plan, _certified(result.bound, minimise)
    broken = broken_rows(problem)
    if not broken and breaks_hard_rows(problem, best.amounts):
        # Not the request's fault: enforce the shares again, tiers giving way.
        best = evaluate_plan(
            problem, enforce_group_budgets(problem, best.amounts, fixed_amounts(problem))
        )
        broken = breaks_hard_rows(problem, best.amounts)
    if broken:
        return EngineOutcome(
            engine=ENGINE,
            status=SolveStatus.INFEASIBLE,
            candidates=[Candidate(amounts=np.maximum(best.amounts, 0.0))],
            seconds=clock.elapsed(),
            binding_constraints=broken,
        )
    missed = missed_group_counts(problem, best.amounts)
    if missed or (
        math.isfinite(certified) and better_than_bound(best.objective, certified, minimise)
    ):
        # The plan misses a hard row the dual priced: its bound covers plans that meet
        # every row, so it certifies nothing about this one.
        return EngineOutcome(
            engine=ENGINE,
            status=SolveStatus.FEASIBLE,
            candidates=[Candidate(amounts=np.maximum(best.amounts, 0.0))],
            seconds=clock.elapsed(),
            binding_constraints=missed,
        )
    gap = relative_gap(best.objective, certified, minimise) if math.isfinite(certified) else None
    if clock.stopped or (gap is not None and gap > mip_gap and clock.out()):
        status = SolveStatus.TIME_LIMIT
    elif gap is not None and gap <= mip_gap and result.stage1_proven:
        status = SolveStatus.OPTIMAL
    else:
        status = SolveStatus.FEASIBLE
    return EngineOutcome(
        engine=ENGINE,
        status=status,
        candidates=[Candidate(amounts=np.maximum(best.amounts, 0.0))],
        best_bound=certified if math.isfinite(certified) else None,
        mip_gap=gap,
        seconds=clock.elapsed(),
    )


def _solve(
    problem: Problem,
    clock: Clock,
    mip_gap: float,
    progress: Progress | None,
    warm: FloatArray | None,
) -> _Result:
    """Both stages on `problem`; `warm` (stage-2 prices) starts the probe and stage 2."""
    objective = problem.request.objective
    minimise = objective is Objective.MIN_COST
    has_tiers = problem.n_tiers > 0 and objective is not Objective.MAX_GMV
    kind = "cost" if minimise else "gmv"

    stage1_proven = True
    targets = problem.targets.copy()
    seed_plan: ScoredAmounts | None = None
    if has_tiers:
        # Try the targets outright first: a plan meeting them settles stage 1 for free.
        probe = Stage(kind, problem.targets, True)
        lag = Lagrangian(problem, probe)
        z, _ = initial_point(problem, lag, probe)
        if warm is not None and warm.size == z.size:
            z = warm
        seed_plan = construct(problem, lag.evaluate(z), probe, problem.targets)
        if seed_plan.shortfall > 0:
            weights_total = float((problem.weights * problem.targets).sum())
            integral = bool(np.all(problem.weights == np.round(problem.weights)))

            def settled(bound: float, plan: ScoredAmounts | None) -> bool:
                if plan is None:
                    return False
                floor = max(weights_total - bound, 0.0)
                if integral:
                    floor = math.ceil(floor - 1e-6)
                return plan.shortfall <= floor + 1e-9

            attain = Stage("attain", problem.targets, True)
            bound1, plan1, prices1 = _run_stage(
                problem, attain, clock, 0.4, settled, problem.targets, progress
            )
            if not settled(bound1, plan1) and not settled(bound1, seed_plan):
                exact = _assigned_plan(problem, attain, prices1, clock, 0.5)
                if exact is not None and (plan1 is None or better(exact, plan1, minimise)):
                    plan1 = exact
            if plan1 is not None:
                # Stage 1 plans carry only what the tiers need; spend the rest on GMV.
                if not minimise:
                    plan1 = evaluate_plan(problem, fill(problem, plan1.amounts))
                reached = (problem.values(plan1.amounts)[:, None] >= problem.thresholds).sum(1)
                plan1 = within_groups(problem, plan1, reached.astype(np.int64))
            if plan1 is not None and better(plan1, seed_plan, minimise):
                seed_plan = plan1
            stage1_proven = settled(bound1, seed_plan)
            targets = np.minimum(seed_plan.achieved, problem.targets)
        if progress is not None:
            progress(
                ProgressEvent(
                    f"stage 1: shortfall {seed_plan.shortfall:g} (proven: {stage1_proven})",
                    elapsed_s=clock.elapsed(),
                    stage="shortfall",
                    shortfall=seed_plan.shortfall,
                    shortfall_proven=stage1_proven,
                )
            )

    attainment = None
    if seed_plan is not None and seed_plan.shortfall > 0:
        attainment = float((problem.weights * targets).sum())
    stage = Stage(kind, targets, has_tiers, attainment)
    shortfall_goal = seed_plan.shortfall if seed_plan is not None else 0.0

    def close_enough(bound: float, plan: ScoredAmounts | None) -> bool:
        if plan is None or plan.shortfall > shortfall_goal:
            return False
        return _gap(bound, plan.objective, minimise) <= mip_gap

    bound2, plan2, prices = _run_stage(
        problem,
        stage,
        clock,
        0.95,
        close_enough,
        targets,
        progress,
        start=warm,
        refine_steps=REFINE_STEPS if problem.n <= REFINE_UP_TO else 0,
    )
    best = seed_plan
    if plan2 is not None and (best is None or better(plan2, best, minimise)):
        best = plan2
    if best is None:
        best = evaluate_plan(problem, fixed_amounts(problem))
    return _Result(best, bound2, stage1_proven, prices)


def _refine(
    problem: Problem, stage: Stage, start: FloatArray, clock: Clock, share: float, steps: int
) -> float:
    """The dual again from `start`, with stepped ticket resources on their exact grid.

    The envelope chord and continuous steps let the plain dual buy "part" of a fund
    ticket to lift a partner over a tier; enumerating the grid amounts for the partners
    reaching for a tier removes that slack (subproblem.reach_on_grid). It is costlier, so
    it only runs a few bundle steps from the plain dual's best prices.
    """
    lumpy = problem.lumpy_resources()
    bound = math.inf
    for r in lumpy:
        lagrangian = Lagrangian(problem, stage)
        lagrangian.exact_grid = r
        scale = np.maximum(np.abs(start), 1e-12)
        bundle = LevelBundle(start, scale, lagrangian.upper())
        z = start
        for _ in range(steps):
            evaluation = lagrangian.evaluate(z)
            bound = min(bound, evaluation.value)
            bundle.report(z, evaluation.value, evaluation.grad)
            if clock.out(share):
                break
            z = bundle.propose()
    return bound


def _assigned_plan(
    problem: Problem, stage: Stage, z: FloatArray, clock: Clock, share: float
) -> ScoredAmounts | None:
    """The stage-1 plan of the tier-option MILP (`assignment`) at the prices `z`."""
    prices = Lagrangian(problem, stage).evaluate(z).prices
    seconds = clock.left(share)
    if seconds <= 0:
        return None
    found = assign_by_milp(problem, prices, problem.targets, seconds, problem.request.options.seed)
    if found is None:
        return None
    levels, amounts = found
    if problem.request.objective is not Objective.MIN_COST:
        amounts = fill(problem, amounts)
    return within_groups(problem, evaluate_plan(problem, amounts), levels)


def better_than_bound(objective: float, bound: float, minimise: bool) -> bool:
    """Would the plan beat the bound (beyond float noise)? Only an infeasible plan can."""
    slack = 1e-9 * max(abs(bound), 1.0)
    return objective < bound - slack if minimise else objective > bound + slack


def _certified(dual_value: float, minimise: bool) -> float:
    # Stage "cost" maximises −cost: its dual bounds −cost from above.
    return -dual_value if minimise else dual_value


def _gap(dual_value: float, objective: float, minimise: bool) -> float:
    """The certified gap of `objective` under a stage's dual value."""
    gap = relative_gap(objective, _certified(dual_value, minimise), minimise)
    return math.inf if gap is None else gap


def _iteration_event(
    label: str, stage: Stage, dual_value: float, best: ScoredAmounts | None, clock: Clock
) -> ProgressEvent:
    """One dual iteration: the stage's bound and best plan, in the stage's own units
    (weighted attainment in stage 1, GMV or cost in stage 2)."""
    shown = best.objective if best is not None else float("nan")
    minimise = stage.kind == "cost"
    bound = _certified(dual_value, minimise)
    attain = stage.kind == "attain"
    gap = None if attain or best is None else _gap(dual_value, best.objective, minimise)
    return ProgressEvent(
        f"{label}: bound {bound:.9g}, best plan {shown:.9g}",
        elapsed_s=clock.elapsed(),
        stage="shortfall" if attain else stage.kind,
        best_objective=None if attain or best is None else best.objective,
        best_bound=None if attain else bound,
        gap=gap,
        shortfall=None if best is None else best.shortfall,
    )


__all__ = ["ENGINE", "solve_decomposition"]
