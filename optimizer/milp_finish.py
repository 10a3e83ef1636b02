"""The CBC MILP finishing what the decomposition leaves: under `auto`, on programmes small
enough for its rounds, it starts from the decomposition's plan and proven shortfall, and
its bound closes the Lagrangian's duality gap."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.curves import FloatArray
from models.plan import SolveStatus, curve_columns
from models.request import AllocationRequest, Objective
from optimizer.alternatives import add_alternatives, more_wanted
from optimizer.arrays import ProblemArrays
from optimizer.clock import Clock, relative_gap
from optimizer.engines import available_engines, milp_backend
from optimizer.milp import MilpStrategy, solve_milp
from optimizer.outcome import EngineOutcome
from optimizer.progress import Progress
from optimizer.scoring import Score, better_score, score

# Up to this many variable amounts (package options count), a decomposition run under
# `auto` that ends short of the gap with FINISH_BY_MILP_SHARE of its time left hands its
# plan and proven shortfall to the CBC MILP: the Lagrangian's duality gap (0.3-0.7% on
# family programmes of 2,000-3,000 partners) is what the MILP's bound closes. It was 7,000
# (and 12,000 only for a run whose own searches had given up) until the models pooled
# their concave pairs (`optimizer.pooling`): 5,000 family partners (10,813 amounts), seed
# 6, 60 s: 36.5 s to 20.2 s, both `optimal` 0.074%; 2,500 partners, 4 resources, seed 1:
# `feasible` 0.178% at 47 s to `optimal` 0.099% at 23 s; the seven other 5,000-partner
# seeds, certified by the decomposition alone, as before.
FINISH_BY_MILP_PAIRS = 12_000
FINISH_BY_MILP_SHARE = 0.3
# Kept back from the MILP's time, as a share of the limit: its last CBC call can return a
# second or two late at 3,000 partners.
FINISH_BY_MILP_MARGIN = 0.05


def finish_by_milp(
    arrays: ProblemArrays,
    first: EngineOutcome,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    left_s: float,
    limit_s: float,
    max_pairs: int = FINISH_BY_MILP_PAIRS,
    named: bool = False,
) -> EngineOutcome:
    """`first` (a decomposition outcome), or under `auto` the CBC MILP's outcome started
    from its plan when the decomposition stopped short of the gap on a programme of at most
    `max_pairs` variable amounts (see FINISH_BY_MILP_PAIRS). The MILP
    keeps that plan as its incumbent, so its answer is never worse; its bound replaces the
    Lagrangian's when tighter. `named`: the decomposition named as the engine, too."""
    request = arrays.request
    if (
        (request.options.engine != "auto" and not named)
        or first.status is not SolveStatus.FEASIBLE
        or not first.candidates
        or (should_stop is not None and should_stop())  # cancelled between two searches
        or not milp_finishes(arrays, left_s, limit_s, max_pairs)
    ):
        return first
    outcome = solve_milp(
        arrays,
        milp_backend("cbc"),
        progress=progress,
        should_stop=should_stop,
        warm_start=first.candidates[0],
        time_limit_s=left_s - FINISH_BY_MILP_MARGIN * limit_s,
        # Its least shortfall, proven possible or not (family seed 708, 3,000 partners, 4
        # resources: the decomposition's plan 4 short over a floor of 3; the finish found a
        # plan 3 short but, its own stage-1 bound 0, ended `time_limit` unproven).
        proven_shortfall=first.shortfall_bound,
        # Its bound must beat the Lagrangian's, which prices tiers on exact S-curves: on
        # their concave envelopes a partner reaches a tier too cheaply (family seed 8,
        # 1,000 partners: a first bound 3.96% above the plan, the Lagrangian's 1.09%;
        # 0.28% with S-curves exact, on 57 of 2,111 amounts).
        exact_tier_curves=True,
        # And tangents where the outer model claims tiers: family seed 3, 1,500 partners,
        # 57 s `time_limit` 0.17% to `optimal` in 29-34 s (see `optimizer.tier_crossings`).
        crossing_points=True,
        # And tier claims priced whole in its LP relaxations at the decomposition's budget
        # prices (`optimizer.tier_cuts`): 2.5-4.5 s less, same plans, on family programmes
        # of 1,000-3,000 partners (1,200, seed 2: 11.3-11.9 s to 8.9-9.4 s).
        tier_prices=budget_prices(arrays, first.prices),
        tier_levels=first.tier_levels,
        # Where the Lagrangian's bound is the tighter one, rounds that only tighten their
        # own toward it leave the plan where it was: family seed 0, 3,000 partners, 60 s:
        # five rounds (8-13 s each) held the plan 0.116% from it, where a neighbourhood
        # then gained 0.058% in 7 s. Against it they stall after the third round.
        known_bound=first.best_bound,
        pool=True,
    )
    if not outcome.candidates:
        return first
    columns = curve_columns(request)
    theirs, mine = (score(arrays, columns, o.candidates[0]) for o in (outcome, first))
    looser = first.mip_gap is not None and (
        outcome.mip_gap is None or outcome.mip_gap > first.mip_gap
    )
    if looser and not better_score(theirs, mine, request.objective):
        return first  # no better plan, and the MILP's rounds ended with a looser bound
    outcome.prices = first.prices  # what a nearby request's warm-up can start from
    # They hold for any plan better than the decomposition's, so for any better than this
    # one: the neighbourhoods after a stalled finish claim tiers within them (family seed
    # 0, 3,000 partners: without them a 229-partner neighbourhood found nothing in 30 s;
    # with them, 0.058% more GMV in 7 s).
    outcome.tier_levels = first.tier_levels
    if first.shortfall_bound is not None:
        # The decomposition's floor stands whatever the MILP's own stage 1 managed.
        floor = max(first.shortfall_bound, outcome.shortfall_bound or 0.0)
        outcome.shortfall_bound = floor
        outcome.shortfall_proven = theirs.shortfall <= floor + 1e-9
    tightest_bound(outcome, first, theirs, request)
    return outcome


