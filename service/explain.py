"""The `explanation` of every plan (docs/insight.md): what binds, what a little more would buy,
who just misses a tier, and what it would take to meet every target.

`explain_plans` runs once per solve, from `service.solving.solve_request`, so the API,
the CLI and the workers all get it. The cheap parts (`binding` from `service.binding`,
`near_misses` from `service.near_misses`) are computed for every plan; the parts that
re-solve are computed for rank 1 only, within `TIME_SHARE` of the request's
`time_limit_s` (each re-solve gets an equal share of what is left):

- `marginal_value` of every binding budget and group budget: a re-solve with that limit
  relaxed by `RELAX` (1%, at least one step). The value is honest in the sense that it
  is what a solve really finds: ΔGMV and Δ weighted shortfall between the re-solve and
  this plan, per unit of relaxation. For a budget, this plan with the extra handed out
  greedily on the exact curves (`extend`) is a floor the re-solve must beat: a re-solve
  that stops at its time limit below it does not set the price (`method: extension`).
  Where neither beats this plan, this plan itself — still feasible with the larger
  limit — is the answer, and the value is 0 with a note saying so. No dual prices;
  `proven` is true only when both solves proved optimality.
- `to_targets` when a target is missed: a `min_cost` solve with the budgets lifted
  `LIFT`-fold (a second time further if that was not enough). The budgets reported are
  what its plan spends, raised where a `max_share` or group cap needs a larger total,
  and never below today's; the plan is re-checked exactly under those budgets before
  they are reported (`verified`).

`scope` in the block says what was computed, how many re-solves ran and in how long.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from models.check import check_plan
from models.plan import NO_PACKAGE, Plan, SolveStatus, build_plan, curve_columns
from models.request import AllocationRequest, GroupBudget, MaxShare, Objective, Resource
from service.binding import find_binding
from service.near_misses import find_near_misses

SolveFunction = Callable[..., list[Plan]]
StopCheck = Callable[[], bool]

TIME_SHARE = 1.0  # of the request's time limit, for all re-solves together
MIN_SLICE_S = 0.5  # a re-solve is not started with less time than this
NEAR_MISS_SHARE = 0.25  # of the time limit, for pricing near misses
MIN_NEAR_MISS_S = 2.0
RELAX = 0.01
LIFT = (4.0, 16.0)
_NO_FAILURE = (SolveStatus.INFEASIBLE, SolveStatus.ERROR)


def explain_plans(
    request: AllocationRequest,
    plans: Sequence[Plan],
    *,
    solve: SolveFunction,
    should_stop: StopCheck | None = None,
) -> None:
    """Attach an `explanation` to every plan (re-solving for rank 1 only)."""
    for rank, plan in enumerate(plans, start=1):
        misses = request.options.near_misses if rank == 1 else 0
        seconds = max(NEAR_MISS_SHARE * request.options.time_limit_s, MIN_NEAR_MISS_S)
        started = time.monotonic()
        near = find_near_misses(request, plan, misses, seconds=seconds)
        took = time.monotonic() - started
        plan.explanation = {
            "binding": find_binding(request, plan),
            "near_misses": near,
            "to_targets": None,
            "scope": {
                "resolves": 0,
                "seconds": 0.0,
                "near_misses_seconds": round(took, 3),
                # Stopped at its time share: the cheapest found so far, maybe not overall.
                "near_misses_complete": took < seconds,
                "note": _scope_note(rank, plan),
            },
        }
    if plans and plans[0].solver.status not in _NO_FAILURE:
        _Resolver(request, plans[0], solve, should_stop).run()


RANK_ONE = "near misses, marginal values and to_targets are computed for rank 1 only"


def _scope_note(rank: int, plan: Plan) -> str:
    if rank > 1:
        return RANK_ONE
    if plan.solver.status in _NO_FAILURE:
        return f"no re-solves: the plan is {plan.solver.status}"
    return "no re-solves"


class _Resolver:
    def __init__(
        self,
        request: AllocationRequest,
        plan: Plan,
        solve: SolveFunction,
        should_stop: StopCheck | None,
    ) -> None:
        self.request = request
        self.plan = plan
        self.solve = solve
        self.should_stop = should_stop
        self.started = time.monotonic()
        self.deadline = self.started + TIME_SHARE * request.options.time_limit_s
        self.resolves = 0
        self.skipped = 0

    def run(self) -> None:
        assert self.plan.explanation is not None
        binding = self.plan.explanation["binding"]
        relaxable = [entry for entry in binding if entry["kind"] in ("budget", "group_budget")]
        missed = self.plan.objective.weighted_shortfall > 0
        pending = len(relaxable) + (1 if missed else 0)
        if missed:  # first: when time runs short, what meeting the targets takes matters most
            self.plan.explanation["to_targets"] = self._to_targets(pending)
            pending -= 1
        for entry in relaxable:
            entry["marginal_value"] = self._marginal(entry, pending)
            pending -= 1
        self.plan.explanation["scope"] = {
            **self.plan.explanation["scope"],
            "resolves": self.resolves,
            "skipped": self.skipped,
            "seconds": round(time.monotonic() - self.started, 3),
            "time_limit_s": round(TIME_SHARE * self.request.options.time_limit_s, 3),
            "note": RANK_ONE,
        }

    # -- re-solving ---------------------------------------------------------------------

    def _slice(self, pending: int) -> float | None:
        left = self.deadline - time.monotonic()
        if left < MIN_SLICE_S or (self.should_stop is not None and self.should_stop()):
            self.skipped += 1
            return None
        return max(left / max(pending, 1), MIN_SLICE_S)

    def _resolve(self, request: AllocationRequest, seconds: float) -> Plan | None:
        options = replace(request.options, plans=1, time_limit_s=seconds)
        self.resolves += 1
        try:
            plans = self.solve(replace(request, options=options), should_stop=self.should_stop)
        except Exception:  # an explanation must never fail the solve it explains
            return None
        return plans[0] if plans and plans[0].solver.status not in _NO_FAILURE else None

    def _marginal(self, entry: dict[str, Any], pending: int) -> dict[str, Any] | None:
        relaxed, delta = _relaxed(self.request, entry)
        seconds = self._slice(pending)
        if seconds is None or delta <= 0:
            return None
        found = resolved = self._resolve(relaxed, seconds)
        method, note = "resolve", None
        if entry["kind"] == "budget":
            extended = extend(relaxed, self.plan, entry["resource"], delta)
            if extended is not None and (
                found is None or plan_key(self.request, extended) < plan_key(self.request, found)
            ):
                found, method = extended, "extension"
                note = "the re-solve found less than this plan with the extra spent greedily"
        if found is None or plan_key(self.request, found) > plan_key(self.request, self.plan):
            if not _still_valid(relaxed, self.plan):
                return None
            found, note = self.plan, "the re-solve found no better plan than this one"
        return {
            "per_unit": 1,
            "gmv": (found.objective.total_projected_gmv - self.plan.objective.total_projected_gmv)
            / delta,
            "weighted_shortfall": (
                found.objective.weighted_shortfall - self.plan.objective.weighted_shortfall
            )
            / delta,
            "method": method,
            "delta": delta,
            # The re-solve's own outcome, whichever plan set the value.
            "status": str(resolved.solver.status) if resolved else "failed",
            "mip_gap": _number(resolved.solver.mip_gap) if resolved else None,
            # Both solves proven optimal: the value is the true difference, not MIP noise.
            "proven": self.plan.solver.status is SolveStatus.OPTIMAL
            and resolved is not None
            and resolved.solver.status is SolveStatus.OPTIMAL
            and method == "resolve",
            "note": note,
        }

    def _to_targets(self, pending: int) -> dict[str, Any] | None:
        result = None
        for factor in LIFT:
            seconds = self._slice(pending)
            if seconds is None:
                break
            lifted = _lifted(self.request, factor)
            found = self._resolve(lifted, seconds)
            if found is None:
                continue
            result = _needed_budgets(self.request, lifted, found, factor)
            if result["met"]:
                break
        return result


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def plan_key(request: AllocationRequest, plan: Plan) -> tuple[float, float]:
    """Smaller is better, by the request's objective."""
    objective = plan.objective
    if request.objective is Objective.MAX_GMV:
        return (0.0, -objective.total_projected_gmv)
    if request.objective is Objective.MIN_COST:
        return (objective.weighted_shortfall, objective.total_cost)
    return (objective.weighted_shortfall, -objective.total_projected_gmv)


