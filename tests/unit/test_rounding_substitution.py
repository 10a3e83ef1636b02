"""Tiers kept through rounding when the stepped resource is all tier partners'
(`optimizer.rounding`): a tier partner that rounding left short may be lifted with a
resource without steps, and a budget's overspend may be cut from a tier partner who keeps
its tier on another resource, which partners no tier depends on then give back."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.check import check_plan
from models.plan import SolverReport, SolveStatus, build_plan, curve_columns, projected_gmv
from models.request import AllocationRequest
from models.schemas import parse_request
from optimizer.arrays import build_arrays
from optimizer.rounding import restore_tiers, trim_to_budgets

STEP = 1e6
MINIMUM = 5e6


def _request(subsidy: float, fund: float, partners: list[dict[str, Any]]) -> AllocationRequest:
    return parse_request(
        {
            "objective": "max_attainment",
            "resources": [
                {"name": "subsidy", "unit": "CNY", "budget": subsidy},
                {"name": "fund", "unit": "CNY", "budget": fund, "step": STEP},
            ],
            "tiers": [{"name": "100M", "min_gmv": 1e8, "target": 2}],
            "partners": partners,
        }
    )


def _partner(name: str, baseline: float, subsidy_roi: float, subsidy_max: float) -> dict[str, Any]:
    return {
        "id": name,
        "baseline_gmv": baseline,
        "response": {
            "subsidy": {"curve": "linear", "roi": subsidy_roi},
            "fund": {"curve": "saturating", "max_uplift": 4e7, "scale": 2e7},
        },
        "bounds": {"subsidy": {"max": subsidy_max}, "fund": {"min": MINIMUM, "max": 5e7}},
    }


def _fund_gain(amount: float) -> float:
    return 4e7 * (1 - np.exp(-amount / 2e7))


def _valid(request: AllocationRequest, amounts: np.ndarray) -> bool:
    report = SolverReport("check", SolveStatus.FEASIBLE)
    plan = build_plan(request, amounts, report, columns=curve_columns(request))
    return not check_plan(request, plan)


def _two_tier_partners_and_a_giver() -> tuple[AllocationRequest, np.ndarray, float]:
    """P0 and P1 need ¥100M; only they hold fund, all of it; P2, no tier, holds subsidy.
    P0's fund is one step short of its tier once rounded down. Returns the request, the
    rounded amounts and P0's lift wanted."""
    fund_p0, fund_p1 = 12.6e6, 20e6
    baseline_p0 = 1e8 - _fund_gain(fund_p0)  # the tier exactly at the unrounded amount
    baseline_p1 = 1e8 - _fund_gain(fund_p1) + 1.0  # at its tier with ¥1 to spare
    request = _request(
        subsidy=10e6,
        fund=np.floor(fund_p0 / STEP) * STEP + fund_p1 + STEP / 2,
        partners=[
            _partner("P0", baseline_p0, 3.0, 5e6),
            _partner("P1", baseline_p1, 3.0, 5e6),
            _partner("P2", 2e7, 1.5, 2e7),
        ],
    )
    amounts = np.array([[0.0, np.floor(fund_p0 / STEP) * STEP], [0.0, fund_p1], [10e6, 0.0]])
    return request, amounts, _fund_gain(fund_p0) - _fund_gain(12e6)


def test_a_tier_short_after_rounding_is_lifted_with_subsidy_when_tier_partners_hold_the_fund() -> (
    None
):
    """One fund step for P0 would overspend the fund, which only tier partners hold: the
    trim would then cost a tier again. The lift comes from subsidy instead (an exact
    amount, not a step), and the giver without a tier pays for it."""
    request, amounts, _ = _two_tier_partners_and_a_giver()
    arrays = build_arrays(request)
    columns = curve_columns(request)
    claimed = np.array([1e8, 1e8, 0.0])
    restore_tiers(arrays, amounts, None, claimed, columns)
    trim_to_budgets(arrays, amounts, None, claimed, columns)
    gmv = projected_gmv(request, amounts, None, columns)
    assert gmv[0] >= 1e8 and gmv[1] >= 1e8
    assert amounts[0, 0] > 0  # the lift is subsidy
    assert amounts[:, 1].sum() <= arrays.budget[1]
    assert amounts[:, 0].sum() <= arrays.budget[0] * (1 + 1e-12)
    assert _valid(request, amounts)


