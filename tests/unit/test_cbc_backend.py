"""The CBC backend takes only integral solutions: CBC stopped on time without one writes
its LP relaxation's values, which must not pass as a plan."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp

from optimizer.engines.base import MilpModel, Termination
from optimizer.engines.cbc import CbcBackend

pytestmark = pytest.mark.skipif(not CbcBackend().is_available(), reason="CBC missing")


def _knapsack() -> MilpModel:
    # max 5a + 4b + 3c (as min of the negative), 2a + 3b + 2c <= 4, binaries: LP optimum
    # is fractional, so relaxation values cannot be mistaken for a solution.
    return MilpModel(
        c=np.array([-5.0, -4.0, -3.0]),
        A=sp.csr_matrix(np.array([[2.0, 3.0, 2.0]])),
        row_lo=np.array([-np.inf]),
        row_hi=np.array([4.0]),
        col_lo=np.zeros(3),
        col_hi=np.ones(3),
        integer=np.ones(3, dtype=bool),
    )


def test_cbc_solves_the_knapsack() -> None:
    result = CbcBackend().solve(_knapsack(), time_limit_s=10, mip_gap=0.0)
    assert result.termination is Termination.OPTIMAL
    assert result.x is not None and np.allclose(result.x, [1, 0, 1])


def test_stopped_without_an_integer_solution_is_no_solution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pulp

    def stopped(self: object, filename: str) -> tuple[int, int]:
        # What PuLP reads from "Stopped on time (no integer solution - continuous used)".
        return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound

    monkeypatch.setattr(pulp.COIN_CMD, "get_status", stopped)
    result = CbcBackend().solve(_knapsack(), time_limit_s=10, mip_gap=0.0)
    assert result.termination is Termination.NO_SOLUTION and result.x is None


def _hard_knapsack() -> MilpModel:
    """A 400-item, 30-constraint 0-1 knapsack CBC does not close in a minute."""
    rng = np.random.default_rng(0)
    weights = rng.integers(10, 100, (30, 400)).astype(float)
    return MilpModel(
        c=-rng.integers(10, 100, 400).astype(float),
        A=sp.csr_matrix(weights),
        row_lo=np.full(30, -np.inf),
        row_hi=weights.sum(axis=1) / 3,
        col_lo=np.zeros(400),
        col_hi=np.ones(400),
        integer=np.ones(400, dtype=bool),
    )


def test_a_stop_interrupts_cbc_and_keeps_its_best_solution() -> None:
    model = _hard_knapsack()
    started = time.perf_counter()
    result = CbcBackend().solve(
        model,
        time_limit_s=60,
        mip_gap=0.0,
        should_stop=lambda: time.perf_counter() - started > 2.0,
    )
    assert time.perf_counter() - started < 15, "the stop ended CBC long before its limit"
    assert result.termination is Termination.FEASIBLE and result.x is not None
    assert np.all(model.A @ result.x <= model.row_hi + 1e-6)
    assert np.allclose(result.x, np.round(result.x))
