"""Service functions shared by the HTTP routes, the CLI and the job workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.plan import Plan
from models.request import AllocationRequest

ProgressCallback = Callable[..., Any]
StopCheck = Callable[[], bool]


def solve_request(
    request: AllocationRequest,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> list[Plan]:
    """Solve `request` and check every plan against the exact curves before it leaves.

    Raises whatever the checker raises when a plan breaks a guarantee: a wrong plan must
    never be reported as a result.
    """
    # Imported lazily so the service layer loads even while solver dependencies warm up.
    from models.check import assert_plan_valid

    from optimizer import solve

    plans = solve(request, progress=progress, should_stop=should_stop)
    for plan in plans:
        assert_plan_valid(request, plan)
    return plans
