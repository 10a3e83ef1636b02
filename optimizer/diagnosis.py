"""Why a plan misses its targets or a request cannot be met: the reasons a plan states in
its `binding_constraints` when the engine itself names none."""

from __future__ import annotations

from dataclasses import replace

from models.plan import Plan
from models.request import AllocationRequest, Constraint, GroupBudget, GroupCount, OnePackage, Pin
from optimizer.arrays import build_arrays
from optimizer.engines import milp_backend
from optimizer.milp import solve_milp

DIAGNOSIS_SECONDS = 5.0


def exhausted_resources(plan: Plan) -> list[str]:
    """Why targets are missed: the budgets a shortfall plan has (almost) used up."""
    return [
        f"budget of {r.name} ({r.utilization:.1%} used)"
        for r in plan.resources
        if r.utilization is not None and r.utilization >= 0.995
    ]


def describe(rule: Constraint) -> str:
    fields = {k: v for k, v in vars(rule).items() if k != "type"}
    if "where" in fields:
        fields["where"] = dict(fields["where"].conditions)
    return f"{rule.type} " + ", ".join(f"{k}={v}" for k, v in fields.items())


def diagnose_infeasible(request: AllocationRequest) -> list[str]:
    """The hard constraints whose removal alone makes the request feasible.

    Tier targets are soft (they become shortfall), so infeasibility comes from pins,
    group budgets, group counts or one-package rules clashing with budgets and bounds.
    """
    hard = [
        r for r in request.constraints if isinstance(r, Pin | GroupBudget | GroupCount | OnePackage)
    ]
    culprits = []
    for rule in hard:
        relaxed = replace(
            request,
            constraints=tuple(r for r in request.constraints if r is not rule),
            options=replace(
                request.options,
                plans=1,
                time_limit_s=DIAGNOSIS_SECONDS,
                engine="highs",
                mip_gap=0.5,
            ),
        )
        try:
            arrays = build_arrays(relaxed)
            outcome = solve_milp(arrays, milp_backend("highs"))
        except Exception:  # a relaxation that cannot be modelled tells us nothing
            continue
        if outcome.candidates:
            culprits.append(describe(rule))
    return culprits or [describe(rule) for rule in hard] or ["budgets and bounds"]