def test_an_overspent_fund_held_by_tier_partners_is_cut_where_subsidy_keeps_the_tier() -> None:
    """The fund is one step over and every fund holder is at its tier with nothing to
    spare: cutting a step from one and lifting it with subsidy keeps both tiers."""
    request, amounts, _ = _two_tier_partners_and_a_giver()
    amounts[0, 1] += STEP  # P0 restored with a fund step: ¥0.5M over the fund
    arrays = build_arrays(request)
    columns = curve_columns(request)
    claimed = np.array([1e8, 1e8, 0.0])
    assert amounts[:, 1].sum() > arrays.budget[1]
    trim_to_budgets(arrays, amounts, None, claimed, columns)
    gmv = projected_gmv(request, amounts, None, columns)
    assert gmv[0] >= 1e8 and gmv[1] >= 1e8
    assert amounts[:, 1].sum() <= arrays.budget[1]
    assert amounts[:, 0].sum() <= arrays.budget[0] * (1 + 1e-12)
    assert amounts[2, 0] < 10e6  # the giver paid for the subsidy lift
    assert _valid(request, amounts)


def test_without_a_giver_the_budget_still_outranks_the_tier() -> None:
    """No partner without a tier holds subsidy: the fund's overspend must still go."""
    request, amounts, _ = _two_tier_partners_and_a_giver()
    amounts[0, 1] += STEP
    amounts[2, 0] = 0.0
    amounts[0, 0] = amounts[1, 0] = 5e6  # both at their subsidy max
    arrays = build_arrays(request)
    columns = curve_columns(request)
    trim_to_budgets(arrays, amounts, None, np.array([1e8, 1e8, 0.0]), columns)
    assert amounts[:, 1].sum() <= arrays.budget[1]
    assert amounts[:, 0].sum() <= arrays.budget[0] * (1 + 1e-12)
    assert _valid(request, amounts)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 8),
    fund_share=st.floats(0.3, 1.2),
    subsidy_share=st.floats(0.3, 1.2),
)
def test_repairs_keep_budgets_grids_bounds_and_minimums(
    seed: int, n: int, fund_share: float, subsidy_share: float
) -> None:
    """Random rounded allocations, each partner counted for the tier its unrounded amounts
    reach: after the repairs every budget holds, fund amounts are whole steps, 0 or at
    least the minimum, and within bounds; the plan passes the exact checker."""
    rng = np.random.default_rng(seed)
    partners = [
        _partner(f"P{i}", float(rng.uniform(5e7, 9.9e7)), float(rng.uniform(1, 4)), 5e6)
        for i in range(n)
    ]
    raw = np.column_stack([rng.uniform(0, 5e6, n), rng.uniform(MINIMUM, 5e7, n)])
    raw[rng.random(n) < 0.3, 1] = 0.0
    fund_budget = max(np.round(raw[:, 1].sum() * fund_share / STEP) * STEP, MINIMUM)
    request = _request(float(raw[:, 0].sum() * subsidy_share), fund_budget, partners)
    arrays = build_arrays(request)
    columns = curve_columns(request)
    assert arrays.n_pairs == 2 * n  # every partner on both resources, partner by partner
    raw = np.minimum(raw, arrays.pair_max.reshape(n, 2))  # as a solver's amounts are
    claimed = np.where(projected_gmv(request, raw, None, columns) >= 1e8, 1e8, 0.0)
    amounts = raw.copy()
    amounts[:, 1] = np.minimum(np.round(raw[:, 1] / STEP) * STEP, arrays.pair_max[1::2])
    restore_tiers(arrays, amounts, None, claimed, columns)
    trim_to_budgets(arrays, amounts, None, claimed, columns)
    assert np.all(amounts.sum(axis=0) <= arrays.budget * (1 + 1e-12) + 1e-6)
    fund = amounts[:, 1]
    assert np.allclose(fund / STEP, np.round(fund / STEP))
    assert np.all((fund == 0) | (fund >= MINIMUM - 1e-6))
    assert np.all(amounts[:, 0] <= 5e6 + 1e-6) and np.all(fund <= 5e7 + 1e-6)
    assert _valid(request, amounts)
