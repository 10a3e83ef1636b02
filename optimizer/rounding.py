"""From a solver's amounts to an exactly feasible allocation.

Fine step grids are continuous in the model and `Formulation.amounts` rounds them to the
nearest step. That can leave a partner a hair under the tier the model counted it for,
spend a few steps over a budget, or leave a few steps unspent. These three repairs fix
that with the exact curves, in this order: restore tiers, trim to budgets (partners no
tier depends on first), spend what is left where it buys the most GMV.
"""

from __future__ import annotations

import heapq

import numpy as np
from numpy.typing import NDArray

from models.curves import CurveColumn, FloatArray
from models.plan import projected_gmv
from models.request import GroupBudget
from optimizer.arrays import ProblemArrays

# Trimming a budget's overspend takes at most about this many cuts of one size.
TRIM_CUTS = 256


def unit_slack(bound: float | FloatArray, unit: float | FloatArray) -> float | FloatArray:
    """How far past `bound` a sum of whole units may sit and still be on it: float noise,
    always well under one unit (a relative slack would let a 4e9 budget take 4 more)."""
    return np.minimum(0.5 * unit, 1e-6 * unit + 1e-12 * np.abs(bound))


class GroupLimits:
    """The group_budget rules, kept true while amounts move one step at a time. A move is
    checked only against the side it moves towards, so a move that repairs a broken share
    is never refused. With `unit` (whole-unit plans) a total may sit past its bound by
    float noise well under one unit; without it, by a relative 1e-9."""

    def __init__(
        self,
        arrays: ProblemArrays,
        amounts: FloatArray,
        choice: NDArray[np.intp] | None,
        unit: FloatArray | None = None,
    ) -> None:
        request = arrays.request
        names = [resource.name for resource in request.resources]
        self.unit = unit
        self.rules: list[tuple[int, NDArray[np.bool_], float, float]] = []
        self.totals: list[float] = []
        package_use = np.zeros_like(amounts)
        if choice is not None:
            for option in arrays.packages:
                if choice[option.partner] == option.index:
                    package_use[option.partner] += option.amounts
        for rule in request.constraints:
            if isinstance(rule, GroupBudget):
                r = names.index(rule.resource)
                members = np.array([rule.where.matches(p) for p in request.partners], dtype=bool)
                budget = float(arrays.budget[r])
                self.rules.append((r, members, rule.min_share * budget, rule.max_share * budget))
                self.totals.append(float((amounts + package_use)[members, r].sum()))

    def slack(self, bound: float, r: int) -> float:
        if self.unit is None:
            return 1e-9 * max(abs(bound), 1.0)
        return float(unit_slack(bound, float(self.unit[r])))

    def allows(self, i: int, r: int, change: float) -> bool:
        for (rule_r, members, low, high), total in zip(self.rules, self.totals, strict=True):
            if rule_r != r or not members[i]:
                continue
            if change > 0 and total + change > high + self.slack(high, r):
                return False
            if change < 0 and total + change < low - self.slack(low, r):
                return False
        return True

    def apply(self, i: int, r: int, change: float) -> None:
        for n, (rule_r, members, _, _) in enumerate(self.rules):
            if rule_r == r and members[i]:
                self.totals[n] += change


def spent(
    arrays: ProblemArrays, amounts: FloatArray, choice: NDArray[np.intp] | None
) -> FloatArray:
    """Per resource: curve amounts plus the amounts of chosen packages."""
    total = amounts.sum(axis=0)
    if choice is not None:
        for option in arrays.packages:
            if choice[option.partner] == option.index:
                total = total + option.amounts
    return total


def _gain(arrays: ProblemArrays, k: int | np.integer, amount: float, extra: float) -> float:
    """The GMV pair k gains when `extra` is added to `amount`."""
    curve = arrays.pair_curve[k]
    return float(curve.value(amount + extra) - curve.value(amount))


