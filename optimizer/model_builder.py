"""`build`: the allocation MILP for one approximation of the curves, step by step.

Each step adds one family of columns or rows (see `optimizer.formulation` for the
columns); `build` lists them in order, and the stage's objective comes last.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.request import GroupBudget, GroupCount, Objective
from optimizer.arrays import ProblemArrays
from optimizer.formulation import (
    FINE_GRID,
    TIER_MARGIN_ABS,
    TIER_MARGIN_REL,
    Formulation,
    StageSpec,
    grid_steps,
)
from optimizer.matrix import MatrixBuilder
from optimizer.outcome import TierLevels
from optimizer.pooling import pool_concave_pairs
from optimizer.pwl import Segments
from optimizer.tier_cuts import ranges, tier_cuts


def reachable_partners(arrays: ProblemArrays, pair_max_gain: FloatArray) -> FloatArray:
    """Per partner, the most GMV (CNY) this approximation can add."""
    gain = np.zeros(arrays.n_partners)
    np.add.at(gain, arrays.pair_partner, pair_max_gain)
    best = np.zeros(arrays.n_partners)
    for option in arrays.packages:
        best[option.partner] = max(best[option.partner], option.uplift)
    return gain + best


def build(
    arrays: ProblemArrays,
    segs: Segments,
    stage: StageSpec,
    *,
    tier_margin: bool = True,
    integral_grid: bool | NDArray[np.bool_] = False,
    tier_prices: FloatArray | None = None,
    tier_levels: TierLevels | None = None,
    pool_near: FloatArray | None = None,
    reserve: bool = True,
) -> Formulation:
    """`tier_margin`: claim tiers with headroom (inner model); off for the outer model,
    which must stay a relaxation for its bound to be valid. `integral_grid`: keep every
    grid index integer, fine grids included (the last resort for a tight gap), or per pair
    those of the pairs marked (`Approximation.integral`).
    `tier_prices`: per resource, GMV per request unit at which tier claims are priced in
    the LP relaxation (`optimizer.tier_cuts`); None: no such rows. `tier_levels`: per
    partner, the lowest and highest tier level it may claim (the decomposition's
    reduced-cost fixing, `EngineOutcome.tier_levels`); None: any. `pool_near`: per pair,
    the amounts around which concave pairs are pooled (`optimizer.pooling`); None: none.
    `reserve`: an inner model holds budget back for rounding (`reserve_rounding_steps`)."""
    model = _ModelBuilder(arrays, stage, tier_margin=tier_margin, integral_grid=integral_grid)
    model.tier_levels = tier_levels
    model.add_amounts()
    model.add_grids()
    model.add_pieces(segs)
    model.add_packages()
    model.add_budgets()
    model.add_group_budgets()
    model.add_tier_indicators()
    if tier_prices is not None:
        model.add_tier_cuts(tier_prices)
    if reserve:
        model.reserve_rounding_steps()
    model.add_cumulative_tiers()
    model.add_shortfalls()
    model.add_group_counts()
    model.add_no_good_cuts()
    model.add_shortfall_cap()
    if pool_near is None:
        return model.formulation()
    return pool_concave_pairs(model.formulation(), arrays, segs, pool_near, not tier_margin)


class _ModelBuilder:
    """The steps of `build`, sharing the matrix and the columns made so far."""

    def __init__(
        self,
        arrays: ProblemArrays,
        stage: StageSpec,
        *,
        tier_margin: bool,
        integral_grid: bool | NDArray[np.bool_],
    ) -> None:
        self.arrays, self.stage = arrays, stage
        self.request = arrays.request
        self.tier_margin, self.integral_grid = tier_margin, integral_grid
        self.b = MatrixBuilder()
        self.res = arrays.pair_resource
        self.scale = arrays.resource_scale[self.res]
        self.x = np.zeros(0, dtype=np.intp)
        self.v = np.zeros(0, dtype=np.intp)
        self.s = np.zeros(0, dtype=np.intp)
        self.stepped = np.zeros(0, dtype=np.intp)
        self.coarse = np.zeros(0, dtype=bool)
        self.z_cols: dict[tuple[int, int], int] = {}
        self.tier_levels: TierLevels | None = None
        self.budget_rows: dict[int, int] = {}
        self.base_counts = np.zeros(len(arrays.thresholds), dtype=np.int_)
        # GMV terms (partner, column, coefficient in money units) and cost terms.
        self.gmv_terms: list[tuple[NDArray[np.intp], NDArray[np.intp], FloatArray]] = []
        self.cost_terms: list[tuple[NDArray[np.intp], FloatArray]] = []
        self.pair_gain = np.zeros(arrays.n_pairs)  # most GMV each pair can add (CNY)
        self.const_gain = np.zeros(arrays.n_partners)  # outer pieces' value at 0
        self.segs: Segments | None = None
        self.piece_cols = np.zeros(0, dtype=np.intp)  # δ per piece of `segs`
        self.grid_cols = np.full(arrays.n_pairs, -1, dtype=np.intp)  # n per pair (-1: none)
        self.claim_need: dict[tuple[int, int], float] = {}  # GMV a z's partner must add (CNY)
        self.package_amounts = (
            np.array([o.amounts for o in arrays.packages])
            if arrays.packages
            else np.zeros((0, arrays.n_resources))
        )

    def add_amounts(self) -> None:
        """x: the amount per pair, in its resource's model unit."""
        self.x = self.b.add_columns(
            np.zeros(self.arrays.n_pairs), self.arrays.pair_max / self.scale
        )

    def add_grids(self) -> None:
        """Stepped resources: x = step·n with n integer."""
        arrays, res, b = self.arrays, self.res, self.b
        self.stepped = stepped = np.nonzero(arrays.step[res] > 0)[0]
        if not len(stepped):
            return
        n_hi = grid_steps(arrays)[stepped]
        # On a fine grid the index is continuous: integrality there costs the MIP dearly
        # and buys next to nothing; `amounts` rounds onto the grid afterwards.
        whole = np.broadcast_to(self.integral_grid, (arrays.n_pairs,))[stepped]
        self.coarse = coarse = (n_hi <= FINE_GRID) | whole
        for integral in (True, False):
            chosen = stepped[coarse == integral]
            if not len(chosen):
                continue
            n_col = b.add_columns(np.zeros(len(chosen)), n_hi[coarse == integral], integral)
            self.grid_cols[chosen] = n_col
            rows = b.add_rows(0.0, 0.0, count=len(chosen))
            b.add_entries(rows, self.x[chosen], 1.0)
            b.add_entries(rows, n_col, -arrays.step[res[chosen]] / self.scale[chosen])

    def add_pieces(self, segs: Segments) -> None:
        """Every pair: x = Σ δ over its pieces; the GMV it adds is Σ slope·δ."""
        if not len(segs.pair):
            return
        arrays, b = self.arrays, self.b
        seg_scale = arrays.resource_scale[self.res[segs.pair]]
        owner = arrays.pair_partner[segs.pair]
        delta = b.add_columns(np.zeros(len(segs.pair)), segs.length / seg_scale)
        self.segs, self.piece_cols = segs, delta
        pairs = np.unique(segs.pair)
        link = b.add_rows(0.0, 0.0, count=len(pairs))
        b.add_entries(link, self.x[pairs], 1.0)
        b.add_entries(link[np.searchsorted(pairs, segs.pair)], delta, -1.0)
        self.gmv_terms.append((owner, delta, segs.slope * seg_scale / arrays.money_scale))
        np.add.at(self.pair_gain, segs.pair, segs.slope * segs.length)
        # An outer piece starting above 0 at 0 (vertical tangent there) adds a constant.
        first = np.nonzero(np.r_[True, segs.pair[1:] != segs.pair[:-1]])[0]
        np.add.at(self.const_gain, owner[first], segs.value0[first])
        np.add.at(self.pair_gain, segs.pair[first], segs.value0[first])
        self._order_convex_pieces(segs, delta, seg_scale)
        self._semi_continuous_pieces(segs, delta, first)

    def _order_convex_pieces(
        self, segs: Segments, delta: NDArray[np.intp], seg_scale: FloatArray
    ) -> None:
        """Convex stretches: piece j+1 (and everything after the stretch) only once piece
        j is full. Concave stretches fill in order by themselves (slopes decrease)."""
        b = self.b
        ordered = np.nonzero(segs.ordered)[0]
        if not len(ordered):
            return
        u = b.add_columns(np.zeros(len(ordered)), 1.0, integer=True)
        full = b.add_rows(0.0, np.inf, count=len(ordered))
        b.add_entries(full, delta[ordered], 1.0)
        b.add_entries(full, u, -segs.length[ordered] / seg_scale[ordered])
        u_of_piece = np.full(len(segs.pair), -1, dtype=np.intp)
        u_of_piece[ordered] = u
        # Each piece is gated by the last ordered piece before it in the same pair.
        marks = np.where(segs.ordered, np.arange(len(segs.pair)), -1)
        previous = np.r_[-1, np.maximum.accumulate(marks)[:-1]]
        same_pair = (previous >= 0) & (segs.pair[np.maximum(previous, 0)] == segs.pair)
        gate = np.where(same_pair, u_of_piece[np.maximum(previous, 0)], -1)
        gated = np.nonzero(gate >= 0)[0]
        cap = b.add_rows(-np.inf, 0.0, count=len(gated))
        b.add_entries(cap, delta[gated], 1.0)
        b.add_entries(cap, gate[gated], -segs.length[gated] / seg_scale[gated])

    def _semi_continuous_pieces(
        self, segs: Segments, delta: NDArray[np.intp], first: NDArray[np.intp]
    ) -> None:
        """All-or-nothing first pieces: y = 0 -> x = 0; y = 1 -> first piece [0, jump] full."""
        arrays, b, scale = self.arrays, self.b, self.scale
        sc_pairs = np.nonzero(segs.jump > 0)[0]
        if not len(sc_pairs):
            return
        y = b.add_columns(np.zeros(len(sc_pairs)), 1.0, integer=True)
        first_of_pair = np.full(arrays.n_pairs, -1, dtype=np.intp)
        first_of_pair[segs.pair[first]] = delta[first]
        upper = b.add_rows(-np.inf, 0.0, count=len(sc_pairs))
        b.add_entries(upper, self.x[sc_pairs], 1.0)
        b.add_entries(upper, y, -arrays.pair_max[sc_pairs] / scale[sc_pairs])
        lower = b.add_rows(0.0, np.inf, count=len(sc_pairs))
        b.add_entries(lower, first_of_pair[sc_pairs], 1.0)
        b.add_entries(lower, y, -segs.jump[sc_pairs] / scale[sc_pairs])

    def add_packages(self) -> None:
        """v: package options, at most one per partner (exactly one under one_package)."""
        arrays, b = self.arrays, self.b
        if arrays.packages:
            self.v = b.add_columns(np.zeros(len(arrays.packages)), 1.0, integer=True)
            owners = np.array([o.partner for o in arrays.packages], dtype=np.intp)
            partners_with = np.unique(owners)
            rows = b.add_rows(np.where(arrays.one_package[partners_with], 1.0, 0.0), 1.0)
            b.add_entries(rows[np.searchsorted(partners_with, owners)], self.v, 1.0)
            uplift = np.array([o.uplift for o in arrays.packages])
            self.gmv_terms.append((owners, self.v, uplift / arrays.money_scale))
        # A partner bound to take a package but left with none it may take (eligibility
        # removed them all): an empty row 1 <= 0 makes the model infeasible, as it is.
        stranded = np.setdiff1d(
            np.nonzero(arrays.one_package)[0], [o.partner for o in arrays.packages]
        )
        if len(stranded):
            b.add_rows(1.0, 1.0, count=len(stranded))

    def add_budgets(self) -> None:
        """Σ x (+ package amounts) within each budget, pins deducted; cost terms."""
        arrays, b, res, v = self.arrays, self.b, self.res, self.v
        pinned_total = arrays.pinned.sum(axis=0)
        package_amounts = self.package_amounts
        counts_cost = (
            not self.stage.minimise_shortfall and self.request.objective is Objective.MIN_COST
        )
        for r in range(arrays.n_resources):
            rs = arrays.resource_scale[r]
            in_r = np.nonzero(res == r)[0]
            uses = (
                np.nonzero(package_amounts[:, r] > 0)[0]
                if len(package_amounts)
                else np.zeros(0, int)
            )
            if np.isfinite(arrays.budget[r]):
                row = b.add_rows(-np.inf, (arrays.budget[r] - pinned_total[r]) / rs, count=1)
                self.budget_rows[r] = int(row[0])
                b.add_entries(np.full(len(in_r), row[0]), self.x[in_r], 1.0)
                b.add_entries(np.full(len(uses), row[0]), v[uses], package_amounts[uses, r] / rs)
            if counts_cost:
                unit = arrays.unit_cost[r] / arrays.money_scale
                self.cost_terms.append((self.x[in_r], np.full(len(in_r), unit * rs)))
                self.cost_terms.append((v[uses], unit * package_amounts[uses, r]))

    def add_group_budgets(self) -> None:
        arrays, b, request = self.arrays, self.b, self.request
        for rule in request.constraints:
            if not isinstance(rule, GroupBudget):
                continue
            r = next(k for k, res_ in enumerate(request.resources) if res_.name == rule.resource)
            rs = arrays.resource_scale[r]
            members = np.array([rule.where.matches(p) for p in request.partners], dtype=bool)
            pinned_in = arrays.pinned[members, r].sum()
            budget = float(request.resources[r].budget or 0.0)
            row = b.add_rows(
                (rule.min_share * budget - pinned_in) / rs,
                (rule.max_share * budget - pinned_in) / rs,
                count=1,
            )
            in_r = np.nonzero((self.res == r) & members[arrays.pair_partner])[0]
            b.add_entries(np.full(len(in_r), row[0]), self.x[in_r], 1.0)
            if len(self.package_amounts):
                uses = np.array(
                    [
                        k
                        for k, o in enumerate(arrays.packages)
                        if members[o.partner] and o.amounts[r] > 0
                    ],
                    dtype=np.intp,
                )
                b.add_entries(
                    np.full(len(uses), row[0]), self.v[uses], self.package_amounts[uses, r] / rs
                )

    def _gmv_terms_by_partner(self) -> tuple[NDArray[np.intp], FloatArray, NDArray[np.intp]]:
        """The GMV columns and coefficients sorted by partner, with each partner's range."""
        terms = self.gmv_terms
        owner = np.concatenate([g[0] for g in terms]) if terms else np.zeros(0, int)
        col = np.concatenate([g[1] for g in terms]) if terms else np.zeros(0, int)
        val = np.concatenate([g[2] for g in terms]) if terms else np.zeros(0)
        order = np.argsort(owner, kind="stable")
        bounds_of = np.searchsorted(owner[order], np.arange(self.arrays.n_partners + 1))
        return col[order], val[order], bounds_of

    def add_tier_indicators(self) -> None:
        """z: partner reaches tier, only where a partner can move across a threshold."""
        arrays, b, request = self.arrays, self.b, self.request
        tier_needed = request.objective is not Objective.MAX_GMV or bool(self.stage.exclude_sets)
        needed_tiers = (
            set(range(len(arrays.thresholds)))
            if tier_needed
            else {arrays.tier_names.index(rule.tier) for rule in self._group_counts()}
        )
        base = arrays.baseline + self.const_gain
        reach = arrays.baseline + reachable_partners(arrays, self.pair_gain)
        gmv_col, gmv_val, bounds_of = self._gmv_terms_by_partner()
        for t in sorted(needed_tiers):
            threshold = arrays.thresholds[t]
            self.base_counts[t] = int(np.count_nonzero(base >= threshold))
            margin = TIER_MARGIN_ABS * arrays.money_scale + TIER_MARGIN_REL * threshold
            margin = margin if self.tier_margin else 0.0
            may = (base < threshold) & (reach >= threshold + margin)
            must = np.zeros(arrays.n_partners, dtype=bool)
            if self.tier_levels is not None:
                lowest, highest = self.tier_levels
                may &= highest > t
                must = lowest > t
            cand = np.nonzero(may)[0]
            if not len(cand):
                continue
            z = b.add_columns(must[cand].astype(float), 1.0, integer=True)
            rows = b.add_rows(np.zeros(len(cand)), np.inf)
            lengths = bounds_of[cand + 1] - bounds_of[cand]
            take = np.concatenate([np.arange(bounds_of[i], bounds_of[i + 1]) for i in cand])
            b.add_entries(np.repeat(rows, lengths), gmv_col[take], gmv_val[take])
            need = threshold + margin - base[cand]
            b.add_entries(rows, z, -need / arrays.money_scale)
            for k, i in enumerate(cand):
                self.z_cols[(int(i), t)] = int(z[k])
                self.claim_need[(int(i), t)] = float(need[k])

    def add_tier_cuts(self, prices: FloatArray) -> None:
        """Rows pricing each tier claim whole in the LP relaxation (`optimizer.tier_cuts`);
        none with packages, whose uplifts they leave out."""
        arrays, segs, b = self.arrays, self.segs, self.b
        if segs is None or arrays.packages or not self.z_cols:
            return
        claims = list(self.z_cols)
        partner = np.array([i for i, _ in claims], dtype=np.intp)
        z = np.array([self.z_cols[c] for c in claims], dtype=np.intp)
        cuts = tier_cuts(
            segs, arrays.pair_partner, prices[self.res], partner,
            np.array([t for _, t in claims], dtype=np.intp),
            np.array([self.claim_need[c] for c in claims]),
        )  # fmt: skip
        money = arrays.money_scale
        x_price = prices[self.res] * self.scale / money  # per model unit of each pair's x
        # Value rows, one per claiming partner: gain − p·x + Σ a·z ≤ V(none).
        owners, first = np.unique(partner, return_index=True)
        row_of = np.full(arrays.n_partners, -1, dtype=np.intp)
        row_of[owners] = b.add_rows(-np.inf, cuts.no_tier_value[first] / money)
        # The gain: the partner's GMV terms, as in its tier rows (no packages here).
        gmv_col, gmv_val, bounds_of = self._gmv_terms_by_partner()
        take = ranges(bounds_of[owners], bounds_of[owners + 1])
        b.add_entries(
            np.repeat(row_of[owners], np.diff(bounds_of)[owners]), gmv_col[take], gmv_val[take]
        )
        pair_row = row_of[arrays.pair_partner]
        paired = pair_row >= 0
        b.add_entries(pair_row[paired], self.x[paired], -x_price[paired])
        b.add_entries(row_of[partner], z, cuts.value_coef / money)
        # Cover rows, one per claim with a positive price to reach: p·x ≥ c·z.
        covered = np.flatnonzero(cuts.cover > 0)
        rows = b.add_rows(0.0, np.inf, count=len(covered))
        by_partner = np.argsort(arrays.pair_partner, kind="stable")
        bounds = np.searchsorted(arrays.pair_partner[by_partner], np.arange(arrays.n_partners + 1))
        lo, hi = bounds[partner[covered]], bounds[partner[covered] + 1]
        pairs = by_partner[ranges(lo, hi)]
        b.add_entries(np.repeat(rows, hi - lo), self.x[pairs], x_price[pairs])
        b.add_entries(rows, z[covered], -cuts.cover[covered] / money)

    def reserve_rounding_steps(self) -> None:
        """Rounding a fine grid can cost a tier partner one step to keep its tier: the
        inner model keeps that many steps of each such budget in reserve (at most 0.1%)."""
        arrays = self.arrays
        if not self.tier_margin or not len(self.stepped):
            return
        claimants = len({i for i, _ in self.z_cols})
        fine = self.stepped[~self.coarse]
        for r, budget_row in self.budget_rows.items():
            if np.any(self.res[fine] == r):
                steps = min(claimants, int(np.ceil(1e-3 * arrays.budget[r] / arrays.step[r])))
                self.b.tighten_row_upper(
                    budget_row, steps * arrays.step[r] / arrays.resource_scale[r]
                )

    def add_cumulative_tiers(self) -> None:
        """Reaching a higher tier implies the lower one."""
        z_cols = self.z_cols
        pairs_up = [
            (z_cols[(i, t)], z_cols[(i, t - 1)]) for (i, t) in z_cols if (i, t - 1) in z_cols
        ]
        if pairs_up:
            rows = self.b.add_rows(-np.inf, 0.0, count=len(pairs_up))
            self.b.add_entries(rows, [p[0] for p in pairs_up], 1.0)
            self.b.add_entries(rows, [p[1] for p in pairs_up], -1.0)

    def add_shortfalls(self) -> None:
        """s: each tier's shortfall, integral (targets and indicators are counts, which
        keeps CP-SAT applicable)."""
        arrays, b = self.arrays, self.b
        tier_needed = self.request.objective is not Objective.MAX_GMV or bool(
            self.stage.exclude_sets
        )
        if not tier_needed or not len(arrays.thresholds):
            return
        self.s = b.add_columns(
            np.zeros(len(arrays.thresholds)), np.maximum(arrays.targets, 0), integer=True
        )
        for t in range(len(arrays.thresholds)):
            zs = [col for (i, tt), col in self.z_cols.items() if tt == t]
            row = b.add_rows(float(arrays.targets[t] - self.base_counts[t]), np.inf, count=1)
            b.add_entries(np.full(len(zs), row[0]), zs, 1.0)
            b.add_entries(row, self.s[t : t + 1], 1.0)

    def _group_counts(self) -> list[GroupCount]:
        return [rule for rule in self.request.constraints if isinstance(rule, GroupCount)]

    def add_group_counts(self) -> None:
        arrays, request = self.arrays, self.request
        base = arrays.baseline + self.const_gain
        for rule in self._group_counts():
            t = arrays.tier_names.index(rule.tier)
            members = np.array([rule.where.matches(p) for p in request.partners], dtype=bool)
            already = int(np.count_nonzero(members & (base >= arrays.thresholds[t])))
            zs = [col for (i, tt), col in self.z_cols.items() if tt == t and members[i]]
            row = self.b.add_rows(float(rule.min - already), np.inf, count=1)
            self.b.add_entries(np.full(len(zs), row[0]), zs, 1.0)

    def add_no_good_cuts(self) -> None:
        """Alternatives: at least one tier achiever outside each excluded set."""
        for excluded in self.stage.exclude_sets:
            fresh = [col for key, col in self.z_cols.items() if key not in excluded]
            row = self.b.add_rows(1.0, np.inf, count=1)
            self.b.add_entries(np.full(len(fresh), row[0]), fresh, 1.0)

    def add_shortfall_cap(self) -> None:
        if self.stage.shortfall_cap is not None and len(self.s):
            row = self.b.add_rows(-np.inf, self.stage.shortfall_cap + 1e-6, count=1)
            self.b.add_entries(np.full(len(self.s), row[0]), self.s, self.arrays.weights)

    def formulation(self) -> Formulation:
        """The stage's objective on the model built so far."""
        arrays, request = self.arrays, self.request
        cost = np.zeros(self.b.n_cols)
        offset = 0.0
        objective_scale = arrays.money_scale
        if self.stage.minimise_shortfall:
            cost[self.s] = arrays.weights
            objective_scale = 1.0
        elif request.objective is Objective.MIN_COST:
            for cols, vals in self.cost_terms:
                np.add.at(cost, cols, vals)
            offset = float((arrays.pinned * arrays.unit_cost).sum()) / arrays.money_scale
        else:
            gmv_col, gmv_val, _ = self._gmv_terms_by_partner()
            np.add.at(cost, gmv_col, -gmv_val)
            base = arrays.baseline + self.const_gain
            offset = -float(base.sum()) / arrays.money_scale
            objective_scale = -arrays.money_scale  # minimises −GMV
        model = self.b.build(cost, offset)
        return Formulation(
            model, self.x, self.v, self.z_cols, objective_scale, self.piece_cols, self.grid_cols
        )
