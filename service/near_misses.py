"""Near misses: the partners a plan leaves just below their next tier, and the cheapest
extra that would lift each one over it (docs/insight.md, `explanation.near_misses`).

The extra is money or traffic on top of the plan — new budget, since a plan's budgets are
usually spent (`fits_unspent` says when what is left would already pay for it). It must
respect everything else: the partner's own bound and its `max_share` cap (at today's
budget), every `group_budget` cap it falls under (with the budget raised by the extra),
its step (else whole units), its semi-continuous minimum, eligibility and pins. It is
priced at `unit_cost` and evaluated on the exact curves (`models.curves`).

How the cheapest extra is found, per partner ("levers" are the resources it can get
more of):

- one lever: the least extra, exactly, by bisection over whole steps (every curve is
  non-decreasing, so the gain is monotone in the extra);
- several: a grid over every lever but the one with the finest range, refined three
  times around the best cell, the last lever's least extra solved exactly for each grid
  point, plus every single-lever answer. Mixes are therefore cheapest to within the
  grid's resolution (a fraction of a percent of the cost), never wrong: every extra
  reported lifts the partner when applied (`tests/unit/test_explain.py` re-checks them).

Partners are visited cheapest-first by a lower bound (the gap over the best GMV per CNY
any lever offers), and the search stops once that bound exceeds the `limit`-th best
cost found (a 5,000-partner programme: about 125 exact searches), or when its time is up.
Partners that hold a package are left out: switching packages is not an "extra".
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.curves import Curve, FloatArray
from models.plan import Plan, projected_gmv
from models.request import AllocationRequest, GroupBudget, Partner

GRID = 17  # grid points per lever in a mix (refined REFINE times)
REFINE = 3
# Non-concave curves: the best GMV per CNY is sampled, so the bound gets slack.
RATE_SLACK = 1.25
_RATE_SAMPLES = 64


@dataclass(frozen=True)
class Lever:
    """More of one resource for one partner: up to `cap` extra, in multiples of `grain`."""

    resource: str
    curve: Curve
    current: float
    cap: float
    grain: float
    unit_cost: float
    minimum: float = 0.0  # least positive extra (a semi-continuous minimum), 0 if none
    base: float = field(init=False)  # the curve's value at `current`

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", float(self.curve.value(self.current)))

    def gain(self, extra: FloatArray) -> FloatArray:
        return self.curve.value(self.current + extra) - self.base

    @property
    def most(self) -> float:
        """The gain at the cap."""
        return float(self.gain(np.array([self.cap]))[0])

    def extra_at(self, units: FloatArray) -> FloatArray:
        return np.minimum(units * self.grain, self.cap)

    @property
    def units(self) -> int:
        return math.ceil(self.cap / self.grain - 1e-9)

    def least_extra(self, needed: FloatArray) -> FloatArray:
        """The least extra (per entry of `needed`) whose gain reaches it; inf if none."""
        needed = np.atleast_1d(np.asarray(needed, dtype=np.float64))
        top = self.units
        reachable = self.most >= needed
        lo = np.full(needed.shape, -1, dtype=np.int64)  # gain(lo) < needed (virtual -1)
        hi = np.full(needed.shape, top, dtype=np.int64)  # gain(hi) >= needed where reachable
        while True:
            open_ = hi - lo > 1
            if not open_.any():
                break
            mid = (lo + hi) // 2
            ok = self.gain(self.extra_at(mid.astype(np.float64))) >= needed
            hi = np.where(open_ & ok, mid, hi)
            lo = np.where(open_ & ~ok, mid, lo)
        extra = self.extra_at(hi.astype(np.float64))
        if self.minimum > 0:
            extra = np.where(extra > 0, np.maximum(extra, self.minimum), extra)
        extra = np.where(needed <= 0, 0.0, extra)
        return np.where(reachable | (needed <= 0), extra, np.inf)

    def best_rate(self) -> float:
        """An upper estimate of the GMV per CNY this lever yields at best."""
        if self.unit_cost <= 0:
            return math.inf
        slope = float(self.curve.derivative(self.current))
        if self.curve.is_concave:
            return slope / self.unit_cost
        extras = np.linspace(self.cap / _RATE_SAMPLES, self.cap, _RATE_SAMPLES)
        sampled = float(np.max(self.gain(extras) / extras))
        return RATE_SLACK * max(sampled, slope) / self.unit_cost

    def grid(self, low: float, high: float) -> FloatArray:
        """Extras between low and high on this lever's grain, 0 and the ends included."""
        points = np.linspace(low, high, GRID)
        points = np.minimum(np.ceil(points / self.grain - 1e-9) * self.grain, self.cap)
        if self.minimum > 0:
            points = np.where(points > 0, np.maximum(points, self.minimum), 0.0)
        return np.unique(np.concatenate(([0.0] if low <= 0 else [], points)))


