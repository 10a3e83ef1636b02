"""The request as the decomposition sees it: per-resource curve families and domains.

Every partner's amount of resource r lives in {0} ∪ [lo, hi] (steps applied: lo rounded
up, hi down to the grid), or is fixed (pins, ineligibility). Built from the shared
`optimizer.arrays.ProblemArrays` (its pairs' domains and curves), so every engine sees
the same bounds, caps and eligibility.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models.curves import Curve, CurveKind, FloatArray
from models.knots import padded_knots
from models.request import AllocationRequest, GroupBudget, GroupCount
from optimizer.arrays import CountRow, ProblemArrays, UnsupportedRequest
from optimizer.decomposition.family import Family, kind_code
from optimizer.decomposition.menus import Menus, build_menus, levels_of
from optimizer.decomposition.points import Knots

BoolArray = NDArray[np.bool_]


@dataclass
class GroupBudgetRow:
    resource: int
    members: BoolArray
    low: float  # min_share · budget
    high: float  # max_share · budget
    label: str


@dataclass(frozen=True)
class GroupCountRow(CountRow):
    label: str


@dataclass
class Problem:
    request: AllocationRequest
    baseline: FloatArray  # (n,)
    families: list[Family]  # per resource, domain set
    can_use: BoolArray  # (n, R): may receive a positive amount
    optional: BoolArray  # (n, R): may be 0 or in [lo, hi] with lo > 0 (a min ticket)
    budget: FloatArray  # (R,) inf when unlimited
    step: FloatArray  # (R,) 0 when continuous
    unit_cost: FloatArray  # (R,)
    thresholds: FloatArray  # (T,) ascending
    targets: NDArray[np.int64]
    weights: FloatArray
    tier_names: list[str]
    group_budgets: list[GroupBudgetRow] = field(default_factory=list)
    group_counts: list[GroupCountRow] = field(default_factory=list)
    reach: FloatArray = field(default_factory=lambda: np.zeros(0))  # (n,) max curve uplift
    menus: Menus | None = None  # package partners (see `menus`)

    @property
    def n(self) -> int:
        return len(self.baseline)

    @property
    def n_resources(self) -> int:
        return len(self.budget)

    @property
    def n_tiers(self) -> int:
        return len(self.thresholds)

    def lo(self) -> FloatArray:
        return np.stack([f.lo for f in self.families], axis=1)

    def hi(self) -> FloatArray:
        return np.stack([f.hi for f in self.families], axis=1)

    def lumpy_resources(self) -> list[int]:
        """Stepped resources with min tickets or S-shaped curves: where continuous
        relaxations mislead, so their grid is enumerated for partners reaching a tier."""
        return [
            r
            for r, family in enumerate(self.families)
            if self.step[r] > 0 and bool(np.any(self.optional[:, r] | (family.xt > family.lo)))
        ]

    def subset(self, rows: NDArray[np.intp], share: float = 1.0) -> Problem:
        """These rows (repeats allowed) as a problem; budgets and counts scaled by `share`."""
        return Problem(
            request=self.request,
            baseline=self.baseline[rows],
            families=[family.take(rows) for family in self.families],
            can_use=self.can_use[rows],
            optional=self.optional[rows],
            budget=self.budget * share,
            step=self.step,
            unit_cost=self.unit_cost,
            thresholds=self.thresholds,
            targets=np.where(
                self.targets > 0, np.maximum(np.round(self.targets * share), 1), 0
            ).astype(np.int64),
            weights=self.weights,
            tier_names=self.tier_names,
            group_budgets=[
                GroupBudgetRow(g.resource, g.members[rows], g.low * share, g.high * share, g.label)
                for g in self.group_budgets
            ],
            group_counts=[
                GroupCountRow(g.tier, g.members[rows], round(g.minimum * share), g.label)
                for g in self.group_counts
            ],
            reach=self.reach[rows],
            menus=None if self.menus is None else self.menus.take(rows),
        )

    def sample(self, size: int, seed: int) -> Problem:
        """A random subset of partners with budgets, targets and group rows scaled to it.

        Prices are intensive: a dual solved on a large enough sample of the same programme
        is a good starting point for the full one (any start keeps the bound valid).
        """
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(self.n, size=size, replace=False))
        return self.subset(rows, size / self.n)

    def levels(self, amounts: FloatArray) -> NDArray[np.intp]:
        """The tier level (0: none) each partner's exact GMV reaches under `amounts`."""
        return levels_of(self.thresholds, self.values(amounts))

    def values(self, amounts: FloatArray) -> FloatArray:
        """Exact projected GMV of every partner for an (n, R) amount matrix."""
        gmv = self.baseline.copy()
        for r, family in enumerate(self.families):
            gmv += family.value(amounts[:, r])
        if self.menus is not None:
            gmv += self.menus.values(amounts)
        return gmv


