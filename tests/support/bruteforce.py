"""Exact reference solver for tiny requests, independent of `models.plan` and `optimizer`.

Every resource must have a `step`, so each partner's options are a finite grid: every
multiple of the step from 0 to its cap (`Bounds.max`, the budget, `max_share`), minus the
amounts a semi-continuous `min` forbids, times its packages. `solve_reference` searches all
combinations by dynamic programming over partners — the state is (steps used per resource,
steps given to each `group_budget` group, partners reaching each tier capped at its target),
which is all the lexicographic objective depends on besides an additive GMV or cost — and
`solve_by_enumeration` walks `itertools.product` of the same options, for cross-checking the
first on the tiniest instances.

The semantics are the spec's, implemented here from the request alone: GMV is evaluated with
scalar `Curve.value`; a chosen package adds its uplift and its amounts; pins fix a partner's
total amount (overriding bounds, min and step, as a planner's explicit figure); eligibility
rules and the need for a curve restrict who receives what; `one_package` forces a package.
`group_count` rules are not modelled (a ValueError says so).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.request import (
    AllocationRequest,
    Eligibility,
    GroupBudget,
    GroupCount,
    MaxShare,
    Objective,
    OnePackage,
    Partner,
    Pin,
    Resource,
)

_EPS = 1e-9


@dataclass(frozen=True)
class Choice:
    """One way to serve one partner."""

    package: int  # index into partner.packages, or -1
    curve_amounts: tuple[float, ...]  # per resource, outside the package
    units: tuple[int, ...]  # per resource, package included, in steps
    gmv: float
    cost: float
    levels: tuple[bool, ...]  # reaches each tier (request.sorted_tiers() order)


@dataclass
class Reference:
    """The best allocation and its exact figures (`feasible` False: none exists)."""

    feasible: bool
    weighted_shortfall: float = math.nan
    total_gmv: float = math.nan
    total_cost: float = math.nan
    achieved: dict[str, int] | None = None
    amounts: NDArray[np.float64] | None = None  # partners × resources, outside packages
    package_choice: NDArray[np.intp] | None = None  # -1: no package
    spent: tuple[float, ...] = ()  # per resource, packages included


def _step(resource: Resource) -> float:
    if not resource.step or resource.step <= 0:
        raise ValueError(f"brute force needs a step on resource {resource.name!r}")
    return resource.step


def _units(amount: float, step: float, what: str) -> int:
    units = round(amount / step)
    if abs(units * step - amount) > _EPS * max(step, abs(amount)):
        raise ValueError(f"brute force needs {what} ({amount:g}) on the step grid ({step:g})")
    return units


def _eligible(request: AllocationRequest, partner: Partner, resource: str) -> bool:
    return all(
        rule.where.matches(partner)
        for rule in request.constraints
        if isinstance(rule, Eligibility) and rule.resource == resource
    )


def _cap(request: AllocationRequest, partner: Partner, resource: Resource) -> float:
    bounds = partner.bounds.get(resource.name)
    cap = math.inf if bounds is None or bounds.max is None else bounds.max
    if resource.budget is not None:
        cap = min(cap, resource.budget)
        for rule in request.constraints:
            if isinstance(rule, MaxShare) and rule.resource == resource.name:
                cap = min(cap, rule.max_share * resource.budget)
    return cap


def _curve_grid(request: AllocationRequest, partner: Partner, resource: Resource) -> list[float]:
    """Amounts a partner may get of a resource outside packages (pins aside)."""
    if resource.name not in partner.curves or not _eligible(request, partner, resource.name):
        return [0.0]
    step = _step(resource)
    cap = _cap(request, partner, resource)
    if not math.isfinite(cap):
        raise ValueError(f"partner {partner.id!r} has no finite cap on {resource.name!r}")
    bounds = partner.bounds.get(resource.name)
    low = 0.0 if bounds is None else bounds.min
    top = math.floor(cap / step + _EPS)
    return [k * step for k in range(top + 1) if k == 0 or k * step >= low - _EPS * step]


def partner_choices(request: AllocationRequest, partner: Partner) -> list[Choice]:
    """Every admissible way to serve `partner`, with its exact GMV and cost."""
    resources = request.resources
    tiers = request.sorted_tiers()
    pins = {
        rule.resource: rule.amount
        for rule in request.constraints
        if isinstance(rule, Pin) and rule.partner_id == partner.id
    }
    forced = bool(partner.packages) and any(
        isinstance(rule, OnePackage) and rule.where.matches(partner) for rule in request.constraints
    )
    package_options = ([] if forced else [-1]) + list(range(len(partner.packages)))
    choices = []
    for index in package_options:
        package_amounts = partner.packages[index].amounts if index >= 0 else {}
        if any(
            amount > 0 and not _eligible(request, partner, name)
            for name, amount in package_amounts.items()
        ):
            continue
        grids: list[list[float]] = []
        for resource in resources:
            held = package_amounts.get(resource.name, 0.0)
            if resource.name in pins:
                rest = pins[resource.name] - held
                usable = resource.name in partner.curves and _eligible(
                    request, partner, resource.name
                )
                if rest < -_EPS * _step(resource) or (rest > _EPS * _step(resource) and not usable):
                    grids.append([])  # the pin cannot be met with this package
                else:
                    grids.append([max(rest, 0.0)])
            else:
                grids.append(_curve_grid(request, partner, resource))
        for curve_amounts in itertools.product(*grids):
            gmv_terms = [partner.baseline_gmv]
            for resource, amount in zip(resources, curve_amounts, strict=True):
                curve = partner.curves.get(resource.name)
                if curve is not None:
                    gmv_terms.append(float(curve.value(amount)))
            if index >= 0:
                gmv_terms.append(partner.packages[index].uplift)
            gmv = math.fsum(gmv_terms)
            totals = [
                amount + package_amounts.get(resource.name, 0.0)
                for resource, amount in zip(resources, curve_amounts, strict=True)
            ]
            choices.append(
                Choice(
                    package=index,
                    curve_amounts=tuple(curve_amounts),
                    units=tuple(
                        _units(total, _step(resource), f"{partner.id}'s {resource.name} amount")
                        for resource, total in zip(resources, totals, strict=True)
                    ),
                    gmv=gmv,
                    cost=math.fsum(
                        resource.unit_cost * total
                        for resource, total in zip(resources, totals, strict=True)
                    ),
                    levels=tuple(gmv >= tier.min_gmv for tier in tiers),
                )
            )
    return choices


class _Problem:
    """What both searches share: options, limits and the final ranking."""

    def __init__(self, request: AllocationRequest):
        if any(isinstance(rule, GroupCount) for rule in request.constraints):
            raise ValueError("brute force does not model group_count rules")
        self.request = request
        self.steps = [_step(resource) for resource in request.resources]
        self.budget_units = [
            None if resource.budget is None else math.floor(resource.budget / step + _EPS)
            for resource, step in zip(request.resources, self.steps, strict=True)
        ]
        self.tiers = request.sorted_tiers()
        self.choices = [partner_choices(request, partner) for partner in request.partners]
        names = [resource.name for resource in request.resources]
        self.groups = [
            (rule, names.index(rule.resource))
            for rule in request.constraints
            if isinstance(rule, GroupBudget)
        ]
        self.members = [
            [rule.where.matches(partner) for partner in request.partners] for rule, _ in self.groups
        ]

    def within_budgets(self, used: Sequence[int]) -> bool:
        return all(cap is None or u <= cap for u, cap in zip(used, self.budget_units, strict=True))

    def groups_ok(self, used: Sequence[int], grouped: Sequence[int]) -> bool:
        for (rule, r), units in zip(self.groups, grouped, strict=True):
            budget = self.request.resources[r].budget
            base = budget if budget is not None else used[r] * self.steps[r]
            amount = units * self.steps[r]
            slack = _EPS * max(base, self.steps[r])
            if not rule.min_share * base - slack <= amount <= rule.max_share * base + slack:
                return False
        return True

    def shortfall(self, counts: Sequence[int]) -> float:
        return math.fsum(
            tier.weight * max(0, tier.target - count)
            for tier, count in zip(self.tiers, counts, strict=True)
        )

    def rank_key(self, shortfall: float, gmv: float, cost: float) -> tuple[float, ...]:
        objective = self.request.objective
        if objective == Objective.MIN_COST:
            return (shortfall, cost, -gmv)
        if objective == Objective.MAX_GMV:
            return (-gmv, shortfall, cost)
        return (shortfall, -gmv, cost)

    def secondary(self, gmv: float, cost: float) -> tuple[float, float]:
        """What to keep per DP state: the rank key without the state-determined shortfall."""
        if self.request.objective == Objective.MIN_COST:
            return (cost, -gmv)
        return (-gmv, cost)

    def reference(self, picks: Sequence[int]) -> Reference:
        chosen = [self.choices[i][k] for i, k in enumerate(picks)]
        n_resources = len(self.request.resources)
        achieved = {
            tier.name: sum(choice.levels[t] for choice in chosen)
            for t, tier in enumerate(self.tiers)
        }
        spent = tuple(
            math.fsum(choice.units[r] * self.steps[r] for choice in chosen)
            for r in range(n_resources)
        )
        return Reference(
            feasible=True,
            weighted_shortfall=self.shortfall([achieved[tier.name] for tier in self.tiers]),
            total_gmv=math.fsum(choice.gmv for choice in chosen),
            total_cost=math.fsum(choice.cost for choice in chosen),
            achieved=achieved,
            amounts=np.array([choice.curve_amounts for choice in chosen], dtype=np.float64).reshape(
                len(chosen), n_resources
            ),
            package_choice=np.array([choice.package for choice in chosen], dtype=np.intp),
            spent=spent,
        )


def solve_reference(request: AllocationRequest) -> Reference:
    """The exact optimum by dynamic programming over partners."""
    problem = _Problem(request)
    n_resources = len(request.resources)
    targets = [tier.target for tier in problem.tiers]
    start = ((0,) * n_resources, (0,) * len(problem.groups), (0,) * len(problem.tiers))
    # state -> (secondary key, gmv, cost); one back-pointer table per partner.
    layer: dict[tuple[tuple[int, ...], ...], tuple[tuple[float, float], float, float]] = {
        start: ((0.0, 0.0), 0.0, 0.0)
    }
    backs: list[dict[tuple[tuple[int, ...], ...], tuple[tuple[tuple[int, ...], ...], int]]] = []
    for i, choices in enumerate(problem.choices):
        following: dict[tuple[tuple[int, ...], ...], tuple[tuple[float, float], float, float]] = {}
        back: dict[tuple[tuple[int, ...], ...], tuple[tuple[tuple[int, ...], ...], int]] = {}
        for state, (_, gmv, cost) in layer.items():
            used, grouped, counts = state
            for k, choice in enumerate(choices):
                new_used = tuple(u + c for u, c in zip(used, choice.units, strict=True))
                if not problem.within_budgets(new_used):
                    continue
                new_grouped = tuple(
                    g + (choice.units[r] if problem.members[j][i] else 0)
                    for j, ((_, r), g) in enumerate(zip(problem.groups, grouped, strict=True))
                )
                new_counts = tuple(
                    min(target, count + reached)
                    for target, count, reached in zip(targets, counts, choice.levels, strict=True)
                )
                new_state = (new_used, new_grouped, new_counts)
                new_gmv, new_cost = gmv + choice.gmv, cost + choice.cost
                key = problem.secondary(new_gmv, new_cost)
                if new_state not in following or key < following[new_state][0]:
                    following[new_state] = (key, new_gmv, new_cost)
                    back[new_state] = (state, k)
        layer = following
        backs.append(back)

    best: tuple[tuple[float, ...], tuple[tuple[int, ...], ...]] | None = None
    for state, (_, gmv, cost) in layer.items():
        used, grouped, counts = state
        if not problem.groups_ok(used, grouped):
            continue
        rank = problem.rank_key(problem.shortfall(counts), gmv, cost)
        if best is None or rank < best[0]:
            best = (rank, state)
    if best is None:
        return Reference(feasible=False)
    picks = []
    state = best[1]
    for back in reversed(backs):
        state, k = back[state]
        picks.append(k)
    return problem.reference(picks[::-1])


def solve_by_enumeration(request: AllocationRequest, *, limit: int = 200_000) -> Reference:
    """The exact optimum by trying every combination (only for the tiniest requests)."""
    problem = _Problem(request)
    if math.prod(len(choices) for choices in problem.choices) > limit:
        raise ValueError("too many combinations to enumerate")
    n_resources = len(request.resources)
    best: tuple[tuple[float, ...], tuple[int, ...]] | None = None
    for picks in itertools.product(*(range(len(choices)) for choices in problem.choices)):
        chosen = [problem.choices[i][k] for i, k in enumerate(picks)]
        used = [sum(choice.units[r] for choice in chosen) for r in range(n_resources)]
        if not problem.within_budgets(used):
            continue
        grouped = [
            sum(choice.units[r] for choice, member in zip(chosen, members, strict=True) if member)
            for (_, r), members in zip(problem.groups, problem.members, strict=True)
        ]
        if not problem.groups_ok(used, grouped):
            continue
        counts = [sum(choice.levels[t] for choice in chosen) for t in range(len(problem.tiers))]
        key = problem.rank_key(
            problem.shortfall(counts),
            math.fsum(choice.gmv for choice in chosen),
            math.fsum(choice.cost for choice in chosen),
        )
        if best is None or key < best[0]:
            best = (key, picks)
    if best is None:
        return Reference(feasible=False)
    return problem.reference(best[1])
