"""The request as the decomposition sees it: per-resource curve families and domains.

Every partner's amount of resource r lives in {0} ∪ [lo, hi] (steps applied: lo rounded
up, hi down to the grid), or is fixed (pins, ineligibility). Built with vectorised numpy
after one pass over the partner objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models.curves import CurveKind, FloatArray
from models.request import (
    AllocationRequest,
    Bounds,
    Eligibility,
    GroupBudget,
    GroupCount,
    MaxShare,
    Objective,
    OnePackage,
)
from optimizer.arrays import UnboundedRequest, UnsupportedRequest
from optimizer.decomposition.family import HILL, LINEAR, LOG, NONE, SATURATING, Family, kind_code

BoolArray = NDArray[np.bool_]
_SATURATION = 1e-12  # a capped saturating curve is within this share of its supremum


@dataclass
class GroupBudgetRow:
    resource: int
    members: BoolArray
    low: float  # min_share · budget
    high: float  # max_share · budget
    label: str


@dataclass
class GroupCountRow:
    tier: int  # index into the ascending tiers
    members: BoolArray
    minimum: int
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
        )

    def sample(self, size: int, seed: int) -> Problem:
        """A random subset of partners with budgets, targets and group rows scaled to it.

        Prices are intensive: a dual solved on a large enough sample of the same programme
        is a good starting point for the full one (any start keeps the bound valid).
        """
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(self.n, size=size, replace=False))
        return self.subset(rows, size / self.n)

    def values(self, amounts: FloatArray) -> FloatArray:
        """Exact projected GMV of every partner for an (n, R) amount matrix."""
        gmv = self.baseline.copy()
        for r, family in enumerate(self.families):
            gmv += family.value(amounts[:, r])
        return gmv


def build_problem(request: AllocationRequest) -> Problem:
    if request.uses_packages:
        raise UnsupportedRequest("the decomposition engine does not handle packages yet")
    if any(isinstance(rule, OnePackage) for rule in request.constraints):
        raise UnsupportedRequest("the decomposition engine does not handle one_package yet")
    partners, resources = request.partners, request.resources
    n, n_res = len(partners), len(resources)
    tiers = request.sorted_tiers()
    budget = np.array([r.budget if r.budget is not None else np.inf for r in resources])
    step = np.array([r.step or 0.0 for r in resources], dtype=np.float64)
    baseline = np.fromiter((p.baseline_gmv for p in partners), np.float64, n)
    pins = request.pins()
    index_of = {p.id: i for i, p in enumerate(partners)} if pins else {}
    for partner_id, _ in pins:
        if partner_id not in index_of:
            raise UnsupportedRequest(f"pin names unknown partner {partner_id!r}")

    families: list[Family] = []
    can_use = np.zeros((n, n_res), dtype=bool)
    optional = np.zeros((n, n_res), dtype=bool)
    top = float(tiers[-1].min_gmv) if tiers else 0.0
    for r, resource in enumerate(resources):
        name = resource.name
        curves = [p.curves.get(name) for p in partners]
        if any(c is not None and c.kind is CurveKind.POINTS for c in curves):
            raise UnsupportedRequest("the decomposition engine does not handle points curves yet")
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
        family = Family(kind, a, s, shape)

        bounds = [p.bounds.get(name, _NO_BOUNDS) for p in partners]
        lo = np.fromiter((b.min for b in bounds), np.float64, n)
        hi = np.fromiter((b.max if b.max is not None else np.inf for b in bounds), np.float64, n)
        if resource.budget is not None:
            hi = np.minimum(hi, resource.budget)
            for rule in request.constraints:
                if isinstance(rule, MaxShare) and rule.resource == name:
                    hi = np.minimum(hi, rule.max_share * resource.budget)
        usable = kind != NONE
        for rule in request.constraints:
            if isinstance(rule, Eligibility) and rule.resource == name:
                usable &= np.fromiter((rule.where.matches(p) for p in partners), bool, n)
        if step[r] > 0:
            lo = np.ceil(lo / step[r] - 1e-9) * step[r]
            with np.errstate(invalid="ignore"):
                hi = np.where(np.isfinite(hi), np.floor(hi / step[r] + 1e-9) * step[r], hi)
        hi = _cap_unlimited(family, hi, baseline, top, request.objective, name, partners)
        usable &= (hi > 0) & (lo <= hi)
        pinned = [(index_of[pid], amount) for (pid, res), amount in pins.items() if res == name]
        fixed = np.zeros(n, dtype=bool)
        for i, amount in pinned:
            lo[i] = hi[i] = amount
            fixed[i] = True
            usable[i] = amount > 0
        lo = np.where(usable, lo, 0.0)
        hi = np.where(usable, hi, 0.0)
        family.set_domain(lo, hi)
        families.append(family)
        can_use[:, r] = usable
        optional[:, r] = usable & (lo > 0) & ~fixed

    reach = np.zeros(n)
    for r, family in enumerate(families):
        reach += np.where(can_use[:, r], family.value(family.hi), 0.0)
    # Pinned amounts are not optional: a partner pinned above 0 always has them.
    problem = Problem(
        request=request,
        baseline=baseline,
        families=families,
        can_use=can_use,
        optional=optional,
        budget=budget,
        step=step,
        unit_cost=np.array([r.unit_cost for r in resources], dtype=np.float64),
        thresholds=np.array([t.min_gmv for t in tiers], dtype=np.float64),
        targets=np.array([t.target for t in tiers], dtype=np.int64),
        weights=np.array([t.weight for t in tiers], dtype=np.float64),
        tier_names=[t.name for t in tiers],
        reach=reach,
    )
    _add_groups(problem)
    return problem


_NO_BOUNDS = Bounds()


def _scale_param(curve: object) -> float:
    if curve is None:
        return 0.0
    kind = curve.kind  # type: ignore[attr-defined]
    if kind is CurveKind.LOG:
        return float(curve.coef)  # type: ignore[attr-defined]
    if kind is CurveKind.LINEAR:
        return float(curve.roi)  # type: ignore[attr-defined]
    return float(curve.max_uplift)  # type: ignore[attr-defined]


def _cap_unlimited(
    family: Family,
    hi: FloatArray,
    baseline: FloatArray,
    top: float,
    objective: Objective,
    name: str,
    partners: tuple,  # type: ignore[type-arg]
) -> FloatArray:
    """A finite max where neither a budget nor a bound gives one.

    Saturating and hill curves: where they are within `_SATURATION` of their supremum.
    Log and linear curves grow without limit, so GMV objectives are unbounded; under
    min_cost more than what lifts the partner alone to the top tier is never useful.
    """
    open_rows = np.flatnonzero(~np.isfinite(hi) & (family.kind != NONE))
    if open_rows.size == 0:
        return hi
    hi = hi.copy()
    kind, a, s, shape = (family.kind[open_rows], family.a[open_rows], family.s[open_rows],
                         family.n[open_rows])  # fmt: skip
    cap = np.full(open_rows.size, np.nan)
    sat = kind == SATURATING
    cap[sat] = s[sat] * -math.log(_SATURATION)
    hill = kind == HILL
    cap[hill] = s[hill] * (1.0 / _SATURATION) ** (1.0 / shape[hill])
    growing = (kind == LOG) | (kind == LINEAR)
    if np.any(growing):
        if objective is not Objective.MIN_COST:
            first = open_rows[np.flatnonzero(growing)[0]]
            raise UnboundedRequest(
                f"resource {name!r} has no budget and partner {partners[first].id!r} has no "
                f"max: its curve makes GMV unbounded"
            )
        need = np.maximum(top - baseline[open_rows], 0.0)
        with np.errstate(over="ignore"):
            log_cap = s * np.expm1(np.minimum(need / np.maximum(a, 1e-300), 700.0))
        cap[kind == LOG] = log_cap[kind == LOG]
        cap[kind == LINEAR] = (need / np.maximum(a, 1e-300))[kind == LINEAR]
    hi[open_rows] = cap
    return hi


def _add_groups(problem: Problem) -> None:
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
        elif isinstance(rule, GroupCount):
            tier_names = problem.tier_names
            if rule.tier not in tier_names:
                raise UnsupportedRequest(f"group_count names unknown tier {rule.tier!r}")
            members = np.fromiter((rule.where.matches(p) for p in partners), bool, len(partners))
            problem.group_counts.append(
                GroupCountRow(
                    tier_names.index(rule.tier),
                    members,
                    int(rule.min),
                    f"group_count {rule.tier} {dict(rule.where.conditions)}",
                )
            )
