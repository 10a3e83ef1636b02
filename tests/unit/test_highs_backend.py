"""The HiGHS backend stops on a cancel in LPs too, not only in MILPs (the tier-option LP
at 1,000,000 partners runs for seconds), a start HiGHS misreads does not decide the
answer, and wide LPs go to the interior-point solver with a basic optimum all the same."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from optimizer.engines import highs
from optimizer.engines.base import MilpModel, Termination
from optimizer.engines.highs import IPM_COLUMNS, HighsBackend, lp_solver
from tests.support.milp import hard_knapsack


def _slow_lp() -> MilpModel:
    """A random packing LP HiGHS's simplex takes a couple of seconds over (1.9 s on a 2-core
    AMD EPYC): long enough for many interrupt callbacks, short enough to solve in a test."""
    rng = np.random.default_rng(0)
    n, m = 3000, 1200
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


def test_a_start_highs_misreads_in_presolve_does_not_end_the_search() -> None:
    """A 2-partner, 2-option knapsack (hypothesis found it in `test_root_fixing`): HiGHS
    1.16 takes the start [0, 1, 0, 0] (worth -8.10) to be worth -10.15 in its presolved
    model, better than the optimum -9.12, and returned the start as optimal."""
    value = np.array([[4.77577266, 8.09965537], [1.01908054, 2.05252709]])
    use = np.array(
        [[[4.64301749, 3.00975157], [4.68532068, 4.59772765]],
         [[0.6195714, 2.7184247], [4.60748279, 3.46212901]]]
    )  # fmt: skip
    budget = np.array([8.89486878, 7.71471898])
    one_each = np.repeat(np.eye(2), 2, axis=1)  # at most one option per partner
    model = MilpModel(
        c=-value.ravel(),
        A=sp.csr_matrix(np.vstack([one_each, use.reshape(4, 2).T])),
        row_lo=np.full(4, -np.inf),
        row_hi=np.concatenate([np.ones(2), budget]),
        col_lo=np.zeros(4),
        col_hi=np.ones(4),
        integer=np.ones(4, dtype=bool),
    )
    start = np.array([0.0, 1.0, 0.0, 0.0])
    result = HighsBackend().solve(model, time_limit_s=10.0, mip_gap=1e-9, warm_start=start)
    assert result.termination is Termination.OPTIMAL and result.x is not None
    assert result.objective == pytest.approx(-9.118735911015474, abs=1e-6)
    assert float(model.c @ result.x) == pytest.approx(result.objective, abs=1e-9)
    assert np.all(model.A @ result.x <= model.row_hi + 1e-9)


def _choice_lp(partners: int, options: int, seed: int = 3) -> tuple[MilpModel, int]:
    """A multiple-choice LP like the tier-option LP: each partner takes at most one of its
    `options` (an even number; fractions allowed), three budget rows couple them; (model,
    coupling rows)."""
    rng = np.random.default_rng(seed)
    n = partners * options
    owner = np.repeat(np.arange(partners), options)
    # Each option also with its first two resources swapped, at the same value: the two
    # budgets are alike, so an interior point of the optimal face splits partners between
    # the mirror images where a basic solution cannot.
    use = np.repeat(rng.uniform(0.1, 1.0, (n // 2, 3)), 2, axis=0)
    use[1::2, :2] = use[1::2, 1::-1]
    choice = sp.csr_matrix((np.ones(n), (owner, np.arange(n))), shape=(partners, n))
    budgets = sp.csr_matrix(use.T)
    return (
        MilpModel(
            c=-(use.sum(axis=1) * np.repeat(rng.uniform(0.8, 1.2, n // 2), 2)),
            A=sp.vstack([choice, budgets]).tocsr(),
            row_lo=np.full(partners + 3, -np.inf),
            row_hi=np.concatenate([np.ones(partners), np.full(3, 0.2 * partners)]),
            col_lo=np.zeros(n),
            col_hi=np.ones(n),
            integer=np.zeros(n, dtype=bool),
        ),
        3,
    )


def test_wide_lps_go_to_the_interior_point_solver_and_milps_do_not() -> None:
    wide, _ = _choice_lp(IPM_COLUMNS // 2, 2)
    narrow, _ = _choice_lp(100, 2)
    assert lp_solver(wide) == "ipm"
    assert lp_solver(narrow) == "choose"
    integral = replace(wide, integer=np.ones(wide.n_cols, dtype=bool))
    assert lp_solver(integral) == "choose"


def test_the_interior_point_optimum_is_basic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Crossover stays on: a basic optimum of a choice-per-partner LP with k coupling rows
    has at most 2k fractional columns, which is what the tier-option LP's rounding needs."""
    monkeypatch.setattr(highs, "IPM_COLUMNS", 0)
    model, coupling = _choice_lp(2000, 4)
    assert lp_solver(model) == "ipm"
    result = HighsBackend().solve(model, time_limit_s=60, mip_gap=0.0)
    assert result.termination is Termination.OPTIMAL and result.x is not None
    fractional = np.count_nonzero((result.x > 1e-6) & (result.x < 1 - 1e-6))
    assert fractional <= 2 * coupling
    monkeypatch.setattr(highs, "IPM_COLUMNS", 10**9)  # the same LP by HiGHS's own choice
    reference = HighsBackend().solve(model, time_limit_s=60, mip_gap=0.0)
    assert reference.objective is not None and result.objective is not None
    assert result.objective == pytest.approx(reference.objective, rel=1e-7)


def test_a_stop_interrupts_an_interior_point_lp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(highs, "IPM_COLUMNS", 0)
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return True

    result = HighsBackend().solve(_slow_lp(), time_limit_s=120, mip_gap=0.0, should_stop=stop)
    assert asked
    assert result.termination is Termination.NO_SOLUTION


def test_a_stop_ends_a_milp_with_a_cutoff_too() -> None:
    """The cutoff's callback and the cancel's both watch the search: a cancel stops a solve
    whose bound is far from its cutoff, with the best solution so far."""
    started = time.monotonic()
    result = HighsBackend().solve(
        hard_knapsack(), time_limit_s=60, mip_gap=0.0, cutoff=-11_200.0,
        should_stop=lambda: time.monotonic() > started + 1.0,
    )  # fmt: skip
    assert time.monotonic() - started < 30, "stopped by the cancel, not its limit"
    assert result.termination is Termination.FEASIBLE and result.x is not None
    assert result.bound is not None and result.bound < -11_200.0
