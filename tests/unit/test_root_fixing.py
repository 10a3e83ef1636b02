"""`optimizer.root_fixing`: a MILP over the columns its LP leaves in play has the whole
model's optimum, checked against every choice on small multiple-choice knapsacks."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimizer.root_fixing as root_fixing
from optimizer.engines.base import MilpModel, MilpResult, Termination
from optimizer.engines.highs import HighsBackend
from optimizer.matrix import MatrixBuilder
from optimizer.root_fixing import solve_fixed_at_root

Instance = tuple[MilpModel, np.ndarray, np.ndarray, np.ndarray]


def _knapsack(seed: int, partners: int, options: int, tight: float) -> Instance:
    """At most one option per partner, two budget rows (`tight`: their share of what every
    partner's dearest option would use), cost = -value. Returns the model, each
    partner's options' values and uses, and the budgets, for the brute force."""
    rng = np.random.default_rng(seed)
    value = rng.uniform(1.0, 10.0, (partners, options))
    use = rng.uniform(0.5, 5.0, (partners, options, 2))
    budget = tight * use.max(axis=1).sum(axis=0)
    b = MatrixBuilder()
    y = b.add_columns(np.zeros(partners * options), np.ones(partners * options), integer=True)
    owner = np.repeat(np.arange(partners), options)
    rows = b.add_rows(-np.inf, 1.0, count=partners)
    b.add_entries(rows[owner], y, 1.0)
    for r in range(2):
        row = b.add_rows(-np.inf, float(budget[r]), count=1)
        b.add_entries(np.full(y.size, row[0]), y, use[:, :, r].ravel())
    return b.build(-value.ravel()), value, use, budget


def _best_by_enumeration(value: np.ndarray, use: np.ndarray, budget: np.ndarray) -> float:
    partners, options = value.shape
    best = 0.0
    for choice in itertools.product(range(-1, options), repeat=partners):
        taken = [(i, o) for i, o in enumerate(choice) if o >= 0]
        spent = sum((use[i, o] for i, o in taken), np.zeros(2))
        if np.all(spent <= budget + 1e-9):
            best = min(best, -sum(value[i, o] for i, o in taken))
    return best


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    partners=st.integers(1, 6),
    options=st.integers(1, 3),
    tight=st.floats(0.05, 1.2),
)
def test_the_restricted_milp_reaches_the_whole_optimum(
    seed: int, partners: int, options: int, tight: float
) -> None:
    model, value, use, budget = _knapsack(seed, partners, options, tight)
    result = solve_fixed_at_root(model, time_limit_s=10.0, mip_gap=1e-9)
    best = _best_by_enumeration(value, use, budget)
    assert result.termination is Termination.OPTIMAL
    assert result.objective == pytest.approx(best, abs=1e-6)
    assert result.bound is not None and result.bound <= best + 1e-6
    assert result.x is not None
    assert np.all(model.A @ result.x <= model.row_hi + 1e-9)


def test_a_first_window_too_narrow_is_widened_to_the_found_solution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no first window at all only the LP's own columns are in play; the second MILP
    (window U − L) still reaches the optimum the enumeration finds."""
    monkeypatch.setattr(root_fixing, "FIRST_WINDOW", 0.0)
    milps = _milp_calls(monkeypatch)
    for seed in range(12):
        model, value, use, budget = _knapsack(seed, 6, 3, 0.3)
        result = solve_fixed_at_root(model, time_limit_s=10.0, mip_gap=1e-9)
        assert result.termination is Termination.OPTIMAL
        assert result.objective == pytest.approx(_best_by_enumeration(value, use, budget))
    assert len(milps) > 12  # some needed the second MILP


def test_most_columns_are_out_of_the_milp_and_the_optimum_is_the_whole_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, *_ = _knapsack(7, 300, 6, 0.4)
    whole = HighsBackend().solve(model, time_limit_s=60.0, mip_gap=1e-9)
    milps = _milp_calls(monkeypatch)
    result = solve_fixed_at_root(model, time_limit_s=60.0, mip_gap=1e-9)
    assert result.termination is Termination.OPTIMAL
    assert whole.objective is not None
    assert result.objective == pytest.approx(whole.objective, rel=1e-9)
    in_play = [int((m.col_hi > 0).sum()) for m in milps]
    assert max(in_play) < 0.35 * model.n_cols  # 300 of them the LP takes whole


def _milp_calls(monkeypatch: pytest.MonkeyPatch) -> list[MilpModel]:
    """The models of HiGHS's MILP calls from here on (its LP calls are left out)."""
    seen: list[MilpModel] = []
    real = HighsBackend.solve

    def spy(self: HighsBackend, model: MilpModel, **kwargs: Any) -> MilpResult:
        if model.integer.any():
            seen.append(model)
        return real(self, model, **kwargs)

    monkeypatch.setattr(HighsBackend, "solve", spy)
    return seen


def test_an_infeasible_model_is_infeasible() -> None:
    b = MatrixBuilder()
    y = b.add_columns(np.zeros(3), np.ones(3), integer=True)
    row = b.add_rows(2.5, np.inf, count=1)  # three binaries worth 0.5 each cannot make 2.5
    b.add_entries(np.full(3, row[0]), y, 0.5)
    result = solve_fixed_at_root(b.build(np.ones(3)), time_limit_s=5.0, mip_gap=1e-6)
    assert result.termination is Termination.INFEASIBLE
