"""What-if comparisons: a base request, named scenarios of changes, KPIs side by side.

Pure functions over domain objects (no Flask, no database): the CLI runs a comparison
sequentially with `run_comparison`; the API's jobs and the Celery fan-out build the
scenario requests with `prepare_scenarios`, solve them wherever they like, and hand the
outcomes to `summarize_comparison`.

A scenario whose changes cannot be applied, or whose solve fails, is reported as a failed
row with its error; it never takes the other scenarios down with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from models.plan import Plan
from models.request import AllocationRequest, DomainError
from models.scenario import BASE, apply_changes

SUCCEEDED = "succeeded"
FAILED = "failed"

# Per scenario, at most this many partners are listed in `differences` (the most
# significant first); the counts always cover every partner.
MAX_LISTED_DIFFERENCES = 50

SolveFunction = Callable[..., list[Plan]]
Progress = Callable[[str], Any]


class ScenarioOutcome(NamedTuple):
    name: str
    request: AllocationRequest | None
    plans: list[Plan] | None
    error: str | None


@dataclass(frozen=True)
class PreparedScenario:
    """A scenario ready to solve (`request`) or one whose changes failed (`error`)."""

    name: str
    request: AllocationRequest | None
    error: str | None = None


class ScenarioError(DomainError):
    """A scenario's changes cannot be applied to the base request."""


def _name_and_changes(scenario: Any) -> tuple[str, Mapping[str, Any]]:
    # Scenarios arrive as the API's JSON dicts or as parsed scenario objects.
    if isinstance(scenario, Mapping):
        return str(scenario.get("name", "")), scenario.get("changes") or {}
    return str(scenario.name), scenario.changes or {}


def _error_text(error: BaseException) -> str:
    messages = getattr(error, "messages", None)
    if messages:
        return f"{error.__class__.__name__}: {_flatten_messages(messages)}"
    return f"{error.__class__.__name__}: {error}"


def _flatten_messages(messages: Any, prefix: str = "") -> str:
    """marshmallow-style nested messages as `field.path: message; ...`."""
    if isinstance(messages, Mapping):
        parts = [
            _flatten_messages(value, f"{prefix}.{key}" if prefix else str(key))
            for key, value in messages.items()
        ]
        return "; ".join(parts)
    if isinstance(messages, list | tuple):
        text = ", ".join(
            _flatten_messages(item) if isinstance(item, Mapping) else str(item) for item in messages
        )
        return f"{prefix}: {text}" if prefix else text
    return f"{prefix}: {messages}" if prefix else str(messages)


def prepare_scenarios(base: AllocationRequest, scenarios: Sequence[Any]) -> list[PreparedScenario]:
    """The base and every scenario's request, base first; a scenario whose changes do not
    apply carries its error instead of a request."""
    prepared = [PreparedScenario(BASE, base)]
    for scenario in scenarios:
        name, changes = _name_and_changes(scenario)
        try:
            prepared.append(PreparedScenario(name, apply_changes(base, changes)))
        except Exception as error:  # one bad scenario must not fail the rest
            prepared.append(PreparedScenario(name, None, _error_text(error)))
    return prepared


def build_scenario_requests(
    base: AllocationRequest, scenarios: Sequence[Any]
) -> list[tuple[str, AllocationRequest]]:
    """`(name, request)` for the base (first) and every scenario.

    Strict: raises `ScenarioError` naming the first scenario whose changes do not apply.
    Use `prepare_scenarios` to keep going past bad scenarios.
    """
    pairs = []
    for item in prepare_scenarios(base, scenarios):
        if item.request is None:
            raise ScenarioError(f"scenario {item.name!r}: {item.error}")
        pairs.append((item.name, item.request))
    return pairs


