"""The request as arrays, computed once and shared by the engines.

A *pair* is one (partner, resource) that may receive a variable amount through a response
curve; pinned amounts become constants. Money and traffic are scaled (per resource, and
GMV in millions of CNY) so solver coefficients stay within a few orders of magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models.curves import Curve, FloatArray
from models.plan import projected_gmv
from models.request import AllocationRequest, GroupBudget, GroupCount, Objective, OnePackage
from optimizer.errors import OptimizerError


class UnboundedRequest(OptimizerError):
    """GMV can grow without limit: an unlimited resource meets an unbounded curve."""


class UnsupportedRequest(OptimizerError):
    """A request the optimizer cannot model as written (the message says why)."""


@dataclass
class PackageOption:
    partner: int
    index: int  # position in partner.packages
    amounts: FloatArray  # per resource, request units
    uplift: float


@dataclass(frozen=True)
class CountRow:
    """A group_count rule: at least `minimum` of `members` reach the tier `tier` (an index
    into the ascending thresholds)."""

    tier: int
    members: NDArray[np.bool_]
    minimum: int


@dataclass
class ProblemArrays:
    request: AllocationRequest
    baseline: FloatArray  # (n,) CNY, including constant uplift (pins, curve value at 0)
    pinned: FloatArray  # (n, m) fixed amounts (0 where not pinned)
    resource_scale: FloatArray  # (m,) model unit of each resource
    money_scale: float  # model unit of GMV and cost (1e6, millions of CNY, at programme scale)
    budget: FloatArray  # (m,) inf where unlimited
    step: FloatArray  # (m,) 0 where continuous
    unit_cost: FloatArray  # (m,)
    # Variable pairs
    pair_partner: NDArray[np.intp]
    pair_resource: NDArray[np.intp]
    pair_min: FloatArray  # semi-continuous minimum (request units), 0 if none
    pair_max: FloatArray  # finite upper bound (request units)
    pair_curve: list[Curve]
    packages: list[PackageOption]
    one_package: NDArray[np.bool_]  # (n,) partner must take exactly one package
    thresholds: FloatArray  # (T,) tier min_gmv, ascending
    targets: NDArray[np.int_]
    weights: FloatArray
    tier_names: list[str]
    count_rows: list[CountRow] = field(default_factory=list)  # the group_count rules

    @property
    def n_partners(self) -> int:
        return len(self.baseline)

    @property
    def n_resources(self) -> int:
        return len(self.budget)

    @property
    def n_pairs(self) -> int:
        return len(self.pair_partner)


def count_gaps(rows: Sequence[CountRow], thresholds: FloatArray, gmv: FloatArray) -> list[int]:
    """Per group_count row, the places its members miss at these GMVs (`thresholds`: the
    ascending tier thresholds its `tier` indexes)."""
    return [
        max(row.minimum - int(np.count_nonzero(row.members & (gmv >= thresholds[row.tier]))), 0)
        for row in rows
    ]


def _resource_scale(amount: float) -> float:
    """A power of ten that brings typical amounts down to at most ~1e3 model units."""
    if not math.isfinite(amount) or amount <= 1e3:
        return 1.0
    return float(10 ** (math.floor(math.log10(amount)) - 3))


def build_arrays(request: AllocationRequest) -> ProblemArrays:
    partners, resources = request.partners, request.resources
    n, m = len(partners), len(resources)
    tiers = request.sorted_tiers()
    pins = request.pins()
    index_of = {partner.id: i for i, partner in enumerate(partners)}
    for partner_id, _ in pins:
        if partner_id not in index_of:
            raise UnsupportedRequest(f"pin names unknown partner {partner_id!r}")

    pinned = np.zeros((n, m))
    budget = np.array([r.budget if r.budget is not None else np.inf for r in resources], float)
    step = np.array([r.step or 0.0 for r in resources], dtype=np.float64)
    top_threshold = tiers[-1].min_gmv if tiers else 0.0
    needs_cap = request.objective is not Objective.MIN_COST

    pair_partner: list[int] = []
    pair_resource: list[int] = []
    pair_min: list[float] = []
    pair_max: list[float] = []
    pair_curve: list[Curve] = []
    for i, partner in enumerate(partners):
        for r, resource in enumerate(resources):
            curve = partner.curves.get(resource.name)
            if (partner.id, resource.name) in pins:
                amount = pins[(partner.id, resource.name)]
                pinned[i, r] = amount
                continue
            if curve is None:
                continue
            if not request.eligible(partner, resource.name):
                continue
            low, high = request.amount_range(partner, resource.name)
            if step[r] > 0:
                high = math.floor(high / step[r] + 1e-9) * step[r]
                low = math.ceil(low / step[r] - 1e-9) * step[r]
            if not math.isfinite(high):
                cap = _useful_cap(curve, partner.baseline_gmv, top_threshold, needs_cap)
                if cap is None:
                    raise UnboundedRequest(
                        f"resource {resource.name!r} has no budget and partner {partner.id!r} "
                        f"has no max: its {curve.kind} curve makes GMV unbounded"
                    )
                high = math.ceil(cap / step[r]) * step[r] if step[r] > 0 else cap
            if high <= 0 or low > high:
                continue
            pair_partner.append(i)
            pair_resource.append(r)
            pair_min.append(low)
            pair_max.append(high)
            pair_curve.append(curve)

    packages = [
        PackageOption(
            i, k, np.array([pkg.amounts.get(res.name, 0.0) for res in resources]), pkg.uplift
        )
        for i, partner in enumerate(partners)
        for k, pkg in enumerate(partner.packages)
        if all(
            request.eligible(partner, name) for name, amount in pkg.amounts.items() if amount > 0
        )
    ]
    one_package = np.zeros(n, dtype=bool)
    count_rows: list[CountRow] = []
    for rule in request.constraints:
        if isinstance(rule, OnePackage):
            for i, partner in enumerate(partners):
                if partner.packages and rule.where.matches(partner):
                    one_package[i] = True
        if isinstance(rule, GroupBudget) and request.resource(rule.resource).budget is None:
            raise UnsupportedRequest(
                f"group_budget on {rule.resource!r} needs that resource to have a budget"
            )
        if isinstance(rule, GroupCount):
            request.tier(rule.tier)
            members = np.fromiter((rule.where.matches(p) for p in partners), bool, n)
            tier = [t.name for t in tiers].index(rule.tier)
            count_rows.append(CountRow(tier, members, int(rule.min)))

    finite_max = [hi for hi in pair_max if math.isfinite(hi)]
    scale = np.ones(m)
    for r in range(m):
        amounts = [pair_max[k] for k in range(len(pair_max)) if pair_resource[k] == r]
        amounts += [float(o.amounts[r]) for o in packages]
        typical = max(amounts) if amounts else (max(finite_max) if finite_max else 1.0)
        scale[r] = _resource_scale(typical)

    # The curves' constant parts (each at its pin, or at 0, where a `points` curve may start
    # above nothing) and the pairs' top uplifts, over the request's curve columns, which
    # the solve reuses: one curve call per pair took half of this function's time
    # (1,000,000 partners: 26 s).
    columns = request.curve_columns
    baseline = projected_gmv(request, pinned)
    at_max = np.zeros((n, m))
    at_max[pair_partner, pair_resource] = pair_max
    top = np.zeros((n, m))
    for r, column in enumerate(columns):
        top[:, r] = column.value(at_max[:, r])
    uplifts = top[pair_partner, pair_resource].tolist()
    uplifts += [o.uplift for o in packages] + [t.min_gmv for t in tiers]
    money_scale = _resource_scale(max(uplifts, default=1.0))

    return ProblemArrays(
        request=request,
        money_scale=money_scale,
        baseline=baseline,
        pinned=pinned,
        resource_scale=scale,
        budget=budget,
        step=step,
        unit_cost=np.array([r.unit_cost for r in resources], dtype=np.float64),
        pair_partner=np.array(pair_partner, dtype=np.intp),
        pair_resource=np.array(pair_resource, dtype=np.intp),
        pair_min=np.array(pair_min, dtype=np.float64),
        pair_max=np.array(pair_max, dtype=np.float64),
        pair_curve=pair_curve,
        packages=packages,
        one_package=one_package,
        thresholds=np.array([t.min_gmv for t in tiers], dtype=np.float64),
        targets=np.array([t.target for t in tiers], dtype=np.int_),
        weights=np.array([t.weight for t in tiers], dtype=np.float64),
        tier_names=[t.name for t in tiers],
        count_rows=count_rows,
    )


def _useful_cap(
    curve: Curve, baseline: float, top_threshold: float, needs_cap: bool
) -> float | None:
    """A finite amount beyond which more of an unlimited resource cannot help.

    Saturating-type curves: where they are within 1e-9 of their supremum. Otherwise, when
    only cost matters (min_cost), the amount that alone lifts the partner to the top tier.
    """
    supremum = curve.supremum
    if math.isfinite(supremum):
        if curve.kind == "points":
            return float(curve.xs[-1])
        target = supremum * (1 - 1e-9)
    elif not needs_cap and top_threshold > baseline:
        target = top_threshold - baseline
    else:
        return None if needs_cap else 0.0
    upper = 1.0
    while float(curve.value(upper)) < target:
        upper *= 2.0
        if upper > 1e18:
            return None
    lower = 0.0
    for _ in range(100):
        middle = 0.5 * (lower + upper)
        if float(curve.value(middle)) < target:
            lower = middle
        else:
            upper = middle
    return upper