def _steps_to_gain(
    arrays: ProblemArrays, k: int | np.integer, amount: float, step: float, wanted: float
) -> int | None:
    """The fewest grid steps that add `wanted` GMV to pair k from `amount` (None: the
    pair's max does not allow it)."""
    curve = arrays.pair_curve[k]
    base = float(curve.value(amount))
    most = int(np.floor((arrays.pair_max[k] - amount) / step + 1e-9))
    if most <= 0 or float(curve.value(amount + most * step)) - base < wanted:
        return None
    low, high = 0, most  # gain(low) < wanted <= gain(high)
    while high - low > 1:
        middle = (low + high) // 2
        if float(curve.value(amount + middle * step)) - base >= wanted:
            high = middle
        else:
            low = middle
    return high


def restore_tiers(
    arrays: ProblemArrays,
    amounts: FloatArray,
    choice: NDArray[np.intp] | None,
    claimed: FloatArray,
    columns: list[CurveColumn],
) -> None:
    """Add to each partner that rounding left under the tier threshold the model counted
    it for (`claimed`, 0 for none) what closes the gap: whole grid steps, or the exact
    amount on a resource without steps, on the one resource that does it at the least
    cost, preferring resources with budget to spare, then those whose overspend partners
    no tier depends on hold (trimming then settles it without costing a tier). Family seed
    2, 1,000 partners, 2 resources, put its whole fund into 15 tier partners' tickets:
    rounding them cost 4 tiers, and restoring them with fund steps cost one again in the
    trim, where the subsidy held by the other partners could pay for it."""
    gmv = projected_gmv(arrays.request, amounts, choice, columns)
    total = spent(arrays, amounts, choice)
    groups = GroupLimits(arrays, amounts, choice)
    spare = _room_without_tiers(arrays, amounts, claimed, total)
    for i in np.nonzero((claimed > 0) & (gmv < claimed))[0]:
        wanted = float(claimed[i] - gmv[i])
        options = []
        for k in np.nonzero(arrays.pair_partner == i)[0]:
            r = int(arrays.pair_resource[k])
            extra = _extra_for_gain(arrays, int(k), float(amounts[i, r]), wanted)
            if extra is None or not groups.allows(int(i), r, extra):
                continue
            overspend = 0 if total[r] + extra <= arrays.budget[r] + 1e-9 else 1
            if overspend and extra > spare[r] + 1e-9:
                overspend = 2
            options.append((overspend, extra * arrays.unit_cost[r], r, extra, int(k)))
        if not options:
            continue
        _, _, chosen_r, extra, chosen_k = min(options)
        spare[chosen_r] -= extra
        gmv[i] += _gain(arrays, chosen_k, float(amounts[i, chosen_r]), extra)
        amounts[i, chosen_r] += extra
        total[chosen_r] += extra
        groups.apply(int(i), chosen_r, extra)


def _room_without_tiers(
    arrays: ProblemArrays, amounts: FloatArray, claimed: FloatArray, total: FloatArray
) -> FloatArray:
    """Per resource, what can be spent without costing a tier: the budget left, and what
    partners no tier depends on hold (a trim may take it back from them)."""
    return arrays.budget - total + amounts[claimed <= 0].sum(axis=0)


def _extra_for_gain(arrays: ProblemArrays, k: int, amount: float, wanted: float) -> float | None:
    """The least amount added to pair k that adds `wanted` GMV: whole grid steps where the
    resource has steps, a new ticket starting at its minimum (None: the pair's max does
    not allow it)."""
    step = float(arrays.step[arrays.pair_resource[k]])
    minimum, most = float(arrays.pair_min[k]), float(arrays.pair_max[k])
    if step > 0:
        count = _steps_to_gain(arrays, k, amount, step, wanted)
        if count is not None and _below_minimum(amount + count * step, minimum):
            count = int(np.ceil(minimum / step - 1e-9))
            if count * step > most + 1e-9:
                return None
        return None if count is None else count * step
    curve = arrays.pair_curve[k]
    base = float(curve.value(amount))
    if most <= amount or float(curve.value(most)) - base < wanted:
        return None
    low, high = 0.0, most - amount  # gain(low) < wanted <= gain(high)
    for _ in range(100):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if float(curve.value(amount + middle)) - base >= wanted:
            high = middle
        else:
            low = middle
    return minimum - amount if _below_minimum(amount + high, minimum) else high