def _relaxed(request: AllocationRequest, entry: dict[str, Any]) -> tuple[AllocationRequest, float]:
    """The request with the entry's limit relaxed by RELAX, and by how many units."""
    resource = request.resource(entry["resource"])
    budget = resource.budget or 0.0
    if entry["kind"] == "budget":
        delta = _round_up(RELAX * budget, resource)
        resources = tuple(
            replace(r, budget=budget + delta) if r.name == resource.name else r
            for r in request.resources
        )
        return replace(request, resources=resources), delta
    rules = []
    delta = 0.0
    for rule in request.constraints:
        if isinstance(rule, GroupBudget) and _same_group(rule, entry):
            if entry["side"] == "max":
                share = min(1.0, rule.max_share * (1 + RELAX))
                delta = (share - rule.max_share) * budget
                rule = replace(rule, max_share=share)
            else:
                share = rule.min_share * (1 - RELAX)
                delta = (rule.min_share - share) * budget
                rule = replace(rule, min_share=share)
        rules.append(rule)
    return replace(request, constraints=tuple(rules)), delta


def _same_group(rule: GroupBudget, entry: dict[str, Any]) -> bool:
    return (
        rule.resource == entry["resource"]
        and dict(rule.where.conditions) == entry["where"]
        and rule.max_share == entry["max_share"]
        and rule.min_share == entry["min_share"]
    )


