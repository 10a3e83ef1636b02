"""What-if comparisons: a base request, named scenarios of changes, KPIs side by side.

One loop for every caller: `solve_scenarios` solves prepared scenarios through
`solve_scenario`, up to `workers` at a time in threads (each solve keeps its own time
limit; outcomes come back in scenario order whatever order they finish in). The CLI runs
it via `run_comparison`; the in-process worker runs it from
`service.execution.execute_claimed`, storing each outcome as it finishes; a Celery worker
solves one scenario per task with the same `solve_scenario`. `summarize_comparison`
turns the outcomes into the rows and differences every caller reports.

A prepared scenario may already carry its plans (`PreparedScenario.plans`): the base of a
comparison given by `allocation_id` is that job's stored plans, never a re-solve.

A scenario starts from the base (`base_start`: the base's best plan, repaired by the
optimizer into the scenario's budgets and rules, and its engine's prices) whenever the
base's plan is known when the scenario starts: always with one worker (the base is solved
first), with a base given by `allocation_id`, or once the base has finished; scenarios
solved alongside the base start cold.

A scenario whose changes cannot be applied, or whose solve fails, is reported as a failed
row with its error; it never takes the other scenarios down with it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from models.plan import Plan, SolveStatus
from models.request import AllocationRequest, DomainError
from models.scenario import BASE, apply_changes
from models.schemas import plan_to_dict
from optimizer.progress import Progress, ProgressEvent
from optimizer.warm_start import WarmStart
from service import solving
from service.comparison_notes import scenario_notes
from service.differences import partner_differences
from service.explain import BASIC
from service.progress import prefixed
from service.records import FAILED, SUCCEEDED
from service.solving import StopCheck

SolveFunction = Callable[..., list[Plan]]


class ScenarioOutcome(NamedTuple):
    name: str
    request: AllocationRequest | None
    plans: list[Plan] | None
    error: str | None


@dataclass(frozen=True)
class PreparedScenario:
    """A scenario ready to solve (`request`), one whose changes failed (`error`), or one
    whose plans are already known (`plans`: reused as they are, nothing is solved)."""

    name: str
    request: AllocationRequest | None
    error: str | None = None
    plans: tuple[Plan, ...] | None = None


class ScenarioError(DomainError):
    """A scenario's changes cannot be applied to the base request."""


def _name_and_changes(scenario: Any) -> tuple[str, Mapping[str, Any]]:
    # Scenarios arrive as the API's JSON dicts or as parsed scenario objects.
    if isinstance(scenario, Mapping):
        return str(scenario.get("name", "")), scenario.get("changes") or {}
    return str(scenario.name), scenario.changes or {}


def error_text(error: BaseException) -> str:
    """`Type: message`, with validation messages flattened to `field.path: message`."""
    messages = getattr(error, "messages", None)
    if messages:
        return f"{type(error).__name__}: {_flatten_messages(messages)}"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
            prepared.append(PreparedScenario(name, None, error_text(error)))
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


def base_start(plans: Sequence[Plan] | None) -> WarmStart | None:
    """The base's best plan (and its engine's prices) as a scenario's warm start; None
    when there is no usable plan (none, infeasible, or one choosing packages, a choice the
    start does not carry)."""
    if not plans:
        return None
    plan = plans[0]
    if plan.solver.status in (SolveStatus.INFEASIBLE, SolveStatus.ERROR):
        return None
    if any(allocation.package is not None for allocation in plan.allocations):
        return None
    amounts = {a.partner_id: dict(a.amounts) for a in plan.allocations}
    return WarmStart(amounts, plan.solver.prices)


def solve_scenario(
    item: PreparedScenario,
    *,
    solve: SolveFunction | None = None,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
    warm_start: WarmStart | None = None,
) -> ScenarioOutcome:
    """Solve one scenario (from `warm_start` when given); a failure is that scenario's
    outcome, not an exception."""
    if item.request is None:
        return ScenarioOutcome(item.name, None, None, item.error)
    if item.plans:
        return ScenarioOutcome(item.name, item.request, list(item.plans), None)
    # Looked up now, so a patched one is seen. A scenario's row shows no marginal values:
    # its plans explain themselves without re-solves unless the request asks for them.
    solve = solve or partial(solving.solve_request, default_explain=BASIC)
    start = {} if warm_start is None else {"warm_start": warm_start}
    try:
        plans = solve(
            item.request, progress=prefixed(progress, item.name), should_stop=should_stop, **start
        )
    except Exception as error:  # isolate one scenario's failure
        return ScenarioOutcome(item.name, item.request, None, error_text(error))
    if not plans:
        return ScenarioOutcome(item.name, item.request, None, "no plan produced")
    return ScenarioOutcome(item.name, item.request, plans, None)


