"""The exact repairs after rounding (`optimizer.rounding`) keep minimum tickets whole: an
amount is 0 or at least its minimum, whichever way a repair moves it."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.plan import curve_columns
from models.request import AllocationRequest
from models.schemas import parse_request
from optimizer.arrays import build_arrays
from optimizer.rounding import restore_tiers, trim_to_budgets

STEP = 1e6
MINIMUM = 17e6


def _request(budget: float) -> AllocationRequest:
    def partner(i: int, baseline: float) -> dict[str, Any]:
        return {
            "id": f"P{i}",
            "baseline_gmv": baseline,
            "response": {"fund": {"curve": "saturating", "max_uplift": 4e7, "scale": 2e7}},
            "bounds": {"fund": {"min": MINIMUM, "max": 5e7}},
        }

    body = {
        "objective": "max_attainment",
        "resources": [{"name": "fund", "unit": "CNY", "budget": budget, "step": STEP}],
        "tiers": [{"name": "100M", "min_gmv": 1e8, "target": 1}],
        "partners": [partner(0, 5e7), partner(1, 9.5e7)],
    }
    return parse_request(body)


def test_trimming_a_ticket_at_its_minimum_takes_it_whole() -> None:
    request = _request(budget=20e6)
    arrays = build_arrays(request)
    amounts = np.array([[MINIMUM], [MINIMUM]])  # 14M over a budget of 20M
    trim_to_budgets(arrays, amounts, None, np.zeros(2), curve_columns(request))
    # Cutting 14M from one ticket would leave 3M: under the minimum.
    assert sorted(amounts[:, 0]) == [0.0, MINIMUM]


def test_a_tier_restored_from_nothing_gets_at_least_the_minimum_ticket() -> None:
    request = _request(budget=1e8)
    arrays = build_arrays(request)
    amounts = np.zeros((2, 1))
    # Partner 1 (¥95M) was counted for the ¥100M tier: a ¥5M lift, 6 steps, would do.
    claimed = np.array([0.0, 1e8])
    restore_tiers(arrays, amounts, None, claimed, curve_columns(request))
    assert amounts[1, 0] >= MINIMUM and amounts[1, 0] % STEP == 0
    assert amounts[0, 0] == 0.0
