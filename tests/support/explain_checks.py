"""Independent checks of a plan's explanation, by re-solving (shared by the explanation
tests on hand-made and on generated programmes)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from models.plan import Plan
from models.request import AllocationRequest
from optimizer import solve
from service.explain import extend, plan_key

# Two solves of the same request agree to within their MIP gaps: the stated tolerance of
# a marginal value's GMV against an independent re-solve is that, per unit of extra budget.
GAP_TOLERANCE = 2.0


def with_budgets(request: AllocationRequest, budgets: dict[str, float]) -> AllocationRequest:
    resources = tuple(
        replace(r, budget=budgets[r.name]) if r.name in budgets else r for r in request.resources
    )
    return replace(request, resources=resources)


def assert_marginal_value_holds(
    request: AllocationRequest, plan: Plan, entry: dict[str, Any]
) -> None:
    """A budget's marginal value agrees with a re-solve at budget + delta."""
    value = entry["marginal_value"]
    delta = value["delta"]
    budget = request.resource(entry["resource"]).budget
    assert budget is not None and delta >= 0.01 * budget
    relaxed = with_budgets(request, {entry["resource"]: budget + delta})
    # The explanation takes the best of a re-solve, this plan with the extra spent
    # greedily (`extend`) and this plan as it is; so does this independent check.
    extended = extend(relaxed, plan, entry["resource"], delta)
    candidates = [solve(relaxed)[0], plan, *([extended] if extended else [])]
    again = min(candidates, key=lambda found: plan_key(request, found))
    gain = again.objective.total_projected_gmv - plan.objective.total_projected_gmv
    tolerance = GAP_TOLERANCE * request.options.mip_gap * again.objective.total_projected_gmv
    assert abs(value["gmv"] * delta - gain) <= tolerance, entry
    shortfall = again.objective.weighted_shortfall - plan.objective.weighted_shortfall
    assert value["weighted_shortfall"] * delta == pytest.approx(shortfall, abs=1e-9)
