"""The decomposition engine: stages, price search, plans and the certificate.

Stage 1 bounds the best weighted attainment (tier prices in [0, weight]) and finds a plan
with the least shortfall it can; stage 2 keeps that attainment and bounds GMV (or cost).
Each stage minimises its Lagrangian (`lagrangian`) with the level bundle method (`dual`),
building exactly feasible plans (`primal`) at improving prices (`stages`); stage 1 lives
in `stage_one`. Where stage 2 keeps tier counts, its plan also comes from the tier-option
MILP at its prices (`option_plan`), whose second pass runs on the other core beside the
caller's improver.
A caller's improver (`Improver`) may re-solve stage 2's first plan; stage 2 is then
anytime: it searches again from its best prices until the gap is certified or
the time is up, or searches stop moving bound and plan; a plan then still short of the
gap gets exact pairwise moves (`optimizer.polish`) with the time left. Large programmes
are first priced on a random sample; small enough ones get their bound refined with exact
ticket grids. Every bound reported is a Lagrangian
value, valid whatever the prices; every outcome says whether its shortfall is proven
least and gives the stage-1 bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from models.curves import FloatArray
from models.plan import SolveStatus, curve_columns
from models.request import AllocationRequest, Objective
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.clock import Clock, StopCheck, better_than_bound, relative_gap
from optimizer.decomposition.certificate import level_ranges, stage_ceiling
from optimizer.decomposition.lagrangian import Stage
from optimizer.decomposition.menu_plans import forced_over_budget, forced_packages_fit, pinned
from optimizer.decomposition.menus import candidate, plan_amounts
from optimizer.decomposition.option_plan import first_pass, option_plan_applies, second_pass
from optimizer.decomposition.primal import (
    ScoredAmounts,
    better,
    breaks_hard_rows,
    broken_rows,
    evaluate_plan,
    missed_group_counts,
)
from optimizer.decomposition.problem import Problem, build_problem
from optimizer.decomposition.refine import GridBound, refine_bound
from optimizer.decomposition.repair import enforce_group_budgets, fixed_amounts
from optimizer.decomposition.stage_one import stage_one
from optimizer.decomposition.stages import (
    SAMPLE_RADIUS,
    certified_bound,
    dual_gap,
    noise_free,
    run_stage,
)
from optimizer.decomposition.starts import prices_fit, stage_two_start
from optimizer.outcome import Candidate, EngineOutcome, TierLevels
from optimizer.parallel import StopFlag, side_by_side
from optimizer.polish import polish
from optimizer.progress import Progress, ProgressEvent

ENGINE = "decomposition"


# Up to this many partners stage 2's bound is refined with exact ticket grids
# (`refine.refine_bound`).
REFINE_UP_TO = 150_000
# Above this many partners the prices are first found on a random sample this big.
SAMPLE_ABOVE = 150_000
SAMPLE_SIZE = 50_000
# Stage 2's first search may use the time up to this share of the limit; later searches
# (anytime) up to the second, leaving the rest for checking and reporting the plan.
FIRST_SEARCH_SHARE = 0.95
LAST_SEARCH_SHARE = 0.97
# The exact pairwise moves on the final plan may use the time up to this share (they
# stop within one move; 5,000 family partners: 0.03 s for 0.02% more GMV).
POLISH_SHARE = 0.99
# And each call at most this share of the limit: at 1,000,000 family partners the moves
# took all 69 s left for 0.01% more GMV, where the option MILP's second pass and further
# dual steps needed the time.
POLISH_SPAN = 0.05
# Plans at jittered prices after the first search's dual (stages.run_stage).
POLISH_TRIES = 40
# Anytime searches stop after this many in a row improve neither bound nor plan.
STALE_ROUNDS = 2
SEARCH_PROGRESS = 0.01  # of the remaining gap: less does not count as an improvement


# A caller's plan improver (under `auto`, `optimizer.neighbourhood`): from a plan's amounts,
# the least weighted shortfall proven possible (the plan may fall short by more; None: tiers
# do not count), the stage-2 bound (request units), the seconds it may take and already
# spent, a stop check and the tier levels any better plan gives each partner (either None:
# none), better amounts or None.
# It runs once, after stage 2's first search: the anytime searches add little (2,000
# family partners: 3 s of further searches for no better plan).
Improver = Callable[
    [FloatArray, float | None, float, float, float, StopFlag | None, TierLevels | None],
    FloatArray | None,
]


@dataclass
class _Result:
    plan: ScoredAmounts
    bound: float  # the stage-2 dual value (−cost bound for min_cost)
    stage1_proven: bool
    prices: FloatArray  # the best stage-2 prices
    shortfall_floor: float | None  # proven least weighted shortfall (None: tiers do not count)
    attain_prices: FloatArray | None = None  # stage 1's attainment prices, when it ran
    levels: TierLevels | None = None  # see `certificate.level_ranges`


def solve_decomposition(
    request: AllocationRequest,
    *,
    time_limit_s: float,
    mip_gap: float,
    progress: Progress | None = None,
    should_stop: StopCheck = None,
    arrays: ProblemArrays | None = None,
    start: Candidate | None = None,
    prices: FloatArray | None = None,
    improve: Improver | None = None,
    anytime: bool = True,
) -> EngineOutcome:
    """`arrays`: the request's shared arrays when the caller has built them already.
    `start`: an exactly valid allocation to begin from (stage 1's first plan, stage 2's
    first incumbent); `prices`: stage-2 prices to begin the price search from (a nearby
    request's; used when its rows match this one's, else ignored); `improve`: see Improver.
    `anytime`: false when the caller goes on from the plan itself (the MILP finish under
    `auto`): stage 2 then ends after its first search and the improver."""
    clock = Clock(time_limit_s, should_stop)
    arrays = arrays if arrays is not None else build_arrays(request)
    problem = build_problem(arrays)
    minimise = request.objective is Objective.MIN_COST
    warm = prices if prices is not None and prices_fit(problem, prices) else None
    incumbent = None
    if start is not None:
        incumbent = evaluate_plan(problem, plan_amounts(problem.menus, start))
    attain_warm = None
    sampled = warm is None and problem.n > SAMPLE_ABOVE
    if sampled:
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
        priced = _solve(sample, sample_clock, mip_gap / 4, None, None)
        warm, attain_warm = priced.prices, priced.attain_prices
    result = _solve(
        problem, clock, mip_gap, progress, warm, incumbent, prices is None, improve, attain_warm,
        anytime, lambda plan: _polished(problem, arrays, plan, clock),
        sampled=sampled,
    )  # fmt: skip
    best, certified = result.plan, certified_bound(result.bound, minimise)
    if math.isfinite(certified) and dual_gap(result.bound, best.objective, minimise) > mip_gap:
        best = _polished(problem, arrays, best, clock)
    broken = broken_rows(problem)
    if not broken and breaks_hard_rows(problem, best.amounts):
        # Not the request's fault: enforce the shares again, tiers giving way.
        view = pinned(problem, best.amounts)  # packages stay
        best = evaluate_plan(view, enforce_group_budgets(view, best.amounts, fixed_amounts(view)))
        broken = breaks_hard_rows(problem, best.amounts)
    if broken:
        if forced_over_budget(problem, broken):
            # Each budget alone may allow the smallest packages, all of them together not
            # (4 partners: their least subsidy filled its budget, and their least traffic
            # then went past its own). Only a proof says so: a fit MILP that ran out of
            # time (`choose`'s, then this one) leaves it open, and no plan was found.
            if forced_packages_fit(problem, clock.left()) is not False:
                return EngineOutcome(ENGINE, SolveStatus.TIME_LIMIT, seconds=clock.elapsed())
            broken.append("one_package")
        # Packages a one_package rule forced past a budget make no plan to show.
        shown = [] if "one_package" in broken else [candidate(problem.menus, best.amounts)]
        return EngineOutcome(
            engine=ENGINE,
            status=SolveStatus.INFEASIBLE,
            candidates=shown,
            seconds=clock.elapsed(),
            binding_constraints=broken,
        )
    missed = missed_group_counts(problem, best.amounts)
    if missed or (
        math.isfinite(certified) and better_than_bound(best.objective, certified, minimise)
    ):
        # The plan misses a hard row the dual priced: its bound covers plans that meet
        # every row, so it certifies nothing about this one.
        return _with_stage_one(
            EngineOutcome(
                engine=ENGINE,
                status=SolveStatus.FEASIBLE,
                candidates=[candidate(problem.menus, best.amounts)],
                seconds=clock.elapsed(),
                binding_constraints=missed,
            ),
            result.shortfall_floor,
            best,
        )
    gap = None
    if math.isfinite(certified):
        certified = noise_free(certified, best.objective, minimise)
        gap = relative_gap(best.objective, certified, minimise)
    if clock.stopped:
        status = SolveStatus.INTERRUPTED
    elif gap is not None and gap > mip_gap and clock.out():
        status = SolveStatus.TIME_LIMIT
    elif gap is not None and gap <= mip_gap and result.stage1_proven:
        status = SolveStatus.OPTIMAL
    else:
        status = SolveStatus.FEASIBLE
    return _with_stage_one(
        EngineOutcome(
            engine=ENGINE,
            status=status,
            candidates=[candidate(problem.menus, best.amounts)],
            best_bound=certified if math.isfinite(certified) else None,
            mip_gap=gap,
            seconds=clock.elapsed(),
            prices=tuple(map(float, result.prices)),
            # They hold for plans better than the one they were fixed against.
            tier_levels=result.levels if best.objective >= result.plan.objective else None,
        ),
        result.shortfall_floor,
        best,
    )


def solve_stage_one(
    arrays: ProblemArrays,
    *,
    time_limit_s: float,
    progress: Progress | None = None,
    should_stop: StopCheck = None,
) -> EngineOutcome | None:
    """Stage 1 alone: a plan with the least weighted shortfall the prices find (tier mixes,
    the rest of the budgets unspent) and the proven floor under it, for a MILP to start
    stage 2 from. None when tiers do not count."""
    clock = Clock(time_limit_s, should_stop)
    problem = build_problem(arrays)
    if broken_rows(problem):
        return None  # no plan keeps the rules: the MILP proves it
    one = stage_one(problem, clock, progress, None)
    if one.plan is None or breaks_hard_rows(problem, one.plan.amounts):
        # A plan over a budget is no start (family seed 114, 200 partners, pins: 0.5M
        # over the subsidy budget, "proven" 1 short under a floor of 3; the MILP kept it
        # as its incumbent under load and the request failed its exact check).
        return None
    outcome = EngineOutcome(
        engine=ENGINE,
        status=SolveStatus.INTERRUPTED if clock.stopped else SolveStatus.FEASIBLE,
        candidates=[candidate(problem.menus, one.plan.amounts)],
        seconds=clock.elapsed(),
        binding_constraints=missed_group_counts(problem, one.plan.amounts),
    )
    return _with_stage_one(outcome, one.floor, one.plan)


def _polished(
    problem: Problem, arrays: ProblemArrays, plan: ScoredAmounts, clock: Clock
) -> ScoredAmounts:
    """The searches ended short of the gap with time left: exact pairwise moves
    (`optimizer.polish`) try for more GMV; the plan is kept only if it is better and
    breaks no row the original kept. Not with menus: the moves read curve amounts only."""
    if problem.request.objective is Objective.MIN_COST or not clock.room(POLISH_SHARE):
        return plan
    if problem.menus is not None:
        return plan
    share = min(POLISH_SHARE, clock.elapsed() / clock.limit + POLISH_SPAN)
    moved = polish(arrays, curve_columns(problem.request), plan.amounts, clock, share)
    return _better_keeping_rows(problem, plan, moved)


def _better_keeping_rows(
    problem: Problem, plan: ScoredAmounts, amounts: FloatArray | None
) -> ScoredAmounts:
    """`amounts` scored, when better than `plan` and breaking no hard row (budgets, group
    shares, and any group count the plan met); else `plan`."""
    if amounts is None or breaks_hard_rows(problem, amounts):
        return plan
    if missed_group_counts(problem, amounts) and not missed_group_counts(problem, plan.amounts):
        return plan
    scored = evaluate_plan(problem, amounts)
    minimise = problem.request.objective is Objective.MIN_COST
    return scored if better(scored, plan, minimise) else plan


def _with_stage_one(
    outcome: EngineOutcome, floor: float | None, plan: ScoredAmounts
) -> EngineOutcome:
    """The outcome with its stage-1 certificate: the proven least shortfall, and whether
    the plan meets it."""
    if floor is not None:
        outcome.shortfall_bound = floor
        outcome.shortfall_proven = plan.shortfall <= floor + 1e-9
    return outcome


def _solve(
    problem: Problem,
    clock: Clock,
    mip_gap: float,
    progress: Progress | None,
    warm: FloatArray | None,
    incumbent: ScoredAmounts | None = None,
    trust_warm: bool = True,
    improve: Improver | None = None,
    attain_warm: FloatArray | None = None,
    anytime: bool = True,
    polish_plan: Callable[[ScoredAmounts], ScoredAmounts] | None = None,
    sampled: bool = False,
) -> _Result:
    """Both stages on `problem`; `warm` (stage-2 prices) starts the probe and stage 2 (a
    nearby request's, `trust_warm` false, only when no worse a start than the usual),
    `incumbent` (an exactly valid plan) is stage 1's first plan and stage 2's first best;
    `attain_warm` starts stage 1's attainment dual (a sample's prices); `sampled`: `warm`
    is a sample's prices, and stage 2's dual starts within SAMPLE_RADIUS of them.

    Anytime: once stage 2's first search ends short of the gap, further searches restart
    from its best prices (new jitter each time) until the gap is certified, the time is
    up, or STALE_ROUNDS searches in a row improve neither the bound nor the plan.
    """
    minimise = problem.request.objective is Objective.MIN_COST
    one = stage_one(problem, clock, progress, warm, incumbent, attain_warm)
    attainment = None
    if one.plan is not None and one.plan.shortfall > 0:
        attainment = float((problem.weights * one.targets).sum())
    # Under max_gmv the tiers are only reported, but a group_count still holds: its rows
    # are priced (tier targets 0), so the bound covers only the plans that meet them, as
    # the MILP's does.
    counts_only = problem.request.objective is Objective.MAX_GMV and bool(problem.group_counts)
    has_tiers = one.plan is not None or counts_only
    stage = Stage("cost" if minimise else "gmv", one.targets, has_tiers, attainment)
    shortfall_goal = one.plan.shortfall if one.plan is not None else 0.0

    def close_enough(bound: float, plan: ScoredAmounts | None) -> bool:
        if plan is None or plan.shortfall > shortfall_goal:
            return False
        return dual_gap(bound, plan.objective, minimise) <= mip_gap

    known = one.plan
    if incumbent is not None and (known is None or better(incumbent, known, minimise)):
        known = incumbent
    grid = GridBound()  # the grid dual's least value and its prices, once it has run

    def refine(start: FloatArray, settles: Callable[[float], bool]) -> float:
        nonlocal grid
        grid = refine_bound(problem, stage, clock, FIRST_SEARCH_SHARE, mip_gap, start, settles)
        return grid.value

    fixed: list[tuple[ScoredAmounts, FloatArray, TierLevels | None]] = []  # the last one

    def fixed_levels(plan: ScoredAmounts) -> TierLevels | None:
        """`certificate.level_ranges` at the grid dual's best prices (the least slack), else
        the best prices, evaluated once per plan and prices; None above REFINE_UP_TO
        partners, where it costs seconds nothing uses (the finish stops at 12,000 amounts)."""
        if problem.n > REFINE_UP_TO:
            return None
        z = grid.prices if grid.prices is not None else prices
        if not (fixed and fixed[0][0] is plan and fixed[0][1] is z):
            fixed[:] = [(plan, z, level_ranges(problem, stage, z, plan, grid.resource, one.proven))]
        return fixed[0][2]

    bound, best, prices = run_stage(
        problem,
        stage,
        clock,
        FIRST_SEARCH_SHARE,
        close_enough,
        one.targets,
        progress,
        start=stage_two_start(problem, stage, warm, trust_warm, one.prices),
        refine=refine if problem.n <= REFINE_UP_TO else None,
        incumbent=known,
        radius=SAMPLE_RADIUS if sampled else None,
        # Plans at jittered prices rarely beat the option MILP's, which comes next.
        polish_tries=0 if option_plan_applies(problem, stage) else POLISH_TRIES,
    )
    if known is not None and (best is None or better(known, best, minimise)):
        best = known
    option: ScoredAmounts | None = None  # the option MILP's first plan, short of the gap
    if not close_enough(bound, best):
        option = first_pass(problem, stage, prices, clock)
        if option is not None and (best is None or better(option, best, minimise)):
            best = option
    if polish_plan is not None and best is not None and not close_enough(bound, best):
        best = polish_plan(best)
    if not close_enough(bound, best):
        bound = stage_ceiling(problem, stage, prices, bound, best, clock)
    # The proven floor even above an unproven plan: an improver's plan that reaches it
    # settles stage 1 (family seed 3, 3,000 partners, 0.98: a second neighbourhood
    # spent 3.2 s hunting below a shortfall the first had proven least).
    floor = one.floor if one.plan is not None else None

    def settled(plan: ScoredAmounts | None) -> bool:
        """Within the gap, at the proven floor: a plan within the gap above it still
        gives the improver work (the same programme: an option plan 2 short within the
        gap skipped the neighbourhoods, which find the plan 1 short in 2-4 s, and left
        it to the MILP finish's stage 1, 9 s)."""
        at_floor = floor is None or (plan is not None and plan.shortfall <= floor + 1e-9)
        return close_enough(bound, plan) and at_floor

    more = improve is not None or option is not None  # an improver, or a second pass
    if more and best is not None and not settled(best):
        cap, before = certified_bound(bound, minimise), best

        # Levels fixed against the plan before it: the improver's MILPs claim tiers within
        # them (2,000 family partners, seed 4: its three rounds 7.3 s to 5.4 s, same plans).
        levels = None if improve is None else fixed_levels(before)

        def improving(stop: StopFlag) -> ScoredAmounts:
            return before if improve is None else _improved(
                problem, improve, before, floor, cap, clock, stop, levels
            )  # fmt: skip

        def second(_: StopFlag) -> ScoredAmounts | None:
            return None if option is None else second_pass(problem, stage, prices, option, clock)

        # The option plan's second pass on the other core while the improver runs on this
        # one (5,000 family partners: 1.1-1.9 s for it, and it beat the first on some seeds
        # only); one within the gap stops the improver.
        found, other = side_by_side(
            improving, second, settles=lambda plan: plan is not None and settled(plan)
        )
        best = other if other is not None and better(other, found, minimise) else found
        if best is not before and polish_plan is not None and not close_enough(bound, best):
            best = polish_plan(best)
        if best is not before and not close_enough(bound, best):
            bound = stage_ceiling(problem, stage, prices, bound, best, clock)  # fewer in doubt
    stale, attempt = 0, 0
    while anytime and stale < STALE_ROUNDS and not close_enough(bound, best):
        # A search's first step (a dual step and a plan) is about the longest there is,
        # and it overran the clock by 1.5 s at 50,000 partners: room for two, or stop.
        if not clock.room(LAST_SEARCH_SHARE) or clock.left(LAST_SEARCH_SHARE) < 2 * clock.step_s:
            break
        attempt += 1
        goal = _with_best(close_enough, bound, best, minimise)
        more_bound, plan, more_prices = run_stage(
            problem, stage, clock, LAST_SEARCH_SHARE, goal, one.targets, progress,
            start=prices, attempt=attempt, incumbent=best,
        )  # fmt: skip
        # A search counts when it closes a real part of the gap: the restarted dual creeps
        # down by tiny steps for ever, which would keep small requests to their limit.
        room = bound - best.objective if best is not None and not minimise else math.inf
        if best is not None and minimise:
            room = bound + best.objective  # the cost stage's dual bounds -cost
        improved = more_bound < bound - max(SEARCH_PROGRESS * room, 1e-12 * abs(bound))
        if plan is not None and (best is None or better(plan, best, minimise)):
            best, improved = plan, True
        if more_bound < bound:
            bound, prices = more_bound, more_prices
        stale = 0 if improved else stale + 1
    if attempt:
        bound = stage_ceiling(problem, stage, prices, bound, best, clock)
    if best is None:
        best = evaluate_plan(problem, fixed_amounts(problem))
    levels = None if close_enough(bound, best) else fixed_levels(best)
    return _Result(best, bound, one.proven, prices, floor, one.prices, levels)


def _improved(
    problem: Problem,
    improve: Improver,
    plan: ScoredAmounts,
    floor: float | None,
    bound: float,
    clock: Clock,
    stop: StopFlag | None = None,
    levels: TierLevels | None = None,
) -> ScoredAmounts:
    """The improver's plan when it is better and keeps every hard row the plan kept."""
    seconds = clock.left(LAST_SEARCH_SHARE)
    if seconds <= 0:
        return plan
    amounts = improve(plan.amounts, floor, bound, seconds, clock.elapsed(), stop, levels)
    return _better_keeping_rows(problem, plan, amounts)


def _with_best(
    close_enough: Callable[[float, ScoredAmounts | None], bool],
    bound: float,
    best: ScoredAmounts | None,
    minimise: bool,
) -> Callable[[float, ScoredAmounts | None], bool]:
    """A later search's goal: judged with the best bound and plan found so far."""

    def goal(dual_value: float, plan: ScoredAmounts | None) -> bool:
        if plan is None or (best is not None and not better(plan, best, minimise)):
            plan = best
        return close_enough(min(dual_value, bound), plan)

    return goal


__all__ = ["ENGINE", "Improver", "solve_decomposition"]
