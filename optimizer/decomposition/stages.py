"""One stage's price search: the level bundle method on its Lagrangian, plans on the way.

The bound of a stage is the least dual value seen (valid whatever the prices); plans are
built at improving prices, then at prices jittered around the best ones ("polish").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.clock import Clock, relative_gap
from optimizer.decomposition.dual import LevelBundle
from optimizer.decomposition.lagrangian import Evaluation, Lagrangian, Stage, initial_point
from optimizer.decomposition.menu_plans import at_prices
from optimizer.decomposition.primal import (
    ScoredAmounts,
    assign_only,
    better,
    construct,
    reaches_targets,
)
from optimizer.decomposition.problem import Problem
from optimizer.progress import Progress, ProgressEvent

# The box model's predicted decrease means little before this many cuts.
MIN_DUAL_STEPS = 12
# A dual this close to converged (relative) stops once `hopeless` says its floor cannot
# prove the best plan.
HOPELESS_GAP = 1e-4
# The bundle's first box around a given start, in multiples of it (see LevelBundle).
WARM_BOX = 4.0
# A sample's prices start the programme's stage-2 dual within this many multiples of
# them on either side (a trust box, widened as the best point nears a side). With
# WARM_BOX at 1,000,000 family partners, its first 16 steps found no better point, and it
# was still falling at the end of its time (1.2% gap); within it, it converged in 40 steps
# (55 s), leaving the option MILP its time.
SAMPLE_RADIUS = 0.5
# A plan taking more than this share of the limit is costly: the next one waits until the
# dual has had as much time as the plans (50,000 family partners, seed 2: stage 1 proven
# at 0 short instead of 10 short, and a 0.6% gap instead of 82%). Cheap plans keep their
# schedule: stage 1 on small programmes settles on them.
COSTLY_PLAN_SHARE = 0.01
# Jittered plans stop after this many in a row bring nothing better.
POLISH_PATIENCE = 4


def run_stage(
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
    refine: Callable[[FloatArray, Callable[[float], bool]], float] | None = None,
    attempt: int = 0,
    hopeless: Callable[[float, ScoredAmounts | None], bool] | None = None,
    incumbent: ScoredAmounts | None = None,
    radius: float | None = None,
) -> tuple[float, ScoredAmounts | None, FloatArray]:
    """Minimise the stage's dual, building plans on the way; (bound, best plan, best prices).

    `hopeless(floor, plan)`: whether a dual that can fall no lower than `floor` (the
    bundle model's estimate) could still settle the stage with `plan`.
    `refine(prices, settles)`: a tighter bound from the converged dual's best prices
    (the exact-grid dual, `refine.refine_bound`; `settles(bound)`: the goal, met with the
    best plan), run before the jittered plans.
    `radius`: the start is a sample's prices (see SAMPLE_RADIUS).
    `incumbent`: the caller's best plan before this search. Progress reports it while it
    beats the search's own, so a job shows the plan a cancel would keep (a stage-2 plan
    with more GMV but a partner short of a tier is not that plan).

    Plans are built at improving dual points while that costs no more time than the dual
    itself; once the dual has converged, the rest of the stage's time goes to plans built
    at prices jittered around the best dual point (which partners are marginal, and so who
    reaches which tier, depends finely on the prices).
    """
    lagrangian = Lagrangian(problem, stage)
    z, scale = initial_point(problem, lagrangian, stage)
    window: dict[str, float] = {}  # a cold start: the bundle's own box
    if start is not None and start.size == z.size:
        z, scale = start.copy(), np.maximum(np.abs(start), 1e-3 * scale)
        window = {"box": WARM_BOX} if radius is None else {"radius": radius}
    minimise = stage.kind == "cost"
    bundle = LevelBundle(z, scale, lagrangian.upper(), **window)
    bound = math.inf
    best: ScoredAmounts | None = None
    build = assign_only if stage.kind == "attain" else construct

    def report(label: str) -> None:
        if progress is None:
            return
        shown = incumbent if incumbent is not None and better(incumbent, best, minimise) else best
        progress(_iteration_event(label, stage, bound, shown, clock))

    def consider(evaluation: Evaluation) -> None:
        nonlocal best
        chosen = at_prices(problem, evaluation, seconds=clock.left())
        plan = build(*chosen, stage, primal_targets)
        if better(plan, best, minimise):
            best = plan

    # Plans are built at improving dual points on a schedule that thins out geometrically
    # (iterations 0, 2, 4, …, then every quarter of the iterations so far): early points
    # are far from the optimum, later ones move little. Costly plans may not take more time
    # than the dual either: at 50,000 partners a plan costs some 25 dual steps, and
    # building one every other step left the dual a handful of steps in all.
    next_plan = 0
    dual_s = plan_s = last_plan_s = 0.0
    for iteration in range(max_iterations):
        if not clock.room(share):
            return bound, best, bundle.best
        with clock.timed():
            began = time.perf_counter()
            evaluation = lagrangian.evaluate(z)
            improved = evaluation.value < bound
            bound = min(bound, evaluation.value)
            bundle.report(z, evaluation.value, evaluation.grad)
            evaluated = time.perf_counter()
            dual_s += evaluated - began
            costly = last_plan_s > COSTLY_PLAN_SHARE * clock.limit
            due = improved and iteration >= next_plan and (plan_s <= dual_s or not costly)
            if iteration == 0 or due:
                consider(evaluation)
                next_plan = iteration + max(2, iteration // 4)
                last_plan_s = time.perf_counter() - evaluated
                plan_s += last_plan_s
        report(f"{stage.kind} {iteration}")
        if goal(bound, best):
            return bound, best, bundle.best
        z = bundle.propose()
        # Stop when the dual cannot fall much further, absolutely or next to the gap the
        # best plan leaves (a plan, not the dual, is then what is missing). The plan need
        # only reach the stage's own counts: after a proven shortfall, 5,000 family
        # partners (seed 2) ran 0.7 s of steps to 1e-6 that moved the bound 0.003%.
        enough = dual_tolerance
        if best is not None and stage.kind != "attain" and reaches_targets(best, stage):
            enough = max(enough, 0.01 * dual_gap(bound, best.objective, minimise))
        if iteration >= MIN_DUAL_STEPS and bundle.model_gap < enough:
            break
        # Near convergence, a dual that cannot fall far enough to prove anything more has
        # nothing left to give: the tier-option MILP and the stage-1 certificate are the
        # better use of the time, and so are they than plans at jittered prices.
        near = iteration >= MIN_DUAL_STEPS and bundle.model_gap < HOPELESS_GAP
        if near and hopeless is not None and hopeless(bundle.floor, best):
            return bound, best, bundle.best
    if refine is not None and not goal(bound, best):
        bound = min(bound, refine(bundle.best, lambda value: goal(value, best)))
        report(f"{stage.kind} exact tickets")
    rng = np.random.default_rng([problem.request.options.seed, attempt])
    stale = 0
    for tried in range(polish_tries):
        if goal(bound, best) or not clock.room(share) or stale >= POLISH_PATIENCE:
            break
        before = best
        jitter = (0.002, 0.005, 0.01, 0.02)[tried % 4]
        trial = bundle.best * np.exp(jitter * rng.standard_normal(bundle.best.size))
        with clock.timed():
            evaluation = lagrangian.evaluate(np.minimum(trial, lagrangian.upper()))
            bound = min(bound, evaluation.value)
            consider(evaluation)
        stale = stale + 1 if best is before else 0
        if best is not None:
            report(f"{stage.kind} polish {tried}")
    return bound, best, bundle.best


def certified_bound(dual_value: float, minimise: bool) -> float:
    # Stage "cost" maximises −cost: its dual bounds −cost from above.
    return -dual_value if minimise else dual_value


def dual_gap(dual_value: float, objective: float, minimise: bool) -> float:
    """The certified gap of `objective` under a stage's dual value."""
    gap = relative_gap(objective, certified_bound(dual_value, minimise), minimise)
    return math.inf if gap is None else gap


def noise_free(bound: float, objective: float, minimise: bool) -> float:
    """The bound, moved onto the plan's objective when float noise put it on the wrong
    side (the caller has checked that the plan does not beat it by more)."""
    return min(bound, objective) if minimise else max(bound, objective)


def _iteration_event(
    label: str, stage: Stage, dual_value: float, best: ScoredAmounts | None, clock: Clock
) -> ProgressEvent:
    """One dual iteration: the stage's bound and best plan, in the stage's own units
    (weighted attainment in stage 1, GMV or cost in stage 2)."""
    shown = best.objective if best is not None else float("nan")
    minimise = stage.kind == "cost"
    bound = certified_bound(dual_value, minimise)
    attain = stage.kind == "attain"
    gap = None if attain or best is None else dual_gap(dual_value, best.objective, minimise)
    return ProgressEvent(
        f"{label}: bound {bound:.9g}, best plan {shown:.9g}",
        elapsed_s=clock.elapsed(),
        stage="shortfall" if attain else stage.kind,
        best_objective=None if attain or best is None else best.objective,
        best_bound=None if attain else bound,
        gap=gap,
        shortfall=None if best is None else best.shortfall,
    )