def solve_scenarios(
    prepared: Sequence[PreparedScenario],
    *,
    solve: SolveFunction | None = None,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
    skip: Collection[int] = (),
    on_outcome: Callable[[int, ScenarioOutcome], object] | None = None,
    workers: int = 1,
    base_plans: Sequence[Plan] | None = None,
) -> list[ScenarioOutcome]:
    """Solve every prepared scenario not in `skip`, up to `workers` at once, stopping
    early once `should_stop` says so. `on_outcome(idx, outcome)` sees each as it finishes
    (from the thread that solved it); the list returned is in scenario order.

    A scenario starts from the base's plan when that is known as it starts: the base's
    own (solved here or reused), else `base_plans` (a resumed comparison's stored base)."""
    todo = [idx for idx in range(len(prepared)) if idx not in skip]
    found: dict[int, ScenarioOutcome] = {}
    base_idx = next((i for i, item in enumerate(prepared) if item.name == BASE), None)

    def start_for(idx: int) -> WarmStart | None:
        if base_idx is None or idx == base_idx:
            return None
        base = found.get(base_idx)
        return base_start(base.plans if base is not None and base.plans else base_plans)

    def run(idx: int) -> None:
        if should_stop is not None and should_stop():
            return
        item = prepared[idx]
        if progress is not None and item.request is not None and not item.plans:
            progress(ProgressEvent(f"scenario {item.name!r} ({idx + 1}/{len(prepared)})"))
        outcome = solve_scenario(
            item,
            solve=solve,
            progress=progress,
            should_stop=should_stop,
            warm_start=start_for(idx),
        )
        found[idx] = outcome
        if on_outcome is not None:
            on_outcome(idx, outcome)

    # Reused plans cost nothing: they never hold a worker's slot.
    for idx in [i for i in todo if prepared[i].plans]:
        run(idx)
    todo = [idx for idx in todo if idx not in found]
    workers = max(1, min(int(workers), len(todo)))
    if workers == 1:
        for idx in todo:
            run(idx)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scenario") as pool:
            for future in [pool.submit(run, idx) for idx in todo]:
                future.result()
    return [found[idx] for idx in sorted(found)]


def run_comparison(
    base: AllocationRequest,
    scenarios: Sequence[Any],
    *,
    solve: SolveFunction | None = None,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Solve the base and every scenario (up to `workers` at once) and summarize them."""
    prepared = prepare_scenarios(base, scenarios)
    outcomes = solve_scenarios(
        prepared, solve=solve, progress=progress, should_stop=should_stop, workers=workers
    )
    return summarize_comparison(base, outcomes)


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
        # docs/uncertainty.md: the probability each target is really met (None without a spread).
        "p_target": None
        if plan.uncertainty is None
        else {tier.name: tier.p_target for tier in plan.uncertainty.tiers},
    }


def summarize_comparison(
    base: AllocationRequest, results: Sequence[ScenarioOutcome | tuple[Any, ...]]
) -> dict[str, Any]:
    """JSON-able comparison: a row per scenario (base first) and per-partner differences
    of each scenario's best plan against the base's best plan."""
    outcomes = [ScenarioOutcome(*result) for result in results]
    outcomes.sort(key=lambda outcome: outcome.name != BASE)  # stable: base first
    base_outcome = next((o for o in outcomes if o.name == BASE and o.plans), None)
    base_pair = None
    if base_outcome is not None and base_outcome.plans:
        base_pair = (base_outcome.request or base, base_outcome.plans[0])
    rows = []
    for outcome in outcomes:
        best = outcome.plans[0] if outcome.plans else None
        rows.append(
            {
                "name": outcome.name,
                "status": SUCCEEDED if best is not None else FAILED,
                "error": None if best is not None else (outcome.error or "no plan produced"),
                "kpis": scenario_kpis(best) if best is not None else None,
                **scenario_notes(base_pair, outcome.request, best),
                "plan": plan_to_dict(best) if best is not None else None,
            }
        )

    differences = []
    if base_pair is not None:
        base_request, base_plan = base_pair
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
