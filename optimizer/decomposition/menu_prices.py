"""Package partners' answers to prices (see `menus`): at each tier level the best priced
package reaching it, exactly (nothing is relaxed, so the values enter the bound as they are)."""

from __future__ import annotations

import numpy as np

from models.curves import FloatArray
from models.plan import NO_PACKAGE
from optimizer.decomposition.menus import best_per_owner, levels_of
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.response import Reach, Response


def answer(
    problem: Problem, prices: FloatArray, alpha: float, response: Response, levels: bool = True
) -> None:
    """Menu partners' rows of `response`, exactly: at each level the best priced option
    reaching it ("none" too, unless the partner must take one); level 0 only without
    `levels`."""
    menus = problem.menus
    if menus is None:
        return
    owner, n = menus.owner, problem.n
    value = alpha * menus.uplift - np.einsum("kr,kr->k", prices[owner], menus.amounts)
    reaches = levels_of(problem.thresholds, problem.baseline[owner] + menus.uplift)
    holders = np.flatnonzero(menus.holders)
    none_level = levels_of(problem.thresholds, problem.baseline[holders])
    free_pick = np.full(n, NO_PACKAGE)
    for level in range(problem.n_tiers + 1 if levels else 1):
        pick = best_per_owner(owner, np.where(reaches >= level, value, -np.inf), n)[holders]
        best = np.append(value, -np.inf)[pick]  # -1, no option: -inf
        none = ~menus.must[holders] & (none_level >= level) & (best <= 0.0)
        pick = np.where(none, NO_PACKAGE, pick)
        response.values[holders, level] = np.where(none, 0.0, best)
        if level == 0:
            free_pick[holders] = pick
            response.x0[holders] = menus.amounts_of(free_pick)[holders]
            continue
        moved = (pick != free_pick[holders]) & np.isfinite(response.values[holders, level])
        rows, options = holders[moved], pick[moved]
        amounts = np.zeros((rows.size, problem.n_resources))
        amounts[options >= 0] = menus.amounts[options[options >= 0]]
        found = response.reach[level - 1]
        if found is not None:
            rows = np.concatenate([found.rows, rows])
            amounts = np.vstack([found.amounts, amounts])
            q = np.concatenate([found.q, np.full(moved.sum(), np.nan)])
        else:
            q = np.full(rows.size, np.nan)
        order = np.argsort(rows, kind="stable")
        response.reach[level - 1] = Reach(rows[order], amounts[order], q[order])
