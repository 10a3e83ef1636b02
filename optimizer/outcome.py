"""What every engine hands back to `optimizer.solve`: amounts, not figures.

Figures (GMV, tiers, spend) are computed afterwards by `models.plan.build_plan` from these
amounts with the exact curves, so no engine's approximation ever reaches a plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.plan import SolveStatus
from models.request import AllocationRequest, Objective

# Per partner, the lowest and highest tier level a plan may give it (0: none).
TierLevels = tuple[NDArray[np.intp], NDArray[np.intp]]


@dataclass
class Candidate:
    """One allocation: `amounts[i, r]` of resource r to partner i (request order), outside
    packages; `package_choice[i]` the index of partner i's chosen package or -1."""

    amounts: FloatArray
    package_choice: NDArray[np.intp] | None = None
    label: str = "best"


@dataclass
class EngineOutcome:
    engine: str
    status: SolveStatus
    candidates: list[Candidate] = field(default_factory=list)  # best first
    # Bound on the last stage's objective in request units (CNY of GMV, or cost), and the
    # relative gap of the best candidate's exact objective to it.
    best_bound: float | None = None
    mip_gap: float | None = None
    seconds: float = 0.0
    binding_constraints: list[str] = field(default_factory=list)
    # Stage 1 (least weighted tier shortfall): is the best candidate's shortfall proven
    # least, and the lower bound on it (None when the engine has none).
    shortfall_proven: bool | None = None
    shortfall_bound: float | None = None
    # The decomposition's last prices: a nearby request's warm start (`optimizer.warm_start`).
    prices: tuple[float, ...] | None = None
    # The decomposition's reduced-cost fixing: per partner, the lowest and highest tier
    # level any better plan can give it (`certificate.level_ranges`); the MILP finish and
    # the neighbourhood rounds claim tiers only within them.
    tier_levels: TierLevels | None = None

    def stage_one_settled(self, request: AllocationRequest) -> bool:
        """Does a GMV (cost) gap within the request's certify this outcome's plan? Only
        once its shortfall is proven least; under `max_gmv`, or without tiers, there is no
        stage 1 to prove."""
        nothing_to_prove = request.objective is Objective.MAX_GMV or not request.tiers
        return bool(self.shortfall_proven) or nothing_to_prove
