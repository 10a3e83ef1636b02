"""Exactly feasible plans from prices (the steps themselves live in `repair`).

`construct` builds two plans at one price point and keeps the better: A, the least-priced
amounts reaching the tiers with the budgets water-filled on top; B, the Lagrangian's own
amounts for the same tier levels, trimmed to the budgets and topped up. Both get their
ticket resources re-split exactly and their group shares enforced before they are
compared, and both are built on each of the level choices of `level_choices`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.request import Objective
from optimizer.arrays import count_gaps
from optimizer.decomposition.lagrangian import Evaluation, Stage
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.repair import (
    assign_levels,
    bump,
    enforce_group_budgets,
    fill,
    fixed_amounts,
    grid_down,
    overdraws_caps,
    rows_gmv,
)
from optimizer.decomposition.subproblem import Response
from optimizer.decomposition.tickets import rebalance


@dataclass
class ScoredAmounts:
    """An (n, R) allocation with its exact figures (not yet a `models.plan.Plan`)."""

    amounts: FloatArray
    shortfall: float
    objective: float  # stage-2 objective (GMV, or cost)
    achieved: NDArray[np.int64]
    # group_count places missed, summed over the rows: the MILP holds them as rows, so a
    # plan missing one is worse than any that keeps them, whatever its shortfall or GMV.
    count_gap: int = 0


def evaluate_plan(problem: Problem, amounts: FloatArray) -> ScoredAmounts:
    gmv = problem.values(amounts)
    achieved = np.array([np.count_nonzero(gmv >= t) for t in problem.thresholds], dtype=np.int64)
    shortfall = 0.0
    if problem.request.objective is not Objective.MAX_GMV:  # see optimizer.scoring.score
        shortfall = float(np.sum(problem.weights * np.maximum(problem.targets - achieved, 0)))
    if problem.request.objective is Objective.MIN_COST:
        objective = float((amounts.sum(axis=0) * problem.unit_cost).sum())
    else:
        objective = float(gmv.sum())
    gaps = count_gaps(problem.group_counts, problem.thresholds, gmv)
    return ScoredAmounts(amounts, shortfall, objective, achieved, sum(gaps))


def better(a: ScoredAmounts, b: ScoredAmounts | None, minimise: bool) -> bool:
    if b is None:
        return True
    if a.count_gap != b.count_gap:
        return a.count_gap < b.count_gap
    if a.shortfall != b.shortfall:
        return a.shortfall < b.shortfall
    return a.objective < b.objective if minimise else a.objective > b.objective


def assign_only(
    problem: Problem, evaluation: Evaluation, stage: Stage, targets: NDArray[np.int64]
) -> ScoredAmounts:
    """Who reaches which tier, with the least amounts: enough to judge a shortfall once
    the group shares hold (a floor on a group's share can take budget the tiers used).
    The greedy's choice only: stage 1 builds these plans at most dual steps, and a second
    choice within the group caps made it 13% slower at 2,000 family partners for the same
    proven shortfall."""
    levels, amounts = assign_levels(problem, evaluation.response, evaluation.prices, targets)
    return within_groups(problem, evaluate_plan(problem, amounts), levels)


def level_choices(
    problem: Problem, evaluation: Evaluation, targets: NDArray[np.int64]
) -> list[tuple[NDArray[np.int64], FloatArray]]:
    """Tier levels with their mandatory amounts (`repair.assign_levels`): the greedy's,
    and where its tier mixes overdraw a group cap, the greedy's within the caps too.

    Enforcing a cap on overdrawn mixes takes tier amounts back and drops tiers (5,000
    family partners: stage-2 plans 2-20 short); lifting only partners whose mixes fit
    the cap can miss a count the overdrawn mixes keep once the budgets are spent on
    top (2,000 family partners: 1 short). Neither is always the better plan.
    """
    prices = evaluation.prices
    if not problem.n_tiers or not (np.any(targets > 0) or problem.group_counts):
        return [(np.zeros(problem.n, dtype=np.int64), fixed_amounts(problem))]
    choices = [assign_levels(problem, evaluation.response, prices, targets)]
    if overdraws_caps(problem, choices[0][1]):
        choices.append(
            assign_levels(problem, evaluation.response, prices, targets, within_caps=True)
        )
    return choices


def construct(
    problem: Problem, evaluation: Evaluation, stage: Stage, targets: NDArray[np.int64]
) -> ScoredAmounts:
    """The best of a few exactly feasible plans built from one set of prices."""
    minimise = stage.kind == "cost" or problem.request.objective is Objective.MIN_COST
    best = None
    for levels, mandatory in level_choices(problem, evaluation, targets):
        plan = spend(problem, evaluation, stage, levels, mandatory)
        if better(plan, best, minimise):
            best = plan
    assert best is not None
    return best


def spend(
    problem: Problem,
    evaluation: Evaluation,
    stage: Stage,
    levels: NDArray[np.int64],
    mandatory: FloatArray,
) -> ScoredAmounts:
    """The better of plans A and B (module doc) on the `mandatory` tier amounts."""
    prices = evaluation.prices
    if stage.kind == "cost" or problem.request.objective is Objective.MIN_COST:
        return within_groups(problem, evaluate_plan(problem, mandatory), levels)
    hint = prices.mean(axis=0)
    # Each plan is compared with its group shares enforced: B's amounts can crowd a group
    # cap with tier amounts that A's leave room for, and enforcing it then drops tiers.
    # A: least-priced amounts that reach the tiers, then budgets water-filled on top.
    best = within_groups(
        problem, evaluate_plan(problem, fill(problem, mandatory, hint=hint)), levels
    )
    # B: the Lagrangian's own amounts for those levels (they balance resources within
    # each achiever at the prices), made exact, trimmed to the budgets (achievers down to
    # what keeps their tier), then topped up.
    if stage.alpha > 0:
        own = lagrangian_amounts(problem, evaluation.response, levels, mandatory, prices)
        trimmed = fit_to_budgets(problem, own, levels, hint)
        if trimmed is not None:
            candidate = within_groups(
                problem, evaluate_plan(problem, fill(problem, trimmed, hint=hint)), levels
            )
            if better(candidate, best, minimise=False):
                best = candidate
    return within_groups(problem, polish_lumpy(problem, best, levels), levels)


def within_groups(
    problem: Problem, plan: ScoredAmounts, levels: NDArray[np.int64]
) -> ScoredAmounts:
    """The plan with every group_budget row met (see repair.enforce_group_budgets)."""
    if not problem.group_budgets:
        return plan
    fixed = fixed_amounts(problem)
    keep = fixed.copy()
    for r in range(problem.n_resources):
        keep[:, r] = np.maximum(keep[:, r], minimum_keeping_tier(problem, plan.amounts, levels, r))
    amounts = enforce_group_budgets(problem, plan.amounts, keep)
    if _groups_hold(problem, amounts):
        return evaluate_plan(problem, amounts)
    # Group shares are hard, tiers are not. Giving up every tier amount where they collide
    # and water-filling the group by GMV can keep more tiers than giving up the fewest
    # that let each cap hold (2,000 family partners), or fewer (a group of seven holders
    # over its cap by 1.5 holdings: five lost against two), so both are tried.
    dropped = evaluate_plan(problem, enforce_group_budgets(problem, amounts, fixed))
    fewest = enforce_group_budgets(problem, plan.amounts, _released(problem, keep, levels))
    if not _groups_hold(problem, fewest):
        return dropped
    released = evaluate_plan(problem, fewest)
    minimise = problem.request.objective is Objective.MIN_COST
    return released if better(released, dropped, minimise) else dropped


def _released(problem: Problem, keep: FloatArray, levels: NDArray[np.int64]) -> FloatArray:
    """`keep` with the tier amounts of a few members of each over-kept group cap given
    up: those freeing the most of the capped resource per weight of tiers lost first."""
    keep = keep.copy()
    fixed = fixed_amounts(problem)
    lost = np.concatenate([[0.0], np.cumsum(problem.weights)])[levels]
    for row in problem.group_budgets:
        r = row.resource
        excess = float(keep[row.members, r].sum()) - row.high
        if excess <= 0:
            continue
        rows = np.flatnonzero(row.members & (keep[:, r] > fixed[:, r]))
        freed = keep[rows, r] - fixed[rows, r]
        order = np.argsort(-freed / np.maximum(lost[rows], 1e-12), kind="stable")
        enough = np.searchsorted(np.cumsum(freed[order]), excess) + 1
        given_up = rows[order[:enough]]
        keep[given_up, r] = fixed[given_up, r]
    return keep


def broken_rows(problem: Problem) -> list[str]:
    """Hard rows no plan can meet, found without solving: budgets or group shares that
    pins alone break, group floors the members cannot fill, and group_count rows with
    fewer members able to reach the tier than required."""
    broken = []
    pinned = fixed_amounts(problem)
    spent = pinned.sum(axis=0)
    for r, resource in enumerate(problem.request.resources):
        if spent[r] > problem.budget[r] * (1 + 1e-9):
            broken += [f"budget {resource.name}", "pin"]
    if problem.menus is not None:
        # Partners bound to one_package take at least their smallest package's amount.
        menus = problem.menus
        for r, resource in enumerate(problem.request.resources):
            least = np.full(problem.n, np.inf)
            np.minimum.at(least, menus.owner, menus.amounts[:, r])
            must = float(least[menus.must].sum())
            if spent[r] + must > problem.budget[r] * (1 + 1e-9):
                broken += [f"budget {resource.name}", "one_package"]
        if menus.stranded.any():
            broken.append("one_package")  # a partner it binds may take none of its packages
    for row in problem.group_budgets:
        r, members = row.resource, row.members
        inside = float(pinned[members, r].sum())
        outside = float(pinned[~members, r].sum())
        most = float(np.where(problem.can_use[:, r] & members, problem.families[r].hi, 0).sum())
        most = max(most, inside)
        if inside > row.high * (1 + 1e-9) or outside + row.low > problem.budget[r] * (1 + 1e-9):
            broken += [row.label, "pin"]
        elif most < row.low * (1 - 1e-9):
            broken.append(row.label)
    for count in problem.group_counts:
        threshold = problem.thresholds[count.tier]
        reachable = count.members & (problem.baseline + problem.reach >= threshold)
        if int(np.count_nonzero(reachable)) < count.minimum:
            broken.append(count.label)  # not even with every member at its max
    return list(dict.fromkeys(broken))


def breaks_hard_rows(problem: Problem, amounts: FloatArray) -> list[str]:
    """Budgets and group_budget rows these amounts break."""
    broken = []
    spent = amounts.sum(axis=0)
    for r, resource in enumerate(problem.request.resources):
        if spent[r] > problem.budget[r] * (1 + 1e-9):
            broken.append(f"budget {resource.name}")
    for row in problem.group_budgets:
        used = float(amounts[row.members, row.resource].sum())
        if not row.low * (1 - 1e-9) <= used <= row.high * (1 + 1e-9):
            broken.append(row.label)
    return broken


def reaches_targets(plan: ScoredAmounts, stage: Stage) -> bool:
    """Does the plan reach every tier count the stage holds?"""
    return bool(np.all(plan.achieved >= stage.targets))


def missed_group_counts(problem: Problem, amounts: FloatArray) -> list[str]:
    """group_count rows the plan misses (whether or not some plan could meet them); under
    max_gmv too, where the tiers are only reported but the counts hold."""
    gaps = count_gaps(problem.group_counts, problem.thresholds, problem.values(amounts))
    return [row.label for row, gap in zip(problem.group_counts, gaps, strict=True) if gap]


def _groups_hold(problem: Problem, amounts: FloatArray) -> bool:
    for row in problem.group_budgets:
        spent = float(amounts[row.members, row.resource].sum())
        if not row.low * (1 - 1e-9) <= spent <= row.high * (1 + 1e-9):
            return False
    return True


def polish_lumpy(problem: Problem, plan: ScoredAmounts, levels: NDArray[np.int64]) -> ScoredAmounts:
    """Re-split stepped resources exactly among their holders (see `tickets.rebalance`)."""
    amounts = plan.amounts
    for r in range(problem.n_resources):
        keep = fixed_amounts(problem)
        keep[:, r] = np.maximum(keep[:, r], minimum_keeping_tier(problem, amounts, levels, r))
        amounts = rebalance(problem, amounts, keep, r)
    if amounts is plan.amounts:
        return plan
    candidate = evaluate_plan(problem, amounts)
    return candidate if better(candidate, plan, minimise=False) else plan


def fit_to_budgets(
    problem: Problem, x: FloatArray, levels: NDArray[np.int64], hint: FloatArray
) -> FloatArray | None:
    """Cut `x` back to the budgets, most overspent resource first, keeping every tier.

    Each resource is water-filled between what it must keep (pins; for achievers, the
    least amount still reaching their tier with the other resources as they are) and
    its current amount. None when even the amounts that must stay do not fit. (The
    MILP's `rounding.trim_to_budgets` instead takes back the few grid steps rounding
    overspent, in place; this re-splits a whole allocation at prices.)
    """
    x = x.copy()
    fixed = fixed_amounts(problem)
    over = x.sum(axis=0) / problem.budget
    for r in np.argsort(-over):
        if over[r] <= 1.0:
            continue
        lower = fixed.copy()
        lower[:, r] = np.maximum(fixed[:, r], minimum_keeping_tier(problem, x, levels, r))
        upper = x.copy()
        only_r = np.where(np.arange(problem.n_resources) == r, upper, lower)
        x[:, r] = fill(problem, np.minimum(lower, only_r), upper=only_r, hint=hint)[:, r]
        if x[:, r].sum() > problem.budget[r] * (1 + 1e-12):
            return None
    return x


def minimum_keeping_tier(
    problem: Problem, x: FloatArray, levels: NDArray[np.int64], r: int
) -> FloatArray:
    """Per partner, the least grid amount of resource r keeping its tier (others fixed)."""
    out = np.zeros(problem.n)
    rows = np.flatnonzero((levels > 0) & (x[:, r] > 0))
    if rows.size == 0:
        return out
    family = problem.families[r].take(rows)
    step = problem.step[r]
    threshold = problem.thresholds[levels[rows] - 1]
    others = problem.baseline[rows].copy()
    for k, f in enumerate(problem.families):
        if k != r:
            others += f.take(rows).value(x[rows, k])
    need = threshold - others
    if_zero = need <= 0
    # Bisection on the (monotone) exact curve between the ticket and the current amount.
    low = np.where(if_zero, 0.0, family.lo)
    high = x[rows, r].copy()
    low_ok = family.value(low) >= need
    for _ in range(60):
        mid = 0.5 * (low + high)
        ok = family.value(mid) >= need
        high = np.where(ok, mid, high)
        low = np.where(ok, low, mid)
    amount = np.where(low_ok, low, high)
    if step > 0:
        amount = np.minimum(np.ceil(amount / step - 1e-9) * step, x[rows, r])
    # Where rounding lost the tier (float edge), keep the current amount. Checked as the
    # plan's figures sum it: `others + value >= threshold` held for a partner whose GMV
    # then summed to a hair under ¥1B, and enforcing a group cap on those amounts lost
    # its tier (5,000 family partners, ambition 0.98, seed 3: stage 1 3 short, unproven,
    # where the option MILP had found a plan 2 short, the proven floor).
    trial = x[rows].copy()
    trial[:, r] = amount
    amount = np.where(rows_gmv(problem, rows, trial) >= threshold, amount, x[rows, r])
    out[rows] = amount
    return out


def lagrangian_amounts(
    problem: Problem,
    response: Response,
    levels: NDArray[np.int64],
    mandatory: FloatArray,
    prices: FloatArray,
) -> FloatArray:
    """Each partner's subproblem amounts at its assigned level, on the grid and exact.

    Achievers whose rounded mix falls short of their tier on the exact curve are bumped a
    step at a time; failing that they keep their mandatory amounts.
    """
    x = response.x0.copy()
    for level, reach in enumerate(response.reach, start=1):
        if reach is None:
            continue
        chosen = levels[reach.rows] == level
        x[reach.rows[chosen]] = reach.amounts[chosen]
    for r, family in enumerate(problem.families):
        x[:, r] = np.minimum(grid_down(x[:, r], problem.step[r]), family.hi)
        x[:, r] = np.where(x[:, r] < family.lo, 0.0, x[:, r])
    x = np.maximum(x, fixed_amounts(problem))
    for level in range(1, problem.n_tiers + 1):
        rows = np.flatnonzero(levels == level)
        if rows.size == 0:
            continue
        threshold = problem.thresholds[level - 1]
        gmv = problem.baseline[rows] + sum(
            f.take(rows).value(x[rows, r]) for r, f in enumerate(problem.families)
        )
        ok = gmv >= threshold
        sub, ok = bump(problem, rows, x[rows], threshold, prices[rows], ok)
        sub[~ok] = mandatory[rows[~ok]]
        x[rows] = sub
    return x
