"""The independent exact checker every plan passes before it leaves.

It is deliberately an independent code path: it shares no evaluation code with
`models.plan` or with the vectorised formula table of `models.curves` that every engine
uses. Every figure is recomputed partner by partner in scalar Python, with its own curve
formulas (`models.scalar_curves`), so a bug in the shared formulas, the plan builder or an
engine cannot hide behind the same bug here. Keep it that way.

What is a violation:

* Hard constraints — always: known partners and resources, finite non-negative amounts,
  budgets, per-partner bounds (`Bounds.max`, default the budget, tightened by `max_share`),
  semi-continuous mins, steps, eligibility (curve or package needed), package consistency.
  Pins, `group_budget` shares and `one_package` also bind, except in a plan whose solver
  status is `infeasible` or `error`: such a plan reports that no allocation meeting them
  was found, so only the never-negotiable rules above are checked on it. An `infeasible`
  plan must name its binding constraints (the spec promises to say which bind).
* Reported figures — always: every number a plan reports must be recomputable from the
  request and the plan's amounts (projected and incremental GMV, tier reached, tier counts
  over all partners, shortfall, weighted shortfall, cost, spend, utilization), and every
  partner with a non-zero amount, a package or a tier must have an allocation.
* Tier targets and `group_count` minimums are *not* violations when missed: falling short
  is what the shortfall figures report.

Tolerances:

* Amounts (budgets, bounds, mins, pins, shares) use the relative `tol` (default 1e-6) of
  the bound compared against, or of the resource's natural unit (its step, else its budget,
  else 1) when that bound is zero. Steps: `amount / step` within `tol` of an integer.
* Money figures use `MONEY_RTOL` (1e-9) of the magnitude of the terms involved (so an
  incremental GMV is judged against the baseline it was subtracted from) plus
  `MONEY_ATOL` (1e-6 CNY).
* Tier membership: a partner reaches a tier when its GMV ≥ the tier's `min_gmv`. Where the
  plan's reported GMV and the recomputed one differ only by float rounding
  (`ROUNDING_RTOL`), the reported value decides, so a partner sitting exactly on a
  threshold is not flagged for an ulp.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from models.plan import Allocation, Plan, SolveStatus, TierReport
from models.request import (
    AllocationRequest,
    Bounds,
    DomainError,
    GroupBudget,
    MaxShare,
    OnePackage,
    Package,
    Partner,
    Resource,
)
from models.scalar_curves import uplift

MONEY_RTOL = 1e-9
MONEY_ATOL = 1e-6
ROUNDING_RTOL = 1e-12

# Statuses under which a plan only reports that the lower-side rules cannot be met.
_RELAXED_STATUSES = frozenset({SolveStatus.INFEASIBLE, SolveStatus.ERROR})


class PlanCheckError(DomainError):
    """A plan broke a guarantee; `violations` lists every problem found."""

    def __init__(self, violations: Iterable[str]):
        self.violations = list(violations)
        shown = "; ".join(self.violations[:10])
        more = len(self.violations) - 10
        super().__init__(
            f"plan fails {len(self.violations)} check(s): {shown}"
            + (f"; … and {more} more" if more > 0 else "")
        )


def assert_plan_valid(request: AllocationRequest, plan: Plan, *, tol: float = 1e-6) -> None:
    violations = check_plan(request, plan, tol=tol)
    if violations:
        raise PlanCheckError(violations)


def check_plan(request: AllocationRequest, plan: Plan, *, tol: float = 1e-6) -> list[str]:
    """Every way `plan` breaks the request's hard constraints or misreports a figure."""
    return _Checker(request, plan, tol).run()


@dataclass
class _PartnerState:
    partner: Partner
    allocation: Allocation | None
    totals: dict[str, float]  # reported amounts, package included
    package: Package | None
    curve_amounts: dict[str, float]  # totals minus the package's amounts
    gmv: float = math.nan  # recomputed exactly
    tier_gmv: float = math.nan  # the value tier membership is decided on


def _money_close(reported: float, expected: float, *scale: float) -> bool:
    magnitude = max([abs(reported), abs(expected), *map(abs, scale)])
    return math.isfinite(reported) and abs(reported - expected) <= (
        MONEY_RTOL * magnitude + MONEY_ATOL
    )


