"""Package choices that fit the budgets jointly, where cutting back one budget at a time
does not (`menu_plans.choose`).

Partners a one_package rule binds must each take a package. Moving them to their smallest
package on an overdrawn resource can overdraw another: with two budgets and packages that
trade subsidy for traffic, that cut-back left 170 of 300 small feasible menu requests over
a budget, and the engine reported them infeasible. Which packages fit every budget at once
is a multiple-choice knapsack with a row per cap; a MILP answers it exactly: a choice that
fits, or a proof that none does, or (out of time) neither, which proves nothing.
"""

from __future__ import annotations

import numpy as np

from models.plan import NO_PACKAGE
from optimizer.decomposition.menus import BoolArray, IntArray, Menus
from optimizer.engines import milp_backend
from optimizer.engines.base import MilpResult, Termination
from optimizer.matrix import MatrixBuilder

# The MILP's time: a few hundred options solve in milliseconds; the limit only guards
# against a programme where the search cannot end (then the cut-back's choice stands).
FIT_SECONDS = 10.0
Cap = tuple[BoolArray, int, float]  # (members, resource, most they may take together)


def fitting_choice(
    menus: Menus, pick: IntArray, caps: list[Cap], seconds: float = FIT_SECONDS
) -> IntArray | None:
    """A choice (an option per partner, NO_PACKAGE for none) within every cap, each
    must-partner with a package, that keeps as many of `pick`'s options as it can (they
    are the Lagrangian's, priced against the curve partners' use of the budgets) and then
    the most uplift; None when no choice fits (or the MILP found none in `seconds`)."""
    result = _fit(menus, pick, caps, seconds)
    if result.x is None:
        return None
    chosen = np.flatnonzero(result.x[: len(menus.owner)] > 0.5)
    out = np.full(len(pick), NO_PACKAGE, dtype=pick.dtype)
    out[menus.owner[chosen]] = chosen
    return out


def any_choice_fits(menus: Menus, caps: list[Cap], seconds: float) -> bool | None:
    """Does some choice, each must-partner with a package, fit every cap? None: the MILP
    neither found one nor proved there is none in `seconds`, and only a proof may make a
    request infeasible."""
    nothing_kept = np.full(len(menus.holders), NO_PACKAGE, dtype=np.intp)
    result = _fit(menus, nothing_kept, caps, seconds)
    if result.termination is Termination.INFEASIBLE:
        return False
    return True if result.x is not None else None


def _fit(menus: Menus, pick: IntArray, caps: list[Cap], seconds: float) -> MilpResult:
    b = MatrixBuilder()
    count = len(menus.owner)
    y = b.add_columns(np.zeros(count), np.ones(count), integer=True)
    b.add_one_per_owner(y, menus.owner, menus.must)
    for members, r, cap in caps:
        if not np.isfinite(cap):
            continue  # a resource without a budget: nothing to fit
        inside = members[menus.owner] & (menus.amounts[:, r] != 0)
        unit = max(abs(cap), float(np.max(np.abs(menus.amounts[:, r]), initial=0.0)), 1.0)
        row = b.add_rows(-np.inf, cap / unit, count=1)
        b.add_entries(
            np.full(int(inside.sum()), row[0]), y[inside], menus.amounts[inside, r] / unit
        )
    # A kept option outweighs any uplift (their sum, scaled, stays below one).
    kept = np.zeros(count)
    kept[pick[pick >= 0]] = 1.0
    cost = -kept - 0.5 * menus.uplift / max(float(np.abs(menus.uplift).sum()), 1.0)
    return milp_backend("highs").solve(b.build(cost), time_limit_s=seconds, mip_gap=1e-4)
