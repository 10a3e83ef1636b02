"""Package menus in the decomposition: partners that take one whole package, or none.

A partner with a menu (and no curves) answers prices by enumeration (`menu_prices`): each
option's priced value α·uplift − P·amounts, the best per tier level. Nothing is relaxed,
so these values enter the Lagrangian's bound as they are (a multiple-choice knapsack per
partner is the per-user subproblem of Lagrangian methods for billion-scale knapsacks).
Plans pin each menu partner's package (`menu_plans`) and leave the curve machinery as it is.

In (n, R) amounts a menu partner's row holds its package's amounts; the package is the
best (most uplift) one those amounts cover (`Menus.covered`), so every plan reads one way,
and `candidate` turns such amounts into an engine candidate's package choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.plan import NO_PACKAGE
from optimizer.arrays import ProblemArrays, UnsupportedRequest
from optimizer.outcome import Candidate

IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]
# Amounts within this share of an option's (or one unit) still cover it.
COVER_TOLERANCE = 1e-9


@dataclass
class Menus:
    """Every package option of the partners with a menu, in partner order."""

    owner: IntArray  # (K,) partner of each option, ascending
    index: IntArray  # (K,) its position in the partner's packages
    amounts: FloatArray  # (K, R) request units
    uplift: FloatArray  # (K,)
    holders: BoolArray  # (n,) partners with a menu
    must: BoolArray  # (n,) partners that take exactly one package (one_package)
    # (n,) partners a one_package rule binds with no package they may take: no plan meets
    # the rule (`primal.broken_rows`); their menus are otherwise empty.
    stranded: BoolArray

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
            stranded=self.stranded[rows],
        )

    def top_uplift(self) -> FloatArray:
        """(n,) each partner's largest package uplift (0 without a menu)."""
        top = np.zeros(len(self.holders))
        np.maximum.at(top, self.owner, self.uplift)
        return top

    def covered(self, amounts: FloatArray) -> IntArray:
        """(n,) the option each row's amounts cover with the most uplift, -1 for none."""
        mine = amounts[self.owner]
        slack = COVER_TOLERANCE * np.maximum(np.abs(self.amounts), 1.0)
        fits = np.all(self.amounts <= mine + slack, axis=1)
        return best_per_owner(self.owner, np.where(fits, self.uplift, -np.inf), len(self.holders))

    def values(self, amounts: FloatArray) -> FloatArray:
        """(n,) the uplift of the package each row's amounts cover (0: none)."""
        return self.uplift_of(self.covered(amounts))

    def uplift_of(self, pick: IntArray) -> FloatArray:
        """(n,) the uplift of the chosen options (0 where none, -1)."""
        return np.append(self.uplift, 0.0)[pick]

    def demand(self, r: int, price: float) -> float:
        """How much of resource r the partners' free choices take when it alone is priced
        (`lagrangian.clearing_prices`)."""
        value = self.uplift - price * self.amounts[:, r]
        pick = best_per_owner(self.owner, value, len(self.must))
        gain = np.append(value, 0.0)[pick]
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
    """Can the decomposition model this programme's menus? Not with a partner holding both
    curves (or pins) and a menu."""
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
    owner = np.fromiter((o.partner for o in options), np.intp, len(options))
    stranded = arrays.one_package & holders & (np.bincount(owner, minlength=n) == 0)
    must = arrays.one_package & holders & ~stranded
    return Menus(
        owner=owner,
        index=np.fromiter((o.index for o in options), np.intp, len(options)),
        amounts=np.array([o.amounts for o in options]).reshape(len(options), arrays.n_resources),
        uplift=np.fromiter((o.uplift for o in options), np.float64, len(options)),
        holders=holders,
        must=must,
        stranded=stranded,
    )


def levels_of(thresholds: FloatArray, gmv: FloatArray) -> IntArray:
    """The tier level (0: none) each GMV reaches."""
    return (gmv[:, None] >= thresholds[None, :]).sum(axis=1).astype(np.intp)


def best_per_owner(owner: IntArray, score: FloatArray, n: int) -> IntArray:
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
    pick = menus.covered(amounts)  # -1 for partners without a menu: they have no options
    choice = np.append(menus.index, NO_PACKAGE)[pick]  # -1, none: -1
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
