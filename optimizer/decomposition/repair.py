"""From prices to an exactly feasible plan.

1. Levels: which partners reach which tier. Each partner's price of reaching level ℓ is
   its drop in priced value (from the subproblem); targets are met top tier first with the
   cheapest partners whose *mandatory* amounts (least priced mix reaching the tier,
   rounded up to the step grid, checked on the exact curve) still fit the budgets and
   the group caps.
2. Fill (GMV objectives): each resource is separable once the mandatory amounts are lower
   bounds, so its leftover is water-filled: a bisection on its price, each partner taking
   the exact best grid amount at that price, then leftovers spent greedily by exact
   marginal gain per unit.
3. Check: exact tiers, budgets, groups; trims or bumps where rounding left a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.decomposition.family import Family
from optimizer.decomposition.problem import GroupBudgetRow, Problem
from optimizer.decomposition.subproblem import Response, reach_level, reach_on_grid

IntArray = NDArray[np.intp]
_EPS = 1e-9


def grid_up(x: FloatArray, step: float) -> FloatArray:
    return np.ceil(x / step - _EPS) * step if step > 0 else x


def grid_down(x: FloatArray, step: float) -> FloatArray:
    return np.floor(x / step + _EPS) * step if step > 0 else x


def fixed_amounts(problem: Problem) -> FloatArray:
    """Amounts nobody can change: pins (lo == hi, not optional)."""
    lo, hi = problem.lo(), problem.hi()
    pinned = problem.can_use & ~problem.optional & (lo == hi) & (lo > 0)
    return np.where(pinned, lo, 0.0)


def mandatory(
    problem: Problem, rows: IntArray, level: int, prices: FloatArray
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Least priced amounts on the grid lifting `rows` to tier `level` (exact check)."""
    threshold = problem.thresholds[level - 1]
    need = threshold - problem.baseline[rows]
    # A floor on prices keeps "free" resources from being spent without limit.
    floor = np.maximum(np.median(prices[rows], axis=0) * 1e-6, 1e-12)
    priced = np.maximum(prices[rows], floor)
    lumpy = problem.lumpy_resources()
    if lumpy:
        # The ticket on its exact grid: rounding a continuous ticket up costs a step.
        _, x, _ = reach_on_grid(problem, rows, priced, 0.0, need, lumpy[0])
    else:
        _, _, x, _ = reach_level(problem, rows, priced, 0.0, need)
    fixed = fixed_amounts(problem)[rows]
    x = np.maximum(np.nan_to_num(x), fixed)
    for r, family in enumerate(problem.families):
        x[:, r] = np.minimum(grid_up(x[:, r], problem.step[r]), family.hi[rows])
        # A chord amount below the ticket is not allowed: lift it to the ticket.
        x[:, r] = np.where((x[:, r] > 0) & (x[:, r] < family.lo[rows]), family.lo[rows], x[:, r])
    ok = rows_gmv(problem, rows, x) >= threshold
    x, ok = bump(problem, rows, x, threshold, priced, ok)
    # Trim: a resource whose grid step can be given back while the tier still holds.
    for r in range(problem.n_resources):
        step = problem.step[r]
        if step <= 0:
            continue
        lower = x.copy()
        lower[:, r] = x[:, r] - step
        lower[:, r] = np.where(lower[:, r] < problem.families[r].lo[rows], 0.0, lower[:, r])
        keep = ok & (lower[:, r] >= fixed[:, r]) & (rows_gmv(problem, rows, lower) >= threshold)
        x[keep] = lower[keep]
    return x, ok


def rows_gmv(problem: Problem, rows: IntArray, x: FloatArray) -> FloatArray:
    """The exact GMV of `rows` at amounts `x`, summed in `Problem.values`' order (a tier
    check summed in another order can pass where the plan's own figures fall a hair
    short). Packages are left out: a partner with a menu has no curves (`menus`), and
    plans pin the packages they take into the baseline (`menu_plans.pinned`)."""
    gmv = problem.baseline[rows].copy()
    for r, family in enumerate(problem.families):
        gmv += family.take(rows).value(x[:, r])
    return gmv


