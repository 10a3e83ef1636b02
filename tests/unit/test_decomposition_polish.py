"""The exact pairwise moves (`optimizer.polish`) on the decomposition's stage-2 plans.

They used to run once, on the final plan. At 5,000 family partners they added 0.05% of
GMV to the plan the neighbourhood search left, which certified it, but only after
two more price searches had run for nothing: the plan of the first search is now
polished before the level-choice ceiling and the improver, and the improver's plan again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fixtures.families import family_request
from optimizer.arrays import build_arrays
from optimizer.decomposition import engine, solve_decomposition


def test_the_first_searchs_plan_is_polished_before_the_improver_starts_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(1, 300, 0.95, time_limit_s=10.0)
    arrays = build_arrays(request)
    calls: list[tuple[str, Any]] = []
    original = engine._polished

    def polishing(problem, arrays_, plan, clock):  # type: ignore[no-untyped-def]
        polished = original(problem, arrays_, plan, clock)
        calls.append(("polish", (plan, polished)))
        return polished

    def improver(amounts, floor, bound, seconds, elapsed, stop, levels):  # type: ignore[no-untyped-def]
        calls.append(("improve", amounts.copy()))
        return None

    monkeypatch.setattr(engine, "_polished", polishing)
    solve_decomposition(
        request, time_limit_s=8.0, mip_gap=1e-7, arrays=arrays, improve=improver, anytime=False
    )
    assert [kind for kind, _ in calls[:2]] == ["polish", "improve"]
    before, after = calls[0][1]
    assert after.shortfall == before.shortfall
    assert after.objective > before.objective  # the moves gain on this programme
    np.testing.assert_array_equal(calls[1][1], after.amounts)
