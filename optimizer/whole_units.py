"""Planner-ready amounts: every variable amount a whole number of units.

A plan is handed to people who pay out yuan and book impressions, so amounts are
multiples of the resource's `step`, else of 1 (one CNY, one impression). Engines return
continuous amounts; this pass moves them onto that grid without breaking what the
engine's plan promised:

1. round every variable amount down to the grid (amounts already on it within float
   noise snap onto it exactly), or up to the grid's first point at or above a
   semi-continuous minimum (down to 0 when no grid point fits the bounds);
2. give units back to members of a `group_budget` the rounding left below its minimum
   share;
3. give units back to every partner that fell under the tier it reached before
   rounding, one unit at a time where it buys most GMV, within the ceilings of its
   original amounts where that is enough (curves never fall; it is not when an amount
   sat at a max off the grid), else up to its maxes, and taking a unit from a partner
   no tier depends on when the budget has none left;
4. trim any overspend the minimums' round-ups caused, from partners no tier depends on
   first;
5. unless the objective is `min_cost`, spend the whole units rounding left unspent where
   they buy most GMV (what the engine would have done with them).

Pins keep their exact amounts (a pin overrides steps by intent) and package amounts are
the planner's own bundles; neither is touched. `optimizer.solve` re-checks the result
exactly and keeps the engine's amounts only if that check fails.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from models.curves import CurveColumn, FloatArray
from models.plan import projected_gmv
from models.request import Objective
from optimizer.arrays import ProblemArrays
from optimizer.rounding import GroupLimits, spent, unit_slack

_SNAP = 1e-9  # relative: an amount this close to a grid point is on it (float noise)
_ON_THRESHOLD = 1e-12  # relative: a GMV this close below a tier threshold is on it


def unit_sizes(arrays: ProblemArrays) -> FloatArray:
    """Per resource: its step, else 1."""
    return np.where(arrays.step > 0, arrays.step, 1.0)


def to_grid(amounts: FloatArray, unit: FloatArray) -> FloatArray:
    """Round down onto the grid, snapping amounts within float noise of a point onto it."""
    units = amounts / unit
    nearest = np.rint(units)
    on_grid = np.abs(units - nearest) <= _SNAP * np.maximum(np.abs(units), 1.0)
    return np.where(on_grid, nearest, np.floor(units)) * unit


class _Rounder:
    def __init__(
        self,
        arrays: ProblemArrays,
        amounts: FloatArray,
        choice: NDArray[np.intp] | None,
        columns: list[CurveColumn],
    ) -> None:
        self.arrays = arrays
        self.choice = choice
        self.columns = columns
        self.unit = unit_sizes(arrays)
        self.original = amounts
        request = arrays.request
        gmv = projected_gmv(request, amounts, choice, columns)
        # The threshold of the tier each partner reached before rounding (0: none); one a
        # float's rounding short counts as reached, and rounding lifts it over (an exact
        # repair left a group_count member at 99,999,999.99999999 of ¥100M, and whole units
        # then took it to ...99.95: the max_gmv plan missed the count its MILP met).
        padded = np.concatenate(([0.0], arrays.thresholds))
        reached = np.searchsorted(arrays.thresholds, gmv * (1 + _ON_THRESHOLD), side="right")
        self.claimed = padded[reached]
        # Pairs grouped by partner and by resource, as index arrays into the pair lists.
        self._by_partner = np.argsort(arrays.pair_partner, kind="stable")
        self._starts = np.searchsorted(
            arrays.pair_partner[self._by_partner], np.arange(len(gmv) + 1)
        )
        self.by_resource = [
            np.nonzero(arrays.pair_resource == r)[0] for r in range(arrays.n_resources)
        ]
        self.amounts = amounts.copy()
        self._round()
        self.total = spent(arrays, self.amounts, choice)
        self.groups = GroupLimits(arrays, self.amounts, choice, self.unit)
        self._queues: dict[int, list[tuple[bool, float, int]]] = {}
        self._dry: set[int] = set()
        self.gmv = projected_gmv(request, self.amounts, choice, columns)

    # -- moves ---------------------------------------------------------------------------

    def _round(self) -> None:
        a = self.arrays
        if not a.n_pairs:
            return
        i, r = a.pair_partner, a.pair_resource
        unit = self.unit[r]
        current = self.original[i, r]
        down = to_grid(current, unit)
        # A semi-continuous minimum: the first grid point at or above it, if the max allows.
        low = np.ceil(a.pair_min / unit - _SNAP) * unit
        below = (down > 0) & (down < a.pair_min - unit_slack(a.pair_min, unit))
        fits = low <= a.pair_max + unit_slack(a.pair_max, unit)
        down = np.where(below, np.where(fits, low, 0.0), down)
        self.amounts[i, r] = np.maximum(down, 0.0)

    def ceiling(self, k: int) -> float:
        """How far units may be given back to pair k: its original amount's grid ceiling
        (and its max)."""
        a = self.arrays
        i, r = int(a.pair_partner[k]), int(a.pair_resource[k])
        unit = float(self.unit[r])
        top = math.ceil(float(self.original[i, r]) / unit - _SNAP) * unit
        return min(top, self.top(k))

    def top(self, k: int) -> float:
        """Pair k's max, on the grid."""
        unit = float(self.unit[int(self.arrays.pair_resource[k])])
        return math.floor(float(self.arrays.pair_max[k]) / unit + _SNAP) * unit

    def gain(self, k: int, change: float) -> float:
        a = self.arrays
        i, r = int(a.pair_partner[k]), int(a.pair_resource[k])
        curve = a.pair_curve[k]
        x = float(self.amounts[i, r])
        return float(curve.value(x + change) - curve.value(x))

    def can_add(
        self, k: int, limit: float, *, budget: bool = True, groups: bool = True
    ) -> float | None:
        """The smallest whole addition to pair k (one unit, or up to its minimum from 0)
        within `limit` and, unless told otherwise, the group shares and the budget."""
        a = self.arrays
        i, r = int(a.pair_partner[k]), int(a.pair_resource[k])
        unit = float(self.unit[r])
        x = float(self.amounts[i, r])
        change = unit
        if x <= 0 and a.pair_min[k] > 0:
            change = math.ceil(float(a.pair_min[k]) / unit - _SNAP) * unit
        if x + change > limit + unit_slack(limit, unit):
            return None
        if budget and self.total[r] + change > a.budget[r] + unit_slack(a.budget[r], unit):
            return None
        return change if not groups or self.groups.allows(i, r, change) else None

    def move(self, k: int, change: float) -> None:
        a = self.arrays
        i, r = int(a.pair_partner[k]), int(a.pair_resource[k])
        self.gmv[i] += self.gain(k, change)
        self.amounts[i, r] = max(float(self.amounts[i, r]) + change, 0.0)
        self.total[r] += change
        self.groups.apply(i, r, change)

    def partner_pairs(self, i: int) -> NDArray[np.intp]:
        return self._by_partner[self._starts[i] : self._starts[i + 1]]

    def pairs_of(self, r: int) -> NDArray[np.intp]:
        return self.by_resource[r]

    def donate(self, r: int, needed: float, skip: int, *, protect: bool = True) -> bool:
        """Free `needed` of resource r's budget by taking units from other partners, those
        no tier depends on first and, when `protect`, never dropping anyone below its tier."""
        budget = float(self.arrays.budget[r])
        while self.total[r] + needed > budget + unit_slack(budget, float(self.unit[r])):
            if protect and r in self._dry:
                return False
            donor = (self._queued_donor(r, skip) if protect else None) or self._donor(
                r, skip, protect
            )
            if donor is None:
                if protect:
                    # Nobody can spare a unit without losing a tier, and the repairs that
                    # follow only lift partners to their thresholds: that stays so.
                    self._dry.add(r)
                return False
            self.move(*donor)
            if protect:
                self._requeue(r, donor[0])
        return True

    def make_room(self, i: int, r: int, change: float) -> bool:
        """Free `change` under every group_budget cap that blocks adding it to partner i's
        resource r, taking units from the capped group's other members, those no tier
        depends on first and never dropping anyone below its tier. (Rounding down frees
        room under a cap, but giving tiers back can use it all: 18 tiers of a generated
        5,000-partner programme were lost that way.)"""
        for n, (rule_r, members, _, high) in enumerate(self.groups.rules):
            if rule_r != r or not members[i]:
                continue
            slack = self.groups.slack(high, r)
            while self.groups.totals[n] + change > high + slack:
                donor = self._donor(r, skip=i, protect=True, among=members)
                if donor is None:
                    return False
                self.move(*donor)
        return True

    def _removal(self, k: int) -> tuple[float, float] | None:
        """What pair k would give back (one unit, or all of it at its minimum) and the GMV
        that costs; None when it holds nothing."""
        a = self.arrays
        i, r = int(a.pair_partner[k]), int(a.pair_resource[k])
        unit, x = float(self.unit[r]), float(self.amounts[i, r])
        if x <= 0:
            return None
        minimum = float(a.pair_min[k])
        change = min(unit if x - unit >= minimum - unit_slack(minimum, unit) else x, x)
        return change, -self.gain(k, -change)

    def _requeue(self, r: int, k: int) -> None:
        removal = self._removal(k)
        if removal is not None:
            tier = bool(self.claimed[self.arrays.pair_partner[k]] > 0)
            heapq.heappush(self._queues[r], (tier, removal[1], k))

    def _queued_donor(self, r: int, skip: int) -> tuple[int, float] | None:
        """The fast path of `_donor` for repeated donations: a lazily updated queue of
        resource r's pairs by (tier depends on it, GMV lost). Pairs that cannot give now
        leave the queue; when it runs dry `_donor`'s full scan still finds any donor."""
        if r not in self._queues:
            queue = []
            for k in map(int, self.by_resource[r]):
                removal = self._removal(k)
                if removal is not None:
                    tier = bool(self.claimed[self.arrays.pair_partner[k]] > 0)
                    queue.append((tier, removal[1], k))
            heapq.heapify(queue)
            self._queues[r] = queue
        queue, held = self._queues[r], []
        found = None
        while queue and found is None:
            tier, loss, k = heapq.heappop(queue)
            i = int(self.arrays.pair_partner[k])
            removal = self._removal(k)
            if removal is None:
                continue
            change, now = removal
            if now > loss + 1e-9 * max(abs(loss), 1.0):  # stale: its loss has grown
                heapq.heappush(queue, (tier, now, k))
                continue
            if i == skip:
                held.append((tier, now, k))
                continue
            if not self.groups.allows(i, r, -change):
                continue
            if tier and self.gmv[i] - now < self.claimed[i]:
                continue
            found = (k, -change)
        for entry in held:
            heapq.heappush(queue, entry)
        return found

    def _donor(
        self, r: int, skip: int, protect: bool, among: NDArray[np.bool_] | None = None
    ) -> tuple[int, float] | None:
        """The pair of resource r (of a partner `among`, if given) losing least GMV by
        giving one unit back (or all of it, at its minimum), vectorised over its pairs."""
        a = self.arrays
        pairs = self.by_resource[r]
        owners = a.pair_partner[pairs]
        unit = float(self.unit[r])
        x = self.amounts[owners, r]
        mins = a.pair_min[pairs]
        change = np.where(x - unit >= mins - unit_slack(mins, unit), unit, x)
        change = np.minimum(change, x)
        after = self.amounts[:, r].copy()
        after[owners] = x - change
        column = self.columns[r]
        loss = (column.value(self.amounts[:, r]) - column.value(after))[owners]
        ok = (x > 0) & (owners != skip)
        if among is not None:
            ok &= among[owners]
        claimed = self.claimed[owners]
        if protect:
            ok &= (claimed <= 0) | (self.gmv[owners] - loss >= claimed)
        candidates = np.nonzero(ok)[0]
        order = candidates[np.lexsort((loss[candidates], claimed[candidates] > 0))]
        for n in order:
            if self.groups.allows(int(owners[n]), r, -float(change[n])):
                return int(pairs[n]), -float(change[n])
        return None

    # -- repairs -------------------------------------------------------------------------

    def restore_group_minimums(self) -> None:
        a = self.arrays
        for n, (r, members, low, _) in enumerate(self.groups.rules):
            pairs = [int(k) for k in self.pairs_of(r) if members[a.pair_partner[k]]]
            while self.groups.totals[n] < low - unit_slack(low, float(self.unit[r])):
                options = []
                for k in pairs:
                    change = self.can_add(k, self.ceiling(k), budget=False)
                    if change is not None:
                        options.append((-self.gain(k, change) / change, k, change))
                if not options:
                    return  # the exact re-check will keep the engine's amounts
                _, k, change = min(options)
                if not self.donate(r, change, skip=int(a.pair_partner[k])):
                    return
                self.move(k, change)

    def restore_tiers(self) -> None:
        dropped = np.nonzero((self.claimed > 0) & (self.gmv < self.claimed))[0]
        # Higher tiers first: should the budget run dry, the cheaper tiers go.
        for i in map(int, dropped[np.argsort(-self.claimed[dropped], kind="stable")]):
            pairs = [int(k) for k in self.partner_pairs(i)]
            saved = self.amounts[i].copy()
            while self.gmv[i] < self.claimed[i]:
                # Within the original amounts' grid ceilings first. Those are not always
                # enough: an amount at a max off the grid rounds below it and no unit fits
                # back under the max (a generated partner lost its ¥100M tier by ¥1.23 that
                # way). Then the other resources may go past their original amounts.
                if not any(self._give_back(i, pairs, limit) for limit in (self.ceiling, self.top)):
                    self._undo(int(i), saved)  # the units are better used elsewhere
                    break

    def _give_back(self, i: int, pairs: list[int], limit: Callable[[int], float]) -> bool:
        """One whole addition to one of partner i's pairs within `limit` that the budget
        and the group caps can make room for: the one whose rate would close the tier's gap
        at the least cost. Not the most GMV per unit: units of different resources do not
        compare, and a minimum ticket's first unit is the whole ticket (a partner ¥1.35
        short of ¥100M took a 9M fund ticket, where its traffic cost next to nothing,
        leaving a min_cost plan 10% above the bound its gap was reported against)."""
        a = self.arrays
        short = float(self.claimed[i] - self.gmv[i])
        options = []
        for k in pairs:
            change = self.can_add(k, limit(k), budget=False, groups=False)
            if change is None:
                continue
            gain = self.gain(k, change)
            cost = float(a.unit_cost[a.pair_resource[k]]) * change
            if gain >= short:
                options.append((cost, k, change))
            elif gain > 0:
                options.append((cost * short / gain, k, change))
        for _, k, change in sorted(options):
            r = int(self.arrays.pair_resource[k])
            if self.make_room(i, r, change) and self.donate(r, change, skip=i):
                self.move(k, change)
                return True
        return False

    def _undo(self, i: int, saved: FloatArray) -> None:
        for r in range(self.arrays.n_resources):
            change = float(saved[r] - self.amounts[i, r])
            ks = [int(k) for k in self.partner_pairs(i) if self.arrays.pair_resource[k] == r]
            if change and ks:
                self.move(ks[0], change)

    def trim_to_budgets(self) -> None:
        for r in np.nonzero(np.isfinite(self.arrays.budget))[0]:
            # A budget outranks a tier: protect tiers only while that is enough.
            if not self.donate(int(r), 0.0, skip=-1):
                self.donate(int(r), 0.0, skip=-1, protect=False)

    def spend_leftover(self) -> None:
        a = self.arrays
        engine_spend = spent(a, self.original, self.choice)
        for r in map(int, np.nonzero(np.isfinite(a.budget))[0]):
            unit = float(self.unit[r])
            # Only what rounding freed: units the engine chose not to spend stay unspent.
            limit = min(float(a.budget[r]), float(engine_spend[r]))
            heap = self._unit_gains(r, unit)
            heapq.heapify(heap)
            while heap and self.total[r] + unit <= limit + unit_slack(limit, unit):
                negative, k = heapq.heappop(heap)
                if negative >= 0:
                    break
                change = self.can_add(k, float(a.pair_max[k]))
                if change != unit:
                    continue
                self.move(k, unit)
                heapq.heappush(heap, (-self.gain(k, unit), k))

    def _unit_gains(self, r: int, unit: float) -> list[tuple[float, int]]:
        """(−GMV one more unit buys, pair) for resource r's pairs that may take one (those
        holding some, or without a minimum), evaluated in bulk over the resource's column:
        one curve call per pair took 10 of the 12 s of rounding 200,000 family partners."""
        a = self.arrays
        pairs = self.pairs_of(r)
        owners = a.pair_partner[pairs]
        now = self.amounts[:, r]
        column = self.columns[r]
        gains = (column.value(now + unit) - column.value(now))[owners]
        may_take = (now[owners] > 0) | (a.pair_min[pairs] <= 0)
        return list(zip((-gains[may_take]).tolist(), pairs[may_take].tolist(), strict=True))


def whole_units(
    arrays: ProblemArrays,
    amounts: FloatArray,
    choice: NDArray[np.intp] | None,
    columns: list[CurveColumn],
) -> FloatArray:
    """`amounts` (partners × resources, outside packages) on the whole-unit grid, keeping
    budgets, bounds, shares and, wherever the budget allows, every tier reached."""
    rounder = _Rounder(arrays, amounts, choice, columns)
    rounder.restore_group_minimums()
    rounder.restore_tiers()
    rounder.trim_to_budgets()
    if arrays.request.objective is not Objective.MIN_COST:
        rounder.spend_leftover()
    return rounder.amounts