def run_comparison(
    base: AllocationRequest,
    scenarios: Sequence[Any],
    *,
    solve: SolveFunction | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Solve the base and every scenario one after another and summarize them."""
    if solve is None:
        from api.services import solve_request

        solve = solve_request
    prepared = prepare_scenarios(base, scenarios)
    outcomes = []
    for index, item in enumerate(prepared, start=1):
        if item.request is None:
            outcomes.append(ScenarioOutcome(item.name, None, None, item.error))
            continue
        if progress is not None:
            progress(f"scenario {item.name!r} ({index}/{len(prepared)})")
        try:
            plans = solve(
                item.request,
                progress=_prefixed(progress, item.name),
                should_stop=should_stop,
            )
        except Exception as error:  # isolate one scenario's failure
            outcomes.append(ScenarioOutcome(item.name, item.request, None, _error_text(error)))
            continue
        if not plans:
            outcomes.append(ScenarioOutcome(item.name, item.request, None, "no plan produced"))
        else:
            outcomes.append(ScenarioOutcome(item.name, item.request, plans, None))
    return summarize_comparison(base, outcomes)


def _prefixed(progress: Progress | None, name: str) -> Progress | None:
    if progress is None:
        return None
    return lambda message, *_args, **_kwargs: progress(f"[{name}] {message}")


def scenario_kpis(plan: Plan) -> dict[str, Any]:
    """The figures a comparison puts side by side, taken from a plan's exact report."""
    return {
        "weighted_shortfall": plan.objective.weighted_shortfall,
        "achieved": {tier.name: tier.achieved for tier in plan.tiers},
        "target": {tier.name: tier.target for tier in plan.tiers},
        "spend": {resource.name: resource.allocated for resource in plan.resources},
        "total_projected_gmv": plan.objective.total_projected_gmv,
        "solver_status": str(plan.solver.status),
        "mip_gap": plan.solver.mip_gap,
    }


def summarize_comparison(
    base: AllocationRequest, results: Sequence[ScenarioOutcome | tuple[Any, ...]]
) -> dict[str, Any]:
    """JSON-able comparison: a row per scenario (base first) and per-partner differences
    of each scenario's best plan against the base's best plan."""
    from models.schemas import plan_to_dict

    outcomes = [ScenarioOutcome(*result) for result in results]
    outcomes.sort(key=lambda outcome: outcome.name != BASE)  # stable: base first
    rows = []
    for outcome in outcomes:
        best = outcome.plans[0] if outcome.plans else None
        rows.append(
            {
                "name": outcome.name,
                "status": SUCCEEDED if best is not None else FAILED,
                "error": None if best is not None else (outcome.error or "no plan produced"),
                "kpis": scenario_kpis(best) if best is not None else None,
                "plan": plan_to_dict(best) if best is not None else None,
            }
        )

    base_outcome = next((o for o in outcomes if o.name == BASE and o.plans), None)
    differences = []
    if base_outcome is not None and base_outcome.plans:
        base_plan = base_outcome.plans[0]
        base_request = base_outcome.request or base
        for outcome in outcomes:
            if outcome.name == BASE or not outcome.plans or outcome.request is None:
                continue
            differences.append(
                {
                    "scenario": outcome.name,
                    **partner_differences(
                        base_request, base_plan, outcome.request, outcome.plans[0]
                    ),
                }
            )
    return {"scenarios": rows, "differences": differences}


@dataclass(frozen=True)
class _PartnerState:
    tier: str | None
    amounts: Mapping[str, float]
    projected_gmv: float | None  # None: the partner is not in that scenario's request


def _partner_states(request: AllocationRequest, plan: Plan) -> dict[str, _PartnerState]:
    # Partners without an allocation received nothing and reached no tier: their
    # projected GMV is their (possibly scenario-adjusted) baseline.
    states = {
        partner.id: _PartnerState(None, {}, partner.baseline_gmv) for partner in request.partners
    }
    for allocation in plan.allocations:
        states[allocation.partner_id] = _PartnerState(
            allocation.tier, allocation.amounts, allocation.projected_gmv
        )
    return states


def _changed(before: float, after: float) -> bool:
    # Solvers return amounts with float noise; anything below this is not a decision.
    return not math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-6)


def partner_differences(
    base_request: AllocationRequest,
    base_plan: Plan,
    request: AllocationRequest,
    plan: Plan,
    *,
    limit: int = MAX_LISTED_DIFFERENCES,
) -> dict[str, Any]:
    """Partners whose tier or amounts differ between two plans.

    Counts cover every partner; `partners` lists at most `limit` of them, tier changes
    first, then by the size of the projected-GMV change.
    """
    tier_order = {tier.name: rank for rank, tier in enumerate(base_request.sorted_tiers())}
    for rank, tier in enumerate(request.sorted_tiers()):
        tier_order.setdefault(tier.name, rank)
    resources = [resource.name for resource in base_request.resources]
    resources += [r.name for r in request.resources if r.name not in resources]

    before_states = _partner_states(base_request, base_plan)
    after_states = _partner_states(request, plan)
    missing = _PartnerState(None, {}, None)

    rows: list[dict[str, Any]] = []
    gained = lost = 0
    for partner_id in sorted(before_states.keys() | after_states.keys()):
        before = before_states.get(partner_id, missing)
        after = after_states.get(partner_id, missing)
        before_rank = tier_order[before.tier] if before.tier is not None else -1
        after_rank = tier_order[after.tier] if after.tier is not None else -1
        change = None
        if after_rank != before_rank:
            change = "gained" if after_rank > before_rank else "lost"
        amounts = {}
        for name in resources:
            old, new = before.amounts.get(name, 0.0), after.amounts.get(name, 0.0)
            if _changed(old, new):
                amounts[name] = {"base": old, "scenario": new, "delta": new - old}
        if change is None and not amounts:
            continue
        gained += change == "gained"
        lost += change == "lost"
        gmv_delta = (
            after.projected_gmv - before.projected_gmv
            if after.projected_gmv is not None and before.projected_gmv is not None
            else None
        )
        rows.append(
            {
                "partner_id": partner_id,
                "tier_change": change,
                "base_tier": before.tier,
                "scenario_tier": after.tier,
                "base_projected_gmv": before.projected_gmv,
                "scenario_projected_gmv": after.projected_gmv,
                "projected_gmv_delta": gmv_delta,
                "amounts": amounts,
            }
        )
    rows.sort(
        key=lambda row: (
            row["tier_change"] is None,
            -abs(row["projected_gmv_delta"] or 0.0),
            row["partner_id"],
        )
    )
    return {
        "partners_changed": len(rows),
        "tiers_gained": gained,
        "tiers_lost": lost,
        "partners": rows[:limit],
        "truncated": len(rows) > limit,
    }
