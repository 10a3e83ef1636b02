"""`solve(request)`: pick an engine, run it, and turn its amounts into checked plans."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np

from models.curves import CurveColumn
from models.plan import Plan, SolverReport, SolveStatus, build_plan, curve_columns
from models.request import AllocationRequest, Objective
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.clock import relative_gap
from optimizer.confidence import needs_confidence, solve_at_confidence
from optimizer.diagnosis import diagnose_infeasible, exhausted_resources
from optimizer.engines import DECOMPOSITION, available_engines, milp_backend
from optimizer.errors import EngineUnavailable, OptimizerError
from optimizer.milp import solve_milp
from optimizer.milp_finish import (
    FINISH_BY_MILP_MARGIN,
    alternatives_by_milp,
    finish_by_milp,
    milp_can_finish,
    milp_finishes,
    tightest_bound,
)
from optimizer.neighbourhood import MAX_PARTNERS, can_finish, finish_by_neighbourhoods, improver
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.progress import Progress, ProgressEvent, timed_from
from optimizer.returned_plans import best_first, planner_ready
from optimizer.scoring import better_score, score, valid_plan
from optimizer.warm_start import WarmStart, start_candidate
from optimizer.wide_alternatives import alternatives_by_decomposition

log = logging.getLogger(__name__)

# Above this many variable (partner, resource) pairs `auto` prefers the decomposition (and
# the CBC MILP finishes it when it stops short of the gap). Family programmes at 0.95
# ambition, 60 s: at 900-1,200 partners (1,900-2,500 amounts) the decomposition first took
# 3.7-25 s (median 5.4) where CBC alone took 10-59 s (median 19; three times not reaching
# the gap); at 300-600 partners (600-1,300 amounts) CBC alone was faster (1.7-15 s
# against 3.7-18 s). BENCHMARKS.md has the runs.
DECOMPOSITION_PAIRS = 1_500
# Menu programmes go to the decomposition (and its MILP finish) as curve programmes do
# when at least half their amounts are curve amounts (family programmes with menus on 30%
# of partners, hard targets: HiGHS ended 1,000-5,000 partners at its 60 s limit, 0.7-1.3%
# or no gap, 91 short where the decomposition proves 18), and whatever they are above
# this many amounts and package options: HiGHS's presolve took 36 s at 50,000 random
# partners (menus on 40%; 59 s `time_limit` 7.0% against 24 s 0.32%, with 2.2% more GMV).
# Below it HiGHS solves OR-Library MMKP sets of up to 4,000 options in about a second,
# where the decomposition's 10 prices did not converge in 30 s. BENCHMARKS.md has the runs.
MENU_DECOMPOSITION_AMOUNTS = 15_000
WARM_START_PAIRS = 100  # MILP requests this large start from a decomposition plan
WARM_START_SHARE = 0.2  # of the time limit: the decomposition's share before the MILP
# Backends that get that decomposition run first. Not CBC: it finds its own first plan in
# about a second on medium programmes, while the run took its 20% (4–11 s) and never moved
# the answer by more than the gap (BENCHMARKS.md, "Small and medium programmes").
WARM_STARTED_BACKENDS = frozenset({"highs", "cpsat"})
# Set aside from the time limit for rounding and checking the plans: per partner, at most
# this share; the engine always keeps at least the last share. After the engine, 50,000
# family partners took 1.1-1.7 s (three runs on a quiet AMD EPYC, 2026-12-03; 4 s, and
# 6.8 s on a busier machine, before the rounding and checks went into bulk): the reserve
# is about 2.5 times that (it was 7.5 s, which the engine left unused).
FINISH_S_PER_PARTNER = 8e-5
FINISH_SHARE = 0.2
MIN_ENGINE_SHARE = 0.5
# The label of the one plan returned when the engine found none (it allocates nothing).
NO_PLAN_LABEL = "no feasible plan"


def choose_engine(request: AllocationRequest, arrays: ProblemArrays) -> str:
    wanted = request.options.engine
    if wanted != "auto":
        if wanted == DECOMPOSITION and DECOMPOSITION not in available_engines():
            raise EngineUnavailable("the decomposition engine is not installed")
        return wanted
    size = arrays.n_pairs
    engines = available_engines()
    if DECOMPOSITION in engines:
        if size > DECOMPOSITION_PAIRS and not arrays.packages:
            return DECOMPOSITION
        if arrays.packages and menu_programme_fits(arrays):
            return DECOMPOSITION
    # On medium curve programmes (tickets, S-curves, hard targets) CBC closes the MILP's
    # rounds where HiGHS runs into the time limit (issue 12; BENCHMARKS.md), with menus
    # too (200-500 family partners, 30% on menus: CBC 0.7-2.3 s where HiGHS took 2-48 s,
    # the same shortfall; 1,000-3,000 with 80-95% on menus: CBC 1.6-9.0 s `optimal`, where
    # HiGHS took 6.8-31 s and ended four of seven at its 30 s limit, two with no bound).
    # Programmes of packages alone, or all but a few curve amounts (a multiple-choice
    # knapsack: OR-Library's MMKP sets), stay with HiGHS.
    if size >= WARM_START_PAIRS and "cbc" in engines:
        return "cbc"
    return "highs"


def menu_programme_fits(arrays: ProblemArrays) -> bool:
    """Does `auto` send a programme with package menus to the decomposition? When it
    would as a curve programme, its amounts and options counted together, and at least half
    of them are curve amounts; or when they are many. And the decomposition models it (see
    `decomposition.menus`)."""
    size = arrays.n_pairs + len(arrays.packages)
    mostly_curves = size > DECOMPOSITION_PAIRS and arrays.n_pairs >= 0.5 * size
    if not mostly_curves and size <= MENU_DECOMPOSITION_AMOUNTS:
        return False
    from optimizer.decomposition.menus import models_menus

    return models_menus(arrays)


def run_engine(
    request: AllocationRequest,
    arrays: ProblemArrays,
    engine: str,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    warm_start: Candidate | None = None,
    prices: tuple[float, ...] | None = None,
    time_limit_s: float | None = None,
) -> EngineOutcome:
    """The engine's outcome within `time_limit_s` (default: the request's limit)."""
    limit = request.options.time_limit_s if time_limit_s is None else time_limit_s
    started = time.perf_counter()
    auto = request.options.engine == "auto"
    if engine == DECOMPOSITION:
        from optimizer.decomposition import solve_decomposition

        milp_sized = auto and milp_can_finish(arrays)
        # The MILP finish may follow, but not for one `min_cost` plan: its rounds lowered
        # the cost a step or two in 10 s each where the neighbourhoods (one plan only)
        # certify in seconds (family seed 5, 2,000 partners, 30 s: `feasible` 0.21% at
        # 17 s; now `optimal` in 4.8 s).
        one_cost_plan = request.objective is Objective.MIN_COST and request.options.plans == 1
        finishing = milp_sized and not one_cost_plan

        outcome = solve_decomposition(
            request,
            time_limit_s=limit,
            mip_gap=request.options.mip_gap,
            progress=progress,
            should_stop=should_stop,
            arrays=arrays,
            start=warm_start,
            prices=None if prices is None else np.asarray(prices, dtype=float),
            improve=improver(arrays, progress, should_stop, halves=not finishing),
            # Its later searches rarely move the plan; the MILP's rounds do (2,000 and
            # 3,000 family partners: 5-6 s of them for nothing before the MILP's turn).
            anytime=not finishing,
        )
        if finishing:
            outcome = _after_decomposition(arrays, outcome, progress, should_stop, started, limit)
        else:
            outcome = _neighbourhoods_to_the_limit(
                arrays, outcome, progress, should_stop, started, limit
            )
            if request.options.plans == 1:
                # What the searches leave `feasible` with time left goes to the CBC MILP
                # finish, whose bound may certify what the Lagrangian's cannot: where no
                # search models the request (menus; family programmes with 80% on menus,
                # 3,000 partners, 30 s: `feasible` 0.14-0.28% at 6.6-9.2 s), and
                # on up to MAX_PARTNERS partners once a search gains nothing (7 family
                # partners, `max_gmv`, 3 s: `feasible` 0.054% at 0.6 s).
                left = limit - (time.perf_counter() - started)
                outcome = finish_by_milp(arrays, outcome, progress, should_stop, left, limit,
                                         named=True)  # fmt: skip
        outcome = ran_out(outcome, time.perf_counter() - started, limit)
        left = (1 - FINISH_BY_MILP_MARGIN) * limit - (time.perf_counter() - started)
        if milp_sized:
            return alternatives_by_milp(arrays, outcome, progress, should_stop, left)
        # The decomposition's own alternatives (a named engine is the one that runs).
        return alternatives_by_decomposition(arrays, outcome, progress, should_stop, left)
    backend = milp_backend(engine)
    # A caller's start is the incumbent the decomposition's warm-up would otherwise supply
    # (and that warm-up overruns short time limits: explanation re-solves get a few seconds).
    # A start with prices (a scenario from its base) still warms up: priced, that run can
    # certify the gap on its own.
    first = None
    if (warm_start is None or prices is not None) and backend.name in WARM_STARTED_BACKENDS:
        share = WARM_START_SHARE * limit / request.options.time_limit_s  # of the engine's
        first = decomposition_first(
            request, arrays, progress, should_stop, share, warm_start, prices
        )
    elif auto and warm_start is None:
        first = stage_one_first(arrays, progress, should_stop, limit)
    if first is not None and first.status is SolveStatus.INTERRUPTED:
        return first  # cancelled: its best plan so far is the answer
    if auto and first is not None and first.status is SolveStatus.OPTIMAL:
        return first  # certified within the gap: the MILP has nothing to add
    warm, proven = None, None
    if first is not None and first.candidates and first.status is not SolveStatus.INFEASIBLE:
        # The MILP keeps its start as the incumbent to beat: it must keep every rule.
        if valid_plan(arrays, curve_columns(request), first.candidates[0]):
            warm = first.candidates[0]
            proven = first.shortfall_bound  # a floor holds whether or not its plan reaches it
        else:
            log.warning("the %s start breaks a rule: the MILP starts without it", first.engine)
    left = max(limit - (time.perf_counter() - started), 0.05)
    outcome = solve_milp(
        arrays,
        backend,
        progress=progress,
        should_stop=should_stop,
        warm_start=warm,
        time_limit_s=left,
        more_starts=[warm_start] if warm_start is not None else [],
        proven_shortfall=proven,
    )
    if first is not None:
        outcome.prices = first.prices  # what a nearby request's warm-up can start from
    if warm is not None and first is not None and outcome.candidates:
        # The MILP kept the decomposition's plan as its incumbent, so the decomposition's
        # bound holds for its answer too: a HiGHS run whose rounds found no bound of their
        # own (family seed 11, 1,000 partners, 4 resources, `max_gmv`: an outer model its
        # presolve could not finish) still reports a gap.
        plan = score(arrays, curve_columns(request), outcome.candidates[0])
        tightest_bound(outcome, first, plan, request)
    # Rounds that stall short of the gap leave their time to the neighbourhoods: under
    # `auto`, and for CBC named (its own MILP on parts of the plan; named, it stopped
    # `feasible` 3.2% short at 24 s of 30 on family seed 22, 1,000 partners).
    if auto or backend.name == "cbc":
        outcome = _neighbourhoods_to_the_limit(
            arrays, outcome, progress, should_stop, started, limit, first_attempt=0
        )
        outcome = ran_out(outcome, time.perf_counter() - started, limit)
    return outcome


def ran_out(outcome: EngineOutcome, elapsed_s: float, limit_s: float) -> EngineOutcome:
    """Under `auto`, a plan short of a proof (`feasible`) once the engine's time is used up
    ended on the time limit, whichever method ran last: family seed 4, 2,500 partners,
    60 s, ended at 58.8 s `feasible` 0.113% after the neighbourhoods ran out of time. Used
    up: less than twice FINISH_BY_MILP_MARGIN left (the margin the MILP finish keeps back
    from its own calls, which can return a second or two late)."""
    used_up = elapsed_s >= (1 - 2 * FINISH_BY_MILP_MARGIN) * limit_s
    if outcome.status is SolveStatus.FEASIBLE and outcome.candidates and used_up:
        outcome.status = SolveStatus.TIME_LIMIT
    return outcome


def _after_decomposition(
    arrays: ProblemArrays,
    outcome: EngineOutcome,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    started: float,
    limit: float,
) -> EngineOutcome:
    """Under `auto`, a decomposition outcome short of the gap gets the time left: the MILP
    finish (`optimizer.milp_finish`) and then the neighbourhoods, so that the finish's
    stall hands the time left to them; the neighbourhoods alone where the finish cannot
    run (beyond its size, or with less than its share of the limit left)."""
    left = limit - (time.perf_counter() - started)
    # Family seed 10, 600 partners, 4 resources, 20 s: the decomposition stopped at 15 s,
    # 1.9% short, with 5 s unused. Decided on one reading of the clock, so that one of the
    # two always has the time.
    if not milp_finishes(arrays, left, limit):
        return _neighbourhoods_to_the_limit(arrays, outcome, progress, should_stop, started, limit)
    finished = finish_by_milp(arrays, outcome, progress, should_stop, left, limit)
    # A finish whose rounds stalled short of the gap leaves its time to the neighbourhoods,
    # as a MILP engine's does.
    return _neighbourhoods_to_the_limit(arrays, finished, progress, should_stop, started, limit)


def _neighbourhoods_to_the_limit(
    arrays: ProblemArrays,
    outcome: EngineOutcome,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    started: float,
    limit: float,
    first_attempt: int = 1,
) -> EngineOutcome:
    """An outcome short of its gap (the decomposition's, or a MILP's whose rounds stalled)
    gets the time left in neighbourhoods, search after search (each draws other halves),
    until the gap is certified, the time is up, or a search cannot run (a request they do
    not model, too little time): an engine stops only then. One search ends after a few
    halves in a row gain nothing, and the decomposition named as the engine stopped
    there, its time unused (family seed 22, 1,000 partners, 4 resources, 30 s: `feasible`
    at 0.58% after 20 s; seed 7: 1.2% after 13 s). A plan still short of the gap once no
    search fits in the time left ended on the time limit. On programmes of up to
    MAX_PARTNERS partners a search that gains nothing ends them: its whole neighbourhood
    re-solved about the whole plan (brute-force programmes of a few partners, 30 s: the
    named decomposition, whose bound need not close there, took all 30 s each).
    `first_attempt`: the first search's draw (a MILP's outcome: 0; after the
    decomposition's own improver, which drew 0: 1)."""
    attempt = first_attempt
    stopped = should_stop if should_stop is not None else lambda: False
    while not stopped():
        spent = time.perf_counter() - started
        if not can_finish(arrays, outcome, limit - spent):
            if can_finish(arrays, outcome, math.inf):
                outcome.status = SolveStatus.TIME_LIMIT  # a search would go on, with the time
            break
        plan = outcome.candidates[0]
        outcome = finish_by_neighbourhoods(
            arrays, outcome, progress, should_stop, limit - spent, spent, attempt, last=True,
            halved=attempt > first_attempt,  # the whole neighbourhood had its round
        )  # fmt: skip
        attempt += 1
        if outcome.candidates[0] is plan and arrays.n_partners <= MAX_PARTNERS:
            break  # its whole neighbourhood was about the whole plan: other halves add nothing
    return outcome


