"""The CBC backend takes only integral solutions: CBC stopped on time without one writes
its LP relaxation's values, which must not pass as a plan."""

from __future__ import annotations

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
