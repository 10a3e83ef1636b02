"""The exact repairs after rounding (`optimizer.rounding`) keep minimum tickets whole: an
amount is 0 or at least its minimum, whichever way a repair moves it; the leftover goes
where one more step gains most, valued once per step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.curves import CurveKind, FloatArray
from models.plan import curve_columns, projected_gmv
from models.request import AllocationRequest
from models.schemas import parse_request
from optimizer import rounding
from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.rounding import GroupLimits, restore_tiers, spend_leftover, trim_to_budgets
from tests.support.instances import random_small_request

STEP = 1e6
MINIMUM = 17e6


def _request(budget: float, steep_first: bool = False) -> AllocationRequest:
    """Two partners on saturating fund curves with a minimum ticket; `steep_first`: the
    first one earns 5 yuan a yuan instead, with no minimum."""

    def partner(i: int, baseline: float) -> dict[str, Any]:
        if steep_first and i == 0:
            return {
                "id": "P0",
                "baseline_gmv": baseline,
                "response": {"fund": {"curve": "linear", "roi": 5.0}},
                "bounds": {"fund": {"max": 5e7}},
            }
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


def test_a_tier_kept_while_trimming_never_leaves_a_ticket_under_its_minimum() -> None:
    """A partner at its minimum ticket, counted for a tier that one step less would still
    reach: the trim that protects the tier shrank its cut to one step and left 16M of a
    17M minimum (so a neighbourhood MILP's plan at 3,000 family partners, seed 11,
    ambition 0.98, failed the exact check, and an engine's best plan that did would have
    failed the job). Now it gives the whole ticket: a budget outranks a tier."""
    request = _request(budget=26e6, steep_first=True)
    arrays = build_arrays(request)
    columns = curve_columns(request)
    amounts = np.array([[10e6], [MINIMUM]])  # 1M over; partner 1 reaches ¥100M at 16M too
    one_step_less = np.array([[10e6], [MINIMUM - STEP]])
    assert projected_gmv(request, one_step_less, None, columns)[1] >= 1e8
    trim_to_budgets(arrays, amounts, None, np.array([0.0, 1e8]), columns)
    assert amounts.sum() <= 26e6
    assert amounts[1, 0] == 0.0 or amounts[1, 0] >= MINIMUM


@pytest.mark.parametrize("seed", range(24))
def test_trimming_with_tiers_to_keep_leaves_every_ticket_whole_or_at_its_minimum(seed: int) -> None:
    """Random overspends with minimum tickets, each partner counted for the highest tier
    it reaches: the budget holds, and every amount is 0 or at least its minimum, on its
    grid."""
    request = random_small_request(seed, n_partners=10, n_resources=1, with_min=True)
    arrays = build_arrays(request)
    columns = curve_columns(request)
    step = float(arrays.step[0])
    rng = np.random.default_rng(seed)
    amounts = np.zeros((arrays.n_partners, 1))
    for k in range(arrays.n_pairs):
        low, high = arrays.pair_min[k] // step, arrays.pair_max[k] // step
        amounts[arrays.pair_partner[k], 0] = step * rng.integers(max(low, 1), high + 1)
    if amounts.sum() <= float(arrays.budget[0]):
        pytest.skip("no overspend drawn")
    gmv = projected_gmv(request, amounts, None, columns)
    reached = gmv[:, None] >= arrays.thresholds[None, :]
    claimed = np.where(
        reached.any(axis=1), np.max(np.where(reached, arrays.thresholds, 0), axis=1), 0
    )
    trim_to_budgets(arrays, amounts, None, claimed.astype(float), columns)
    assert amounts.sum() <= arrays.budget[0] + 1e-6
    for k in range(arrays.n_pairs):
        amount = amounts[arrays.pair_partner[k], 0]
        assert amount == 0.0 or amount >= arrays.pair_min[k] - 1e-9
        assert abs(amount / step - round(amount / step)) < 1e-9


def test_a_tier_restored_from_nothing_gets_at_least_the_minimum_ticket() -> None:
    request = _request(budget=1e8)
    arrays = build_arrays(request)
    amounts = np.zeros((2, 1))
    # Partner 1 (¥95M) was counted for the ¥100M tier: a ¥5M lift, 6 steps, would do.
    claimed = np.array([0.0, 1e8])
    restore_tiers(arrays, amounts, None, claimed, curve_columns(request))
    assert amounts[1, 0] >= MINIMUM and amounts[1, 0] % STEP == 0
    assert amounts[0, 0] == 0.0


def _rescanned_leftover(arrays: ProblemArrays, amounts: FloatArray) -> None:
    """The greedy `spend_leftover` makes, by rescanning every pair for every step."""
    total = amounts.sum(axis=0)
    groups = GroupLimits(arrays, amounts, None)
    for r in np.nonzero((arrays.step > 0) & np.isfinite(arrays.budget))[0]:
        step = float(arrays.step[r])
        pairs = np.nonzero(arrays.pair_resource == r)[0]
        steps_left = int(np.floor((arrays.budget[r] - total[r]) / step + 1e-9))
        for _ in range(min(steps_left, len(pairs))):
            best, best_gain = None, 0.0
            for k in pairs:
                i, x = arrays.pair_partner[k], amounts[arrays.pair_partner[k], r]
                if (x <= 0 and arrays.pair_min[k] > 0) or x + step > arrays.pair_max[k] + 1e-9:
                    continue
                if not groups.allows(int(i), int(r), step):
                    continue
                gain = float(arrays.pair_curve[k].value(x + step) - arrays.pair_curve[k].value(x))
                if gain > best_gain:
                    best, best_gain = k, gain
            if best is None:
                break
            i = arrays.pair_partner[best]
            amounts[i, r] += step
            groups.apply(int(i), int(r), step)


@pytest.mark.parametrize("seed", range(12))
def test_spending_the_leftover_is_the_greedy_rescan(seed: int) -> None:
    request = random_small_request(
        seed, n_partners=12, n_resources=2, with_min=True, with_group_budget=True
    )
    arrays = build_arrays(request)
    rng = np.random.default_rng(seed)
    amounts = np.zeros((arrays.n_partners, arrays.n_resources))
    for k in range(arrays.n_pairs):  # a random start on the grid within the bounds
        i, r = arrays.pair_partner[k], arrays.pair_resource[k]
        units = int(rng.integers(0, 2)) * int(np.ceil(arrays.pair_min[k] / arrays.step[r]))
        amounts[i, r] = units * arrays.step[r]
    expected = amounts.copy()
    _rescanned_leftover(arrays, expected)
    spend_leftover(arrays, amounts, None)
    np.testing.assert_array_equal(amounts, expected)


def test_spending_the_leftover_values_each_step_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step changes only its own pair's next gain: here 400 steps go to 400 partners,
    and rescanning every pair for every step valued 138,534 steps."""
    request = random_small_request(3, n_partners=400, n_resources=1, max_units=5)
    arrays = build_arrays(request)
    amounts = np.zeros((arrays.n_partners, 1))
    budget_steps = int(arrays.budget[0] / arrays.step[0])
    assert budget_steps >= 200
    calls = 0
    step_gain = rounding._gain

    def counted(*args: Any) -> float:
        nonlocal calls
        calls += 1
        return step_gain(*args)

    monkeypatch.setattr(rounding, "_gain", counted)
    spend_leftover(arrays, amounts, None)
    given = round(float(amounts.sum() / arrays.step[0]))
    assert given >= 200
    assert calls <= arrays.n_pairs + given


