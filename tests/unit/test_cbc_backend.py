"""The CBC backend takes only integral solutions: CBC stopped on time without one writes
its LP relaxation's values, which must not pass as a plan."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from optimizer.engines import cbc
from optimizer.engines.base import OVERRUN_GRACE_S, MilpModel, Termination
from optimizer.engines.cbc import CbcBackend, _in_pulps_layout, _read_solution, write_mps
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


@pytest.mark.parametrize(
    ("head", "status", "solution"),
    [
        ("Optimal - objective value -8.00000000", "Optimal", True),
        ("Stopped on time - objective value -8.00000000", "Stopped", True),
        ("Stopped on time (no integer solution - continuous used) - objective value -8.5",
         "Stopped", False),
        ("Integer infeasible - objective value 0.00000000", "Integer", False),
        ("Infeasible - objective value 0.00000000", "Infeasible", False),
    ],
)  # fmt: skip
def test_only_an_integer_solution_is_read_back(
    tmp_path: Path, head: str, status: str, solution: bool
) -> None:
    """CBC stopped on time without an integer solution writes its LP relaxation's values
    ("continuous used"): they must not pass as a solution."""
    path = tmp_path / "cbc.sol"
    rows = ["      0 r0                     4                    -1.5"]
    columns = ["      0 X0000000               1                       0",
               "**    1 X0000001             0.5                       0",
               "      2 X0000002               1                       0"]  # fmt: skip
    path.write_text("\n".join([head, *rows, *columns]) + "\n", encoding="utf-8")
    found, x = _read_solution(str(path), 3)
    assert found == status
    if solution:
        assert x is not None and x.tolist() == [1.0, 0.5, 1.0]
    else:
        assert x is None


def test_the_mps_file_is_the_model_at_full_precision(tmp_path: Path) -> None:
    """CBC solves the model HiGHS wrote, numbers to the last digit: a knapsack that takes
    both items if its weight were written to six digits (1.00001 + 1 fits 2.00001) and
    one with the weight as it is."""
    weight = 1.0000123
    model = MilpModel(
        c=np.array([-1.0, -1.0]),
        A=sp.csr_matrix(np.array([[weight, 1.0]])),
        row_lo=np.array([-np.inf]),
        row_hi=np.array([2.00001]),
        col_lo=np.zeros(2),
        col_hi=np.ones(2),
        integer=np.ones(2, dtype=bool),
        offset=3.0,
    )
    path = tmp_path / "model.mps"
    write_mps(model, str(path))
    text = path.read_text(encoding="utf-8")
    assert repr(weight) in text and "INTORG" in text
    result = CbcBackend().solve(model, time_limit_s=10, mip_gap=0.0)
    assert result.termination is Termination.OPTIMAL and result.objective == pytest.approx(2.0)


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


def _pulps_file(model: MilpModel, path: Path) -> str:
    """The MPS file PuLP wrote for `model` when the backend built it through PuLP (the
    construction the backend used until it wrote the file itself)."""
    import pulp

    problem = pulp.LpProblem("windmaker", pulp.LpMinimize)

    def bound(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    columns = [
        problem.add_variable(
            f"x{j}",
            lowBound=bound(model.col_lo[j]),
            upBound=bound(model.col_hi[j]),
            cat=pulp.LpInteger if model.integer[j] else pulp.LpContinuous,
        )
        for j in range(model.n_cols)
    ]
    nonzero = np.nonzero(model.c)[0]
    problem += pulp.lpSum(float(model.c[j]) * columns[j] for j in nonzero) + float(model.offset)
    csr = model.A.tocsr()
    for i in range(model.n_rows):
        start, end = csr.indptr[i], csr.indptr[i + 1]
        expr = pulp.LpAffineExpression(
            [
                (columns[j], float(v))
                for j, v in zip(csr.indices[start:end], csr.data[start:end], strict=True)
            ]
        )
        lo, hi = model.row_lo[i], model.row_hi[i]
        if np.isfinite(lo) and np.isfinite(hi) and lo == hi:
            problem += expr == float(lo)
            continue
        if np.isfinite(lo):
            problem += expr >= float(lo)
        if np.isfinite(hi):
            problem += expr <= float(hi)
    problem.writeMPS(str(path), rename=1)
    return path.read_text(encoding="utf-8")


def _random_model(rng: np.random.Generator) -> MilpModel:
    """Columns of every kind (binary, general integer, continuous; fixed, free, one- and
    two-sided bounds) and rows of every kind (equal, ranged, one-sided, free), over 12+
    columns so that PuLP's name order (x0, x1, x10, x11, x2, …) differs from theirs."""
    n, m = int(rng.integers(12, 40)), int(rng.integers(3, 15))
    dense = np.where(rng.random((m, n)) < 0.4, rng.normal(0, 1e3, (m, n)), 0.0)
    dense[np.arange(m), rng.integers(0, n, m)] = 1.5  # no empty row
    # No empty column either, counting free rows (which no file has) as empty: PuLP left
    # out a column in no row and not in the objective, the backend keeps every column.
    dense[0] = np.where(dense[0] == 0, -0.75, dense[0])
    col_lo = rng.choice([0.0, -np.inf, -2.5, 3.0], n)
    col_hi = np.where(rng.random(n) < 0.3, np.inf, col_lo + rng.choice([0.0, 1.0, 7.25], n))
    col_hi = np.where(np.isfinite(col_lo), col_hi, rng.choice([np.inf, 4.0], n))
    row_lo = rng.choice([-np.inf, -1e4, 0.0, 123.456789012345], m)
    row_lo[0] = -1e4  # never a free row (see above)
    row_hi = np.where(rng.random(m) < 0.3, row_lo, rng.choice([np.inf, 1e6, 2e13], m))
    return MilpModel(
        c=np.where(rng.random(n) < 0.7, rng.normal(0, 1, n) / 3, 0.0),
        A=sp.csr_matrix(dense),
        row_lo=row_lo,
        row_hi=np.maximum(row_hi, row_lo),
        col_lo=col_lo,
        col_hi=col_hi,
        integer=rng.random(n) < 0.5,
        offset=float(rng.normal()),
    )


