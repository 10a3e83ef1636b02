"""`solve(request)`: pick an engine, run it, and turn its amounts into checked plans."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from models.check import assert_plan_valid, check_plan
from models.curves import CurveColumn
from models.plan import Plan, SolverReport, SolveStatus, build_plan, curve_columns
from models.request import AllocationRequest
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.confidence import needs_confidence, solve_at_confidence
from optimizer.diagnosis import diagnose_infeasible, exhausted_resources
from optimizer.engines import DECOMPOSITION, available_engines, milp_backend
from optimizer.errors import EngineUnavailable, OptimizerError
from optimizer.milp import solve_milp
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.progress import Progress, ProgressEvent
from optimizer.whole_units import whole_units

log = logging.getLogger(__name__)

# Above this many variable (partner, resource) pairs `auto` prefers the decomposition.
DECOMPOSITION_PAIRS = 3_000
WARM_START_PAIRS = 100  # MILP requests this large start from a decomposition plan
WARM_START_SHARE = 0.2  # of the time limit: the decomposition's share before the MILP
# Backends that get that decomposition run first. Not CBC: it finds its own first plan in
# about a second on medium programmes, while the run took its 20% (4–11 s) and never moved
# the answer by more than the gap (BENCHMARKS.md, "Small and medium programmes").
WARM_STARTED_BACKENDS = frozenset({"highs", "cpsat"})
# The label of the one plan returned when the engine found none (it allocates nothing).
NO_PLAN_LABEL = "no feasible plan"


def choose_engine(request: AllocationRequest, arrays: ProblemArrays) -> str:
    wanted = request.options.engine
    if wanted != "auto":
        if wanted == DECOMPOSITION and DECOMPOSITION not in available_engines():
            raise EngineUnavailable("the decomposition engine is not installed")
        return wanted
    # Package menus are knapsacks the decomposition does not price yet.
    size = arrays.n_pairs
    engines = available_engines()
    if size > DECOMPOSITION_PAIRS and not arrays.packages and DECOMPOSITION in engines:
        return DECOMPOSITION
    # On medium curve programmes (tickets, S-curves, hard targets) CBC closes the MILP's
    # rounds where HiGHS runs into the time limit (issue 12; BENCHMARKS.md).
    if size >= WARM_START_PAIRS and not arrays.packages and "cbc" in engines:
        return "cbc"
    return "highs"


def run_engine(
    request: AllocationRequest,
    arrays: ProblemArrays,
    engine: str,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    warm_start: Candidate | None = None,
) -> EngineOutcome:
    if engine == DECOMPOSITION:  # takes no external start
        from optimizer.decomposition import solve_decomposition

        return solve_decomposition(
            request,
            time_limit_s=request.options.time_limit_s,
            mip_gap=request.options.mip_gap,
            progress=progress,
            should_stop=should_stop,
            arrays=arrays,
        )
    backend = milp_backend(engine)
    started = time.perf_counter()
    auto = request.options.engine == "auto"
    # A caller's start is the incumbent the decomposition's warm-up would otherwise supply
    # (and that warm-up overruns short time limits: explanation re-solves get a few seconds).
    first = None
    if warm_start is None and backend.name in WARM_STARTED_BACKENDS:
        first = decomposition_first(request, arrays, progress, should_stop, WARM_START_SHARE)
        if first is not None and first.status is SolveStatus.INTERRUPTED:
            return first  # cancelled: its best plan so far is the answer
    if auto and first is not None and first.status is SolveStatus.OPTIMAL:
        return first  # certified within the gap: the MILP has nothing to add
    warm = None
    if first is not None and first.candidates and first.status is not SolveStatus.INFEASIBLE:
        warm = first.candidates[0]
    left = max(request.options.time_limit_s - (time.perf_counter() - started), 0.05)
    return solve_milp(
        arrays,
        backend,
        progress=progress,
        should_stop=should_stop,
        warm_start=warm,
        time_limit_s=left,
        more_starts=[warm_start] if warm_start is not None else [],
    )


def decomposition_first(
    request: AllocationRequest,
    arrays: ProblemArrays,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    share: float,
) -> EngineOutcome | None:
    """On medium instances (for `WARM_STARTED_BACKENDS`) a decomposition run comes first:
    under `auto` its plan is the answer when it certifies the gap; otherwise it hands the
    MILP an incumbent and breakpoints at its amounts (small instances solve faster than
    that run would take)."""
    if arrays.n_pairs < WARM_START_PAIRS or arrays.packages:
        return None
    if DECOMPOSITION not in available_engines():
        return None
    from optimizer.decomposition import solve_decomposition

    try:
        return solve_decomposition(
            request,
            time_limit_s=share * request.options.time_limit_s,
            mip_gap=request.options.mip_gap,
            progress=progress,
            should_stop=should_stop,
            arrays=arrays,
        )
    except OptimizerError:  # a request the decomposition does not model (points curves)
        return None


def solve(
    request: AllocationRequest,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    warm_start: Candidate | None = None,
) -> list[Plan]:
    """Ranked plans for `request`, best first; each passes the exact checker.

    `warm_start`, a feasible allocation of this request (a plan of a nearby request, say),
    is the MILP engines' first incumbent: the result is never worse than it. The
    decomposition engine and confidence solves ignore it.

    An infeasible request yields one plan with status `infeasible` naming the constraints
    that cannot hold together; it is not an exception.
    """
    if needs_confidence(request):  # docs/uncertainty.md: an outer loop over deterministic solves
        return solve_at_confidence(
            request, lambda safe: solve(safe, progress=progress, should_stop=should_stop)
        )
    started = time.perf_counter()
    arrays = build_arrays(request)
    engine = choose_engine(request, arrays)
    if progress:
        progress(
            ProgressEvent(
                f"engine {engine}: {arrays.n_partners} partners, {arrays.n_pairs} variable amounts",
                elapsed_s=time.perf_counter() - started,
                stage="start",
            )
        )
    outcome = run_engine(request, arrays, engine, progress, should_stop, warm_start)
    seconds = time.perf_counter() - started

    if not outcome.candidates:
        binding = outcome.binding_constraints
        if outcome.status is SolveStatus.INFEASIBLE and not binding:
            binding = diagnose_infeasible(request)
        empty = Candidate(np.zeros((arrays.n_partners, arrays.n_resources)))
        report = SolverReport(outcome.engine, outcome.status, None, None, seconds)
        return [
            build_plan(
                request,
                empty.amounts,
                report,
                label=NO_PLAN_LABEL,
                binding_constraints=binding,
            )
        ]

    plans = []
    columns = curve_columns(request)
    for rank, candidate in enumerate(outcome.candidates, start=1):
        report = SolverReport(
            engine=outcome.engine,
            status=outcome.status if rank == 1 else SolveStatus.FEASIBLE,
            mip_gap=outcome.mip_gap if rank == 1 else None,
            best_bound=outcome.best_bound,
            seconds=seconds,
            shortfall_proven=outcome.shortfall_proven if rank == 1 else None,
            shortfall_bound=outcome.shortfall_bound,
        )
        plan = _planner_ready(request, arrays, candidate, report, rank, outcome, columns)
        if plan.objective.weighted_shortfall > 0 and not plan.binding_constraints:
            plan.binding_constraints = exhausted_resources(plan)
        assert_plan_valid(request, plan)
        plans.append(plan)
    return plans


def _planner_ready(
    request: AllocationRequest,
    arrays: ProblemArrays,
    candidate: Candidate,
    report: SolverReport,
    rank: int,
    outcome: EngineOutcome,
    columns: list[CurveColumn],
) -> Plan:
    """The candidate's plan in whole units (docs/exports.md). Should the rounded plan
    fail the exact check — a bug, not an expected case — the engine's amounts are kept."""

    def plan_of(amounts: np.ndarray) -> Plan:
        return build_plan(
            request,
            amounts,
            report,
            package_choice=candidate.package_choice,
            rank=rank,
            label=candidate.label,
            binding_constraints=outcome.binding_constraints,
            columns=columns,
        )

    rounded = plan_of(whole_units(arrays, candidate.amounts, candidate.package_choice, columns))
    violations = check_plan(request, rounded)
    if not violations:
        return rounded
    log.warning("whole-unit rounding broke the plan, keeping the engine's amounts: %s", violations)
    return plan_of(candidate.amounts)
