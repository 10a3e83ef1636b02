"""Alternatives for programmes too large for a MILP over every partner (beyond the MILP
finish's `milp_finish.FINISH_BY_MILP_PAIRS` amounts), where a decomposition run returned
one plan however many `options.plans` asked for.

An alternative must bring, against every earlier plan, some partner onto a tier that plan
left it below. Here that is a `group_count` rule added to the request: at least one of
the CANDIDATES partners below the lowest such tier in every plan so far, cheapest to lift
over it, reaches it. The decomposition prices the rule like any other and picks which of
them; a plan meeting it is a different set of achievers from every earlier plan. (A CBC
MILP over a neighbourhood of the best plan, the rest held, was tried first: at 6,000
family partners its 208-partner sub-request took CBC 40 s for stage 1 alone.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from models.curves import CurveColumn
from models.plan import SolveStatus, curve_columns, projected_gmv
from models.request import GroupCount, Where
from optimizer.alternatives import STAGE, more_wanted
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.clock import Clock
from optimizer.neighbourhood import CHECK_S_PER_PARTNER, share_to_reach
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.progress import Progress, ProgressEvent
from optimizer.scoring import score, valid_plan

# The partners an alternative's rule names (the cheapest to lift over its tier).
CANDIDATES = 200
# An alternative falls short by at most this many tier places (weighted by the heaviest
# tier) more than the best plan: one partner traded for another. A run short of time
# gives worse (50,000 family partners, 60 s: 306 short where the best plan was 9 short),
# and such a plan answers no planner's "what else": the search stops there.
EXTRA_PLACES = 1


def alternatives_by_decomposition(
    arrays: ProblemArrays,
    outcome: EngineOutcome,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    left_s: float,
) -> EngineOutcome:
    """`outcome` with the alternatives `options.plans` asks for and it lacks, each from a
    decomposition run with a new-achiever rule, the time left shared among those still
    wanted. It stops at the first run whose plan misses its rule, fails the exact
    checker on the request, or falls short by more than EXTRA_PLACES over the best."""
    from optimizer.decomposition import solve_decomposition  # loaded only where it runs

    request = arrays.request
    wanted = request.options.plans
    if not more_wanted(outcome, wanted, left_s):
        return outcome
    if outcome.status in (SolveStatus.INFEASIBLE, SolveStatus.INTERRUPTED):
        return outcome  # a plan shown as breaking the rules, or a cancelled run
    clock = Clock(left_s, should_stop)
    columns = curve_columns(request)
    levels = [_levels(arrays, columns, plan) for plan in outcome.candidates]
    best = score(arrays, columns, outcome.candidates[0])
    shown = (best.final(request.objective), best.shortfall)
    heaviest = float(arrays.weights.max()) if arrays.weights.size else 0.0
    most_short = best.shortfall + EXTRA_PLACES * heaviest + 1e-9
    for number in range(len(outcome.candidates), wanted):
        # A run needs time for its plan and the plan's exact check after it.
        if clock.left() < 2 * CHECK_S_PER_PARTNER * arrays.n_partners or clock.out():
            break
        rule = new_achiever_rule(arrays, columns, levels)
        if rule is None:
            break
        _report(progress, outcome, shown, number, rule, clock)
        asked = replace(
            request,
            constraints=(*request.constraints, rule),
            options=replace(request.options, plans=1),
        )
        asked_arrays = build_arrays(asked)
        found = solve_decomposition(
            asked,
            time_limit_s=clock.left() / (wanted - number),
            mip_gap=request.options.mip_gap,
            should_stop=should_stop,
            arrays=asked_arrays,
            anytime=False,
        )
        if not found.candidates:
            break
        plan = found.candidates[0]
        # Scored against the asked rules: its own counts the rule too (the tiers and targets
        # are the request's).
        scored = score(asked_arrays, columns, plan)
        if scored.count_gap or scored.shortfall > most_short:
            break
        if not valid_plan(arrays, columns, plan):
            break
        outcome.candidates.append(
            Candidate(plan.amounts, plan.package_choice, f"alternative {number}")
        )
        levels.append(_levels(arrays, columns, plan))
    return outcome


def new_achiever_rule(
    arrays: ProblemArrays, columns: list[CurveColumn], levels: list[NDArray[np.intp]]
) -> GroupCount | None:
    """At least one of the CANDIDATES partners cheapest to lift over the lowest tier some
    partner is below in every plan of `levels` (per plan, each partner's tier level)
    reaches that tier; None when no partner can reach a tier it lacks in every plan."""
    request = arrays.request
    highest = np.maximum.reduce(levels)  # below a tier in every plan: below it here
    names = [tier.name for tier in request.sorted_tiers()]
    for t, threshold in enumerate(arrays.thresholds):
        below = np.flatnonzero(highest <= t)
        cost = share_to_reach(arrays, columns, below, float(threshold))
        reachable = np.isfinite(cost)
        below, cost = below[reachable], cost[reachable]
        if below.size == 0:
            continue
        chosen = below[np.argsort(cost, kind="stable")[:CANDIDATES]]
        ids = [request.partners[int(i)].id for i in chosen]
        return GroupCount(tier=names[t], min=1, where=Where({"id": {"in": frozenset(ids)}}))
    return None


def _levels(arrays: ProblemArrays, columns: list[CurveColumn], plan: Candidate) -> NDArray[np.intp]:
    """Per partner, how many tiers the plan lifts it to."""
    gmv = projected_gmv(arrays.request, plan.amounts, plan.package_choice, columns)
    return np.searchsorted(arrays.thresholds, gmv, side="right").astype(np.intp)


def _report(
    progress: Progress | None,
    outcome: EngineOutcome,
    best: tuple[float, float],
    number: int,
    rule: GroupCount,
    clock: Clock,
) -> None:
    """The search's start, with the best plan's figures (`best`: its objective and
    shortfall): the runs' own are an alternative's, and a job would show them as the best
    plan's."""
    if progress is None:
        return
    progress(
        ProgressEvent(
            f"alternative {number}: one more partner at {rule.tier}",
            elapsed_s=clock.elapsed(),
            stage=STAGE,
            best_objective=best[0],
            best_bound=outcome.best_bound,
            gap=outcome.mip_gap,
            shortfall=best[1],
            shortfall_proven=outcome.shortfall_proven,
        )
    )


__all__ = ["alternatives_by_decomposition", "new_achiever_rule"]
