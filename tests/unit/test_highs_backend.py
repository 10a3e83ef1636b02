"""The HiGHS backend stops on a cancel in LPs too, not only in MILPs (the tier-option LP
at 1,000,000 partners runs for seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from optimizer.engines.base import MilpModel, Termination
from optimizer.engines.highs import HighsBackend


def _slow_lp() -> MilpModel:
    """A random packing LP HiGHS's simplex takes several seconds over (about 7 s idle)."""
    rng = np.random.default_rng(0)
    n, m = 8000, 3000
    matrix = sp.random(
        m, n, density=6 / m, random_state=1, format="csr",
        data_rvs=lambda k: rng.uniform(0.1, 1.0, k),
    )  # fmt: skip
    return MilpModel(
        c=-rng.uniform(0.5, 1.0, n),
        A=matrix,
        row_lo=np.full(m, -np.inf),
        row_hi=np.ones(m),
        col_lo=np.zeros(n),
        col_hi=np.ones(n),
        integer=np.zeros(n, dtype=bool),
    )


def test_a_stop_interrupts_an_lp() -> None:
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return True

    result = HighsBackend().solve(_slow_lp(), time_limit_s=120, mip_gap=0.0, should_stop=stop)
    assert asked  # the LP's iterations asked
    assert result.termination is Termination.NO_SOLUTION
    assert result.x is None


@pytest.mark.slow
def test_an_lp_left_alone_is_solved() -> None:
    result = HighsBackend().solve(_slow_lp(), time_limit_s=120, mip_gap=0.0)
    assert result.termination is Termination.OPTIMAL
    assert result.x is not None