def _two_partners(
    first: dict[str, Any], second: dict[str, Any], budget: float
) -> AllocationRequest:
    def partner(i: int, curve: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"P{i}", "baseline_gmv": 1e7, "response": {"fund": curve}}

    body = {
        "objective": "max_attainment",
        "resources": [{"name": "fund", "unit": "CNY", "budget": budget, "step": STEP}],
        "tiers": [{"name": "100M", "min_gmv": 1e8, "target": 1}],
        "partners": [partner(0, first), partner(1, second)],
    }
    return parse_request(body)


def test_trimming_takes_back_where_the_least_gmv_is_lost() -> None:
    """The larger amount is the steeper one here: cutting it (the old rule, largest
    amounts first) lost four times the GMV of cutting the saturated partner."""
    steep = {"curve": "saturating", "max_uplift": 4e8, "scale": 2e8}
    flat = {"curve": "saturating", "max_uplift": 1e7, "scale": 2e6}
    request = _two_partners(steep, flat, budget=70e6)
    arrays = build_arrays(request)
    columns = curve_columns(request)
    amounts = np.array([[50e6], [30e6]])  # 10M over
    before = projected_gmv(request, amounts, None, columns).sum()
    trim_to_budgets(arrays, amounts, None, np.zeros(2), columns)
    assert amounts.sum() == pytest.approx(70e6)
    assert amounts[0, 0] == 50e6, "the steep partner keeps its amount"
    lost = before - projected_gmv(request, amounts, None, columns).sum()
    cut_steep = np.array([[40e6], [30e6]])
    lost_steep = before - projected_gmv(request, cut_steep, None, columns).sum()
    assert lost < lost_steep / 4