def cheapest_lift(levers: Sequence[Lever], needed: float) -> tuple[float, list[float]] | None:
    """(cost, extra per lever) of the cheapest extra lifting the GMV by `needed`."""
    if not levers:
        return None
    best: tuple[float, list[float]] | None = None
    for k, lever in enumerate(levers):  # one lever alone, exactly
        extra = float(lever.least_extra(np.array([needed]))[0])
        if math.isfinite(extra):
            cost = extra * lever.unit_cost
            if best is None or cost < best[0]:
                best = (cost, [extra if j == k else 0.0 for j in range(len(levers))])
    if len(levers) > 1:
        mixed = _grid_search(levers, needed)
        if mixed is not None and (best is None or mixed[0] < best[0]):
            best = mixed
    return best


def _grid_search(levers: Sequence[Lever], needed: float) -> tuple[float, list[float]] | None:
    last = max(range(len(levers)), key=lambda k: levers[k].units)
    others = [lever for k, lever in enumerate(levers) if k != last]
    ranges = [(0.0, lever.cap) for lever in others]
    best: tuple[float, list[float]] | None = None
    for _ in range(REFINE + 1):
        grids = [lever.grid(low, high) for lever, (low, high) in zip(others, ranges, strict=True)]
        combos = np.array(list(itertools.product(*grids)), dtype=np.float64)
        gains = sum(lever.gain(combos[:, k]) for k, lever in enumerate(others))
        costs = sum(combos[:, k] * lever.unit_cost for k, lever in enumerate(others))
        tail = levers[last].least_extra(needed - np.asarray(gains))
        total = np.asarray(costs) + tail * levers[last].unit_cost
        pick = int(np.argmin(total))
        if not math.isfinite(total[pick]):
            return best
        extras = list(combos[pick])
        extras.insert(last, float(tail[pick]))
        if best is None or total[pick] < best[0]:
            best = (float(total[pick]), [float(e) for e in extras])
        # Zoom in: the neighbouring grid points of the best one bracket the next grid.
        ranges = []
        for k, grid in enumerate(grids):
            at = int(np.searchsorted(grid, combos[pick, k]))
            ranges.append((float(grid[max(at - 1, 0)]), float(grid[min(at + 1, len(grid) - 1)])))
    return best


# -- over a plan ------------------------------------------------------------------------


def find_near_misses(
    request: AllocationRequest,
    plan: Plan,
    limit: int,
    *,
    seconds: float = math.inf,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict[str, Any]]:
    """Up to `limit` partners below their next tier, cheapest extra first. Pricing stops
    after `seconds`, or once `should_stop` says so (a cancelled job): the partners priced
    by then are the best found."""
    deadline = time.monotonic() + seconds
    if limit <= 0 or not request.tiers:
        return []
    space = _FreeSpace(request, plan)
    candidates = []
    for i, partner in enumerate(request.partners):
        tier = space.next_tier(i)
        if tier is None or i in space.packaged:
            continue
        needed = tier.min_gmv - space.gmv[i]
        levers = space.levers(i, partner)
        rate = max((lever.best_rate() for lever in levers), default=0.0)
        if rate <= 0 or sum(lever.most for lever in levers) < needed:
            continue
        candidates.append((needed / rate, i, tier.name, needed, levers))
    candidates.sort(key=lambda item: item[0])

    found: list[tuple[float, int, dict[str, Any]]] = []  # max-heap by cost via negation
    for bound, i, tier_name, needed, levers in candidates:
        if len(found) >= limit and bound > -found[0][0]:
            break  # no partner left can beat the worst one kept
        if time.monotonic() > deadline or (should_stop is not None and should_stop()):
            break
        lift = cheapest_lift(levers, needed + _margin(space.gmv[i] + needed))
        if lift is None:
            continue
        cost, extras = lift
        entry = space.entry(i, tier_name, needed, levers, cost, extras)
        heapq.heappush(found, (-cost, -i, entry))
        if len(found) > limit:
            heapq.heappop(found)
    return [entry for _, _, entry in sorted(found, key=lambda item: (-item[0], -item[1]))]