def trim_to_budgets(
    arrays: ProblemArrays,
    amounts: FloatArray,
    choice: NDArray[np.intp] | None,
    claimed: FloatArray,
    columns: list[CurveColumn],
) -> None:
    """Take back each budget's overspend where it costs the least GMV per unit taken: cuts
    of whole steps (a share of the excess on a resource without steps) from the pair that
    loses least by its next one. A partner counted for a tier gives only what keeps it
    there; only if that is not enough does anyone give: a budget outranks a tier. An
    outer solution's tier claims restored at 1,500 family partners (seed 3) put a budget
    1.5% over; cut from the largest amounts first that cost 0.78% of GMV, this way 0.70%."""
    gmv = projected_gmv(arrays.request, amounts, choice, columns)
    groups = GroupLimits(arrays, amounts, choice)
    # A second pass takes back what the substitutions put on other budgets.
    for _ in range(2):
        total = spent(arrays, amounts, choice)
        for r in np.nonzero(total > arrays.budget)[0]:
            excess = float(total[r] - arrays.budget[r])
            for protect in (True, False):
                if excess <= 1e-12 * arrays.budget[r]:
                    break
                trim = _Trim(arrays, amounts, gmv, claimed, groups, int(r), excess, protect)
                if not protect:  # (what this pass's trims and moves have spent so far)
                    excess = trim.substitute(spent(arrays, amounts, choice))
                    if excess <= 1e-12 * arrays.budget[r]:
                        break
                excess = trim.run(columns[r])
    # And each group budget's overspend, from its members: a cap that is not a whole
    # number of steps (30% of 1.25e9 on 1e7 steps) rounds a fine grid's amount past it.
    for n, (rule_r, members, _, high) in enumerate(groups.rules):
        for protect in (True, False):
            excess = groups.totals[n] - high
            if excess <= groups.slack(high, rule_r):
                break
            trim = _Trim(arrays, amounts, gmv, claimed, groups, rule_r, excess, protect, members)
            trim.run(columns[rule_r])


