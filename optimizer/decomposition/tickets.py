"""Lumpy resources (min tickets, S-shaped curves) re-split exactly by a small knapsack."""

from __future__ import annotations

import numpy as np

from models.curves import FloatArray
from optimizer.decomposition.problem import Problem

# Work limit of the rebalancing knapsack: items × capacity units × options per item.
_KNAPSACK_WORK = 3e7
_KNAPSACK_EXTRA = 64  # non-holders considered besides the current holders


def rebalance(problem: Problem, x: FloatArray, keep: FloatArray, r: int) -> FloatArray:
    """Re-split a lumpy resource (tickets, S-shaped curves) exactly among its holders.

    Water-filling at one price is exact for concave curves but not for min tickets and
    S-shaped curves, where the best split of the last few tickets is a knapsack. The
    holders of resource r (plus the best non-holders) share what they hold plus what is
    left of the budget, by dynamic programming over grid units, each partner taking 0 (if
    allowed) or a grid amount in [max(lo, keep), hi]; the rest of the plan is untouched.
    """
    step = problem.step[r]
    family = problem.families[r]
    budget = problem.budget[r]
    if step <= 0 or not np.isfinite(budget):
        return x
    usable = problem.can_use[:, r] & (family.hi > keep[:, r])
    holders = np.flatnonzero(usable & (x[:, r] > 0))
    others = np.flatnonzero(usable & (x[:, r] <= 0))
    if others.size:
        sub = family.take(others)
        ticket = np.maximum(sub.xt, sub.lo)
        ticket = np.maximum(np.ceil(ticket / step - 1e-9) * step, step)
        ticket = np.minimum(ticket, sub.hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = sub.value(ticket) / ticket
        others = others[np.argsort(-np.nan_to_num(ratio))[:_KNAPSACK_EXTRA]]
    items = np.concatenate([holders, others])
    if items.size == 0:
        return x
    capacity = int(np.floor((budget - (x[:, r].sum() - x[items, r].sum())) / step + 1e-9))
    sub = family.take(items)
    low_units = np.ceil(np.maximum(sub.lo, keep[items, r]) / step - 1e-9).astype(np.int64)
    high_units = np.floor(sub.hi / step + 1e-9).astype(np.int64)
    zero_ok = keep[items, r] <= 0
    widest = int(np.max(high_units - low_units, initial=0)) + 2
    if capacity <= 0 or items.size * (capacity + 1) * widest > _KNAPSACK_WORK:
        return x
    # best[c]: the most uplift with at most c units; choice[j, c]: units item j takes.
    best = np.zeros(capacity + 1)
    choice = np.zeros((items.size, capacity + 1), dtype=np.int32)
    slots = np.arange(capacity + 1)
    for j in range(items.size):
        options = np.arange(max(low_units[j], 1), min(high_units[j], capacity) + 1)
        gains = sub.take(np.full(options.size, j)).value(options * step)
        # table[k, c]: take options[k] units here and the best of c − units before.
        source = slots[None, :] - options[:, None]
        table = np.where(source >= 0, best[np.maximum(source, 0)] + gains[:, None], -np.inf)
        new = best.copy() if zero_ok[j] else np.full(capacity + 1, -np.inf)
        pick = np.zeros(capacity + 1, dtype=np.int32)
        if options.size:
            k = np.argmax(table, axis=0)
            top = table[k, slots]
            better = top > new
            new = np.where(better, top, new)
            pick = np.where(better, options[k], 0).astype(np.int32)
        best, choice[j] = new, pick
    if not np.isfinite(best[capacity]):
        return x
    current = float(family.take(items).value(x[items, r]).sum())
    if best[capacity] <= current * (1 + 1e-12):
        return x
    out = x.copy()
    c = capacity
    for j in range(items.size - 1, -1, -1):
        units = int(choice[j, c])
        out[items[j], r] = units * step
        c -= units
    return out