def decomposition_first(
    request: AllocationRequest,
    arrays: ProblemArrays,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    share: float,
    start: Candidate | None = None,
    prices: tuple[float, ...] | None = None,
) -> EngineOutcome | None:
    """On medium instances (for `WARM_STARTED_BACKENDS`) a decomposition run comes first:
    under `auto` its plan is the answer when it certifies the gap; otherwise it hands the
    MILP an incumbent and breakpoints at its amounts (small instances solve faster than
    that run would take)."""
    if arrays.n_pairs < WARM_START_PAIRS or arrays.packages:
        return None
    if DECOMPOSITION not in available_engines():
        return None
    from optimizer.decomposition import solve_decomposition

    try:
        return solve_decomposition(
            request,
            time_limit_s=share * request.options.time_limit_s,
            mip_gap=request.options.mip_gap,
            progress=progress,
            should_stop=should_stop,
            arrays=arrays,
            start=start,
            prices=None if prices is None else np.asarray(prices, dtype=float),
        )
    except OptimizerError:  # a request the decomposition does not model
        return None


def stage_one_first(
    arrays: ProblemArrays,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    time_limit_s: float,
) -> EngineOutcome | None:
    """Under `auto`, before a MILP without the decomposition's warm-up: the decomposition's
    stage 1 alone, a plan at the least shortfall its prices find and, when proven, the
    floor that lets the MILP go straight to stage 2. None where it does not apply (no
    tiers, packages) or its plan misses a group count. It gets the whole
    clock, as its shares of it stop it by 60%: a quarter starved its tier-option MILP
    (family seed 4, 300 partners, 0.98, 10 s: shortfall 1 unproven, against 0 in 1.5 s)."""
    if arrays.packages or DECOMPOSITION not in available_engines():
        return None
    from optimizer.decomposition import solve_stage_one

    try:
        first = solve_stage_one(
            arrays, time_limit_s=time_limit_s, progress=progress, should_stop=should_stop
        )
    except OptimizerError:  # a request the decomposition does not model
        return None
    return None if first is None or first.binding_constraints else first