class _Trim:
    """One resource's overspend taken back cut by cut, cheapest first: the pairs' first
    cuts valued in bulk and sorted, later cuts of a pair (valued one by one) in a heap."""

    def __init__(
        self,
        arrays: ProblemArrays,
        amounts: FloatArray,
        gmv: FloatArray,
        claimed: FloatArray,
        groups: GroupLimits,
        r: int,
        excess: float,
        protect: bool,
        members: NDArray[np.bool_] | None = None,
    ) -> None:
        """`members`: per partner, those who may give (None: all)."""
        self.arrays, self.amounts, self.gmv, self.claimed = arrays, amounts, gmv, claimed
        self.groups, self.r, self.excess, self.protect = groups, r, excess, protect
        self.members = members
        self.step = float(arrays.step[r])
        # At most ~TRIM_CUTS cuts of one size, whole steps where there are steps.
        size = excess / TRIM_CUTS
        self.chunk = self.step * max(1.0, np.ceil(size / self.step)) if self.step > 0 else size

    def _cut(self, k: int, current: float) -> float:
        """Pair k's next cut: down to its minimum ticket, then the whole ticket."""
        return float(self._cuts(np.array([k]), np.array([current]))[0])

    def _cuts(self, pairs: NDArray[np.intp], current: FloatArray) -> FloatArray:
        minimum = self.arrays.pair_min[pairs]
        wanted = self.excess
        if self.step > 0:
            wanted = np.ceil(wanted / self.step - 1e-9) * self.step
        floor = np.where(current > minimum, minimum, 0.0)
        cut = np.minimum(min(self.chunk, wanted), current - floor)
        # A cut leaving less than the minimum ticket takes the whole ticket.
        return np.where(_below_minimum(current - cut, minimum), current, cut)

    def run(self, column: CurveColumn) -> float:
        arrays, r = self.arrays, self.r
        mine = arrays.pair_resource == r
        if self.members is not None:
            mine &= self.members[arrays.pair_partner]
        pairs = np.nonzero(mine)[0]
        owners = arrays.pair_partner[pairs]
        current = self.amounts[owners, r]
        pairs, owners, current = pairs[current > 0], owners[current > 0], current[current > 0]
        cuts = self._cuts(pairs, current)
        after = self.amounts[:, r].copy()
        after[owners] -= cuts
        loss = (column.value(self.amounts[:, r]) - column.value(after))[owners]
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(cuts > 0, loss / cuts, np.inf)
        order = np.argsort(rate, kind="stable")
        first, first_rate = pairs[order], rate[order]
        later: list[tuple[float, int]] = []
        position = 0
        while self.excess > 1e-12 * arrays.budget[r]:
            if later and (position >= len(first) or later[0][0] <= first_rate[position]):
                k = heapq.heappop(later)[1]
            elif position < len(first) and np.isfinite(first_rate[position]):
                k, position = int(first[position]), position + 1
            else:
                break
            again = self._take(k)
            if again is not None:
                heapq.heappush(later, (again, k))
        return self.excess

    def substitute(self, total: FloatArray) -> float:
        """Before any partner loses a tier to the overspend: cut it from tier partners
        who can keep their tier on another resource, one whose overspend partners no tier
        depends on then give back (the other budget's trim comes in the next pass). The
        cuts that cost least of the other resource per unit cut come first."""
        arrays, amounts, r = self.arrays, self.amounts, self.r
        spare = _room_without_tiers(arrays, amounts, self.claimed, total)
        pairs = np.nonzero(arrays.pair_resource == r)[0]
        owners = arrays.pair_partner[pairs]
        holders = pairs[(self.claimed[owners] > 0) & (amounts[owners, r] > 0)]
        heap = [swap for k in holders if (swap := self._swap(int(k), spare)) is not None]
        heapq.heapify(heap)
        while heap and self.excess > 1e-12 * arrays.budget[r]:
            _, k, k2, cut, extra = heapq.heappop(heap)
            swap = self._swap(k, spare)  # spare may have shrunk since it was valued
            if swap is None:
                continue
            if swap[3:] != (cut, extra):
                heapq.heappush(heap, swap)
                continue
            i, r2 = int(arrays.pair_partner[k]), int(arrays.pair_resource[k2])
            gain = _gain(arrays, k2, float(amounts[i, r2]), extra)
            self.gmv[i] += gain - self._loss(k, float(amounts[i, r]), cut)
            amounts[i, r] -= cut
            amounts[i, r2] += extra
            self.groups.apply(i, r, -cut)
            self.groups.apply(i, r2, extra)
            spare[r2] -= extra
            self.excess -= cut
            if (again := self._swap(k, spare)) is not None:
                heapq.heappush(heap, again)
        return self.excess

    def _swap(self, k: int, spare: FloatArray) -> tuple[float, int, int, float, float] | None:
        """Pair k's next cut and the cheapest pair of its partner on another resource
        that keeps the partner's tier: (cost per unit cut, k, that pair, cut, its extra)."""
        arrays, r = self.arrays, self.r
        i = int(arrays.pair_partner[k])
        current = float(self.amounts[i, r])
        cut = self._cut(k, current) if current > 0 else 0.0
        if cut <= 0 or not self.groups.allows(i, r, -cut):
            return None
        wanted = float(self.claimed[i] - (self.gmv[i] - self._loss(k, current, cut)))
        best = None
        for k2 in np.nonzero(arrays.pair_partner == i)[0]:
            r2 = int(arrays.pair_resource[k2])
            if r2 == r:
                continue
            amount = float(self.amounts[i, r2])
            extra = _extra_for_gain(arrays, int(k2), amount, wanted) if wanted > 0 else 0.0
            if extra is None or extra > spare[r2] + 1e-9 or not self.groups.allows(i, r2, extra):
                continue
            swap = (extra * float(arrays.unit_cost[r2]) / cut, k, int(k2), cut, extra)
            best = swap if best is None or swap < best else best
        return best

    def _take(self, k: int) -> float | None:
        """Make pair k's next cut (shrunk to a step, or none, where it would drop a tier the
        partner keeps); the loss per unit of the cut after it, None: no more from k."""
        arrays, r = self.arrays, self.r
        i = int(arrays.pair_partner[k])
        current = float(self.amounts[i, r])
        cut = self._cut(k, current) if current > 0 else 0.0
        loss = self._loss(k, current, cut)
        if self.protect and self.claimed[i] > 0 and self.gmv[i] - loss < self.claimed[i]:
            cut = self.step if 0 < self.step < cut else 0.0
            if _below_minimum(current - cut, self.arrays.pair_min[k]):
                cut = 0.0  # the whole ticket or nothing (family seed 11, 3,000 partners)
            loss = self._loss(k, current, cut)
            if cut <= 0 or self.gmv[i] - loss < self.claimed[i]:
                return None
        if cut <= 0 or not self.groups.allows(i, r, -cut):
            return None  # group totals only fall while trimming: never allowed again
        self.gmv[i] -= loss
        self.amounts[i, r] = current - cut
        self.groups.apply(i, r, -cut)
        self.excess -= cut
        after = current - cut
        following = self._cut(k, after) if after > 0 else 0.0
        if following <= 0:
            return None
        return self._loss(k, after, following) / following

    def _loss(self, k: int, amount: float, cut: float) -> float:
        """The GMV pair k loses when `cut` is taken from `amount` (0 for no cut)."""
        if cut <= 0:
            return 0.0
        curve = self.arrays.pair_curve[k]
        return float(curve.value(amount) - curve.value(amount - cut))


