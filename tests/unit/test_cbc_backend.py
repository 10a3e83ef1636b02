"""The CBC backend takes only integral solutions: CBC stopped on time without one writes
its LP relaxation's values, which must not pass as a plan."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp

from optimizer.engines.base import MilpModel, Termination
from optimizer.engines.cbc import CbcBackend
from tests.support.milp import hard_knapsack

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


def test_a_stop_interrupts_cbc_and_keeps_its_best_solution() -> None:
    model = hard_knapsack()
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


WITHIN_GAP_LOG = """
Result - Optimal solution found (within gap tolerance)
Objective value:                -1330
Lower bound:                    -1334.6
Gap:                            0.00344673
Enumerated nodes:               0
"""
CLOSED_LOG = """
Result - Optimal solution found
Objective value:                -1330
Enumerated nodes:               0
"""


def test_the_bound_is_cbcs_own_shifted_by_the_models_constant() -> None:
    from optimizer.engines.cbc import _bound, _summary

    # The log's objective lacks a constant of +17: the bound moves with it.
    assert _bound(_summary(WITHIN_GAP_LOG), -1313.0, True, 0.01) == pytest.approx(-1317.6)
    # Closed completely: CBC prints no bound, the optimum is its own.
    assert _bound(_summary(CLOSED_LOG), -1330.0, True, 0.01) == -1330.0
    # No log figures: a proven optimum within the requested gap, nothing otherwise.
    assert _bound(_summary(""), -1000.0, True, 0.01) == pytest.approx(-1010.0)
    assert _bound(_summary(""), -1000.0, False, 0.01) is None
    # A printed bound past the incumbent (CBC's tolerances) is cut back to the incumbent.
    above = WITHIN_GAP_LOG.replace("-1334.6", "-1329.99")
    assert _bound(_summary(above), -1330.0 + 17, True, 0.01) == -1313.0


def test_a_run_stopped_on_time_reports_a_valid_bound() -> None:
    from scipy.optimize import linprog

    model = hard_knapsack()
    model.offset = 17.0
    result = CbcBackend().solve(model, time_limit_s=2, mip_gap=0.0)
    assert result.termination is Termination.FEASIBLE and result.x is not None
    assert result.bound is not None and result.objective is not None
    relaxation = linprog(model.c, A_ub=model.A.toarray(), b_ub=model.row_hi, bounds=(0, 1))
    # Between the LP relaxation's bound and the plan found: valid, and no looser than the LP.
    assert relaxation.fun + model.offset - 1e-6 <= result.bound <= result.objective + 1e-6
