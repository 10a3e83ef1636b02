"""HiGHS through highspy: the model is passed whole as column-wise sparse arrays."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from models.curves import FloatArray
from optimizer.engines.base import MilpModel, MilpResult, Termination, overrun_grace
from optimizer.engines.forked import can_fork, run_forked

INF = 1e30
# LPs (no integer columns) this wide go to HiGHS's interior-point solver, with crossover so
# that the optimum stays basic (few fractional options to round). On the tier-option LP of
# 1,000,000 family partners (151,579 columns, 52,379 rows) it took 9.2-14.4 s where
# HiGHS's own choice (dual simplex) took 16.8-23.1 s, four runs each; that LP ran out of
# its share of the clock in some engine runs. Slices of it with 3,000-60,000 columns solve
# faster by simplex (0.03 against 0.06 s, 2.7 against 3.2 s), 90,000-120,000 at par
# (BENCHMARKS.md).
IPM_COLUMNS = 100_000
# MIPs this wide run in a forked child (`optimizer.engines.forked`) that is killed once
# `overrun_grace` past its time limit: HiGHS does not check the clock everywhere in
# presolve (a 1,000-partner outer model of 55,942 columns ran 146 s under a 29 s limit).
# Forking a process costs milliseconds; the narrower MIPs (stage 1's tier options: 15,207
# columns at 5,000 family partners) solve in-process.
FORK_COLUMNS = 20_000
_banner_lock = threading.Lock()
_banner_shown = False


def _new_highs():  # type: ignore[no-untyped-def]
    """A Highs instance; the first one of a process prints a banner straight to file
    descriptor 1, which would land in CLI output and CSV pipes, so it goes to /dev/null."""
    global _banner_shown
    import highspy

    if _banner_shown:  # without the lock: a forked child must not wait on one (see FORK_COLUMNS)
        return highspy.Highs()
    with _banner_lock:
        if not _banner_shown:
            sys.stdout.flush()
            saved = os.dup(1)
            try:
                with open(os.devnull, "w") as sink:
                    os.dup2(sink.fileno(), 1)
                    first = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            _banner_shown = True
            return first
    return highspy.Highs()


def _interrupter(should_stop: Callable[[], bool]):  # type: ignore[no-untyped-def]
    """An interrupt callback (MIP, simplex or interior point) asking `should_stop` at most
    twice a second (it may read a database)."""
    last = [0.0]

    def callback(event) -> None:  # type: ignore[no-untyped-def]
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            if should_stop():
                event.interrupt()

    return callback


class _CutOff:
    """A MIP interrupt callback that stops the search once its dual bound reaches `cutoff`:
    no solution below it exists. HiGHS's own `objective_bound` is not used (see
    `HighsBackend._solve_once`); this leaves its search as it is and only ends it."""

    def __init__(self, cutoff: float) -> None:
        self.cutoff = cutoff
        self.reached = False

    def __call__(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.data_out.mip_dual_bound >= self.cutoff:
            self.reached = True
            event.interrupt()


class HighsBackend:
    name = "highs"

    def is_available(self) -> bool:
        try:
            import highspy  # noqa: F401
        except ImportError:
            return False
        return True

    def supports(self, model: MilpModel) -> bool:
        return True

    def solve(
        self,
        model: MilpModel,
        *,
        time_limit_s: float,
        mip_gap: float,
        seed: int = 0,
        warm_start: FloatArray | None = None,
        should_stop: Callable[[], bool] | None = None,
        target: float | None = None,
        cutoff: float | None = None,
        holds_plan: bool = False,  # no heuristic of its own is skipped
        stop_at_solution: Callable[[], bool] | None = None,  # not used: see `cutoff`
    ) -> MilpResult:
        if not model.integer.any():
            cutoff = None  # an LP solves whole either way

        def attempt(limit: float, start: FloatArray | None) -> MilpResult:
            """`_solve_once`, in a forked child for wide MIPs (see FORK_COLUMNS): one killed
            past its deadline (or one that died) answers NO_SOLUTION."""
            if not (forks(model) and can_fork()):
                return self._solve_once(model, mip_gap, seed, should_stop, target, cutoff,
                                        limit, start)  # fmt: skip
            _new_highs()  # the banner is silenced here, not in the child (it takes a lock)
            started = time.perf_counter()
            result = run_forked(
                lambda stopping: self._solve_once(
                    model, mip_gap, seed, stopping, target, cutoff, limit, start
                ),
                limit + overrun_grace(limit),
                should_stop,
            )
            seconds = time.perf_counter() - started
            if result is None:
                return MilpResult(Termination.NO_SOLUTION, seconds=seconds)
            return replace(result, seconds=seconds)

        result = attempt(time_limit_s, warm_start)
        if warm_start is None or not _misread_start(model, result):
            return result
        # HiGHS 1.16 can map a start into its presolved model with a wrong objective
        # (a 2-partner knapsack: -10.15 for a start worth -8.10, better than the optimum
        # -9.12), prune every node against it, and return the start as `optimal`: the
        # solve is repeated cold.
        left = max(time_limit_s - result.seconds, 0.05)
        again = attempt(left, None)
        return replace(again, seconds=result.seconds + again.seconds)

    def _solve_once(
        self,
        model: MilpModel,
        mip_gap: float,
        seed: int,
        should_stop: Callable[[], bool] | None,
        target: float | None,
        cutoff: float | None,
        time_limit_s: float,
        warm_start: FloatArray | None,
    ) -> MilpResult:
        import highspy

        started = time.perf_counter()
        h = _new_highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", max(float(time_limit_s), 0.01))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("random_seed", int(seed))
        h.setOptionValue("threads", 1)
        h.setOptionValue("solver", lp_solver(model))
        if target is not None:
            h.setOptionValue("objective_target", float(target))
        # A cutoff by callback, not `objective_bound`: under that option HiGHS 1.16 reported
        # `optimal` with a dual bound worse than solutions the model has (on `programme`, a
        # GMV bound below the plan).

        lp = highspy.HighsLp()
        lp.num_col_ = model.n_cols
        lp.num_row_ = model.n_rows
        lp.col_cost_ = model.c
        lp.col_lower_ = np.where(np.isfinite(model.col_lo), model.col_lo, -INF)
        lp.col_upper_ = np.where(np.isfinite(model.col_hi), model.col_hi, INF)
        lp.row_lower_ = np.where(np.isfinite(model.row_lo), model.row_lo, -INF)
        lp.row_upper_ = np.where(np.isfinite(model.row_hi), model.row_hi, INF)
        lp.offset_ = float(model.offset)
        csc = model.A.tocsc()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr
        lp.a_matrix_.index_ = csc.indices
        lp.a_matrix_.value_ = csc.data
        if model.integer.any():
            lp.integrality_ = [
                highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
                for flag in model.integer
            ]
        h.passModel(lp)
        cut_off = None
        if cutoff is not None:
            cut_off = _CutOff(float(cutoff))
            h.cbMipInterrupt.subscribe(cut_off)
        if should_stop is not None:
            interrupt = _interrupter(should_stop)  # one throttle for every callback
            h.cbMipInterrupt.subscribe(interrupt)
            if not model.integer.any():
                # An LP never reaches the MIP callback: a cancel must stop its simplex or
                # interior-point iterations (the tier-option LP at 1,000,000 partners: 7-12 s).
                h.cbSimplexInterrupt.subscribe(interrupt)
                h.cbIpmInterrupt.subscribe(interrupt)
        if warm_start is not None:
            solution = highspy.HighsSolution()
            solution.col_value = list(map(float, warm_start))
            solution.value_valid = True
            h.setSolution(solution)
        h.run()

        status = h.getModelStatus()
        info = h.getInfo()
        seconds = time.perf_counter() - started
        ms = highspy.HighsModelStatus
        if cut_off is not None and (
            cut_off.reached
            or status == ms.kInfeasible
            or (status == ms.kOptimal and info.mip_dual_bound >= cut_off.cutoff)
        ):
            # As CBC answers a cutoff: no solution below it (its search kept those above).
            return MilpResult(Termination.CUT_OFF, bound=cut_off.cutoff, seconds=seconds)
        if status == ms.kInfeasible:
            return MilpResult(Termination.INFEASIBLE, seconds=seconds)
        if status in (ms.kUnbounded, ms.kUnboundedOrInfeasible):
            return MilpResult(Termination.UNBOUNDED, seconds=seconds)
        has_solution = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        if not has_solution:
            limited = status in (ms.kTimeLimit, ms.kInterrupt, ms.kIterationLimit)
            return MilpResult(
                Termination.NO_SOLUTION if limited else Termination.ERROR, seconds=seconds
            )
        found = h.getSolution()
        x = np.array(found.col_value, dtype=np.float64)
        objective = float(info.objective_function_value)
        bound: float | None
        reduced_costs = None
        if model.integer.any():
            bound = float(info.mip_dual_bound)
        else:
            bound = objective if status == ms.kOptimal else None
            if bound is not None and found.dual_valid:
                reduced_costs = np.array(found.col_dual, dtype=np.float64)
        termination = Termination.OPTIMAL if status == ms.kOptimal else Termination.FEASIBLE
        return MilpResult(termination, x, objective, bound, seconds, reduced_costs)


def forks(model: MilpModel) -> bool:
    """Does HiGHS solve `model` in a forked child (see FORK_COLUMNS)?"""
    return bool(model.integer.any()) and model.n_cols >= FORK_COLUMNS


def lp_solver(model: MilpModel) -> str:
    """HiGHS's `solver` option for `model`: its own choice, interior point for wide LPs."""
    if not model.integer.any() and model.n_cols >= IPM_COLUMNS:
        return "ipm"
    return "choose"


def _misread_start(model: MilpModel, result: MilpResult) -> bool:
    """Does a MIP result's objective disagree with its own solution's value?"""
    if result.x is None or result.objective is None or not model.integer.any():
        return False
    value = float(model.c @ result.x) + float(model.offset)
    return abs(value - result.objective) > 1e-7 * max(abs(value), 1.0)
