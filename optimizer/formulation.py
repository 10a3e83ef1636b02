"""The allocation MILP in matrix form, for one approximation (inner or outer) of the curves.

Columns: x (amount per pair), n (grid index of a stepped amount), δ (fill of each piece of
the approximation), u (piece on a convex stretch is full), y (semi-continuous pair is on),
v (package option taken), z (partner reaches tier), s (tier shortfall). Money is in the
request's money scale (millions of CNY at programme scale); each resource in its own
power-of-ten unit, so coefficients stay within a few orders of magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.request import GroupBudget, GroupCount, Objective
from optimizer.arrays import ProblemArrays
from optimizer.engines.base import MilpModel
from optimizer.matrix import MatrixBuilder
from optimizer.pwl import Segments

# Tiers are claimed with this much headroom (CNY, and relative) so that rounding a
# solver's amounts back onto grids and bounds never loses a tier under the exact curves.
TIER_MARGIN_ABS = 1e-6  # in model money units (1 CNY when money is in millions)
TIER_MARGIN_REL = 1e-9
FINE_GRID = 64  # a pair with more grid steps than this has a continuous grid index


@dataclass
class StageSpec:
    minimise_shortfall: bool  # stage 1; else stage 2 (GMV or cost)
    shortfall_cap: float | None = None  # stage 2: weighted shortfall held at stage 1's value
    exclude_sets: list[set[tuple[int, int]]] = field(default_factory=list)  # no-good cuts


@dataclass
class Formulation:
    model: MilpModel
    x_cols: NDArray[np.intp]
    v_cols: NDArray[np.intp]
    z_cols: dict[tuple[int, int], int]
    objective_scale: float  # model objective × this = request units (CNY)

    def claims(self, arrays: ProblemArrays, solution: FloatArray) -> FloatArray:
        """Per partner: the highest tier threshold the model counts it towards (0: none)."""
        claimed = np.zeros(arrays.n_partners)
        for (i, t), col in self.z_cols.items():
            if solution[col] > 0.5:
                claimed[i] = max(claimed[i], arrays.thresholds[t])
        return claimed

    def raw_amounts(self, arrays: ProblemArrays, solution: FloatArray) -> FloatArray:
        """Per pair amounts in request units as the solver left them (within bounds)."""
        scale = arrays.resource_scale[arrays.pair_resource]
        return np.clip(solution[self.x_cols] * scale, 0.0, arrays.pair_max)

    def amounts(self, arrays: ProblemArrays, solution: FloatArray) -> FloatArray:
        """Per pair amounts in request units, on their grids and within bounds.

        Fine grids are continuous in the model and round to the nearest step here; the
        caller restores any tier that rounding cost (`MilpStrategy.candidate`).
        """
        raw = self.raw_amounts(arrays, solution)
        step = arrays.step[arrays.pair_resource]
        on_grid = step > 0
        ratio = raw / np.where(on_grid, step, 1.0)
        snapped = np.where(on_grid, np.minimum(np.round(ratio) * step, arrays.pair_max), raw)
        # Semi-continuous: anything a hair above 0 but under the minimum is solver noise.
        below_min = (snapped > 0) & (snapped < arrays.pair_min)
        snapped[below_min & (snapped < 0.5 * arrays.pair_min)] = 0.0
        snapped[below_min & (snapped >= 0.5 * arrays.pair_min)] = arrays.pair_min[
            below_min & (snapped >= 0.5 * arrays.pair_min)
        ]
        snapped[snapped < 1e-9 * np.maximum(arrays.pair_max, 1.0)] = 0.0
        return snapped

    def package_choice(self, arrays: ProblemArrays, solution: FloatArray) -> NDArray[np.intp]:
        choice = np.full(arrays.n_partners, -1, dtype=np.intp)
        for option, col in zip(arrays.packages, self.v_cols, strict=True):
            if solution[col] > 0.5:
                choice[option.partner] = option.index
        return choice


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
    integral_grid: bool = False,
) -> Formulation:
    """`tier_margin`: claim tiers with headroom (inner model); off for the outer model,
    which must stay a relaxation for its bound to be valid. `integral_grid`: keep every
    grid index integer, fine grids included (the last resort for a tight gap)."""
    request = arrays.request
    b = MatrixBuilder()
    n_pairs = arrays.n_pairs
    res = arrays.pair_resource
    scale = arrays.resource_scale[res]
    cost_terms: list[tuple[NDArray[np.intp], FloatArray]] = []
    gmv_rows_cols: list[tuple[NDArray[np.intp], NDArray[np.intp], FloatArray]] = []
    # gmv contributions are collected as (partner, column, coefficient in millions)

    # x: amount per pair
    x = b.add_columns(np.zeros(n_pairs), arrays.pair_max / scale)

    # Stepped resources: x = step·n with n integer.
    stepped = np.nonzero(arrays.step[res] > 0)[0]
    if len(stepped):
        n_hi = np.floor(arrays.pair_max[stepped] / arrays.step[res[stepped]] + 1e-9)
        # On a fine grid the index is continuous: integrality there costs the MIP dearly
        # and buys next to nothing; `amounts` rounds onto the grid afterwards.
        coarse = (n_hi <= FINE_GRID) | integral_grid
        for integral in (True, False):
            chosen = stepped[coarse == integral]
            if not len(chosen):
                continue
            n_col = b.add_columns(np.zeros(len(chosen)), n_hi[coarse == integral], integral)
            rows = b.add_rows(0.0, 0.0, count=len(chosen))
            b.add_entries(rows, x[chosen], 1.0)
            b.add_entries(rows, n_col, -arrays.step[res[chosen]] / scale[chosen])

    seg_scale = arrays.resource_scale[res[segs.pair]]
    owner = arrays.pair_partner[segs.pair]
    pair_gain = np.zeros(n_pairs)
    const_gain = np.zeros(arrays.n_partners)

    # Every pair: x = Σ δ over its pieces; the GMV it adds is Σ slope·δ.
    if len(segs.pair):
        delta = b.add_columns(np.zeros(len(segs.pair)), segs.length / seg_scale)
        pairs = np.unique(segs.pair)
        link = b.add_rows(0.0, 0.0, count=len(pairs))
        b.add_entries(link, x[pairs], 1.0)
        b.add_entries(link[np.searchsorted(pairs, segs.pair)], delta, -1.0)
        gmv_rows_cols.append((owner, delta, segs.slope * seg_scale / arrays.money_scale))
        np.add.at(pair_gain, segs.pair, segs.slope * segs.length)
        # An outer piece starting above 0 at 0 (vertical tangent there) adds a constant.
        first = np.nonzero(np.r_[True, segs.pair[1:] != segs.pair[:-1]])[0]
        np.add.at(const_gain, owner[first], segs.value0[first])
        np.add.at(pair_gain, segs.pair[first], segs.value0[first])

        # Convex stretches: piece j+1 (and everything after the stretch) only once piece
        # j is full. Concave stretches fill in order by themselves (slopes decrease).
        ordered = np.nonzero(segs.ordered)[0]
        if len(ordered):
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

        # All-or-nothing first pieces: y = 0 -> x = 0; y = 1 -> first piece [0, jump] full.
        sc_pairs = np.nonzero(segs.jump > 0)[0]
        if len(sc_pairs):
            y = b.add_columns(np.zeros(len(sc_pairs)), 1.0, integer=True)
            first_of_pair = np.full(n_pairs, -1, dtype=np.intp)
            first_of_pair[segs.pair[first]] = delta[first]
            upper = b.add_rows(-np.inf, 0.0, count=len(sc_pairs))
            b.add_entries(upper, x[sc_pairs], 1.0)
            b.add_entries(upper, y, -arrays.pair_max[sc_pairs] / scale[sc_pairs])
            lower = b.add_rows(0.0, np.inf, count=len(sc_pairs))
            b.add_entries(lower, first_of_pair[sc_pairs], 1.0)
            b.add_entries(lower, y, -segs.jump[sc_pairs] / scale[sc_pairs])

    # Packages: at most one per partner (exactly one under one_package).
    v = np.zeros(0, dtype=np.intp)
    if arrays.packages:
        v = b.add_columns(np.zeros(len(arrays.packages)), 1.0, integer=True)
        owners = np.array([o.partner for o in arrays.packages], dtype=np.intp)
        partners_with = np.unique(owners)
        rows = b.add_rows(np.where(arrays.one_package[partners_with], 1.0, 0.0), 1.0)
        b.add_entries(rows[np.searchsorted(partners_with, owners)], v, 1.0)
        uplift = np.array([o.uplift for o in arrays.packages])
        gmv_rows_cols.append((owners, v, uplift / arrays.money_scale))
    # A partner bound to take a package but left with none it may take (eligibility
    # removed them all): an empty row 1 <= 0 makes the model infeasible, as it is.
    stranded = np.setdiff1d(np.nonzero(arrays.one_package)[0], [o.partner for o in arrays.packages])
    if len(stranded):
        b.add_rows(1.0, 1.0, count=len(stranded))

    package_amounts = (
        np.array([o.amounts for o in arrays.packages])
        if arrays.packages
        else np.zeros((0, arrays.n_resources))
    )

    # Budgets and group budgets: Σ x (+ package amounts) within limits, pins deducted.
    pinned_total = arrays.pinned.sum(axis=0)
    budget_rows: dict[int, int] = {}
    for r in range(arrays.n_resources):
        rs = arrays.resource_scale[r]
        in_r = np.nonzero(res == r)[0]
        uses = (
            np.nonzero(package_amounts[:, r] > 0)[0] if len(package_amounts) else np.zeros(0, int)
        )
        if np.isfinite(arrays.budget[r]):
            row = b.add_rows(-np.inf, (arrays.budget[r] - pinned_total[r]) / rs, count=1)
            budget_rows[r] = int(row[0])
            b.add_entries(np.full(len(in_r), row[0]), x[in_r], 1.0)
            b.add_entries(np.full(len(uses), row[0]), v[uses], package_amounts[uses, r] / rs)
        if stage.minimise_shortfall is False and request.objective is Objective.MIN_COST:
            cost_terms.append(
                (x[in_r], np.full(len(in_r), arrays.unit_cost[r] * rs / arrays.money_scale))
            )
            cost_terms.append(
                (v[uses], arrays.unit_cost[r] * package_amounts[uses, r] / arrays.money_scale)
            )

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
        in_r = np.nonzero((res == r) & members[arrays.pair_partner])[0]
        b.add_entries(np.full(len(in_r), row[0]), x[in_r], 1.0)
        if len(package_amounts):
            uses = np.array(
                [
                    k
                    for k, o in enumerate(arrays.packages)
                    if members[o.partner] and o.amounts[r] > 0
                ],
                dtype=np.intp,
            )
            b.add_entries(np.full(len(uses), row[0]), v[uses], package_amounts[uses, r] / rs)

    # Tier indicators, only where a partner can move across a threshold.
    tier_needed = request.objective is not Objective.MAX_GMV or bool(stage.exclude_sets)
    group_rules = [rule for rule in request.constraints if isinstance(rule, GroupCount)]
    needed_tiers = (
        set(range(len(arrays.thresholds)))
        if tier_needed
        else {arrays.tier_names.index(rule.tier) for rule in group_rules}
    )
    base = arrays.baseline + const_gain
    reach = arrays.baseline + reachable_partners(arrays, pair_gain)
    z_cols: dict[tuple[int, int], int] = {}
    gmv_owner = np.concatenate([g[0] for g in gmv_rows_cols]) if gmv_rows_cols else np.zeros(0, int)
    gmv_col = np.concatenate([g[1] for g in gmv_rows_cols]) if gmv_rows_cols else np.zeros(0, int)
    gmv_val = np.concatenate([g[2] for g in gmv_rows_cols]) if gmv_rows_cols else np.zeros(0)
    order = np.argsort(gmv_owner, kind="stable")
    gmv_owner, gmv_col, gmv_val = gmv_owner[order], gmv_col[order], gmv_val[order]
    bounds_of = np.searchsorted(gmv_owner, np.arange(arrays.n_partners + 1))
    base_counts = np.zeros(len(arrays.thresholds), dtype=np.int_)
    for t in sorted(needed_tiers):
        threshold = arrays.thresholds[t]
        base_counts[t] = int(np.count_nonzero(base >= threshold))
        margin = TIER_MARGIN_ABS * arrays.money_scale + TIER_MARGIN_REL * threshold
        margin = margin if tier_margin else 0.0
        cand = np.nonzero((base < threshold) & (reach >= threshold + margin))[0]
        if not len(cand):
            continue
        z = b.add_columns(np.zeros(len(cand)), 1.0, integer=True)
        rows = b.add_rows(np.zeros(len(cand)), np.inf)
        lengths = bounds_of[cand + 1] - bounds_of[cand]
        take = np.concatenate([np.arange(bounds_of[i], bounds_of[i + 1]) for i in cand])
        b.add_entries(np.repeat(rows, lengths), gmv_col[take], gmv_val[take])
        b.add_entries(rows, z, -(threshold + margin - base[cand]) / arrays.money_scale)
        for k, i in enumerate(cand):
            z_cols[(int(i), t)] = int(z[k])

    # Rounding a fine grid can cost a tier partner one step to keep its tier: the inner
    # model keeps that many steps of each such budget in reserve (at most 0.1% of it).
    if tier_margin and not integral_grid and len(stepped):
        claimants = len({i for i, _ in z_cols})
        for r, budget_row in budget_rows.items():
            if np.any(~coarse & (res[stepped] == r)):
                steps = min(claimants, int(np.ceil(1e-3 * arrays.budget[r] / arrays.step[r])))
                b.tighten_row_upper(budget_row, steps * arrays.step[r] / arrays.resource_scale[r])

    # Cumulative tiers: reaching a higher tier implies the lower one.
    pairs_up = [(z_cols[(i, t)], z_cols[(i, t - 1)]) for (i, t) in z_cols if (i, t - 1) in z_cols]
    if pairs_up:
        rows = b.add_rows(-np.inf, 0.0, count=len(pairs_up))
        b.add_entries(rows, [p[0] for p in pairs_up], 1.0)
        b.add_entries(rows, [p[1] for p in pairs_up], -1.0)

    s = np.zeros(0, dtype=np.intp)
    if tier_needed and len(arrays.thresholds):
        # Integral: targets and indicators are counts (keeps CP-SAT applicable).
        s = b.add_columns(
            np.zeros(len(arrays.thresholds)), np.maximum(arrays.targets, 0), integer=True
        )
        for t in range(len(arrays.thresholds)):
            zs = [col for (i, tt), col in z_cols.items() if tt == t]
            row = b.add_rows(float(arrays.targets[t] - base_counts[t]), np.inf, count=1)
            b.add_entries(np.full(len(zs), row[0]), zs, 1.0)
            b.add_entries(row, s[t : t + 1], 1.0)

    for rule in group_rules:
        t = arrays.tier_names.index(rule.tier)
        members = np.array([rule.where.matches(p) for p in request.partners], dtype=bool)
        already = int(np.count_nonzero(members & (base >= arrays.thresholds[t])))
        zs = [col for (i, tt), col in z_cols.items() if tt == t and members[i]]
        row = b.add_rows(float(rule.min - already), np.inf, count=1)
        b.add_entries(np.full(len(zs), row[0]), zs, 1.0)

    for excluded in stage.exclude_sets:
        fresh = [col for key, col in z_cols.items() if key not in excluded]
        row = b.add_rows(1.0, np.inf, count=1)
        b.add_entries(np.full(len(fresh), row[0]), fresh, 1.0)

    if stage.shortfall_cap is not None and len(s):
        row = b.add_rows(-np.inf, stage.shortfall_cap + 1e-6, count=1)
        b.add_entries(np.full(len(s), row[0]), s, arrays.weights)

    cost = np.zeros(b.n_cols)
    offset = 0.0
    objective_scale = arrays.money_scale
    if stage.minimise_shortfall:
        cost[s] = arrays.weights
        objective_scale = 1.0
    elif request.objective is Objective.MIN_COST:
        for cols, vals in cost_terms:
            np.add.at(cost, cols, vals)
        offset = float((arrays.pinned * arrays.unit_cost).sum()) / arrays.money_scale
    else:
        np.add.at(cost, gmv_col, -gmv_val)
        offset = -float(base.sum()) / arrays.money_scale
    model = b.build(cost, offset)
    return Formulation(model, x, v, z_cols, objective_scale)
