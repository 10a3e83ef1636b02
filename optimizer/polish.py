"""Exact pairwise moves on a finished plan, for the time an engine would otherwise leave
unused.

A move shifts one quantum of a resource from the partner whose exact GMV loses least to
the partner whose exact GMV gains most, when the gain is larger. Totals per resource do
not change, so budgets hold; a partner never drops below the highest tier it reaches
(shortfall and group counts cannot get worse; under max_gmv, where tiers are only
reported, only a group count's members keep its tier); amounts stay within their bounds,
minimum tickets (0 or at least the minimum) and steps; group budgets are checked per
move. The Lagrangian prices equalise marginal values only approximately (one price per
resource, curves' tiers and tickets in between), and these moves collect what that
leaves.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.curves import CurveColumn, FloatArray
from models.plan import projected_gmv
from models.request import GroupCount, Objective
from optimizer.arrays import ProblemArrays
from optimizer.clock import Clock
from optimizer.outcome import Candidate
from optimizer.rounding import GroupLimits
from optimizer.scoring import Incumbent, better, score, valid_plan

# Quanta of a continuous resource, as shares of its budget, coarse first.
CONTINUOUS_QUANTA = (1e-3, 1e-4, 1e-5)
STEP_MULTIPLES = (10, 1)  # quanta of a stepped resource, in steps
MOVES_PER_QUANTUM = 2_000
MIN_GAIN = 1e-12  # relative to total GMV: smaller gains are float noise


def polish(
    arrays: ProblemArrays,
    columns: list[CurveColumn],
    amounts: FloatArray,
    clock: Clock,
    share: float = 1.0,
) -> FloatArray:
    """Amounts with at least the GMV of `amounts`, moved one quantum at a time until no move
    gains or `share` of the clock's limit is used. GMV objectives only; without packages."""
    request = arrays.request
    moved = amounts.copy()
    if request.objective is Objective.MIN_COST or arrays.packages:
        return moved
    gmv = projected_gmv(request, moved, None, columns)
    thresholds, holders = _kept_tiers(arrays)
    groups = GroupLimits(arrays, moved, None)
    for r in map(int, np.nonzero(np.isfinite(arrays.budget))[0]):
        pairs = np.flatnonzero(arrays.pair_resource == r)
        if pairs.size < 2:
            continue
        owners = arrays.pair_partner[pairs]
        step = float(arrays.step[r])
        quanta = (
            [step * m for m in STEP_MULTIPLES]
            if step > 0
            else [float(arrays.budget[r]) * s for s in CONTINUOUS_QUANTA]
        )
        for quantum in quanta:
            for _ in range(MOVES_PER_QUANTUM):
                if not clock.room(share):
                    return moved
                with clock.timed():
                    if not _move(arrays, columns[r], moved, gmv, groups, r, pairs, owners,
                                 quantum, thresholds, holders):  # fmt: skip
                        break
    return moved


def polished(
    arrays: ProblemArrays,
    columns: list[CurveColumn],
    plan: Incumbent,
    clock: Clock,
    share: float = 1.0,
) -> Incumbent:
    """`plan` (a candidate and its exact score), or the same after `polish` when the moves
    gain and the moved plan passes the exact checker."""
    start = plan[0]
    amounts = polish(arrays, columns, start.amounts, clock, share)
    moved = Candidate(amounts, start.package_choice, start.label)
    scored = (moved, score(arrays, columns, moved))
    if better(plan, scored, arrays.request.objective) is plan:
        return plan
    return scored if valid_plan(arrays, columns, moved) else plan


def _move(
    arrays: ProblemArrays,
    column: CurveColumn,
    amounts: FloatArray,
    gmv: FloatArray,
    groups: GroupLimits,
    r: int,
    pairs: np.ndarray,
    owners: np.ndarray,
    quantum: float,
    thresholds: FloatArray,
    holders: NDArray[np.bool_],
) -> bool:
    """One best move of `quantum` of resource r between two partners; False: none gains."""
    x = amounts[owners, r]
    low, high = arrays.pair_min[pairs], arrays.pair_max[pairs]
    tol = 1e-9 * max(quantum, 1.0)
    full = amounts[:, r]
    now = column.value(full)[owners]
    up_amounts, down_amounts = full.copy(), full.copy()
    up_amounts[owners] = x + quantum
    down = np.maximum(x - quantum, 0.0)
    down_amounts[owners] = down
    gain = column.value(up_amounts)[owners] - now
    loss = now - column.value(down_amounts)[owners]
    # Receivers stay within their max and start a ticket at its minimum at least.
    gain[(x + quantum > high + tol) | (x + quantum < low - tol)] = -np.inf
    # Givers keep their amount 0 or at least the minimum, and their highest tier.
    floor = np.where(holders[owners], _reached(gmv[owners], thresholds), 0.0)
    keeps = (x >= quantum - tol) & ((down <= tol) | (down >= low - tol))
    keeps &= gmv[owners] - loss >= floor
    loss[~keeps] = np.inf
    givers = np.argsort(loss)[:8]
    takers = np.argsort(-gain)[:8]
    least = MIN_GAIN * float(gmv.sum())
    for a in takers:
        for b in givers:
            if a == b or not gain[a] - loss[b] > least:
                continue
            i, j = int(owners[a]), int(owners[b])
            if not (groups.allows(i, r, quantum) and groups.allows(j, r, -quantum)):
                continue
            amounts[i, r] += quantum
            amounts[j, r] = down[b] if down[b] > tol else 0.0
            gmv[i] += gain[a]
            gmv[j] -= loss[b]
            groups.apply(i, r, quantum)
            groups.apply(j, r, -quantum)
            return True
    return False


def _kept_tiers(arrays: ProblemArrays) -> tuple[FloatArray, NDArray[np.bool_]]:
    """The tier thresholds a giver keeps (ascending) and the partners that keep them:
    every tier, everyone; under max_gmv, where tiers are only reported, the tiers of
    `group_count` rules, their members. The MILP holds those rules as rows, so its bound
    covers only plans that meet them (family seed 11, 300 partners, max_gmv: moves took
    two members off ¥100M for 0.015% more GMV than the bound, reported as a gap of 0)."""
    request = arrays.request
    everyone = np.ones(arrays.n_partners, dtype=bool)
    if request.objective is not Objective.MAX_GMV:
        return np.sort(np.asarray(arrays.thresholds, dtype=np.float64)), everyone
    rules = [rule for rule in request.constraints if isinstance(rule, GroupCount)]
    members = np.array(
        [any(rule.where.matches(p) for rule in rules) for p in request.partners], dtype=bool
    )
    tiers = {request.tier(rule.tier).min_gmv for rule in rules}
    return np.sort(np.array(sorted(tiers), dtype=np.float64)), members


def _reached(values: FloatArray, thresholds: FloatArray) -> FloatArray:
    """The highest tier threshold each value reaches (0 below every tier)."""
    if thresholds.size == 0:
        return np.zeros_like(values)
    index = np.searchsorted(thresholds, values, side="right")
    padded = np.concatenate(([0.0], thresholds))
    return padded[index]