def solve(
    request: AllocationRequest,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    warm_start: Candidate | WarmStart | None = None,
) -> list[Plan]:
    """Ranked plans for `request`, best first; each passes the exact checker.

    `warm_start`: a feasible allocation of this request (`Candidate`), or a nearby
    request's answer (`WarmStart`: amounts by partner and resource, maybe prices), which is
    first repaired into this request (`optimizer.warm_start`). Every engine takes the
    allocation as its first incumbent, the decomposition also the prices as its first
    price point; the best plan is never worse than the allocation. Confidence solves
    ignore it.

    An infeasible request yields one plan with status `infeasible` naming the constraints
    that cannot hold together; it is not an exception.
    """
    started = time.perf_counter()
    progress = timed_from(started, progress)
    if needs_confidence(request):  # docs/uncertainty.md: an outer loop over deterministic solves
        return solve_at_confidence(
            request, lambda safe: solve(safe, progress=progress, should_stop=should_stop)
        )
    arrays = build_arrays(request)
    engine = choose_engine(request, arrays)
    if progress:
        progress(
            ProgressEvent(
                f"engine {engine}: {arrays.n_partners} partners, {arrays.n_pairs} variable amounts",
                elapsed_s=time.perf_counter() - started,
                stage="start",
            )
        )
    columns = curve_columns(request)
    prices = warm_start.prices if isinstance(warm_start, WarmStart) else None
    start = (
        start_candidate(arrays, columns, warm_start)
        if isinstance(warm_start, WarmStart)
        else warm_start
    )
    outcome = run_engine(
        request, arrays, engine, progress, should_stop, start, prices,
        engine_time(request, arrays.n_partners, time.perf_counter() - started),
    )  # fmt: skip
    if start is not None:
        outcome = never_worse(arrays, columns, outcome, start)
    seconds = time.perf_counter() - started

    if not outcome.candidates:
        binding = outcome.binding_constraints
        if outcome.status is SolveStatus.INFEASIBLE and not binding:
            binding = diagnose_infeasible(request)
        empty = Candidate(np.zeros((arrays.n_partners, arrays.n_resources)))
        report = SolverReport(outcome.engine, outcome.status, None, None, seconds)
        return [
            build_plan(
                request,
                empty.amounts,
                report,
                label=NO_PLAN_LABEL,
                binding_constraints=binding,
            )
        ]

    plans = []
    for rank, candidate in enumerate(outcome.candidates, start=1):
        report = SolverReport(
            engine=outcome.engine,
            status=outcome.status if rank == 1 else SolveStatus.FEASIBLE,
            mip_gap=outcome.mip_gap if rank == 1 else None,
            best_bound=outcome.best_bound,
            seconds=seconds,
            shortfall_proven=outcome.shortfall_proven if rank == 1 else None,
            shortfall_bound=outcome.shortfall_bound,
            prices=outcome.prices if rank == 1 else None,
        )
        plan = planner_ready(request, arrays, candidate, report, rank, outcome, columns)
        if plan.objective.weighted_shortfall > 0 and not plan.binding_constraints:
            plan.binding_constraints = exhausted_resources(plan)
        plans.append(plan)
    return best_first(request, plans)


