"""The `explanation` of every plan (docs/insight.md): what binds, what a little more would buy,
who just misses a tier, and what it would take to meet every target.

`explain_plans` runs once per solve, from `service.solving.solve_request`, so the API,
the CLI and the workers all get it, at the level the request's `options.explain` asks for
(else the caller's default): `full`, `basic` (no re-solves) or `none`. The cheap parts
(`binding` from `service.binding`, `near_misses` from `service.near_misses`) are computed
for every plan; the parts that re-solve for rank 1 only. The whole explanation runs within
`TIME_SHARE` of the request's `time_limit_s`; the re-solves run in parallel threads where
the plan's engine releases the interpreter (the MILP engines), each warm-started from the
plan, and stop as soon as the job is cancelled:

- `marginal_value` of every binding budget and group budget: a re-solve with that limit
  relaxed by `RELAX` (1%, at least one step). The value is honest in the sense that it
  is what a solve really finds: ΔGMV and Δ weighted shortfall between the re-solve and
  this plan, per unit of relaxation. For a budget, this plan with the extra handed out
  greedily on the exact curves (`extend`) is a floor the re-solve must beat: a re-solve
  that stops at its time limit below it does not set the price (`method: extension`).
  Where neither beats this plan, this plan itself — still feasible with the larger
  limit — is the answer, and the value is 0 with a note saying so. No dual prices;
  `proven` is true only when both solves proved optimality.
- `to_targets` when a target is missed: `service.to_targets`.

`scope` in the block says what was computed, how many re-solves ran and in how long.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from models.check import check_plan
from models.plan import NO_PACKAGE, Plan, SolveStatus, build_plan, curve_columns, projected_gmv
from models.request import EXPLAIN_LEVELS, AllocationRequest, GroupBudget, Objective, Resource
from optimizer.outcome import Candidate
from service.binding import find_binding
from service.near_misses import find_near_misses
from service.plan_amounts import plan_amounts, rebuild
from service.to_targets import NO_TIME, find_to_targets

log = logging.getLogger(__name__)

SolveFunction = Callable[..., list[Plan]]
StopCheck = Callable[[], bool]

FULL, BASIC, NONE = EXPLAIN_LEVELS
TIME_SHARE = 0.5  # of the request's time limit, for the whole explanation
NEAR_MISS_SHARE = 0.2  # of the time limit, for pricing near misses (the re-solves get the rest)
MIN_NEAR_MISS_S = 1.0
MIN_SLICE_S = 0.5  # a re-solve is not started with less time than this
TO_TARGETS_SHARE = 0.6  # of the re-solve time, when to_targets runs before the marginal ones
MAX_THREADS = 4
# Its work is Python holding the interpreter lock: threads would only slice it thinner.
SEQUENTIAL_ENGINES = frozenset({"decomposition"})
RELAX = 0.01
_NO_FAILURE = (SolveStatus.INFEASIBLE, SolveStatus.ERROR)


def explain_plans(
    request: AllocationRequest,
    plans: Sequence[Plan],
    *,
    solve: SolveFunction,
    should_stop: StopCheck | None = None,
    level: str = FULL,
) -> None:
    """Attach an `explanation` to every plan (re-solving for rank 1 only, at level `full`)."""
    if level == NONE:
        return
    limit = request.options.time_limit_s
    started = time.monotonic()
    for rank, plan in enumerate(plans, start=1):
        if _stopped(should_stop):
            return  # a cancelled job's plans are not a result
        misses = request.options.near_misses if rank == 1 else 0
        seconds = max(NEAR_MISS_SHARE * limit, MIN_NEAR_MISS_S)
        began = time.monotonic()
        near = find_near_misses(request, plan, misses, seconds=seconds, should_stop=should_stop)
        took = time.monotonic() - began
        plan.explanation = {
            "binding": find_binding(request, plan),
            "near_misses": near,
            "to_targets": None,
            "scope": {
                "level": level,
                "resolves": 0,
                "seconds": 0.0,
                "near_misses_seconds": round(took, 3),
                # Stopped at its time share: the cheapest found so far, maybe not overall.
                "near_misses_complete": took < seconds and not _stopped(should_stop),
                "note": _scope_note(rank, plan, level),
            },
        }
    if level == FULL and plans and plans[0].solver.status not in _NO_FAILURE:
        deadline = started + TIME_SHARE * limit
        _Resolver(request, plans[0], solve, should_stop, deadline).run()


RANK_ONE = "near misses, marginal values and to_targets are computed for rank 1 only"


def _stopped(should_stop: StopCheck | None) -> bool:
    return should_stop is not None and should_stop()


def _scope_note(rank: int, plan: Plan, level: str) -> str:
    if rank > 1:
        return RANK_ONE
    if plan.solver.status in _NO_FAILURE:
        return f"no re-solves: the plan is {plan.solver.status}"
    if level == BASIC:
        return "no re-solves (explain: basic): no marginal values or to_targets"
    return "no re-solves"


class _Resolver:
    def __init__(
        self,
        request: AllocationRequest,
        plan: Plan,
        solve: SolveFunction,
        should_stop: StopCheck | None,
        deadline: float,
    ) -> None:
        self.request = request
        self.plan = plan
        self.solve = solve
        self.should_stop = should_stop
        self.started = time.monotonic()
        self.deadline = deadline
        self.lock = threading.Lock()
        self.resolves = 0
        self.skipped = 0
        self.pending = 0  # re-solves expected and not yet started
        self.threads = 1
        # Seconds a re-solve took beyond the time it was given (building its arrays,
        # checking and rounding its plans: tens of seconds on 200,000+ partners). A
        # re-solve is started only with that much more than MIN_SLICE_S left.
        self.overhead = 0.0

    def run(self) -> None:
        assert self.plan.explanation is not None
        explanation = self.plan.explanation
        binding = explanation["binding"]
        relaxable = [entry for entry in binding if entry["kind"] in ("budget", "group_budget")]
        tasks: list[Callable[[], None]] = []

        def to_targets() -> None:
            explanation["to_targets"] = self._to_targets()

        def price(entry: dict[str, Any]) -> Callable[[], None]:
            return lambda: entry.update(marginal_value=self._price(entry))

        if self.plan.objective.weighted_shortfall > 0:
            # First: when time runs short, what meeting the targets takes matters most.
            tasks.append(to_targets)
        tasks.extend(price(entry) for entry in relaxable)
        self.pending = len(relaxable)  # marginal re-solves; to_targets has its own window
        self.threads = self._threads(len(tasks))
        if self.threads > 1:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="explain") as pool:
                list(pool.map(_guarded, tasks))
        else:
            for task in tasks:
                _guarded(task)
        explanation["scope"] = {
            **explanation["scope"],
            "resolves": self.resolves,
            "skipped": self.skipped,
            "threads": self.threads,
            "seconds": round(time.monotonic() - self.started, 3),
            "time_limit_s": round(TIME_SHARE * self.request.options.time_limit_s, 3),
            "note": RANK_ONE,
        }

    def _threads(self, tasks: int) -> int:
        if self.plan.solver.engine in SEQUENTIAL_ENGINES:
            return 1
        # Half the cores: the MILP engines run threads of their own. (On a loaded 2-core
        # machine two explanation threads were slower than one.)
        return max(1, min(tasks, MAX_THREADS, (os.cpu_count() or 1) // 2))

    # -- re-solving ---------------------------------------------------------------------

    def _slice(self, until: float | None = None, steps: int = 1) -> float | None:
        """Seconds for the next re-solve: up to `until` (else the deadline) shared among
        `steps` re-solves, or among the marginal re-solves still to start (as many run at
        once as there are threads); None to skip it."""
        with self.lock:
            now = time.monotonic()
            left = min(self.deadline, until or self.deadline) - now - self.overhead
            if left < MIN_SLICE_S or _stopped(self.should_stop):
                self.skipped += 1
                return None
            if until is not None:
                share = left / max(steps, 1)
            else:
                share = left * self.threads / max(self.pending, 1)
                self.pending = max(self.pending - 1, 0)
            self.resolves += 1
            return min(left, max(share, MIN_SLICE_S))

    def _resolve(self, request: AllocationRequest, seconds: float | None) -> Plan | None:
        if seconds is None:
            return None
        options = replace(request.options, plans=1, time_limit_s=seconds)
        began = time.monotonic()
        try:
            plans = self.solve(
                replace(request, options=options),
                # Engines overrun short limits (a CBC round is not interruptible): past the
                # explanation's deadline a re-solve stops as if cancelled, with its best.
                should_stop=lambda: _stopped(self.should_stop) or time.monotonic() > self.deadline,
                warm_start=_start(request, self.plan),
            )
        except Exception:  # an explanation must never fail the solve it explains
            log.exception("an explanation re-solve failed")
            return None
        finally:
            with self.lock:
                self.overhead = max(self.overhead, time.monotonic() - began - seconds)
        return plans[0] if plans and plans[0].solver.status not in _NO_FAILURE else None

    def _to_targets(self) -> dict[str, Any] | None:
        # Its own window: all the time when it runs beside the marginal re-solves or alone,
        # else TO_TARGETS_SHARE of it (it goes first, so it cannot take it all).
        alone = self.threads > 1 or self.pending == 0
        until = time.monotonic() + (self.deadline - time.monotonic()) * (
            1.0 if alone else TO_TARGETS_SHARE
        )

        def resolve(request: AllocationRequest, steps: int) -> Plan | None:
            return self._resolve(request, self._slice(until, steps))

        result = find_to_targets(self.request, self.plan, resolve)
        if result["reason"] == NO_TIME:
            return None  # skipped for time: `scope.skipped` says so
        return result

    def _price(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        relaxed, delta = _relaxed(self.request, entry)
        if delta <= 0:
            return None
        found = resolved = self._resolve(relaxed, self._slice())
        if resolved is None and (_stopped(self.should_stop) or time.monotonic() > self.deadline):
            return None  # no time left for the greedy extension either
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


def _guarded(task: Callable[[], None]) -> None:
    try:
        task()
    except Exception:  # an explanation must never fail the solve it explains
        log.exception("explaining a plan failed")


def _start(request: AllocationRequest, plan: Plan) -> Candidate | None:
    """`plan` as a warm start for `request` (a relaxed or lifted one), if it holds there."""
    amounts, choice = plan_amounts(request, plan)
    packages = choice if request.uses_packages else None
    if check_plan(request, build_plan(request, amounts, plan.solver, package_choice=packages)):
        return None
    return Candidate(amounts, packages)


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


EXTENSION_CHUNKS = 50


def extend(request: AllocationRequest, plan: Plan, resource: str, delta: float) -> Plan | None:
    """`plan` with `delta` more of `resource` handed out greedily — first to lift partners
    over missed tiers (cheapest lift first), then chunk by chunk to the partner whose exact
    GMV gains most — a feasible plan under `request` (the relaxed one) that a re-solve must
    beat, so MIP noise never prices extra budget below it."""
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
    if request.objective is not Objective.MAX_GMV:
        left = _lift_over_tiers(request, amounts, choice, r, upper, minimum, left)
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


def _lift_over_tiers(
    request: AllocationRequest,
    amounts: np.ndarray,
    choice: np.ndarray,
    r: int,
    upper: np.ndarray,
    minimum: np.ndarray,
    left: float,
) -> float:
    """Spend on the cheapest lifts of partners over tiers still short of their targets
    (amounts changed in place); what is left. A greedy by GMV never pays for a tier jump,
    and a re-solve cut short may miss one that `delta` buys."""
    column = curve_columns(request)[r]
    unit = request.resources[r].step or 1.0
    while left >= unit - 1e-9:
        gmv = projected_gmv(request, amounts, choice)
        current = amounts[:, r].copy()
        rest = gmv - column.value(current)
        top = np.minimum(current + left, upper)
        best: tuple[float, int, float] | None = None  # (cost per weight, partner, amount)
        for tier in request.tiers:
            if tier.weight <= 0 or np.count_nonzero(gmv >= tier.min_gmv) >= tier.target:
                continue
            can = (gmv < tier.min_gmv) & (rest + column.value(top) >= tier.min_gmv)
            if not can.any():
                continue
            lo, hi = current.copy(), top.copy()
            for _ in range(60):  # the least amount, by bisection (curves never fall)
                mid = (lo + hi) / 2
                enough = rest + column.value(mid) >= tier.min_gmv
                hi, lo = np.where(enough, mid, hi), np.where(enough, lo, mid)
            wanted = np.maximum(current + np.ceil((hi - current) / unit - 1e-9) * unit, minimum)
            fits = (
                can & (wanted <= top * (1 + 1e-12)) & (rest + column.value(wanted) >= tier.min_gmv)
            )
            if fits.any():
                cost = np.where(fits, (wanted - current) / tier.weight, np.inf)
                i = int(np.argmin(cost))
                if best is None or cost[i] < best[0]:
                    best = (float(cost[i]), i, float(wanted[i]))
        if best is None:
            break
        _, i, wanted_i = best
        left -= wanted_i - amounts[i, r]
        amounts[i, r] = wanted_i
    return left


def _still_valid(request: AllocationRequest, plan: Plan) -> bool:
    return not check_plan(request, rebuild(request, plan))
