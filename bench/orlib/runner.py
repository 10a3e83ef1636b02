"""Solving one instance and checking the plan against the instance data and references."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.orlib.data import Instance, MkpInstance, Reference
from bench.orlib.mapping import through_json, to_request
from models.check import check_plan
from models.plan import Plan
from models.request import Options
from optimizer import solve

# A value this close (relative) to a reference counts as equal: mknap1 problem 2 has
# fractional profits, and CSV references carry about 6 significant digits at worst.
MATCH_REL_TOL = 1e-9
# Requests up to this many packages also go through the JSON wire format before solving.
ROUND_TRIP_MAX_PACKAGES = 20_000
# A best bound within this (relative) of the value certifies it optimal.
PROOF_REL_TOL = 1e-9


# Independent evaluation of a plan against the instance data (not the request)


def plan_choice(instance: Instance, plan: Plan) -> list[int]:
    """Per item (MKP: 1 taken, 0 not) or group (MMKP: option index, -1 none), from the
    plan's allocations."""
    chosen = {a.partner_id: a.package for a in plan.allocations if a.package is not None}
    if isinstance(instance, MkpInstance):
        return [int(chosen.get(f"item{j + 1}") == "take") for j in range(instance.n)]
    return [
        int(package.removeprefix("option")) if package is not None else -1
        for package in (chosen.get(f"group{g + 1}") for g in range(instance.n))
    ]


def choice_value(instance: Instance, choice: Sequence[int]) -> tuple[float, list[str]]:
    """The knapsack value of a choice (as `plan_choice` returns it), computed from the
    instance data alone, and what is wrong with it (capacity overruns, groups without
    exactly one option)."""
    problems: list[str] = []
    used = np.zeros(instance.m)
    value = 0.0
    if isinstance(instance, MkpInstance):
        taken = np.asarray(choice, dtype=bool)
        value = float(instance.profits[taken].sum())
        used = instance.weights[:, taken].sum(axis=1)
    else:
        for g, k in enumerate(choice):
            if not 0 <= k < instance.options:
                problems.append(f"group{g + 1} has no option")
                continue
            value += float(instance.values[g, k])
            used += instance.weights[g, k]
    for i in np.nonzero(used > instance.capacities + 1e-9)[0]:
        problems.append(f"c{i + 1} uses {used[i]:g} > capacity {instance.capacities[i]:g}")
    return value, problems


@dataclass
class RunResult:
    instance: str
    n: int
    m: int
    engine: str
    best_known: float | None
    known_optimal: bool
    upper_bound: float | None
    ours: float | None = None
    status: str = "error"
    mip_gap: float | None = None
    best_bound: float | None = None
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def gap(self) -> float | None:
        """(best known − ours) / best known: negative when we beat the reference."""
        if self.ours is None or not self.best_known:
            return None
        return (self.best_known - self.ours) / abs(self.best_known)

    @property
    def matched(self) -> bool:
        """Reached the best-known value (or beat it), with a plan that checks clean."""
        gap = self.gap
        return gap is not None and gap <= MATCH_REL_TOL and not self.violations

    @property
    def proven(self) -> bool:
        """The optimizer itself reports the plan optimal (status `optimal`)."""
        return self.status == "optimal"

    @property
    def certified(self) -> bool:
        """The reported best bound equals our value (up to float noise), whatever the status."""
        if self.ours is None or self.best_bound is None:
            return False
        return self.best_bound - self.ours <= PROOF_REL_TOL * max(1.0, abs(self.ours))


def run_instance(
    instance: Instance,
    *,
    engine: str = "highs",
    time_limit_s: float = 60.0,
    mip_gap: float = 0.0,
    references: dict[str, Reference] | None = None,
    round_trip: bool | None = None,
) -> RunResult:
    """Solve one instance through `optimizer.solve` and check the result three ways:
    `models.check.check_plan`, the plan's own GMV against the instance value recomputed
    from its package choices, and that value against the references."""
    reference = (references or {}).get(instance.id)
    best_known = reference.best_known if reference else None
    # The data file's own optimum is exact; best_known.csv prints some with 6 digits.
    if instance.stated_optimum is not None:
        best_known = instance.stated_optimum
    result = RunResult(
        instance=instance.id,
        n=instance.n,
        m=instance.m,
        engine=engine,
        best_known=best_known,
        known_optimal=reference.is_optimal if reference else instance.stated_optimum is not None,
        upper_bound=reference.upper_bound if reference else None,
    )
    options = Options(time_limit_s=time_limit_s, mip_gap=mip_gap, plans=1, engine=engine)
    request = to_request(instance, options)
    packages = sum(len(p.packages) for p in request.partners)
    if round_trip if round_trip is not None else packages <= ROUND_TRIP_MAX_PACKAGES:
        request = through_json(request)
    started = time.perf_counter()
    try:
        plans = solve(request)
    except Exception as error:  # a benchmark row reports the failure and the run goes on
        result.seconds = time.perf_counter() - started
        result.error = f"{type(error).__name__}: {error}"
        return result
    result.seconds = time.perf_counter() - started
    plan = plans[0]
    if plan.solver.engine != engine:  # `auto` names what it picked
        result.engine = f"{engine}→{plan.solver.engine}"
    result.status = str(plan.solver.status)
    result.mip_gap = plan.solver.mip_gap
    result.best_bound = plan.solver.best_bound
    result.violations = check_plan(request, plan)
    if plan.solver.status in ("optimal", "feasible", "time_limit"):
        value, problems = choice_value(instance, plan_choice(instance, plan))
        result.ours = value
        result.violations += problems
        if not math.isclose(value, plan.objective.total_projected_gmv, rel_tol=1e-9, abs_tol=1e-9):
            result.violations.append(
                f"plan reports GMV {plan.objective.total_projected_gmv:g}, choices are worth "
                f"{value:g}"
            )
    return result
