"""Valid inequalities that price a tier claim in the MILP's LP relaxation.

The model claims a tier for partner i with z ≤ gain_i / need (`model_builder`), and on
curves that rise steeply from zero (or S-curves, whose LP relaxation is their concave
envelope) a fraction of the amounts that reach the threshold buys a larger fraction of
z. Family seed 2, 1,200 partners: the finish's outer LP sat 10.5% above its plan (the
decomposition's bound 0.16% above), and CBC took 24 nodes and 4.4 s to prove the cutoff.
With these rows at the decomposition's budget prices the LP sits 2.8% above and CBC
proves it at the root in 2.2 s.

For resource prices p (GMV per request unit; the finish passes the decomposition's
budget prices, which also count what budget is worth for reaching tiers), these rows hold
for every integer solution of the model and cut the fractional claims:

* value, one per claiming partner: gain_i − p·x_i + Σ_t a_t z_it ≤ V_i(none), where
  V_i(t) bounds gain − p·x over the partner's amounts that reach tier t and
  a_t = V_i(t−1) − V_i(t): at each tier the row reads gain − p·x ≤ V_i(t);
* cover, one per claim: p·x_i ≥ c_it z_it, with c_it a lower bound on the priced amounts
  that reach tier t.

Both bounds come from the model's own pieces by duality (any multiplier ν ≥ 0 gives a
valid one; we search ν on a grid), evaluated at the pieces' breakpoints, so S-curve
orderings and semi-continuous minimums count as the integer model sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.pwl import Segments

# Multipliers tried (dimensionless: GMV per GMV, or cost per GMV at prices p), then the
# best bracket refined: any ν gives a valid bound, a better one only a tighter row.
GRID = np.r_[0.0, np.geomspace(1e-4, 1e4, 49)]
REFINE_STEPS = 30


@dataclass
class TierCuts:
    """Per claim (in the order given), in CNY: its partner's V(none), the value row's
    coefficient a and the cover row's c."""

    no_tier_value: FloatArray
    value_coef: FloatArray
    cover: FloatArray


class _Breakpoints:
    """For a set of claims, each breakpoint of each of the claiming partner's pairs: its
    cumulative gain Φ (CNY) and priced amount P, grouped by (claim, pair)."""

    def __init__(
        self, segs: Segments, pair_partner: NDArray[np.intp], pair_price: FloatArray,
        claim_partner: NDArray[np.intp],
    ) -> None:  # fmt: skip
        pair = segs.pair
        starts = np.r_[0, np.flatnonzero(pair[1:] != pair[:-1]) + 1]  # one group per pair
        sizes = np.diff(np.r_[starts, len(pair)])
        since = np.repeat(starts, sizes)
        phi = np.cumsum(segs.slope * segs.length)
        phi -= np.r_[0.0, phi][since]
        amount = np.cumsum(segs.length)
        amount -= np.r_[0.0, amount][since]
        group_partner = pair_partner[pair[starts]]
        by_partner = np.argsort(group_partner, kind="stable")
        first = np.searchsorted(group_partner[by_partner], claim_partner, side="left")
        last = np.searchsorted(group_partner[by_partner], claim_partner, side="right")
        groups = by_partner[ranges(first, last)]
        pieces = ranges(starts[groups], starts[groups] + sizes[groups])
        self.phi = phi[pieces]
        self.priced = (pair_price[pair] * amount)[pieces]
        self.claim_of_group = np.repeat(np.arange(len(claim_partner)), last - first)
        self.claim_of_piece = np.repeat(self.claim_of_group, sizes[groups])
        self.group_starts = np.r_[0, np.cumsum(sizes[groups])[:-1]]
        self.n_claims = len(claim_partner)

    def best(self, weight: FloatArray) -> FloatArray:
        """Per claim: Σ over its pairs of max(0, max over breakpoints of w·Φ − P)."""
        if not len(self.phi):
            return np.zeros(self.n_claims)
        value = weight[self.claim_of_piece] * self.phi - self.priced
        per_pair = np.maximum(np.maximum.reduceat(value, self.group_starts), 0.0)
        totals = np.zeros(self.n_claims)
        np.add.at(totals, self.claim_of_group, per_pair)
        return totals


def tier_cuts(
    segs: Segments,
    pair_partner: NDArray[np.intp],
    pair_price: FloatArray,
    claim_partner: NDArray[np.intp],
    claim_tier: NDArray[np.intp],
    claim_need: FloatArray,
) -> TierCuts:
    """The rows' data for claims (partner, tier, GMV it must add to reach the tier),
    at per-pair prices `pair_price` (CNY per request unit)."""
    points = _Breakpoints(segs, pair_partner, pair_price, claim_partner)
    m = len(claim_partner)
    # V(t) ≤ min_ν Σ max_x((1+ν)Φ − P) − ν·need; c(t) ≥ max_ν ν·need − Σ max_x(νΦ − P).
    reach_value = _best_over_nu(lambda nu: points.best(1.0 + nu) - nu * claim_need, m)
    cover = -_best_over_nu(lambda nu: points.best(nu) - nu * claim_need, m)
    free = points.best(np.ones(m))
    value_coef = np.zeros(m)
    # A partner's claims in tier order: a_t = V(previous) − V(t), with V kept monotone
    # (reaching a higher tier reaches the lower one).
    previous, owner = 0.0, -1
    for k in np.lexsort((claim_tier, claim_partner)):
        if claim_partner[k] != owner:
            owner, previous = int(claim_partner[k]), float(free[k])
        here = min(float(reach_value[k]), previous)
        value_coef[k], previous = previous - here, here
    return TierCuts(free, value_coef, np.maximum(cover, 0.0))


def ranges(lo: NDArray[np.intp], hi: NDArray[np.intp]) -> NDArray[np.intp]:
    """The concatenation of arange(lo[k], hi[k]) over k."""
    lengths = hi - lo
    offsets = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)
    return (np.arange(int(lengths.sum())) + offsets).astype(np.intp)


def _best_over_nu(function: Callable[[FloatArray], FloatArray], m: int) -> FloatArray:
    """Per claim, the least of `function(ν)` (convex in ν, vectorised over claims) over
    GRID, then golden-section search between the best grid point's neighbours."""
    values = np.array([function(np.full(m, nu)) for nu in GRID])
    best = values.min(axis=0)
    at = values.argmin(axis=0)
    lo, hi = GRID[np.maximum(at - 1, 0)], GRID[np.minimum(at + 1, len(GRID) - 1)]
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(REFINE_STEPS):
        left, right = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        f_left, f_right = function(left), function(right)
        best = np.minimum(best, np.minimum(f_left, f_right))
        move = f_left < f_right
        hi = np.where(move, right, hi)
        lo = np.where(move, lo, left)
    return best