class _Checker:
    def __init__(self, request: AllocationRequest, plan: Plan, tol: float):
        self.request = request
        self.plan = plan
        self.tol = tol
        self.violations: list[str] = []
        self.resources = {resource.name: resource for resource in request.resources}
        self.relaxed = plan.solver.status in _RELAXED_STATUSES
        self.pins = request.pins()

    def fail(self, message: str) -> None:
        self.violations.append(message)

    def run(self) -> list[str]:
        states = self._partner_states()
        for state in states:
            self._check_amounts(state)
        self._check_budgets(states)
        self._check_rules(states)
        for state in states:
            state.gmv = self._exact_gmv(state)
        self._check_allocation_figures(states)
        self._check_plan_figures(states)
        status = self.plan.solver.status
        if status is SolveStatus.INFEASIBLE and not self.plan.binding_constraints:
            self.fail(f"plan status {status} names no binding constraints")
        return self.violations

    # -- amounts -------------------------------------------------------------------------

    def unit(self, resource: Resource) -> float:
        """The resource's natural unit: what 'relative' means for a bound of zero."""
        if resource.step:
            return resource.step
        if resource.budget:
            return resource.budget
        return 1.0

    def le(self, value: float, bound: float, resource: Resource) -> bool:
        return value <= bound + self.tol * max(abs(bound), self.unit(resource))

    def is_zero(self, value: float, resource: Resource) -> bool:
        return abs(value) <= self.tol * self.unit(resource)

    def _partner_states(self) -> list[_PartnerState]:
        partners = {partner.id: partner for partner in self.request.partners}
        by_partner: dict[str, Allocation] = {}
        for entry in self.plan.allocations:
            pid = entry.partner_id
            if pid not in partners:
                self.fail(f"allocation for unknown partner {pid!r}")
            elif pid in by_partner:
                self.fail(f"partner {pid!r} has more than one allocation")
            else:
                by_partner[pid] = entry

        states = []
        for partner in self.request.partners:
            allocation = by_partner.get(partner.id)
            totals = {name: 0.0 for name in self.resources}
            package = None
            if allocation is not None:
                for name, amount in allocation.amounts.items():
                    if name not in self.resources:
                        self.fail(f"partner {partner.id!r}: amount for unknown resource {name!r}")
                    elif not isinstance(amount, int | float) or not math.isfinite(amount):
                        self.fail(f"partner {partner.id!r}: {name} amount {amount!r} is not finite")
                    else:
                        totals[name] = float(amount)
                package = self._package(partner, allocation.package)
            curve_amounts = dict(totals)
            if package is not None:
                for name, amount in package.amounts.items():
                    if name in curve_amounts:
                        curve_amounts[name] -= amount
            states.append(_PartnerState(partner, allocation, totals, package, curve_amounts))
        return states

    def _package(self, partner: Partner, name: str | None) -> Package | None:
        if name is None:
            return None
        for package in partner.packages:
            if package.name == name:
                return package
        self.fail(f"partner {partner.id!r}: package {name!r} is not one of its packages")
        return None

    def _check_amounts(self, state: _PartnerState) -> None:
        partner = state.partner
        pid = partner.id
        for name, resource in self.resources.items():
            total = state.totals[name]
            curve_amount = state.curve_amounts[name]
            where = f"partner {pid!r}, {name}"
            if total < 0 and not self.is_zero(total, resource):
                self.fail(f"{where}: negative amount {total:g}")
                continue
            if state.package is not None and not self.is_zero(min(curve_amount, 0.0), resource):
                self.fail(
                    f"{where}: amount {total:g} is less than package "
                    f"{state.package.name!r} holds ({state.package.amounts[name]:g})"
                )
                continue
            if not self.is_zero(total, resource) and not self.request.eligible(partner, name):
                self.fail(f"{where}: amount {total:g} but the partner is not eligible")
                continue
            if not self.is_zero(curve_amount, resource) and name not in partner.curves:
                self.fail(
                    f"{where}: amount {curve_amount:g} outside a package but the partner "
                    f"has no {name} curve"
                )
                continue
            pin = self.pins.get((pid, name))
            if pin is not None:
                # A pin fixes the amount: it overrides bounds, mins and steps by intent.
                if not self.relaxed and abs(total - pin) > self.tol * max(
                    abs(pin), self.unit(resource)
                ):
                    self.fail(f"{where}: pinned at {pin:g} but gets {total:g}")
                continue
            self._check_bounds(where, partner, resource, curve_amount)

    def _check_bounds(
        self, where: str, partner: Partner, resource: Resource, amount: float
    ) -> None:
        """Bounds, mins and steps apply to what a partner gets outside its package: a
        package is a bundle priced whole by the planner."""
        if self.is_zero(amount, resource):
            return
        bounds = partner.bounds.get(resource.name, Bounds())
        upper = math.inf if bounds.max is None else bounds.max
        why = "its max bound"
        if resource.budget is not None:
            if resource.budget < upper:
                upper, why = resource.budget, "the budget"
            for rule in self.request.constraints:
                if isinstance(rule, MaxShare) and rule.resource == resource.name:
                    share = rule.max_share * resource.budget
                    if share < upper:
                        upper, why = share, f"max_share {rule.max_share:g} of the budget"
        if not self.le(amount, upper, resource):
            self.fail(f"{where}: amount {amount:g} exceeds {why} ({upper:g})")
        if bounds.min > 0 and amount < bounds.min - self.tol * max(bounds.min, self.unit(resource)):
            self.fail(f"{where}: amount {amount:g} is neither 0 nor at least min {bounds.min:g}")
        if resource.step:
            multiple = amount / resource.step
            if abs(multiple - round(multiple)) > self.tol:
                self.fail(f"{where}: amount {amount:g} is not a multiple of step {resource.step:g}")

    def _check_budgets(self, states: list[_PartnerState]) -> None:
        for name, resource in self.resources.items():
            spent = math.fsum(state.totals[name] for state in states)
            if resource.budget is not None and not self.le(spent, resource.budget, resource):
                self.fail(f"{name}: allocated {spent:g} exceeds the budget {resource.budget:g}")

    def _check_rules(self, states: list[_PartnerState]) -> None:
        if self.relaxed:
            return
        for rule in self.request.constraints:
            if isinstance(rule, GroupBudget):
                self._check_group_budget(rule, states)
            elif isinstance(rule, OnePackage):
                for state in states:
                    partner = state.partner
                    if partner.packages and rule.where.matches(partner) and state.package is None:
                        self.fail(f"partner {partner.id!r}: one_package rule but no package")

    def _check_group_budget(self, rule: GroupBudget, states: list[_PartnerState]) -> None:
        resource = self.resources.get(rule.resource)
        if resource is None:
            self.fail(f"group_budget rule names unknown resource {rule.resource!r}")
            return
        spent = [state.totals[rule.resource] for state in states]
        # With no budget the shares are of what is allocated in total.
        base = resource.budget if resource.budget is not None else math.fsum(spent)
        group = math.fsum(
            amount
            for state, amount in zip(states, spent, strict=True)
            if rule.where.matches(state.partner)
        )
        slack = self.tol * max(base, self.unit(resource))
        low, high = rule.min_share * base, rule.max_share * base
        if group < low - slack or group > high + slack:
            self.fail(
                f"group_budget on {rule.resource} where {dict(rule.where.conditions)}: "
                f"group gets {group:g}, outside [{low:g}, {high:g}]"
            )

    # -- figures -------------------------------------------------------------------------

    def _exact_gmv(self, state: _PartnerState) -> float:
        partner = state.partner
        terms = [partner.baseline_gmv]
        for name, curve in partner.curves.items():
            terms.append(uplift(curve, state.curve_amounts.get(name, 0.0)))
        if state.package is not None:
            terms.append(state.package.uplift)
        return math.fsum(terms)

    def _tier_level(self, gmv: float) -> str | None:
        reached = None
        for tier in sorted(self.request.tiers, key=lambda tier: tier.min_gmv):
            if gmv >= tier.min_gmv:
                reached = tier.name
        return reached

    def _check_allocation_figures(self, states: list[_PartnerState]) -> None:
        for state in states:
            partner, allocation, gmv = state.partner, state.allocation, state.gmv
            state.tier_gmv = gmv
            if allocation is None:
                if self._tier_level(gmv) is not None:
                    self.fail(
                        f"partner {partner.id!r} reaches tier {self._tier_level(gmv)!r} "
                        "but has no allocation"
                    )
                continue
            pid = partner.id
            reported = allocation.projected_gmv
            if not _money_close(allocation.baseline_gmv, partner.baseline_gmv):
                self.fail(
                    f"partner {pid!r}: baseline_gmv {allocation.baseline_gmv!r}, "
                    f"expected {partner.baseline_gmv!r}"
                )
            if not _money_close(reported, gmv, partner.baseline_gmv):
                self.fail(f"partner {pid!r}: projected_gmv {reported!r}, exact {gmv!r}")
            elif abs(reported - gmv) <= ROUNDING_RTOL * max(abs(gmv), 1.0):
                state.tier_gmv = reported
            if not _money_close(allocation.incremental_gmv, gmv - partner.baseline_gmv, gmv):
                self.fail(
                    f"partner {pid!r}: incremental_gmv {allocation.incremental_gmv!r}, "
                    f"exact {gmv - partner.baseline_gmv!r}"
                )
            level = self._tier_level(state.tier_gmv)
            if allocation.tier != level:
                self.fail(
                    f"partner {pid!r}: tier {allocation.tier!r} but its exact GMV "
                    f"{gmv:.17g} reaches {level!r}"
                )

    def _check_plan_figures(self, states: list[_PartnerState]) -> None:
        plan, request = self.plan, self.request
        mode = str(request.objective)
        if plan.objective.mode != mode:
            self.fail(f"objective.mode {plan.objective.mode!r}, request asks {mode!r}")

        reported_tiers: dict[str, TierReport] = {}
        for entry in plan.tiers:
            if entry.name in reported_tiers:
                self.fail(f"tier {entry.name!r} reported twice")
            reported_tiers[entry.name] = entry
        weighted = 0.0
        for tier in request.tiers:
            achieved = sum(1 for state in states if state.tier_gmv >= tier.min_gmv)
            shortfall = max(0, tier.target - achieved)
            weighted += tier.weight * shortfall
            tier_report = reported_tiers.get(tier.name)
            if tier_report is None:
                self.fail(f"tier {tier.name!r} missing from the plan's tiers")
                continue
            expected = (tier.min_gmv, tier.target, achieved, shortfall)
            got = (
                tier_report.min_gmv,
                tier_report.target,
                tier_report.achieved,
                tier_report.shortfall,
            )
            if got != expected:
                self.fail(
                    f"tier {tier.name!r}: reported (min_gmv, target, achieved, shortfall) "
                    f"{got}, exact {expected}"
                )
        for name in reported_tiers.keys() - {tier.name for tier in request.tiers}:
            self.fail(f"plan reports unknown tier {name!r}")
        if abs(plan.objective.weighted_shortfall - weighted) > 1e-9 * max(1.0, weighted):
            self.fail(
                f"objective.weighted_shortfall {plan.objective.weighted_shortfall!r}, "
                f"exact {weighted!r}"
            )

        costs = []
        reported_resources = {report.name: report for report in plan.resources}
        if len(reported_resources) != len(plan.resources):
            self.fail("a resource is reported twice")
        for name, resource in self.resources.items():
            allocated = math.fsum(state.totals[name] for state in states)
            costs.append(resource.unit_cost * allocated)
            report = reported_resources.get(name)
            if report is None:
                self.fail(f"resource {name!r} missing from the plan's resources")
                continue
            if report.budget != resource.budget:
                self.fail(
                    f"resource {name!r}: budget {report.budget!r}, request says {resource.budget!r}"
                )
            if not _money_close(report.allocated, allocated):
                self.fail(f"resource {name!r}: allocated {report.allocated!r}, exact {allocated!r}")
            if resource.budget:
                utilization = allocated / resource.budget
                if report.utilization is None or not abs(report.utilization - utilization) <= (
                    MONEY_RTOL * max(1.0, utilization) + 1e-12
                ):
                    self.fail(
                        f"resource {name!r}: utilization {report.utilization!r}, "
                        f"exact {utilization!r}"
                    )
            elif report.utilization is not None:
                self.fail(f"resource {name!r}: utilization {report.utilization!r} without a budget")
        for name in reported_resources.keys() - self.resources.keys():
            self.fail(f"plan reports unknown resource {name!r}")

        total_cost = math.fsum(costs)
        if not _money_close(plan.objective.total_cost, total_cost):
            self.fail(f"objective.total_cost {plan.objective.total_cost!r}, exact {total_cost!r}")
        total = math.fsum(state.gmv for state in states)
        baseline = math.fsum(state.partner.baseline_gmv for state in states)
        if not _money_close(plan.objective.total_projected_gmv, total):
            self.fail(
                f"objective.total_projected_gmv {plan.objective.total_projected_gmv!r}, "
                f"exact {total!r}"
            )
        if not _money_close(plan.objective.incremental_gmv, total - baseline, total, baseline):
            self.fail(
                f"objective.incremental_gmv {plan.objective.incremental_gmv!r}, "
                f"exact {total - baseline!r}"
            )