def _margin(threshold: float) -> float:
    # Float rounding must not leave a lifted partner an ulp short of its threshold.
    return max(1e-6, 1e-12 * abs(threshold))


class _FreeSpace:
    """What a plan leaves free: unspent budgets, group caps, partner headroom."""

    def __init__(self, request: AllocationRequest, plan: Plan) -> None:
        self.request = request
        index = {partner.id: i for i, partner in enumerate(request.partners)}
        names = [resource.name for resource in request.resources]
        self.amounts = np.zeros((len(request.partners), len(names)))
        self.packaged: set[int] = set()
        for allocation in plan.allocations:
            i = index[allocation.partner_id]
            if allocation.package is not None:
                self.packaged.add(i)
            for r, name in enumerate(names):
                self.amounts[i, r] = allocation.amounts.get(name, 0.0)
        self.gmv = projected_gmv(request, self.amounts)
        self.tiers = request.sorted_tiers()
        self.remaining = {
            resource.name: (
                math.inf if resource.budget is None else resource.budget - float(spent.allocated)
            )
            for resource, spent in zip(request.resources, plan.resources, strict=True)
        }
        self.groups = [
            self._group(rule)
            for rule in request.constraints
            if isinstance(rule, GroupBudget) and rule.max_share < 1.0
        ]
        self.pins = request.pins()

    def _group(self, rule: GroupBudget) -> tuple[GroupBudget, set[int], float]:
        r = [resource.name for resource in self.request.resources].index(rule.resource)
        members = {i for i, p in enumerate(self.request.partners) if rule.where.matches(p)}
        budget = self.request.resource(rule.resource).budget or 0.0
        spent = float(sum(self.amounts[i, r] for i in members))
        return rule, members, rule.max_share * budget - spent

    def next_tier(self, i: int) -> Any:
        return next((tier for tier in self.tiers if tier.min_gmv > self.gmv[i]), None)

    def levers(self, i: int, partner: Partner) -> list[Lever]:
        levers = []
        for r, resource in enumerate(self.request.resources):
            curve = partner.curves.get(resource.name)
            if curve is None or (partner.id, resource.name) in self.pins:
                continue
            if not self.request.eligible(partner, resource.name):
                continue
            current = float(self.amounts[i, r])
            low, high = self.request.amount_range(partner, resource.name)
            cap = high - current
            for rule, members, room in self.groups:
                if rule.resource == resource.name and i in members:
                    # s·(B + e) − spent ≥ e: the group's cap grows with the added budget.
                    cap = min(cap, room / (1.0 - rule.max_share))
            grain = resource.step or 1.0
            cap = math.floor(cap / grain + 1e-9) * grain if resource.step else cap
            if not math.isfinite(cap) or cap <= 0:
                continue
            minimum = low - current if current <= 0 and low > 0 else 0.0
            if minimum > cap:
                continue
            levers.append(
                Lever(resource.name, curve, current, cap, grain, resource.unit_cost, minimum)
            )
        return levers

    def entry(
        self,
        i: int,
        tier: str,
        gap: float,
        levers: Sequence[Lever],
        cost: float,
        extras: Sequence[float],
    ) -> dict[str, Any]:
        after = self.gmv[i] + sum(
            float(lever.gain(np.array([extra]))[0])
            for lever, extra in zip(levers, extras, strict=True)
        )
        return {
            "partner_id": self.request.partners[i].id,
            "tier": tier,
            "gmv_gap": float(gap),
            "cheapest_extra": {
                lever.resource: float(extra)
                for lever, extra in zip(levers, extras, strict=True)
                if extra > 0
            },
            "extra_cost": float(cost),
            "projected_gmv_after": float(after),
            "fits_unspent": all(
                extra <= self.remaining[lever.resource] + 1e-9
                for lever, extra in zip(levers, extras, strict=True)
            ),
        }
