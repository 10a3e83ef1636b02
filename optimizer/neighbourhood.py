"""Large-neighbourhood search: re-solve a plan's busiest partners exactly, the rest held.

The decomposition's plans reach the right tiers but split the budgets among the partners
that matter a little worse than an exact MILP would (family programmes of 2,000
partners: 0.3% of GMV, all of it among partners whose tiers did not change: a partner at
a tier threshold taking one more fund ticket frees traffic for a partner it earns more
with). Pairwise moves (`optimizer.polish`) cannot find such three-way trades (they
follow every round that gains, for the trades between the neighbourhood and the rest).
Here the partners holding variable amounts and the best takers of one more quantum form
a neighbourhood; everyone else keeps their amounts, and the neighbourhood's sub-request
(the budgets and group rows less what the others hold, tier and group counts less what
they reach) goes to the CBC MILP from the plan itself (`optimizer.sub_request`).

Under `min_cost` the same search lowers the cost: there the decomposition's plans paid
1.5% over its bound on family programmes of 1,000 partners, and the whole-programme MILP
finish took 10 s a round to lower it a step or two (BENCHMARKS.md, "min_cost in
neighbourhoods"). Package menus stay out: the sub-request carries no package choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from models.curves import CurveColumn, FloatArray
from models.plan import SolveStatus, curve_columns, projected_gmv
from models.request import AllocationRequest, Objective
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.clock import BOUND_NOISE, Clock, relative_gap
from optimizer.engines import available_engines, milp_backend
from optimizer.milp import solve_milp
from optimizer.outcome import Candidate, EngineOutcome, TierLevels
from optimizer.parallel import either
from optimizer.polish import polished
from optimizer.progress import Progress, ProgressEvent
from optimizer.scoring import Score, better_score, score, valid_plan
from optimizer.sub_request import sub_request

if TYPE_CHECKING:  # the decomposition package is loaded only where it runs
    from optimizer.decomposition import Improver

# Per resource, the partners gaining most from one more quantum join the neighbourhood.
TAKERS_PER_RESOURCE = 40
TAKER_QUANTUM = 1e-3  # of the resource's budget (or its step, if larger)
# Per tier, the partners below it that reach it for the least share of the budgets join
# too: the MILP may swap who reaches a tier (2,000 family partners: a partner at half the
# ¥100M threshold, in the MILP's plan instead of one the decomposition lifted).
CHEAPEST_PER_TIER = 60
# The MILP's sub-request stays this small (its rounds take a second or two at 150 family
# partners).
MAX_PARTNERS = 400
BISECTIONS = 30
# A round's time: this share of the request's limit, at least MIN_ROUND_S.
ROUND_SHARE = 0.05
MIN_ROUND_S = 1.0
ROUND_PROGRESS = 1e-5  # of GMV (cost): a round gaining (saving) less does not count as a gain
# Where random halves follow, a whole neighbourhood (up to MAX_PARTNERS, twice a half) gets
# this many rounds' time: CBC's time grows faster than the partners (5,000 family
# partners, seeds 5 and 8, on an Intel Xeon: after 3 s on ~300 partners CBC had no plan,
# or none better than the start, and the halves stalled 0.17% from the bound; given 6 s,
# it gained 0.4% and 0.2% in 4.2-5.4 s and the search ended within the gap).
WHOLE_ROUNDS = 2.0
STALE_HALVES = 3  # random halves in a row without a gain end the search
# The last search of a run (nothing follows it to use the time) gives its whole
# neighbourhood up to this share of the time left, if that is more than WHOLE_ROUNDS rounds:
# family seed 0, 3,000 partners, 60 s: after the MILP finish stalled at 38 s, 0.116% from
# the bound, a 229-partner neighbourhood needed 7.0-7.8 s to gain 0.058% (its 6 s found
# nothing, and the random halves after it nothing either).
LAST_WHOLE_SHARE = 0.5
# What one exact check of the whole plan costs per partner (`valid_plan` builds the plan and
# runs `models.check`: 28 s at 1,000,000 family partners, on an Intel Xeon). A search
# makes one after a round's pairwise moves gain and one at its end, so a round starts only
# with time for both: without them the search overran its 7 s by 23 s at 1,000,000
# partners, for no gain in three runs.
CHECK_S_PER_PARTNER = 3e-5


def neighbourhood(
    arrays: ProblemArrays, columns: list[CurveColumn], amounts: FloatArray, limit: int
) -> NDArray[np.intp]:
    """Up to `limit` partners, sorted: those holding variable amounts (largest holdings of
    the scarcest resource first when there are too many), the best takers of one more
    quantum of each resource, and the partners cheapest to lift over each tier."""
    request = arrays.request
    held = np.zeros(arrays.n_partners)
    variable = amounts[arrays.pair_partner, arrays.pair_resource]
    budget = np.where(np.isfinite(arrays.budget), arrays.budget, 0.0)
    share = np.divide(variable, budget[arrays.pair_resource], out=np.zeros_like(variable),
                      where=budget[arrays.pair_resource] > 0)  # fmt: skip
    np.maximum.at(held, arrays.pair_partner, share)
    holding = np.zeros(arrays.n_partners, dtype=bool)
    holding[arrays.pair_partner[variable > 0]] = True  # unbudgeted resources count too
    holders = np.flatnonzero(holding)
    holders = holders[np.argsort(-held[holders], kind="stable")]
    chosen: list[int] = list(holders[:limit])
    gmv = projected_gmv(request, amounts, None, columns)
    extra: list[int] = []
    for r in range(arrays.n_resources):
        pairs = np.flatnonzero(arrays.pair_resource == r)
        if pairs.size == 0:
            continue
        quantum = max(TAKER_QUANTUM * budget[r], float(arrays.step[r]))
        owners = arrays.pair_partner[pairs]
        more = amounts[:, r].copy()
        more[owners] = np.minimum(amounts[owners, r] + quantum, arrays.pair_max[pairs])
        more[owners] = np.maximum(more[owners], arrays.pair_min[pairs])
        gain = columns[r].value(more)[owners] - columns[r].value(amounts[:, r])[owners]
        extra += list(owners[np.argsort(-gain, kind="stable")[:TAKERS_PER_RESOURCE]])
    for threshold in arrays.thresholds:
        below = np.flatnonzero(gmv < threshold)
        cost = share_to_reach(arrays, columns, below, threshold)
        reachable = np.isfinite(cost)
        below, cost = below[reachable], cost[reachable]
        extra += list(below[np.argsort(cost, kind="stable")[:CHEAPEST_PER_TIER]])
    seen = set(chosen)
    for i in extra:
        if len(chosen) >= limit:
            break
        if int(i) not in seen:
            seen.add(int(i))
            chosen.append(int(i))
    return np.array(sorted(chosen), dtype=np.intp)


def share_to_reach(
    arrays: ProblemArrays, columns: list[CurveColumn], rows: NDArray[np.intp], threshold: float
) -> FloatArray:
    """Per partner in `rows`, the least share s of every budget that lifts it to
    `threshold` when it gets s of each budget it may use (inf: not even at its maxima)."""
    amounts = arrays.pinned.copy()
    mask = np.zeros(arrays.n_partners, dtype=bool)
    mask[rows] = True
    pairs = np.flatnonzero(mask[arrays.pair_partner])
    partner, resource = arrays.pair_partner[pairs], arrays.pair_resource[pairs]
    budget = arrays.budget[resource]
    budget = np.where(np.isfinite(budget), budget, arrays.pair_max[pairs])

    def reached(share: FloatArray) -> FloatArray:
        amount = np.minimum(share[partner] * budget, arrays.pair_max[pairs])
        amounts[partner, resource] = np.where(amount >= arrays.pair_min[pairs], amount, 0.0)
        return projected_gmv(arrays.request, amounts, None, columns)

    low, high = np.zeros(arrays.n_partners), np.ones(arrays.n_partners)
    top = reached(high) >= threshold
    for _ in range(BISECTIONS):
        middle = 0.5 * (low + high)
        ok = reached(middle) >= threshold
        high, low = np.where(ok, middle, high), np.where(ok, low, middle)
    return np.where(top, high, np.inf)[rows]


def improver(
    arrays: ProblemArrays,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    halves: bool = True,
) -> Improver | None:
    """The decomposition's `Improver` for this request, None where it does not apply.
    `halves`: see `improve_in_neighbourhoods`."""
    if not _applies(arrays):
        return None

    def improve(
        amounts: FloatArray,
        floor: float | None,
        bound: float,
        seconds: float,
        spent: float,
        stop: Callable[[], bool] | None = None,
        levels: TierLevels | None = None,
    ) -> FloatArray | None:
        clock = Clock(seconds, either(should_stop, stop))
        return improve_in_neighbourhoods(
            arrays, amounts, floor, bound, clock, progress, spent, halves=halves, levels=levels
        )

    return improve


def _applies(arrays: ProblemArrays) -> bool:
    """Not for package menus, or without CBC."""
    if arrays.packages:
        return False
    return "cbc" in available_engines()


def finish_by_neighbourhoods(
    arrays: ProblemArrays,
    outcome: EngineOutcome,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    left_s: float,
    spent_s: float = 0.0,
    attempt: int = 0,
    last: bool = False,
    halved: bool = False,
) -> EngineOutcome:
    """A MILP outcome that stopped short of its gap with time left (its stall rule), its
    plan improved in neighbourhoods with that time; its bound stands, its gap and status
    follow the plan. Family seed 4, 300 partners, ambition 0.98: CBC's rounds stall 0.49%
    below their bound after 10 s; random halves of the plan's 92 busiest partners then
    gain 0.46% in 4 s (0.03% from the bound). A decomposition outcome with time left after
    its own searches gets it too (`attempt` 1: other halves than its improver drew). One
    plan only: alternatives are told apart by their achievers, which a changed first plan
    could repeat. `last`: nothing follows it in the run (see LAST_WHOLE_SHARE); `halved`:
    random halves from the first round (a search after one on the same plan)."""
    bound = outcome.best_bound
    if bound is None or not can_finish(arrays, outcome, left_s):
        return outcome
    request = arrays.request
    floor = outcome.shortfall_bound  # a plan reaching it settles stage 1, proven or not
    clock = Clock(left_s, should_stop)
    start = outcome.candidates[0].amounts
    moved = improve_in_neighbourhoods(
        arrays, start, floor, bound, clock, progress, spent_s, attempt,
        levels=outcome.tier_levels, last=last, halved=halved,
    )  # fmt: skip
    if moved is None:
        return outcome
    figures = score(arrays, curve_columns(request), Candidate(moved))
    outcome.candidates = [Candidate(moved)]
    outcome.mip_gap = plan_gap(figures, bound, request.objective)
    outcome.seconds += clock.elapsed()
    if outcome.shortfall_bound is not None:
        outcome.shortfall_proven = figures.shortfall <= outcome.shortfall_bound + 1e-9
    if clock.stopped:
        outcome.status = SolveStatus.INTERRUPTED
    elif outcome.stage_one_settled(request) and _within_gap(figures, bound, request):
        outcome.status = SolveStatus.OPTIMAL
    return outcome


def can_finish(arrays: ProblemArrays, outcome: EngineOutcome, left_s: float) -> bool:
    """Whether `finish_by_neighbourhoods` runs a round on this outcome with `left_s`."""
    checks_s = 2 * CHECK_S_PER_PARTNER * arrays.n_partners
    return (
        outcome.status is SolveStatus.FEASIBLE
        and bool(outcome.candidates)
        and outcome.best_bound is not None
        and arrays.request.options.plans == 1
        and left_s >= max(2 * MIN_ROUND_S, MIN_ROUND_S + checks_s)
        and _applies(arrays)
    )


def improve_in_neighbourhoods(
    arrays: ProblemArrays,
    amounts: FloatArray,
    floor: float | None,
    bound: float,
    clock: Clock,
    progress: Progress | None = None,
    spent_s: float = 0.0,
    attempt: int = 0,
    halves: bool = True,
    levels: TierLevels | None = None,
    last: bool = False,
    halved: bool = False,
) -> FloatArray | None:
    """Better amounts than `amounts` (an exactly valid plan), re-solved in neighbourhoods by
    the CBC MILP until the plan is within the request's gap of `bound` (on GMV, or on cost
    under `min_cost`) at the proven floor (a plan short of it still gains most from another
    round), the clock runs out, or STALE_HALVES random halves in a row gain too little; None
    when no round gains. Whole neighbourhoods come first; once one gains too little, random
    halves of it follow (the MILP settles a smaller one better in its round: 5,000 family
    partners, 0.138% → 0.101% of the bound). `floor`: the least weighted shortfall proven
    possible (a plan that reaches it settles each MILP's stage 1); `spent_s`: the caller's
    seconds so far, for progress reports; `attempt`: a later search on the same request
    draws other halves. `halves` false: the search ends where the halves would begin, for a
    caller whose MILP re-solves the whole plan next (`optimizer.milp_finish`; family seed 2,
    1,200 partners: three halves took 4.4 s and gained nothing). `levels`: the tier levels
    any plan better than `amounts` gives each partner (reduced-cost fixing,
    `EngineOutcome.tier_levels`): the MILPs claim tiers within them. `last`: no search
    follows this one (see LAST_WHOLE_SHARE). `halved`: halves from the first round."""
    request = arrays.request
    columns = curve_columns(request)
    best = Candidate(amounts)
    best_score = score(arrays, columns, best)
    round_s = max(MIN_ROUND_S, ROUND_SHARE * request.options.time_limit_s)
    rng = np.random.default_rng([request.options.seed, arrays.n_partners, attempt])
    rounds, stale = 0, 0
    checks_s = 2 * CHECK_S_PER_PARTNER * arrays.n_partners
    while not clock.out() and clock.left() >= MIN_ROUND_S + checks_s:
        short = floor is not None and best_score.shortfall > floor + 1e-9
        if _within_gap(best_score, bound, request) and not short:
            break
        inside = neighbourhood(arrays, columns, best.amounts, MAX_PARTNERS)
        if halved:
            inside = np.sort(rng.choice(inside, size=max(inside.size // 2, 1), replace=False))
        whole = halves and not halved
        # A plan short of the proven floor gets a whole round's time too: the MILP finish
        # would otherwise settle stage 1 on the whole programme (family seed 3, 3,000
        # partners, ambition 0.98, on a loaded machine: the 221-partner MILP found no plan
        # in 3 s, and the finish's stage 1 took 31 s of its 45).
        seconds = round_s * (WHOLE_ROUNDS if whole or short else 1.0)
        if whole and last:
            seconds = max(seconds, LAST_WHOLE_SHARE * (clock.left() - checks_s))
        seconds = min(seconds, clock.left() - checks_s)
        # Before the MILP finish (`halves` false) no whole-steps retry either: in every such
        # run traced (family programmes of 1,000-3,000 partners) it took 1.0-2.0 s for no
        # plan or a worse one, and the finish re-solves the whole plan next (family seed
        # 2, 1,200 partners: 13.8-16.8 s to 11.6-11.9 s, the same plan).
        moved = _round(
            arrays, columns, best.amounts, inside, floor, seconds, clock,
            whole_steps_retry=halves and not halved,
            levels=None if levels is None else (levels[0][inside], levels[1][inside]),
        )  # fmt: skip
        rounds += 1
        if moved is None:
            break
        candidate, new_score = _polished(arrays, columns, Candidate(moved), clock, round_s)
        # At least float noise: a plan costing 0 "gained" 0 in every round, which ran a
        # 2-partner `min_cost` programme to its time limit.
        least = max(ROUND_PROGRESS * abs(best_score.final(request.objective)), BOUND_NOISE)
        gained = new_score.shortfall < best_score.shortfall - 1e-9 or (
            _gain(new_score, best_score, request.objective) >= least
        )
        if better_score(new_score, best_score, request.objective):
            best, best_score = candidate, new_score
            if progress is not None:
                elapsed = spent_s + clock.elapsed()
                progress(_round_event(rounds, inside.size, best_score, bound, elapsed, request))
        stale = 0 if gained else stale + 1
        if not gained and not halved:
            if not halves:
                break
            halved, stale = True, 0
        elif stale >= STALE_HALVES:
            break
    if rounds == 0 or best.amounts is amounts or not valid_plan(arrays, columns, best):
        return None
    return best.amounts


def _round(
    arrays: ProblemArrays,
    columns: list[CurveColumn],
    amounts: FloatArray,
    inside: NDArray[np.intp],
    floor: float | None,
    seconds: float,
    clock: Clock,
    whole_steps_retry: bool,
    levels: TierLevels | None = None,
) -> FloatArray | None:
    """The amounts with the partners `inside` re-solved by the CBC MILP (never worse for
    them: the MILP starts from theirs); None when no sub-request or plan came out.
    `whole_steps_retry`: only for whole neighbourhoods; after one that gains nothing, the
    random halves would pay a whole round each for it (family seed 3, 3,000 partners:
    four such rounds, 3 s each, no gain)."""
    request = arrays.request
    sub = sub_request(arrays, columns, amounts, inside, seconds, request.options.mip_gap)
    if sub is None:
        return None
    outcome = solve_milp(
        build_arrays(sub),
        milp_backend("cbc"),
        should_stop=clock.should_stop,
        warm_start=Candidate(amounts[inside]),
        time_limit_s=seconds,
        proven_shortfall=floor,
        plan_only=True,
        whole_steps_retry=whole_steps_retry,
        tier_levels=levels,
    )
    if not outcome.candidates:
        return None
    moved = amounts.copy()
    moved[inside] = outcome.candidates[0].amounts
    return moved


def _polished(
    arrays: ProblemArrays,
    columns: list[CurveColumn],
    moved: Candidate,
    clock: Clock,
    seconds: float,
) -> tuple[Candidate, Score]:
    """A round's plan, then exact pairwise moves on the whole of it (`optimizer.polish`),
    for at most `seconds` (a round's time: each move scans every partner, so at 50,000
    partners the moves alone could take the search's time): the round settles its
    neighbourhood, the moves trade between it and everyone else (5,000 family partners,
    seed 5: 15 s to 12 s with 0.03% more GMV; seed 8: 14-22 s to 12 s)."""
    budget = Clock(min(seconds, max(clock.left(), 0.0)), clock.should_stop)
    return polished(arrays, columns, (moved, score(arrays, columns, moved)), budget)


def _gain(new: Score, old: Score, objective: Objective) -> float:
    """How much better `new`'s stage-2 objective is than `old`'s (cost saved, or GMV won)."""
    gain = new.final(objective) - old.final(objective)
    return -gain if objective is Objective.MIN_COST else gain


def plan_gap(plan: Score, bound: float, objective: Objective) -> float | None:
    """The plan's relative gap to a stage-2 bound (on GMV, or on cost under `min_cost`)."""
    return relative_gap(plan.final(objective), bound, objective is Objective.MIN_COST)


def _within_gap(plan: Score, bound: float, request: AllocationRequest) -> bool:
    gap = plan_gap(plan, bound, request.objective)
    return gap is not None and gap <= request.options.mip_gap


def _round_event(
    rounds: int,
    size: int,
    plan: Score,
    bound: float,
    elapsed_s: float,
    request: AllocationRequest,
) -> ProgressEvent:
    value, cost = plan.final(request.objective), request.objective is Objective.MIN_COST
    return ProgressEvent(
        f"neighbourhood {rounds} ({size} partners): best plan {value:.9g}",
        elapsed_s=elapsed_s,
        stage="cost" if cost else "gmv",
        best_objective=value,
        best_bound=bound,
        gap=plan_gap(plan, bound, request.objective),
        shortfall=plan.shortfall,
    )