def alternatives_by_milp(
    arrays: ProblemArrays,
    outcome: EngineOutcome,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    left_s: float,
) -> EngineOutcome:
    """`outcome` (the decomposition's, under `auto`, on a programme the MILP can finish:
    `milp_can_finish`) with the alternatives `options.plans` asks for and it lacks, from a
    CBC MILP seeded with its best plan, in `left_s`; as it was with no time left."""
    wanted = arrays.request.options.plans
    if not more_wanted(outcome, wanted, left_s):
        return outcome
    strategy = MilpStrategy(arrays, milp_backend("cbc"), progress, exact_tier_curves=True)
    strategy.seed(outcome.candidates[0])
    add_alternatives(strategy, outcome, wanted, Clock(left_s, should_stop))
    return outcome


def milp_finishes(
    arrays: ProblemArrays, left_s: float, limit_s: float, max_pairs: int = FINISH_BY_MILP_PAIRS
) -> bool:
    """Does a decomposition outcome short of the gap, with `left_s` of `limit_s` left,
    go on to the MILP finish (under `auto`)?"""
    return milp_can_finish(arrays, max_pairs) and left_s >= FINISH_BY_MILP_SHARE * limit_s


def milp_can_finish(arrays: ProblemArrays, max_pairs: int = FINISH_BY_MILP_PAIRS) -> bool:
    """Is the programme one whose decomposition plan the CBC MILP may finish (with time
    left, under `auto`)? Package options count as amounts: each is a column of the MILP."""
    small = arrays.n_pairs + len(arrays.packages) <= max_pairs
    return small and "cbc" in available_engines()


def tightest_bound(
    outcome: EngineOutcome, first: EngineOutcome, plan: Score, request: AllocationRequest
) -> None:
    """Both engines' bounds hold for the request: the MILP's outcome keeps the tighter,
    the decomposition's when the MILP has none (3,000 family partners: the MILP's plan
    0.03% better, its bound 0.28% looser), and its gap and status follow."""
    if first.best_bound is None:
        return
    minimise = request.objective is Objective.MIN_COST
    pick = max if minimise else min
    if outcome.best_bound is not None and (
        pick(first.best_bound, outcome.best_bound) == outcome.best_bound
    ):
        return
    outcome.best_bound = first.best_bound
    outcome.mip_gap = relative_gap(plan.final(request.objective), first.best_bound, minimise)
    within = outcome.mip_gap is not None and outcome.mip_gap <= request.options.mip_gap
    settled = outcome.stage_one_settled(request)
    if within and outcome.status is not SolveStatus.INTERRUPTED and settled:
        outcome.status = SolveStatus.OPTIMAL


def budget_prices(arrays: ProblemArrays, prices: tuple[float, ...] | None) -> FloatArray | None:
    """Per resource, the decomposition's price of its budget (GMV per request unit; 0 for
    a resource without one), or None without prices."""
    if prices is None:
        return None
    limited = np.flatnonzero(np.isfinite(arrays.budget))
    out = np.zeros(arrays.n_resources)
    out[limited] = np.asarray(prices[: len(limited)], dtype=float)
    return out
