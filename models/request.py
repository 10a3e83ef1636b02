"""The allocation request: partners, resources, tiers, constraints and options.

Plain frozen dataclasses; validation of external input lives in `schemas` / `csvio`,
which only ever build these objects from data they have checked.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from models.curves import Curve, CurveColumn


class DomainError(Exception):
    """Base class of every error the domain layer raises (bad input that got past schemas)."""


class Objective(StrEnum):
    MAX_ATTAINMENT = "max_attainment"
    MIN_COST = "min_cost"
    MAX_GMV = "max_gmv"


@dataclass(frozen=True)
class Resource:
    name: str
    unit: str = "CNY"
    budget: float | None = None  # None: unlimited
    unit_cost: float = 1.0
    step: float | None = None  # allocations are integer multiples of step


@dataclass(frozen=True)
class Tier:
    name: str
    min_gmv: float
    target: int
    weight: float = 1.0


@dataclass(frozen=True)
class Bounds:
    min: float = 0.0  # a positive min is semi-continuous: 0 or within [min, max]
    max: float | None = None  # None: the resource budget


@dataclass(frozen=True)
class Package:
    name: str
    amounts: Mapping[str, float]
    uplift: float


@dataclass(frozen=True)
class Partner:
    id: str
    baseline_gmv: float
    name: str = ""
    baseline_gmv_p10: float | None = None
    baseline_gmv_p90: float | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    curves: Mapping[str, Curve] = field(default_factory=dict)
    bounds: Mapping[str, Bounds] = field(default_factory=dict)
    packages: tuple[Package, ...] = ()


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda value, options: value in options,
}
COMPARISON_OPERATORS = frozenset(_COMPARATORS)


@dataclass(frozen=True)
class Where:
    """Partner selector: every key must hold; a plain value means equality.

    `id` (and `partner_id`) select on the partner id; other keys on attributes. A partner
    lacking the attribute never matches.
    """

    conditions: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, partner: Partner) -> bool:
        for key, condition in self.conditions.items():
            if key in ("id", "partner_id"):
                value: Any = partner.id
            elif key in partner.attributes:
                value = partner.attributes[key]
            else:
                return False
            tests = condition.items() if isinstance(condition, Mapping) else [("==", condition)]
            for op, operand in tests:
                try:
                    if not _COMPARATORS[op](value, operand):
                        return False
                except TypeError:  # e.g. "north" < 3: incomparable means no match
                    return False
        return True


@dataclass(frozen=True)
class MaxShare:
    resource: str
    max_share: float
    type: str = "max_share"


@dataclass(frozen=True)
class GroupBudget:
    resource: str
    where: Where = Where()
    min_share: float = 0.0
    max_share: float = 1.0
    type: str = "group_budget"


@dataclass(frozen=True)
class GroupCount:
    tier: str
    min: int
    where: Where = Where()
    type: str = "group_count"


@dataclass(frozen=True)
class Eligibility:
    resource: str
    where: Where = Where()
    type: str = "eligibility"


@dataclass(frozen=True)
class Pin:
    partner_id: str
    resource: str
    amount: float
    type: str = "pin"


@dataclass(frozen=True)
class OnePackage:
    where: Where = Where()
    type: str = "one_package"


Constraint = MaxShare | GroupBudget | GroupCount | Eligibility | Pin | OnePackage


@dataclass(frozen=True)
class UncertaintyOptions:
    """How forecasts spread (docs/uncertainty.md): σ for partners without p10/p90,
    correlated shocks."""

    default_sigma: float = 0.0
    correlation: float = 0.0  # ρ in [0, 1): the share of variance from the group's shock
    group_by: str | None = None  # attribute naming the shock groups; None: one group
    draws: int = 20_000  # Monte Carlo draws when correlation > 0


@dataclass(frozen=True)
class Options:
    time_limit_s: float = 60.0
    mip_gap: float = 1e-3
    plans: int = 1
    engine: str = "auto"
    seed: int = 0
    confidence: float | None = None  # plan so each tier holds with this probability
    uncertainty: UncertaintyOptions = UncertaintyOptions()
    near_misses: int = 20  # how many near misses a plan's explanation lists
    # "full" | "basic" (no re-solves) | "none"; None: the caller's default (a single
    # allocation explains in full, frontier points and comparison scenarios basic).
    explain: str | None = None


EXPLAIN_LEVELS = ("full", "basic", "none")


@dataclass(frozen=True)
class AllocationRequest:
    resources: tuple[Resource, ...]
    tiers: tuple[Tier, ...]
    partners: tuple[Partner, ...]
    name: str = ""
    objective: Objective = Objective.MAX_ATTAINMENT
    constraints: tuple[Constraint, ...] = ()
    options: Options = Options()

    def resource(self, name: str) -> Resource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise DomainError(f"unknown resource {name!r}")

    def tier(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise DomainError(f"unknown tier {name!r}")

    @cached_property  # read per plan row by the exports: once, not once per row
    def uses_packages(self) -> bool:
        return any(partner.packages for partner in self.partners)

    @cached_property
    def curve_columns(self) -> tuple[CurveColumn, ...]:
        """Every resource's curves over all partners, vectorised (`models.plan`). Built
        once per request: an explanation evaluates dozens of plans of one request, and
        building them costs far more than evaluating them (about 0.7 s per 200,000
        partners)."""
        return tuple(
            CurveColumn([partner.curves.get(resource.name) for partner in self.partners])
            for resource in self.resources
        )

    def sorted_tiers(self) -> tuple[Tier, ...]:
        """Tiers from the lowest threshold to the highest (cumulative counting order)."""
        return tuple(sorted(self.tiers, key=lambda tier: tier.min_gmv))

    def eligible(self, partner: Partner, resource: str) -> bool:
        """May `partner` receive `resource`? Needs a curve (or a package) and every
        eligibility rule on that resource to select it."""
        has_use = resource in partner.curves or any(
            package.amounts.get(resource, 0.0) > 0 for package in partner.packages
        )
        if not has_use:
            return False
        return all(where.matches(partner) for where in self._eligibility.get(resource, ()))

    @cached_property
    def _eligibility(self) -> dict[str, tuple[Where, ...]]:
        """Each resource's eligibility rules: `eligible` is asked once per partner and
        resource (2,000,000 times at 1,000,000 partners)."""
        rules: dict[str, list[Where]] = {}
        for rule in self.constraints:
            if isinstance(rule, Eligibility):
                rules.setdefault(rule.resource, []).append(rule.where)
        return {name: tuple(wheres) for name, wheres in rules.items()}

    @cached_property
    def _share_caps(self) -> dict[str, float]:
        """Each budgeted resource's tightest `max_share` cap, in its own units."""
        budgets = {resource.name: resource.budget for resource in self.resources}
        caps: dict[str, float] = {}
        for rule in self.constraints:
            if not isinstance(rule, MaxShare):
                continue
            budget = budgets.get(rule.resource)
            if budget is not None:
                cap = rule.max_share * budget
                caps[rule.resource] = min(caps.get(rule.resource, math.inf), cap)
        return caps

    def pins(self) -> dict[tuple[str, str], float]:
        return {
            (rule.partner_id, rule.resource): rule.amount
            for rule in self.constraints
            if isinstance(rule, Pin)
        }

    def amount_range(self, partner: Partner, resource: str) -> tuple[float, float]:
        """The (min, max) a partner may receive of a resource before pins and eligibility.

        max defaults to the budget, tightened by any `max_share` rule; `inf` when neither
        exists. min > 0 is semi-continuous (0 is always allowed unless pinned).
        """
        spec = self.resource(resource)
        bounds = partner.bounds.get(resource, Bounds())
        upper = bounds.max if bounds.max is not None else math.inf
        if spec.budget is not None:
            upper = min(upper, spec.budget, self._share_caps.get(resource, math.inf))
        return bounds.min, upper