def build_problem(arrays: ProblemArrays) -> Problem:
    """The decomposition's view of the shared arrays: each resource's pairs become a curve
    family over all partners, pins become fixed domains (lo == hi)."""
    request = arrays.request
    menus = build_menus(arrays)
    partners = request.partners
    n, n_res = arrays.n_partners, arrays.n_resources
    pins = _pins(arrays)
    families: list[Family] = []
    can_use = np.zeros((n, n_res), dtype=bool)
    optional = np.zeros((n, n_res), dtype=bool)
    for r in range(n_res):
        pairs = np.flatnonzero(arrays.pair_resource == r)
        rows = arrays.pair_partner[pairs]
        curves: list[Curve | None] = [None] * n
        lo, hi = np.zeros(n), np.zeros(n)
        for k, i in zip(pairs, rows, strict=True):
            curves[i] = arrays.pair_curve[k]
        lo[rows], hi[rows] = arrays.pair_min[pairs], arrays.pair_max[pairs]
        usable = np.zeros(n, dtype=bool)
        usable[rows] = True
        optional[:, r] = usable & (lo > 0)
        for i, amount, curve in pins.get(r, []):
            curves[i], lo[i], hi[i], usable[i] = curve, amount, amount, amount > 0
        family = _family(curves)
        family.set_domain(lo, hi)
        families.append(family)
        can_use[:, r] = usable

    reach = np.zeros(n) if menus is None else menus.top_uplift()
    for r, family in enumerate(families):
        reach += np.where(can_use[:, r], family.value(family.hi), 0.0)
    problem = Problem(
        request=request,
        # The partners' own baselines: pinned amounts are valued by their families.
        baseline=np.fromiter((p.baseline_gmv for p in partners), np.float64, n),
        families=families,
        can_use=can_use,
        optional=optional,
        budget=arrays.budget,
        step=arrays.step,
        unit_cost=arrays.unit_cost,
        thresholds=arrays.thresholds,
        targets=arrays.targets.astype(np.int64),
        weights=arrays.weights,
        tier_names=arrays.tier_names,
        reach=reach,
        menus=menus,
    )
    _add_groups(problem, arrays)
    return problem


def _pins(arrays: ProblemArrays) -> dict[int, list[tuple[int, float, Curve | None]]]:
    """Per resource: (partner, amount, curve) of every pin."""
    request = arrays.request
    index_of = {partner.id: i for i, partner in enumerate(request.partners)}
    resource_of = {resource.name: r for r, resource in enumerate(request.resources)}
    pins: dict[int, list[tuple[int, float, Curve | None]]] = {}
    for (partner_id, name), amount in request.pins().items():
        i = index_of[partner_id]
        curve = request.partners[i].curves.get(name)
        pins.setdefault(resource_of[name], []).append((i, amount, curve))
    return pins


def _family(curves: list[Curve | None]) -> Family:
    n = len(curves)
    kind = np.fromiter((kind_code(c) for c in curves), np.int8, n)
    a = np.fromiter((_scale_param(c) for c in curves), np.float64, n)
    s = np.fromiter(
        (
            (c.half_saturation if c.kind is CurveKind.HILL else c.scale) if c else 1.0
            for c in curves
        ),
        np.float64,
        n,
    )
    shape = np.fromiter((c.shape if c else 1.0 for c in curves), np.float64, n)
    knots = [(c.xs, c.ys) if c is not None and c.kind is CurveKind.POINTS else None for c in curves]
    if not any(knots):
        return Family(kind, a, s, shape)
    return Family(kind, a, s, shape, Knots.of(*padded_knots(knots)))


def _scale_param(curve: Curve | None) -> float:
    if curve is None:
        return 0.0
    if curve.kind is CurveKind.LOG:
        return float(curve.coef)
    if curve.kind is CurveKind.LINEAR:
        return float(curve.roi)
    return float(curve.max_uplift)


def _add_groups(problem: Problem, arrays: ProblemArrays) -> None:
    request = problem.request
    partners = request.partners
    for rule in request.constraints:
        if isinstance(rule, GroupBudget):
            r = [res.name for res in request.resources].index(rule.resource)
            budget = problem.budget[r]
            if not math.isfinite(budget):
                raise UnsupportedRequest(
                    f"group_budget on {rule.resource!r} needs that resource to have a budget"
                )
            members = np.fromiter((rule.where.matches(p) for p in partners), bool, len(partners))
            problem.group_budgets.append(
                GroupBudgetRow(
                    r,
                    members,
                    rule.min_share * budget,
                    rule.max_share * budget,
                    f"group_budget {rule.resource} {dict(rule.where.conditions)}",
                )
            )
    for row, rule in zip(arrays.count_rows, _group_count_rules(request), strict=True):
        problem.group_counts.append(
            GroupCountRow(
                row.tier,
                row.members,
                row.minimum,
                f"group_count {rule.tier} {dict(rule.where.conditions)}",
            )
        )


def _group_count_rules(request: AllocationRequest) -> list[GroupCount]:
    return [rule for rule in request.constraints if isinstance(rule, GroupCount)]