@pytest.mark.parametrize("seed", range(8))
def test_the_file_is_pulps_byte_for_byte(seed: int, tmp_path: Path) -> None:
    """CBC's search depends on the file (column order, digits): the backend writes the
    very file PuLP wrote, so CBC searches as it did under PuLP, without PuLP's time."""
    model = _random_model(np.random.default_rng(seed))
    laid_out, order = _in_pulps_layout(model)
    mine = tmp_path / "mine.mps"
    write_mps(laid_out, str(mine))
    assert mine.read_text(encoding="utf-8") == _pulps_file(model, tmp_path / "pulp.mps")
    assert sorted(order.tolist()) == list(range(model.n_cols))


@pytest.mark.parametrize(("holds_plan", "pumps"), [(True, False), (False, True)])
def test_a_caller_holding_a_plan_skips_the_feasibility_pump(
    holds_plan: bool, pumps: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pump only hunts for a first solution: the neighbourhood MILPs and the finish's
    # inner solves, which start from a plan, spent up to 2 s of 3 in it.
    runs: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        runs.append(list(args))
        return real_run(args, **kwargs)

    monkeypatch.setattr(cbc.subprocess, "run", recording_run)
    result = CbcBackend().solve(
        hard_knapsack(), time_limit_s=1.0, mip_gap=0.0, holds_plan=holds_plan
    )
    assert result.x is not None  # the heuristics left on still find solutions
    (args,) = runs
    skipped = ("-feasibilityPump", "off") in itertools.pairwise(args)
    assert skipped is not pumps


def test_the_absolute_gap_holds_the_relative_gap_on_the_objective_with_its_constant() -> None:
    # max 3a + 2b + 1000 (min of the negative, constant -1000): CBC sees only -3a - 2b, so
    # its ratio gap alone would be 1000/5 times tighter than asked for.
    model = replace(_knapsack(), c=np.array([-3.0, -2.0, 0.0]), offset=-1000.0)
    assert cbc._allowable_gap(model, 1e-3) == pytest.approx(1.0)
    # Any plan's objective is at most -1000 here, so 1.0 is within 0.1% of each.
    assert cbc._allowable_gap(replace(model, offset=0.0), 1e-3) == 0.0
    # A term of the other sign could make the objective smaller than its constant.
    assert cbc._allowable_gap(replace(model, c=np.array([-3.0, 2.0, 0.0])), 1e-3) == 0.0
    assert cbc._allowable_gap(replace(model, col_lo=np.array([-1.0, 0.0, 0.0])), 1e-3) == 0.0
    costs = replace(model, c=np.array([3.0, 2.0, 1.0]), offset=500.0)  # a cost, pins paid
    assert cbc._allowable_gap(costs, 1e-3) == pytest.approx(0.5)


def test_the_log_watch_sees_a_solution_announced_in_either_format(tmp_path: Path) -> None:
    from optimizer.engines.cbc import _LogWatch

    announcements = (
        "\N{BLACK STAR}      56       48     48        -15675.4 B&B\n",  # this build's table
        "Cbc0012I Integer solution of -1330 found by DiveCoefficient\n",  # classic builds
    )
    for announcement in announcements:
        log = tmp_path / "cbc.log"
        log.write_bytes(b"")
        watch = _LogWatch(str(log))
        assert not watch.has_solution()
        with log.open("ab") as handle:
            handle.write(b"     0        1      0               -                -16220.1\n")
        assert not watch.has_solution()  # a table row without a new incumbent
        encoded = announcement.encode()
        with log.open("ab") as handle:  # the announcement split across two reads
            handle.write(encoded[:2])
        assert not watch.has_solution()
        with log.open("ab") as handle:
            handle.write(encoded[2:])
        assert watch.has_solution()


def test_a_missing_log_is_no_solution(tmp_path: Path) -> None:
    from optimizer.engines.cbc import _LogWatch

    assert not _LogWatch(str(tmp_path / "absent.log")).has_solution()


def test_once_asked_cbc_stops_at_its_first_solution_below_the_cutoff() -> None:
    """A cutoff's proof is out of reach once a solution beats it: asked to, CBC stops at
    the first one instead of running on for better ones (CBC does not close this knapsack
    in a minute)."""
    model = hard_knapsack()
    started = time.perf_counter()
    asked_at = started + 1.0
    result = CbcBackend().solve(
        model,
        time_limit_s=60,
        mip_gap=0.0,
        cutoff=-1.0,
        stop_at_solution=lambda: time.perf_counter() > asked_at,
    )
    elapsed = time.perf_counter() - started
    assert 1.0 <= elapsed < 15, "it ran until asked, then stopped long before its limit"
    assert result.termination is Termination.FEASIBLE and result.x is not None
    assert result.objective is not None and result.objective < -1.0
    assert np.all(model.A @ result.x <= model.row_hi + 1e-6)
    assert np.allclose(result.x, np.round(result.x))


def _stubborn_cbc(tmp_path: Path, ignores_sigint: bool) -> str:
    """A stand-in for the CBC binary that never finishes: one that ignores SIGINT, as a
    solver stuck where it checks no signal would, or one that stops on it and writes a
    solution file as CBC does."""
    script = tmp_path / "cbc"
    handler = (
        "signal.SIG_IGN"
        if ignores_sigint
        else "lambda *_: (open(sys.argv[sys.argv.index('-solution') + 1], 'w').write("
        "'Stopped on time - objective value 0\\n'), sys.exit(0))"
    )
    script.write_text(
        f"#!{sys.executable}\n"
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGINT, {handler})\n"
        "while True:\n"
        "    time.sleep(0.05)\n"
    )
    script.chmod(0o755)
    return str(script)


def test_a_cbc_that_ignores_its_limit_is_stopped_and_then_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cbc, "cbc_path", lambda: _stubborn_cbc(tmp_path, ignores_sigint=True))
    started = time.monotonic()
    result = CbcBackend().solve(hard_knapsack(), time_limit_s=1.0, mip_gap=0.0)
    elapsed = time.monotonic() - started
    assert result.termination is Termination.NO_SOLUTION and result.x is None
    assert 1.0 + 2 * OVERRUN_GRACE_S - 0.5 < elapsed < 1.0 + 2 * OVERRUN_GRACE_S + 3


def test_a_cbc_past_its_limit_gets_a_sigint_and_its_answer_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cbc, "cbc_path", lambda: _stubborn_cbc(tmp_path, ignores_sigint=False))
    started = time.monotonic()
    result = CbcBackend().solve(hard_knapsack(), time_limit_s=1.0, mip_gap=0.0)
    elapsed = time.monotonic() - started
    # It wrote the empty knapsack as its incumbent, and that is the answer.
    assert result.termination is Termination.FEASIBLE and result.x is not None
    assert not result.x.any()
    assert 1.0 + OVERRUN_GRACE_S - 0.5 < elapsed < 1.0 + OVERRUN_GRACE_S + 2
