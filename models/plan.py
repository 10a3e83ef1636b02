"""Plans: what a solve returns, always built from amounts by exact re-evaluation.

The optimizer hands over amounts (and package choices); every figure in a plan —
projected GMV, tiers reached, shortfall, spend — is computed here from the request and
those amounts with the exact curves, never taken from a solver's approximation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.curves import CurveColumn, FloatArray
from models.forecast import partner_sigmas, request_outlook
from models.request import AllocationRequest
from models.uncertainty import Outlook, reach_matrix

NO_PACKAGE = -1


class SolveStatus(StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"
    # The job was cancelled while it ran: the plan is the best valid one found by then.
    INTERRUPTED = "interrupted"
    ERROR = "error"


@dataclass
class SolverReport:
    engine: str
    status: SolveStatus
    mip_gap: float | None = None
    best_bound: float | None = None
    seconds: float = 0.0
    # Stage 1: is the plan's weighted shortfall proven least (None: no tiers to miss or
    # not known), and the lower bound on it the engine proved.
    shortfall_proven: bool | None = None
    shortfall_bound: float | None = None
    # The engine's dual prices (decomposition), kept in memory only to warm-start a nearby
    # request (a what-if scenario of this one); never stored or shown.
    prices: tuple[float, ...] | None = field(default=None, compare=False, repr=False)


@dataclass
class ObjectiveReport:
    mode: str
    weighted_shortfall: float
    total_cost: float
    total_projected_gmv: float
    incremental_gmv: float


@dataclass
class TierReport:
    name: str
    min_gmv: float
    target: int
    achieved: int
    shortfall: int


@dataclass
class ResourceReport:
    name: str
    budget: float | None
    allocated: float
    utilization: float | None


@dataclass
class Allocation:
    partner_id: str
    amounts: dict[str, float]
    baseline_gmv: float
    projected_gmv: float
    tier: str | None
    incremental_gmv: float
    package: str | None = None
    # P(realised GMV reaches `tier`, or the lowest tier when none); None without a spread.
    p_reach: float | None = None


@dataclass
class TierUncertainty:
    name: str
    target: int
    expected_achieved: float
    p_target: float
    achieved_at_confidence: int
    std_error: float  # of p_target; 0 when exact


@dataclass
class UncertaintyReport:
    confidence: float
    correlation: float
    method: str  # "exact" | "monte_carlo"
    draws: int | None
    tiers: list[TierUncertainty]


@dataclass
class Plan:
    rank: int
    label: str
    objective: ObjectiveReport
    tiers: list[TierReport]
    resources: list[ResourceReport]
    solver: SolverReport
    allocations: list[Allocation]
    # Why a plan falls short: the constraints that bind (empty when every target is met).
    binding_constraints: list[str] = field(default_factory=list)
    # docs/uncertainty.md figures, on every plan where some partner's forecast has a spread.
    uncertainty: UncertaintyReport | None = None
    # Why this plan and what more would buy (docs/insight.md), JSON-ready; filled in by the
    # service (`service.explain`) after the solve, None until then.
    explanation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def projected_gmv(
    request: AllocationRequest,
    amounts: FloatArray,
    package_choice: NDArray[np.intp] | None = None,
    columns: list[CurveColumn] | None = None,
) -> FloatArray:
    """Exact projected GMV of every partner (vectorised over partners).

    `amounts[i, r]` is what partner i receives of resource r outside packages; a chosen
    package adds its uplift (its amounts are reported in the plan, not fed to curves).
    """
    gmv = np.array([partner.baseline_gmv for partner in request.partners], dtype=np.float64)
    if columns is None:
        columns = curve_columns(request)
    for r, column in enumerate(columns):
        gmv += column.value(amounts[:, r])
    if package_choice is not None:
        for i in np.nonzero(package_choice != NO_PACKAGE)[0]:
            gmv[i] += request.partners[i].packages[package_choice[i]].uplift
    return gmv


def curve_columns(request: AllocationRequest) -> list[CurveColumn]:
    return list(request.curve_columns)


def total_amounts(
    request: AllocationRequest, amounts: FloatArray, package_choice: NDArray[np.intp] | None
) -> FloatArray:
    """Per partner and resource: curve amounts plus the amounts of the chosen package."""
    total = amounts.copy()
    if package_choice is not None:
        for i in np.nonzero(package_choice != NO_PACKAGE)[0]:
            package = request.partners[i].packages[package_choice[i]]
            for r, resource in enumerate(request.resources):
                total[i, r] += package.amounts.get(resource.name, 0.0)
    return total


def build_plan(
    request: AllocationRequest,
    amounts: FloatArray,
    solver: SolverReport,
    *,
    package_choice: NDArray[np.intp] | None = None,
    rank: int = 1,
    label: str = "best",
    binding_constraints: list[str] | None = None,
    columns: list[CurveColumn] | None = None,
) -> Plan:
    """Evaluate `amounts` exactly and assemble the plan the API and CLI report."""
    gmv = projected_gmv(request, amounts, package_choice, columns)
    spent = total_amounts(request, amounts, package_choice)
    baseline = np.array([p.baseline_gmv for p in request.partners], dtype=np.float64)

    tiers = request.sorted_tiers()
    sigmas = partner_sigmas(request)
    outlook = request_outlook(request, gmv, sigmas) if np.any(sigmas > 0) and tiers else None
    # reach[i, t]: partner i's probability for tier t (lowest first), for p_reach.
    reach = reach_matrix(gmv, sigmas, [t.min_gmv for t in tiers]) if outlook else None
    tier_reports = []
    weighted_shortfall = 0.0
    for t, tier in enumerate(tiers):
        achieved = int(np.count_nonzero(gmv >= tier.min_gmv))
        shortfall = max(0, tier.target - achieved)
        counted = achieved
        if request.options.confidence is not None and outlook is not None:
            # planning at a confidence counts the tier at that confidence (docs/uncertainty.md)
            counted = outlook.tiers[t].achieved_at_confidence
        weighted_shortfall += tier.weight * max(0, tier.target - counted)
        tier_reports.append(TierReport(tier.name, tier.min_gmv, tier.target, achieved, shortfall))

    resource_reports = []
    total_cost = 0.0
    for r, resource in enumerate(request.resources):
        allocated = float(spent[:, r].sum())
        total_cost += resource.unit_cost * allocated
        utilization = allocated / resource.budget if resource.budget else None
        resource_reports.append(
            ResourceReport(resource.name, resource.budget, allocated, utilization)
        )

    allocations = []
    for i, partner in enumerate(request.partners):
        reached = [tier.name for tier in tiers if gmv[i] >= tier.min_gmv]
        chosen = package_choice is not None and package_choice[i] != NO_PACKAGE
        if not reached and not np.any(spent[i] > 0) and not chosen:
            continue
        allocations.append(
            Allocation(
                partner_id=partner.id,
                amounts={res.name: float(spent[i, r]) for r, res in enumerate(request.resources)},
                baseline_gmv=partner.baseline_gmv,
                projected_gmv=float(gmv[i]),
                tier=reached[-1] if reached else None,
                incremental_gmv=float(gmv[i] - partner.baseline_gmv),
                package=partner.packages[package_choice[i]].name if chosen else None,  # type: ignore[index]
                p_reach=None if reach is None else float(reach[i, max(len(reached) - 1, 0)]),
            )
        )

    objective = ObjectiveReport(
        mode=str(request.objective),
        weighted_shortfall=weighted_shortfall,
        total_cost=total_cost,
        total_projected_gmv=float(gmv.sum()),
        incremental_gmv=float(gmv.sum() - baseline.sum()),
    )
    return Plan(
        rank=rank,
        label=label,
        objective=objective,
        tiers=tier_reports,
        resources=resource_reports,
        solver=solver,
        allocations=allocations,
        binding_constraints=list(binding_constraints or []),
        uncertainty=uncertainty_report(outlook),
    )


def uncertainty_report(outlook: Outlook | None) -> UncertaintyReport | None:
    if outlook is None:
        return None
    return UncertaintyReport(
        confidence=outlook.confidence,
        correlation=outlook.correlation,
        method=outlook.method,
        draws=outlook.draws,
        tiers=[
            TierUncertainty(
                name=t.name,
                target=t.target,
                expected_achieved=t.expected_achieved,
                p_target=t.p_target,
                achieved_at_confidence=t.achieved_at_confidence,
                std_error=t.std_error,
            )
            for t in outlook.tiers
        ],
    )