def _round_up(amount: float, resource: Resource) -> float:
    if resource.step:
        return max(math.ceil(amount / resource.step - 1e-9), 1) * resource.step
    return max(amount, 1.0)


def _lifted(request: AllocationRequest, factor: float) -> AllocationRequest:
    """Budgets × factor, `min_cost`; each partner's `max_share` cap kept at today's amount
    (else the lifted caps would inflate the budget the share rule then asks for)."""
    resources = tuple(
        replace(r, budget=r.budget * factor) if r.budget is not None else r
        for r in request.resources
    )
    rules = tuple(
        replace(rule, max_share=rule.max_share / factor) if isinstance(rule, MaxShare) else rule
        for rule in request.constraints
    )
    return replace(request, resources=resources, constraints=rules, objective=Objective.MIN_COST)


def plan_amounts(request: AllocationRequest, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """A plan's curve amounts and package choices, as `models.plan.build_plan` takes them."""
    index = {partner.id: i for i, partner in enumerate(request.partners)}
    names = [resource.name for resource in request.resources]
    amounts = np.zeros((len(request.partners), len(names)))
    choice = np.full(len(request.partners), NO_PACKAGE, dtype=np.intp)
    for allocation in plan.allocations:
        i = index[allocation.partner_id]
        partner = request.partners[i]
        amounts[i] = [allocation.amounts.get(name, 0.0) for name in names]
        if allocation.package is not None:
            k = next(k for k, p in enumerate(partner.packages) if p.name == allocation.package)
            choice[i] = k
            amounts[i] -= [partner.packages[k].amounts.get(name, 0.0) for name in names]
    return np.maximum(amounts, 0.0), choice


def rebuild(request: AllocationRequest, plan: Plan) -> Plan:
    """`plan`'s amounts evaluated under `request` (other budgets, say)."""
    amounts, choice = plan_amounts(request, plan)
    return build_plan(
        request, amounts, plan.solver, package_choice=choice, rank=plan.rank, label=plan.label
    )


EXTENSION_CHUNKS = 50


def extend(request: AllocationRequest, plan: Plan, resource: str, delta: float) -> Plan | None:
    """`plan` with `delta` more of `resource` handed out greedily, chunk by chunk, to the
    partner whose exact GMV gains most — a feasible plan under `request` (the relaxed one)
    that a re-solve must beat, so MIP noise never prices extra budget below it."""
    r = [res.name for res in request.resources].index(resource)
    spec = request.resources[r]
    amounts, choice = plan_amounts(request, plan)
    pins = request.pins()
    upper = np.array(
        [
            request.amount_range(p, resource)[1]
            if request.eligible(p, resource)
            and resource in p.curves
            and (p.id, resource) not in pins
            and choice[i] == NO_PACKAGE
            else 0.0
            for i, p in enumerate(request.partners)
        ]
    )
    minimum = np.array([request.amount_range(p, resource)[0] for p in request.partners])
    chunk = delta / EXTENSION_CHUNKS
    if spec.step:
        chunk = max(round(chunk / spec.step), 1) * spec.step
    column = curve_columns(request)[r]
    left = delta
    while left >= chunk - 1e-9:
        current = amounts[:, r]
        after = current + chunk
        allowed = (after <= upper * (1 + 1e-12)) & (after >= minimum)
        if not allowed.any():
            break
        gains = np.where(allowed, column.value(after) - column.value(current), -np.inf)
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        amounts[best, r] = after[best]
        left -= chunk
    extended = build_plan(request, amounts, plan.solver, package_choice=choice, rank=plan.rank)
    return None if check_plan(request, extended) else extended


def _still_valid(request: AllocationRequest, plan: Plan) -> bool:
    return not check_plan(request, rebuild(request, plan))


def _needed_budgets(
    request: AllocationRequest, lifted: AllocationRequest, found: Plan, factor: float
) -> dict[str, Any]:
    """The least budgets under which `found` (solved with budgets × factor) still holds."""
    spent = {report.name: report.allocated for report in found.resources}
    amounts, _ = plan_amounts(lifted, found)
    needed: dict[str, float] = {}
    for r, resource in enumerate(request.resources):
        need = max(resource.budget or 0.0, spent[resource.name])
        for rule in request.constraints:
            if isinstance(rule, MaxShare) and rule.resource == resource.name:
                need = max(need, float(amounts[:, r].max()) / rule.max_share)
            if isinstance(rule, GroupBudget) and rule.resource == resource.name:
                members = [i for i, p in enumerate(request.partners) if rule.where.matches(p)]
                need = max(need, float(amounts[members, r].sum()) / rule.max_share)
        needed[resource.name] = _round_up(need, resource) if resource.step else need
    verified = _verified(request, needed, found)
    note = None
    if not verified:
        needed = {r.name: r.budget for r in lifted.resources if r.budget is not None}
        note = f"budgets ×{factor:g}: the cheapest plan needs them as lifted (a group floor)"
    extra = {r.name: max(0.0, needed[r.name] - r.budget) for r in request.resources if r.budget}
    return {
        "met": found.objective.weighted_shortfall == 0,
        "budgets": {name: value for name, value in needed.items() if value},
        "extra": extra,
        "extra_cost": sum(request.resource(name).unit_cost * v for name, v in extra.items()),
        "weighted_shortfall": found.objective.weighted_shortfall,
        "status": str(found.solver.status),
        "verified": verified or _verified(request, needed, found),
        "note": note,
    }


def _verified(request: AllocationRequest, budgets: dict[str, float], found: Plan) -> bool:
    resources = tuple(
        replace(r, budget=budgets[r.name]) if r.budget is not None else r for r in request.resources
    )
    return _still_valid(replace(request, resources=resources), found)