def engine_time(request: AllocationRequest, n_partners: int, spent_s: float) -> float:
    """The engine's share of the request's time limit: what is left once the arrays are
    built (`spent_s`) and the time the plan's rounding and exact checks take is set
    aside. Without it a 50,000-partner request with a 15 s limit took 21.7 s (arrays
    3.4 s, rounding and checks 4 s)."""
    limit = request.options.time_limit_s
    # Each plan returned is rounded and checked (alternatives beyond the MILP's size are
    # found for programmes of any size).
    per_plan = FINISH_S_PER_PARTNER * n_partners
    reserve = min(per_plan * request.options.plans, FINISH_SHARE * limit)
    return max(limit - spent_s - reserve, MIN_ENGINE_SHARE * limit)


def never_worse(
    arrays: ProblemArrays, columns: list[CurveColumn], outcome: EngineOutcome, start: Candidate
) -> EngineOutcome:
    """The outcome, its best candidate replaced by the start when the start is better (less
    shortfall, then more GMV or less cost): an engine that ignored the start, or lost it
    on the way, must not answer with less. The bound still holds; the gap is recomputed."""
    objective = arrays.request.objective
    mine = score(arrays, columns, start)
    if outcome.status is SolveStatus.INFEASIBLE:
        # The start passed the exact check, so the request is not: the engine's search
        # failed to keep its rules, and the start is the answer.
        outcome.status, outcome.binding_constraints = SolveStatus.FEASIBLE, []
        outcome.candidates = []
    if outcome.candidates:
        theirs = score(arrays, columns, outcome.candidates[0])
        if not better_score(mine, theirs, objective):
            return outcome
    outcome.candidates = [start, *outcome.candidates[1:]]
    minimise = objective is Objective.MIN_COST
    outcome.mip_gap = relative_gap(mine.final(objective), outcome.best_bound, minimise)
    if outcome.shortfall_bound is not None:
        outcome.shortfall_proven = mine.shortfall <= outcome.shortfall_bound + 1e-9
    return outcome
