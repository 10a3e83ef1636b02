"""Plans with package partners (see `menus`): each plan first fixes its packages (the
Lagrangian's own choice at the plan's prices, cut back to the budgets: `choose`), then works
on the problem with them pinned (`pinned`): fixed amounts whose uplift sits in the
partner's baseline, which `repair` and `tickets` already leave alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.curves import FloatArray
from models.plan import NO_PACKAGE
from optimizer.decomposition.lagrangian import Evaluation
from optimizer.decomposition.menus import (
    COVER_TOLERANCE,
    BoolArray,
    IntArray,
    Menus,
    best_per_owner,
    levels_of,
)
from optimizer.decomposition.package_fit import FIT_SECONDS, Cap, any_choice_fits, fitting_choice
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.repair import fixed_amounts
from optimizer.decomposition.response import Reach, Response

# The least time the proof that forced packages fit no budget gets, the clock out or not.
MIN_FIT_S = 0.5
# And the least a plan's joint choice gets (without one, the plan overdraws a budget and
# is not taken).
MIN_CHOICE_S = 0.1


def choose(problem: Problem, evaluation: Evaluation, seconds: float = FIT_SECONDS) -> FloatArray:
    """(n, R) the menu partners' package amounts at `evaluation`'s prices: each its
    Lagrangian choice, then cut back to the budgets and group caps (the options with the
    least uplift per unit of the overdrawn resource go first; a partner that must take a
    package moves to its smallest one instead, and where those moves leave a cap
    overdrawn, other partners' packages go). `seconds`: the engine's time left, which the
    joint choice's MILP may take (at least MIN_CHOICE_S, at most FIT_SECONDS): a plan is
    built every few dual steps, and a fixed 10 s guard per plan could run far past the
    request's limit."""
    menus = problem.menus
    assert menus is not None
    pick = menus.covered(evaluation.amounts)
    caps = _caps(problem, menus)
    for _ in range(2):  # a must-partner's move can overdraw another resource
        for members, r, cap in caps:
            pick = _cut_back(menus, pick, members, r, cap)
    # Those moves can chase each other round the caps (a must-partner's smallest package
    # on one resource is its largest on another: 3 package partners, two budgets, 40M of
    # a 30M subsidy). A last pass gives up other partners' packages only, which draws
    # less of every resource, so a cap it meets stays met.
    for members, r, cap in caps:
        pick = _cut_back(menus, pick, members, r, cap, move_must=False)
    if menus.must.any() and _overdrawn(menus, pick, caps):
        # The must-partners' smallest packages overdraw some cap: only a joint choice can
        # tell whether any fits, and which.
        limit = min(max(seconds, MIN_CHOICE_S), FIT_SECONDS)
        fitting = fitting_choice(menus, pick, caps, limit)
        pick = pick if fitting is None else fitting
    return menus.amounts_of(pick)


def _caps(problem: Problem, menus: Menus) -> list[Cap]:
    """The budgets and group caps, less what curve partners' pins take: that is gone
    before any package is chosen."""
    everyone = np.ones(problem.n, dtype=bool)
    caps: list[Cap] = [(everyone, r, problem.budget[r]) for r in range(problem.n_resources)]
    caps += [(g.members, g.resource, g.high) for g in problem.group_budgets]
    pins = np.where(menus.holders[:, None], 0.0, fixed_amounts(problem))
    return [(members, r, cap - float(pins[members, r].sum())) for members, r, cap in caps]


def forced_over_budget(problem: Problem, broken: list[str]) -> bool:
    """Is a budget broken while a one_package rule binds partners to packages?"""
    forced = problem.menus is not None and bool(problem.menus.must.any())
    return forced and "one_package" not in broken and any(b.startswith("budget") for b in broken)


def forced_packages_fit(problem: Problem, seconds: float) -> bool | None:
    """Can the partners a one_package rule binds each take a package within every budget
    and group cap, beside the pins? None: the fit MILP did not decide in `seconds` (at
    least MIN_FIT_S, the clock out or not). A plan that broke a budget proves nothing;
    only False makes the request infeasible."""
    menus = problem.menus
    if menus is None or not menus.must.any():
        return True
    limit = min(max(seconds, MIN_FIT_S), FIT_SECONDS)
    return any_choice_fits(menus, _caps(problem, menus), limit)


def _overdrawn(menus: Menus, pick: IntArray, caps: list[Cap]) -> bool:
    used = menus.amounts_of(pick)
    return any(_over(used[:, r], members, cap) for members, r, cap in caps)


def _over(used: FloatArray, members: BoolArray, cap: float) -> bool:
    """Do the members' amounts `used` go past `cap` by more than the cover tolerance?"""
    return float(used[members].sum()) - cap > COVER_TOLERANCE * max(abs(cap), 1.0)


def _cut_back(
    menus: Menus, pick: IntArray, members: BoolArray, r: int, cap: float, move_must: bool = True
) -> IntArray:
    used = menus.amounts_of(pick)[:, r]
    if not _over(used, members, cap):
        return pick
    pick = pick.copy()
    if move_must:
        smallest = best_per_owner(menus.owner, -menus.amounts[:, r], len(pick))
        must = members & menus.must & (pick >= 0)
        switch = np.flatnonzero(must & (pick != smallest))
        pick[switch] = smallest[switch]
        used = menus.amounts_of(pick)[:, r]
    excess = float(used[members].sum()) - cap
    rows = np.flatnonzero(members & ~menus.must & (pick >= 0) & (used > 0))
    if excess <= 0 or rows.size == 0:
        return pick
    density = menus.uplift[pick[rows]] / used[rows]
    order = rows[np.argsort(density, kind="stable")]
    enough = int(np.searchsorted(np.cumsum(used[order]), excess * (1 + 1e-12))) + 1
    pick[order[:enough]] = NO_PACKAGE
    return pick


def pinned(problem: Problem, amounts: FloatArray) -> Problem:
    """`problem` with the packages `amounts` give its menu partners pinned: fixed amounts,
    their uplift in the baseline, and no menus left."""
    menus = problem.menus
    if menus is None:
        return problem
    pick = menus.covered(amounts)
    chosen = menus.amounts_of(pick)
    rows = np.flatnonzero(menus.holders)
    baseline = problem.baseline + menus.uplift_of(pick)
    can_use = problem.can_use.copy()
    can_use[rows] = chosen[rows] > 0
    optional = problem.optional.copy()
    optional[rows] = False
    reach = problem.reach.copy()
    reach[rows] = 0.0
    families = [f.pinned(rows, chosen[rows, r]) for r, f in enumerate(problem.families)]
    return replace(
        problem, baseline=baseline, families=families, can_use=can_use, optional=optional,
        reach=reach, menus=None,
    )  # fmt: skip


def at_prices(
    problem: Problem,
    evaluation: Evaluation,
    chosen: FloatArray | None = None,
    seconds: float = FIT_SECONDS,
) -> tuple[Problem, Evaluation]:
    """The problem with the packages `choose` takes at `evaluation` (or those `chosen`
    amounts cover) pinned, and the evaluation as that view sees it: menu partners at their
    pinned amounts and tier level, reaching no further. Unchanged without menus. `seconds`:
    see `choose`."""
    menus = problem.menus
    if menus is None:
        return problem, evaluation
    if chosen is None:
        amounts = choose(problem, evaluation, seconds)
    else:
        amounts = menus.amounts_of(menus.covered(chosen))
    view = pinned(problem, amounts)
    holders = menus.holders
    values = evaluation.response.values.copy()
    level = levels_of(view.thresholds, view.baseline[holders])
    reached = np.arange(values.shape[1])[None, :] <= level[:, None]
    values[holders] = np.where(reached, values[holders, :1], -np.inf)
    x0 = evaluation.response.x0.copy()
    x0[holders] = amounts[holders]
    reach: list[Reach | None] = []
    for found in evaluation.response.reach:
        if found is None:
            reach.append(None)
            continue
        keep = ~holders[found.rows]
        reach.append(Reach(found.rows[keep], found.amounts[keep], found.q[keep]))
    response = Response(values=values, x0=x0, reach=reach)
    seen = Evaluation(
        evaluation.value, evaluation.grad, response, evaluation.prices, evaluation.phi,
        np.where(holders[:, None], amounts, evaluation.amounts),
    )  # fmt: skip
    return view, seen
