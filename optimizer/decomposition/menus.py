"""Package menus in the decomposition: partners that take one whole package, or none.

A partner with a menu (and no curves) answers prices by enumeration: each option's priced
value α·uplift − P·amounts, the best per tier level. Nothing is relaxed, so these values
enter the Lagrangian's bound as they are (a multiple-choice knapsack per partner is the
per-user subproblem of Lagrangian methods for billion-scale knapsacks).

Plans leave the curve machinery as it is: each plan first fixes its package choices (the
Lagrangian's own at the plan's prices, cut back to the budgets: `choose`), then works on
the problem with those choices pinned (`pinned`): fixed amounts whose uplift sits in the
partner's baseline, which `repair` and `tickets` already leave alone.

In (n, R) amounts a menu partner's row holds its package's amounts; the package is the
best (most uplift) one those amounts cover (`covered`), so every plan reads one way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from models.curves import CurveKind, FloatArray
from models.plan import NO_PACKAGE
from optimizer.arrays import ProblemArrays, UnsupportedRequest
from optimizer.outcome import Candidate

if TYPE_CHECKING:
    from optimizer.decomposition.lagrangian import Evaluation
    from optimizer.decomposition.problem import Problem
    from optimizer.decomposition.subproblem import Response

IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]
# Amounts within this share of an option's (or one unit) still cover it.
_COVER_TOLERANCE = 1e-9


@dataclass
class Menus:
    """Every package option of the partners with a menu, in partner order."""

    owner: IntArray  # (K,) partner of each option, ascending
    index: IntArray  # (K,) its position in the partner's packages
    amounts: FloatArray  # (K, R) request units
    uplift: FloatArray  # (K,)
    holders: BoolArray  # (n,) partners with a menu
    must: BoolArray  # (n,) partners that take exactly one package (one_package)

    def take(self, rows: IntArray) -> Menus:
        """The menus of `rows` (repeats allowed), renumbered as positions in `rows`."""
        counts = np.bincount(self.owner, minlength=len(self.holders))
        first = np.cumsum(counts) - counts
        per_row = counts[rows]
        total = int(per_row.sum())
        starts = np.repeat(first[rows] - (np.cumsum(per_row) - per_row), per_row)
        options = starts + np.arange(total)
        return Menus(
            owner=np.repeat(np.arange(rows.size), per_row),
            index=self.index[options],
            amounts=self.amounts[options],
            uplift=self.uplift[options],
            holders=self.holders[rows],
            must=self.must[rows],
        )

    def top_uplift(self) -> FloatArray:
        """(n,) each partner's largest package uplift (0 without a menu)."""
        top = np.zeros(len(self.holders))
        np.maximum.at(top, self.owner, self.uplift)
        return top

    def covered(self, amounts: FloatArray) -> IntArray:
        """(n,) the option each row's amounts cover with the most uplift, -1 for none."""
        mine = amounts[self.owner]
        slack = _COVER_TOLERANCE * np.maximum(np.abs(self.amounts), 1.0)
        fits = np.all(self.amounts <= mine + slack, axis=1)
        return _best_per_owner(self.owner, np.where(fits, self.uplift, -np.inf), len(self.holders))

    def values(self, amounts: FloatArray) -> FloatArray:
        """(n,) the uplift of the package each row's amounts cover (0: none)."""
        pick = self.covered(amounts)
        out = np.zeros(len(self.holders))
        chosen = pick >= 0
        out[chosen] = self.uplift[pick[chosen]]
        return out

    def demand(self, r: int, price: float) -> float:
        """How much of resource r the partners' free choices take when it alone is priced
        (`lagrangian.clearing_prices`)."""
        pick = _best_per_owner(self.owner, self.uplift - price * self.amounts[:, r], len(self.must))
        gain = np.where(pick >= 0, self.uplift[np.maximum(pick, 0)], 0.0)
        gain = gain - price * self.amounts_of(pick)[:, r]
        pick = np.where(self.must | (gain > 0), pick, NO_PACKAGE)
        return float(self.amounts_of(pick)[:, r].sum())

    def top_price(self, r: int) -> float:
        """A price of resource r above which no free choice takes any of it."""
        uses = self.amounts[:, r] > 0
        return float(np.max(self.uplift[uses] / self.amounts[uses, r], initial=0.0))

    def amounts_of(self, pick: IntArray) -> FloatArray:
        """(n, R) the amounts of the chosen options (0 where none)."""
        out = np.zeros((len(self.holders), self.amounts.shape[1]))
        chosen = pick >= 0
        out[chosen] = self.amounts[pick[chosen]]
        return out


def models_menus(arrays: ProblemArrays) -> bool:
    """Can the decomposition model this programme with menus? Not with `points` curves, nor
    with a partner holding both curves (or pins) and a menu, nor a one_package partner
    left with no package it may take."""
    if any(curve.kind is CurveKind.POINTS for curve in arrays.pair_curve):
        return False
    try:
        build_menus(arrays)
    except UnsupportedRequest:
        return False
    return True


def build_menus(arrays: ProblemArrays) -> Menus | None:
    """The programme's menus, or None without packages. Partners with both curves and a
    menu, and pins on a menu partner, are left to the MILP engines."""
    request = arrays.request
    n = arrays.n_partners
    holders = np.fromiter((bool(p.packages) for p in request.partners), bool, n)
    if not holders.any():
        return None
    curves = np.zeros(n, dtype=bool)
    curves[arrays.pair_partner] = True
    if np.any(holders & (curves | np.any(arrays.pinned > 0, axis=1))):
        raise UnsupportedRequest(
            "the decomposition engine does not handle partners with both curves (or pins) "
            "and packages"
        )
    options = arrays.packages
    must = arrays.one_package & holders
    owner = np.fromiter((o.partner for o in options), np.intp, len(options))
    if np.any(must & (np.bincount(owner, minlength=n) == 0)):
        raise UnsupportedRequest("a one_package partner has no package it may take")
    return Menus(
        owner=owner,
        index=np.fromiter((o.index for o in options), np.intp, len(options)),
        amounts=np.array([o.amounts for o in options]).reshape(len(options), arrays.n_resources),
        uplift=np.fromiter((o.uplift for o in options), np.float64, len(options)),
        holders=holders,
        must=must,
    )