def bump(
    problem: Problem,
    rows: IntArray,
    x: FloatArray,
    threshold: float,
    prices: FloatArray,
    ok: NDArray[np.bool_],
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Raise amounts a grid step at a time (best gain per priced unit) until tiers hold."""
    for _ in range(50):
        short = np.flatnonzero(~ok)
        if short.size == 0:
            break
        sub = rows[short]
        best_ratio = np.full(short.size, -np.inf)
        best_r = np.full(short.size, -1)
        best_amount = np.zeros(short.size)
        for r, family in enumerate(problem.families):
            fam = family.take(sub)
            cur = x[short, r]
            step = (
                problem.step[r] if problem.step[r] > 0 else max(1e-6 * float(np.max(fam.hi)), 1.0)
            )
            nxt = np.where(cur < fam.lo, fam.lo, cur + step)
            nxt = np.minimum(nxt, fam.hi)
            gain = fam.value(nxt) - fam.value(cur)
            cost = (nxt - cur) * np.maximum(prices[short, r], 1e-300)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where((nxt > cur) & problem.can_use[sub, r], gain / cost, -np.inf)
            better = ratio > best_ratio
            best_ratio = np.where(better, ratio, best_ratio)
            best_r = np.where(better, r, best_r)
            best_amount = np.where(better, nxt, best_amount)
        movable = best_r >= 0
        if not np.any(movable):
            break
        idx = short[movable]
        x[idx, best_r[movable]] = best_amount[movable]
        ok[idx] = rows_gmv(problem, rows[idx], x[idx]) >= threshold
    return x, ok


def assign_levels(
    problem: Problem,
    response: Response,
    prices: FloatArray,
    targets: NDArray[np.int64],
    within_caps: bool = False,
) -> tuple[NDArray[np.int64], FloatArray]:
    """Tier levels meeting `targets` (as far as budgets allow) and mandatory amounts;
    `within_caps`: the group caps bind the mandatory amounts as the budgets do."""
    n, n_tiers = problem.n, problem.n_tiers
    amounts = fixed_amounts(problem)
    level = np.zeros(n, dtype=np.int64)
    gmv_fixed = problem.values(amounts)
    for t in range(n_tiers):
        level[gmv_fixed >= problem.thresholds[t]] = t + 1
    rows = list(problem.group_budgets) if within_caps else []
    room = _Room(
        problem.budget - amounts.sum(axis=0),
        rows,
        np.array([row.high - float(amounts[row.members, row.resource].sum()) for row in rows]),
    )
    values = response.values
    for t in range(n_tiers, 0, -1):
        orders: list[tuple[NDArray[np.bool_] | None, int]] = [
            (row.members, row.minimum) for row in problem.group_counts if row.tier == t - 1
        ]
        orders.append((None, int(targets[t - 1])))
        for members, goal in orders:
            reached = level >= t
            count = int(np.count_nonzero(reached if members is None else reached & members))
            missing = goal - count
            if missing <= 0:
                continue
            pool_mask = ~reached & np.isfinite(values[:, t])
            if members is not None:
                pool_mask &= members
            pool = np.flatnonzero(pool_mask)
            current = values[pool, np.maximum(level[pool], 0)]
            price = current - values[pool, t]
            pool = pool[np.argsort(price, kind="stable")][: 3 * missing + 64]
            if pool.size == 0:
                continue
            mix_prices = prices
            for _ in range(4):
                x, ok = mandatory(problem, pool, t, mix_prices)
                added, blocked, capped = _admit(pool, x, ok, t, missing, amounts, level, room)
                missing -= added
                if missing <= 0 or not (np.any(blocked) or np.any(capped)):
                    break
                # A resource ran out: price it up so the rest of the pool leans on others.
                pool = pool[level[pool] < t]
                mix_prices = mix_prices.copy()
                mix_prices[:, blocked] *= 10.0
                for row in (row for row, hit in zip(rows, capped, strict=True) if hit):
                    mix_prices[row.members, row.resource] *= 10.0
    return level, amounts


@dataclass
class _Room:
    """What is left of each budget, and of each group cap (`rows`) on its resource."""

    budgets: FloatArray
    rows: list[GroupBudgetRow]
    groups: FloatArray


def _admit(
    pool: IntArray,
    x: FloatArray,
    ok: NDArray[np.bool_],
    tier: int,
    missing: int,
    amounts: FloatArray,
    level: NDArray[np.int64],
    room: _Room,
) -> tuple[int, NDArray[np.bool_], NDArray[np.bool_]]:
    """Lift pool partners (in order) to `tier` while their amounts fit; updates in place.

    Returns how many were lifted, and which resources and which group caps turned
    candidates away.
    """
    added = 0
    remaining = room.budgets
    blocked = np.zeros(remaining.size, dtype=bool)
    capped = np.zeros(room.groups.size, dtype=bool)
    slack = 1e-9 * np.maximum(np.abs(remaining), 1.0)
    group_slack = 1e-9 * np.maximum(np.abs(room.groups), 1.0)
    for k, i in enumerate(pool):
        if not ok[k]:
            continue
        delta = x[k] - amounts[i]
        short = delta > remaining + slack
        draws = np.array([delta[row.resource] if row.members[i] else 0.0 for row in room.rows])
        over = (draws > 0) & (draws > room.groups + group_slack)
        if np.any(short) or np.any(over):
            blocked |= short
            capped |= over
            continue
        remaining -= delta
        room.groups -= draws
        amounts[i] = x[k]
        level[i] = tier
        added += 1
        if added >= missing:
            break
    return added, blocked, capped


def overdraws_caps(problem: Problem, amounts: FloatArray) -> bool:
    """Do `amounts` spend more than some group cap allows?"""
    return any(
        float(amounts[row.members, row.resource].sum()) > row.high * (1 + 1e-12)
        for row in problem.group_budgets
    )


def fill(
    problem: Problem,
    lower: FloatArray,
    upper: FloatArray | None = None,
    hint: FloatArray | None = None,
) -> FloatArray:
    """Best GMV within budgets, resource by resource, with lower <= amounts <= upper.

    Amounts at `lower` must fit the budgets (they are kept even when they do not); `upper`
    defaults to each partner's max. `hint` (a price per resource) narrows the search.
    """
    amounts = lower.copy()
    for r, family in enumerate(problem.families):
        top = family.hi if upper is None else np.minimum(upper[:, r], family.hi)
        rows = np.flatnonzero(problem.can_use[:, r] & (top > lower[:, r]))
        if rows.size == 0:
            continue
        fixed = float(lower[:, r].sum() - lower[rows, r].sum())
        guess = float(hint[r]) if hint is not None else 0.0
        amounts[rows, r] = _water_fill(
            family.take(rows),
            lower[rows, r],
            top[rows],
            problem.budget[r] - fixed,
            problem.step[r],
            guess,
        )
    return amounts


def _best_at(
    family: Family, lower: FloatArray, upper: FloatArray, lam: float, step: float
) -> FloatArray:
    """Per row, the exact best amount on the grid in [lower, upper] at price `lam`.

    Where the curve is concave on the range, f − lam·x is concave on the grid too and the
    best is a grid neighbour of the stationary point (clipped to the range). Where the
    range starts on a chord (S-shaped curves), the range's ends and the tangent point's
    neighbours are candidates as well. 0 wins when allowed and nothing pays.
    """
    base = np.where(lower > 0, np.maximum(lower, family.lo), family.lo)
    low_end = np.minimum(grid_up(base, step), upper)
    top = np.maximum(grid_down(upper, step), low_end)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = family.argmax_slope(np.full(len(family), lam))
    best = np.clip(grid_down(xc, step), low_end, top)
    best_val = family.value(best) - lam * best
    if step > 0:
        up = np.clip(grid_up(xc, step), low_end, top)
        val = family.value(up) - lam * up
        better = val > best_val
        best, best_val = np.where(better, up, best), np.where(better, val, best_val)
    chord = np.flatnonzero(family.xt > low_end)
    if chord.size:
        sub = family.take(chord)
        lo_c, top_c = low_end[chord], top[chord]
        for x in (lo_c, top_c, np.clip(grid_down(sub.xt, step), lo_c, top_c),
                  np.clip(grid_up(sub.xt, step), lo_c, top_c)):  # fmt: skip
            val = sub.value(x) - lam * x
            better = val > best_val[chord]
            best[chord] = np.where(better, x, best[chord])
            best_val[chord] = np.where(better, val, best_val[chord])
    may_skip = lower <= 0
    return np.where(may_skip & (best_val < 0), 0.0, best)


def _water_fill(
    family: Family,
    lower: FloatArray,
    upper: FloatArray,
    cap: float,
    step: float,
    guess: float,
) -> FloatArray:
    def demand(lam: float) -> FloatArray:
        return _best_at(family, lower, upper, lam, step)

    x = demand(0.0)
    if float(x.sum()) <= cap:
        return x
    if float(lower.sum()) > cap:  # not even the lower bounds fit: keep them
        return lower.copy()
    # Bracket the clearing price (starting from the hint), then bisect on log price.
    top = float(np.max(family.top_slope(), initial=1.0)) * 2.0 + 1e-300
    lo_lam, hi_lam = (guess / 2, guess * 2) if guess > 0 else (top * 1e-12, top)
    for _ in range(60):
        if float(demand(hi_lam).sum()) <= cap:
            break
        lo_lam, hi_lam = hi_lam, hi_lam * 4
    for _ in range(200):
        if float(demand(lo_lam).sum()) > cap:
            break
        hi_lam, lo_lam = lo_lam, lo_lam / 4
    best = demand(hi_lam)
    for _ in range(60):
        if hi_lam / lo_lam < 1 + 1e-6:
            break
        mid = float(np.sqrt(lo_lam * hi_lam))
        x = demand(mid)
        if float(x.sum()) <= cap:
            hi_lam, best = mid, x
        else:
            lo_lam = mid
    if float(best.sum()) > cap:
        return lower.copy()
    return _spend_leftover(family, best, upper, cap - float(best.sum()), step)


def _spend_leftover(
    family: Family, x: FloatArray, upper: FloatArray, leftover: float, step: float
) -> FloatArray:
    """Spend a leftover greedily: next grid step (or the ticket) by exact gain per unit."""
    limit = np.minimum(family.hi, upper)
    for _ in range(20):
        if leftover <= 0:
            break
        if step > 0:
            target = np.where(x < family.lo, family.lo, x + step)
        else:
            target = np.where(x < family.lo, family.lo, x + np.minimum(limit - x, leftover))
        target = np.minimum(target, limit)
        delta = target - x
        gain = family.value(target) - family.value(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((delta > 0) & (gain > 0), gain / delta, -np.inf)
        order = np.argsort(-ratio, kind="stable")
        order = order[np.isfinite(ratio[order])]
        order = order[delta[order] <= leftover * (1 + 1e-12)]
        if order.size == 0:
            break
        if step <= 0:
            i = order[0]
            x[i] += delta[i]
            leftover -= float(delta[i])
            continue
        spent = np.cumsum(delta[order])
        chosen = order[spent <= leftover * (1 + 1e-12)]
        if chosen.size == 0:
            chosen = order[:1]
        x[chosen] = target[chosen]
        leftover -= float(delta[chosen].sum())
    return x


def enforce_group_budgets(problem: Problem, x: FloatArray, keep: FloatArray) -> FloatArray:
    """Bring each group_budget row within [low, high] by moving its resource.

    Over the cap: the group's members are water-filled down to the cap (never below
    `keep`, what pins and tiers need). Under the floor: non-members give back what they
    can (down to `keep`), and members are water-filled up to the floor.
    """
    x = x.copy()
    for row in problem.group_budgets:
        r, members = row.resource, row.members
        family = problem.families[r]
        usable = problem.can_use[:, r]
        spent = float(x[members, r].sum())
        if spent > row.high * (1 + 1e-12):
            rows = np.flatnonzero(members & usable)
            fixed = spent - float(x[rows, r].sum())
            x[rows, r] = _water_fill(
                family.take(rows), keep[rows, r], x[rows, r], row.high - fixed, problem.step[r], 0.0
            )
        elif spent < row.low * (1 - 1e-12):
            outside = np.flatnonzero(~members & usable)
            room = problem.budget[r] - float(x[:, r].sum())
            shortfall = row.low - spent
            if room < shortfall and outside.size:
                others = float(x[outside, r].sum())
                cap = others - (shortfall - room)
                x[outside, r] = _water_fill(
                    family.take(outside), keep[outside, r], x[outside, r], cap,
                    problem.step[r], 0.0,
                )  # fmt: skip
            rows = np.flatnonzero(members & usable)
            fixed = spent - float(x[rows, r].sum())
            x[rows, r] = _water_fill(
                family.take(rows), x[rows, r], family.hi[rows], row.low - fixed,
                problem.step[r], 0.0,
            )  # fmt: skip
    return x