def _below_minimum(
    amount: float | FloatArray, minimum: float | FloatArray
) -> bool | NDArray[np.bool_]:
    """A positive amount under the pair's minimum ticket (which only 0 or >= min meet);
    elementwise for arrays."""
    return (amount > 0) & (amount < minimum * (1 - 1e-12))


def spend_leftover(
    arrays: ProblemArrays, amounts: FloatArray, choice: NDArray[np.intp] | None
) -> None:
    """Give whole grid steps that rounding left unspent to the pairs whose exact GMV
    gains most from one more step (what the model would have done with them). A step
    changes only its own pair's next gain, so the gains wait in a heap: rescanning every
    pair for every step took minutes at 20,000 partners."""
    total = spent(arrays, amounts, choice)
    groups = GroupLimits(arrays, amounts, choice)
    for r in np.nonzero((arrays.step > 0) & np.isfinite(arrays.budget))[0]:
        step = float(arrays.step[r])
        steps_left = int(np.floor((arrays.budget[r] - total[r]) / step + 1e-9))
        pairs = np.nonzero(arrays.pair_resource == r)[0]
        if steps_left <= 0 or len(pairs) == 0:
            continue
        owners = arrays.pair_partner[pairs]
        current = amounts[owners, r]
        usable = (current > 0) | (arrays.pair_min[pairs] <= 0)
        heap = [
            (-_gain(arrays, k, float(x), step), int(k), int(i))
            for k, i, x, ok in zip(pairs, owners, current, usable, strict=True)
            if ok
        ]
        heapq.heapify(heap)
        for _ in range(min(steps_left, len(pairs))):
            while heap:
                _, k, i = heap[0]
                fits = amounts[i, r] + step <= arrays.pair_max[k] + 1e-9
                if fits and groups.allows(i, int(r), step):
                    break
                heapq.heappop(heap)  # group totals only grow here: it never fits again
            if not heap or heap[0][0] >= 0:
                break
            _, k, i = heapq.heappop(heap)
            amounts[i, r] += step
            groups.apply(i, int(r), step)
            heapq.heappush(heap, (-_gain(arrays, k, float(amounts[i, r]), step), k, i))