def answer(
    problem: Problem, prices: FloatArray, alpha: float, response: Response, levels: bool = True
) -> None:
    """Menu partners' rows of `response`, exactly: at each level the best priced option
    reaching it ("none" too, unless the partner must take one); level 0 only without
    `levels`."""
    from optimizer.decomposition.subproblem import Reach

    menus = problem.menus
    if menus is None:
        return
    owner, n = menus.owner, problem.n
    value = alpha * menus.uplift - np.einsum("kr,kr->k", prices[owner], menus.amounts)
    reaches = _level(problem, problem.baseline[owner] + menus.uplift)
    holders = np.flatnonzero(menus.holders)
    none_level = _level(problem, problem.baseline[holders])
    free_pick = np.full(n, NO_PACKAGE)
    for level in range(problem.n_tiers + 1 if levels else 1):
        pick = _best_per_owner(owner, np.where(reaches >= level, value, -np.inf), n)[holders]
        best = np.where(pick >= 0, value[np.maximum(pick, 0)], -np.inf)
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


def choose(problem: Problem, evaluation: Evaluation) -> FloatArray:
    """(n, R) the menu partners' package amounts at `evaluation`'s prices: each its
    Lagrangian choice, then cut back to the budgets and group caps (the options with the
    least uplift per unit of the overdrawn resource go first; a partner that must take a
    package moves to its smallest one instead)."""
    menus = problem.menus
    assert menus is not None
    pick = menus.covered(evaluation.amounts)
    pick[~menus.holders] = NO_PACKAGE
    everyone = np.ones(problem.n, dtype=bool)
    caps = [(everyone, r, problem.budget[r]) for r in range(problem.n_resources)]
    caps += [(g.members, g.resource, g.high) for g in problem.group_budgets]
    for _ in range(2):  # a must-partner's move can overdraw another resource
        for members, r, cap in caps:
            pick = _cut_back(menus, pick, members, r, cap)
    return menus.amounts_of(pick)


def _cut_back(menus: Menus, pick: IntArray, members: BoolArray, r: int, cap: float) -> IntArray:
    used = menus.amounts_of(pick)[:, r]
    excess = float(used[members].sum()) - cap
    if excess <= _COVER_TOLERANCE * max(abs(cap), 1.0):
        return pick
    pick = pick.copy()
    smallest = _best_per_owner(menus.owner, -menus.amounts[:, r], len(pick))
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
    baseline = problem.baseline + menus.values(amounts)
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


def at_prices(problem: Problem, evaluation: Evaluation) -> tuple[Problem, Evaluation]:
    """The problem with the packages `choose` takes at `evaluation` pinned, and the
    evaluation as that view sees it: menu partners at their pinned amounts and tier level,
    reaching no further. Unchanged without menus."""
    from optimizer.decomposition.lagrangian import Evaluation
    from optimizer.decomposition.subproblem import Reach, Response

    menus = problem.menus
    if menus is None:
        return problem, evaluation
    amounts = choose(problem, evaluation)
    view = pinned(problem, amounts)
    holders = menus.holders
    values = evaluation.response.values.copy()
    level = _level(view, view.baseline[holders])
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


def _level(problem: Problem, gmv: FloatArray) -> IntArray:
    return (gmv[:, None] >= problem.thresholds[None, :]).sum(axis=1).astype(np.intp)


def _best_per_owner(owner: IntArray, score: FloatArray, n: int) -> IntArray:
    """(n,) per partner, its option with the highest finite `score` (the first on ties),
    -1 where it has none."""
    best = np.full(n, NO_PACKAGE)
    finite = np.flatnonzero(np.isfinite(score))
    if finite.size == 0:
        return best
    order = finite[np.lexsort((-score[finite], owner[finite]))]
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    best[owner[first]] = first
    return best


def candidate(menus: Menus | None, amounts: FloatArray) -> Candidate:
    """A plan's (n, R) amounts as an engine candidate: menu partners' rows become their
    package choice (the covered one), the rest stay amounts."""
    amounts = np.maximum(amounts, 0.0)
    if menus is None:
        return Candidate(amounts=amounts)
    pick = menus.covered(amounts)
    pick[~menus.holders] = NO_PACKAGE
    choice = np.where(pick >= 0, menus.index[np.maximum(pick, 0)], NO_PACKAGE)
    amounts = np.where(menus.holders[:, None], 0.0, amounts)
    return Candidate(amounts=amounts, package_choice=choice.astype(np.intp))


def plan_amounts(menus: Menus | None, start: Candidate) -> FloatArray:
    """An engine candidate as (n, R) amounts: its packages' amounts in their rows."""
    amounts = start.amounts.copy()
    if menus is None or start.package_choice is None:
        return amounts
    chosen = start.package_choice
    pairs = zip(menus.owner.tolist(), menus.index.tolist(), strict=True)
    option_of = {pair: j for j, pair in enumerate(pairs)}
    for i in np.flatnonzero(chosen != NO_PACKAGE):
        j = option_of.get((int(i), int(chosen[i])))
        if j is not None:
            amounts[i] = menus.amounts[j]
    return amounts
