"""From prices to an exactly feasible plan.

1. Levels: which partners reach which tier. Each partner's price of reaching level ℓ is
   its drop in priced value (from the subproblem); targets are met top tier first with the
   cheapest partners whose *mandatory* amounts (least priced mix reaching the tier,
   rounded up to the step grid, checked on the exact curve) still fit the budgets.
2. Fill (GMV objectives): each resource is separable once the mandatory amounts are lower
   bounds, so its leftover is water-filled: a bisection on its price, each partner taking
   the exact best grid amount at that price, then leftovers spent greedily by exact
   marginal gain per unit.
3. Check: exact tiers, budgets, groups; trims or bumps where rounding left a gap.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.decomposition.family import Family
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.subproblem import Response, reach_level

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
    _, _, x, _ = reach_level(problem, rows, priced, 0.0, need)
    fixed = fixed_amounts(problem)[rows]
    x = np.maximum(np.nan_to_num(x), fixed)
    for r, family in enumerate(problem.families):
        x[:, r] = np.minimum(grid_up(x[:, r], problem.step[r]), family.hi[rows])
        # A chord amount below the ticket is not allowed: lift it to the ticket.
        x[:, r] = np.where((x[:, r] > 0) & (x[:, r] < family.lo[rows]), family.lo[rows], x[:, r])
    ok = _gmv(problem, rows, x) >= threshold
    x, ok = _bump(problem, rows, x, threshold, priced, ok)
    # Trim: a resource whose grid step can be given back while the tier still holds.
    for r in range(problem.n_resources):
        step = problem.step[r]
        if step <= 0:
            continue
        lower = x.copy()
        lower[:, r] = x[:, r] - step
        lower[:, r] = np.where(lower[:, r] < problem.families[r].lo[rows], 0.0, lower[:, r])
        keep = ok & (lower[:, r] >= fixed[:, r]) & (_gmv(problem, rows, lower) >= threshold)
        x[keep] = lower[keep]
    return x, ok


def _gmv(problem: Problem, rows: IntArray, x: FloatArray) -> FloatArray:
    gmv = problem.baseline[rows].copy()
    for r, family in enumerate(problem.families):
        gmv += family.take(rows).value(x[:, r])
    return gmv


def _bump(
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
        ok[idx] = _gmv(problem, rows[idx], x[idx]) >= threshold
    return x, ok


def assign_levels(
    problem: Problem,
    response: Response,
    prices: FloatArray,
    targets: NDArray[np.int64],
) -> tuple[NDArray[np.int64], FloatArray]:
    """Tier levels meeting `targets` (as far as budgets allow) and mandatory amounts."""
    n, n_tiers = problem.n, problem.n_tiers
    amounts = fixed_amounts(problem)
    level = np.zeros(n, dtype=np.int64)
    gmv_fixed = problem.values(amounts)
    for t in range(n_tiers):
        level[gmv_fixed >= problem.thresholds[t]] = t + 1
    remaining = problem.budget - amounts.sum(axis=0)
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
                added, blocked = _admit(pool, x, ok, t, missing, amounts, level, remaining)
                missing -= added
                if missing <= 0 or not np.any(blocked):
                    break
                # A resource ran out: price it up so the rest of the pool leans on others.
                pool = pool[level[pool] < t]
                mix_prices = mix_prices.copy()
                mix_prices[:, blocked] *= 10.0
    return level, amounts


def _admit(
    pool: IntArray,
    x: FloatArray,
    ok: NDArray[np.bool_],
    tier: int,
    missing: int,
    amounts: FloatArray,
    level: NDArray[np.int64],
    remaining: FloatArray,
) -> tuple[int, NDArray[np.bool_]]:
    """Lift pool partners (in order) to `tier` while their amounts fit; updates in place.

    Returns how many were lifted and which resources turned candidates away.
    """
    added = 0
    blocked = np.zeros(remaining.size, dtype=bool)
    slack = 1e-9 * np.maximum(np.abs(remaining), 1.0)
    for k, i in enumerate(pool):
        if not ok[k]:
            continue
        delta = x[k] - amounts[i]
        short = delta > remaining + slack
        if np.any(short):
            blocked |= short
            continue
        remaining -= delta
        amounts[i] = x[k]
        level[i] = tier
        added += 1
        if added >= missing:
            break
    return added, blocked


def fill(
    problem: Problem, lower: FloatArray, levels_locked: NDArray[np.bool_] | None = None
) -> FloatArray:
    """Spend what budgets leave on GMV, resource by resource, never below `lower`."""
    amounts = lower.copy()
    for r, family in enumerate(problem.families):
        cap = problem.budget[r]
        amounts[:, r] = _water_fill(
            family, problem.can_use[:, r], lower[:, r], cap, problem.step[r]
        )
    return amounts


def _best_at(
    family: Family, usable: NDArray[np.bool_], lower: FloatArray, lam: float, step: float
) -> FloatArray:
    """Per partner, the exact best amount on the grid at price `lam` (>= lower)."""
    base = np.where(lower > 0, np.maximum(lower, family.lo), family.lo)
    low_end = np.minimum(grid_up(base, step), family.hi)
    top = family.hi
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = family.argmax_slope(np.full(len(family), lam))
    xc = np.clip(xc, low_end, top)
    options = [low_end, np.clip(grid_down(xc, step), low_end, top),
               np.clip(grid_up(xc, step), low_end, top), top]  # fmt: skip
    best = low_end
    best_val = family.value(low_end) - lam * low_end
    for x in options[1:]:
        val = family.value(x) - lam * x
        better = val > best_val
        best = np.where(better, x, best)
        best_val = np.where(better, val, best_val)
    may_skip = lower <= 0
    best = np.where(may_skip & (best_val < 0), 0.0, best)
    return np.where(usable, best, lower)


def _water_fill(
    family: Family, usable: NDArray[np.bool_], lower: FloatArray, cap: float, step: float
) -> FloatArray:
    def demand(lam: float) -> tuple[FloatArray, float]:
        x = _best_at(family, usable, lower, lam, step)
        return x, float(x.sum())

    x, used = demand(0.0)
    if used <= cap:
        return x
    slopes = family.top_slope()
    hi_lam = float(np.max(np.where(usable, slopes, 0.0), initial=1.0)) * 2.0 + 1e-300
    lo_lam = hi_lam * 1e-16
    # Continuous-demand bisection first (cheap), then a narrow discrete one.
    best = lower.copy()
    for _ in range(70):
        mid = float(np.sqrt(lo_lam * hi_lam))
        x, used = demand(mid)
        if used <= cap:
            hi_lam, best = mid, x
        else:
            lo_lam = mid
        if hi_lam / lo_lam < 1 + 1e-10:
            break
    if float(best.sum()) > cap:  # not even the lower bounds fit: keep them
        return lower.copy()
    return _spend_leftover(family, usable, best, cap - float(best.sum()), step)


def _spend_leftover(
    family: Family, usable: NDArray[np.bool_], x: FloatArray, leftover: float, step: float
) -> FloatArray:
    unit = step if step > 0 else None
    for _ in range(20):
        if leftover <= 0:
            break
        if unit is None:
            increment = np.minimum(family.hi - x, leftover)
            target = np.where(x < family.lo, family.lo, x + increment)
        else:
            target = np.where(x < family.lo, family.lo, x + unit)
        target = np.minimum(target, family.hi)
        delta = target - x
        gain = family.value(target) - family.value(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(usable & (delta > 0) & (gain > 0), gain / delta, -np.inf)
        order = np.argsort(-ratio, kind="stable")
        order = order[np.isfinite(ratio[order])]
        if order.size == 0:
            break
        if unit is None:
            i = order[0]
            take = min(delta[i], leftover)
            x[i] += take
            leftover -= take
            continue
        spent = np.cumsum(delta[order])
        chosen = order[spent <= leftover + 1e-9]
        if chosen.size == 0:
            fits = order[delta[order] <= leftover + 1e-9]
            if fits.size == 0:
                break
            chosen = fits[:1]
        x[chosen] = target[chosen]
        leftover -= float(delta[chosen].sum())
    return x