@pytest.mark.parametrize("seed", range(8))
def test_trimming_keeps_the_budgets_and_loses_no_more_than_any_single_cut(seed: int) -> None:
    """Overspends on random concave curves: the budget holds afterwards, amounts stay on
    their grid, and no one-pair cut of the same size would have lost less GMV than the
    trim did in all (cheapest steps first is the least loss there)."""
    concave = (CurveKind.SATURATING, CurveKind.LOG, CurveKind.LINEAR)
    request = random_small_request(seed, n_partners=10, n_resources=1, kinds=concave)
    arrays = build_arrays(request)
    columns = curve_columns(request)
    step = float(arrays.step[0])
    amounts = np.zeros((arrays.n_partners, 1))
    for k in range(arrays.n_pairs):
        i = arrays.pair_partner[k]
        amounts[i, 0] = step * (arrays.pair_max[k] // step)  # every pair at its most
    excess = amounts.sum() - float(arrays.budget[0])
    assert excess > 0, "every pair at its most overspends these budgets"
    before = projected_gmv(request, amounts, None, columns).sum()
    trimmed = amounts.copy()
    trim_to_budgets(arrays, trimmed, None, np.zeros(arrays.n_partners), columns)
    assert trimmed.sum() <= arrays.budget[0] + 1e-6
    for k in range(arrays.n_pairs):
        i = arrays.pair_partner[k]
        assert abs(trimmed[i, 0] / step - round(trimmed[i, 0] / step)) < 1e-9
    lost = before - projected_gmv(request, trimmed, None, columns).sum()
    need = np.ceil(excess / step - 1e-9) * step
    for k in range(arrays.n_pairs):
        i = arrays.pair_partner[k]
        if amounts[i, 0] >= need:
            single = amounts.copy()
            single[i, 0] -= need
            assert lost <= before - projected_gmv(request, single, None, columns).sum() + 1e-6


def test_trimming_takes_a_group_budgets_overspend_from_its_members() -> None:
    """A group cap of 30% of 1.25e9 (3.75e8) is not a whole number of 1e7 steps: a fine
    grid's amount rounded to 3.8e8 broke it, and CBC's plan failed the exact check."""
    saturating = {"curve": "saturating", "max_uplift": 4e8, "scale": 3e8}
    body = {
        "objective": "max_gmv",
        "resources": [{"name": "subsidy", "unit": "CNY", "budget": 1.25e9, "step": 1e7}],
        "constraints": [
            {
                "type": "group_budget",
                "resource": "subsidy",
                "where": {"region": "south"},
                "max_share": 0.3,
            },
        ],
        "partners": [
            {
                "id": f"P{i}",
                "baseline_gmv": 5e7,
                "attributes": {"region": region},
                "response": {"subsidy": saturating},
                "bounds": {"subsidy": {"max": 8e8}},
            }
            for i, region in enumerate(("south", "north", "south"))
        ],
    }
    request = parse_request(body)
    arrays = build_arrays(request)
    columns = curve_columns(request)
    amounts = np.array([[2.0e8], [4.0e8], [1.8e8]])  # the south gets 3.8e8
    trim_to_budgets(arrays, amounts, None, np.zeros(3), columns)
    assert amounts[0, 0] + amounts[2, 0] <= 3.75e8
    assert amounts[1, 0] == 4.0e8, "the north keeps its amount"
    assert amounts[0, 0] + amounts[2, 0] == pytest.approx(3.7e8), "one step taken back"
