"""CBC through PuLP's `COIN_CMD`, on the binary the `cbcbox` package ships (PuLP's
`pulp[cbc]` extra); without cbcbox, a `cbc` on PATH. Written against PuLP's current API
(variables made by the problem, no `PULP_CBC_CMD`), so it raises no deprecation warnings.

A cancelled job stops CBC the way Ctrl-C does: SIGINT to its process (found by the run's
own temporary folder in its command line), after which CBC writes its best solution."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import numpy as np

from models.curves import FloatArray
from optimizer.engines.base import MilpModel, MilpResult, Termination

MIN_LIMIT_S = 0.1
STOP_POLL_S = 0.5  # `should_stop` may read a database: at most twice a second


def _processes_using(folder: str) -> list[int]:
    """Ids of the processes whose command line names `folder` (Linux /proc; none elsewhere)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().decode(errors="replace")
        except OSError:
            continue  # ended meanwhile, or not ours to read
        if folder in command:
            found.append(int(entry))
    return found


@contextmanager
def _interruptible(solver: object, should_stop: Callable[[], bool] | None) -> Iterator[None]:
    """While the block runs CBC, a watcher asks `should_stop` and on a stop sends SIGINT to
    this run's CBC process (its files live in a folder of its own)."""
    if should_stop is None:
        yield
        return
    folder = tempfile.mkdtemp(prefix="windmaker-cbc-")
    solver.tmpDir = folder  # type: ignore[attr-defined]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL_S):
            if should_stop():
                for pid in _processes_using(folder):
                    with suppress(OSError):  # it ended on its own meanwhile
                        os.kill(pid, signal.SIGINT)
                return

    watcher = threading.Thread(target=watch, name="cbc-stop", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=5)
        shutil.rmtree(folder, ignore_errors=True)


_LOG_FIGURE = re.compile(r"^(Result -|Objective value:|Lower bound:)\s*(.*?)\s*$", re.MULTILINE)


@dataclass
class _Summary:
    """The last lines of CBC's log: how it ended, its incumbent's objective and the best
    bound it proved (absent when it closed the gap completely)."""

    result: str = ""
    objective: float | None = None
    lower: float | None = None


def _summary(log: str) -> _Summary:
    summary = _Summary()
    for key, value in _LOG_FIGURE.findall(log):
        if key == "Result -":
            summary = _Summary(result=value)  # a later run's summary replaces an earlier one
            continue
        try:
            number = float(value.split()[0])
        except (ValueError, IndexError):
            continue
        if key == "Objective value:":
            summary.objective = number
        else:
            summary.lower = number
    return summary


def _bound(summary: _Summary, objective: float, proven: bool, mip_gap: float) -> float | None:
    """The proven lower bound on the minimum (model units, offset included). PuLP exposes
    none, so it comes from CBC's log: the gap it certifies is often far below the one it
    was asked for, and a bound inflated to the requested gap kept rounds from ever
    certifying `mip_gap` when the backend was asked for that same gap (family seed 1, 1,000
    partners). The log's objective may lack the model's constant: the bound is shifted by
    the difference. Without a log: a proven optimum with the requested relative gap."""
    if summary.objective is not None and summary.lower is not None:
        # Never above the incumbent: CBC's bound carries its tolerances (a menu programme
        # printed one 1e-6 above its own optimum), and a bound past the plan is no bound.
        return min(summary.lower + (objective - summary.objective), objective)
    if proven and summary.objective is not None and summary.result == "Optimal solution found":
        return objective  # closed completely: CBC prints no bound then
    return objective - abs(objective) * mip_gap if proven else None


def cbc_path() -> str | None:
    """The CBC binary cbcbox ships, or None to let PuLP look for `cbc` on PATH."""
    try:
        from cbcbox import cbc_bin_path
    except ImportError:
        return None  # COIN_CMD then looks for `cbc` on PATH
    return str(cbc_bin_path())


class CbcBackend:
    name = "cbc"

    def is_available(self) -> bool:
        try:
            import pulp
        except ImportError:
            return False
        return bool(pulp.COIN_CMD(msg=False, path=cbc_path()).available())

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
    ) -> MilpResult:
        import pulp

        started = time.perf_counter()
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
        if warm_start is not None:
            start = np.clip(warm_start, model.col_lo, model.col_hi)
            for column, value in zip(columns, start, strict=True):
                column.setInitialValue(float(value))
        # Building the PuLP model takes a while on large models: it counts against the
        # limit, which CBC takes in fractions of a second too.
        limit = max(float(time_limit_s) - (time.perf_counter() - started), MIN_LIMIT_S)
        log_folder = tempfile.mkdtemp(prefix="windmaker-cbc-log-")
        log_path = os.path.join(log_folder, "cbc.log")
        solver = pulp.COIN_CMD(
            path=cbc_path(),
            msg=False,
            timeLimit=round(limit, 2),
            gapRel=float(mip_gap),
            warmStart=warm_start is not None,
            options=[f"randomSeed {int(seed) + 1}"],
            logPath=log_path,
        )
        try:
            with _interruptible(solver, should_stop):
                problem.solve(solver)
            try:
                with open(log_path, encoding="utf-8", errors="replace") as handle:
                    summary = _summary(handle.read())
            except OSError:
                summary = _Summary()
        finally:
            shutil.rmtree(log_folder, ignore_errors=True)
        seconds = time.perf_counter() - started
        status = pulp.LpStatus[problem.status]
        # CBC stopped on time without an integer solution writes its LP relaxation's
        # values ("continuous used"): those break integrality, so they are no solution.
        integral = problem.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
        has_values = integral and all(column.varValue is not None for column in columns)
        if status == "Infeasible":
            return MilpResult(Termination.INFEASIBLE, seconds=seconds)
        if status == "Unbounded":
            return MilpResult(Termination.UNBOUNDED, seconds=seconds)
        if not has_values or status not in ("Optimal", "Not Solved"):
            return MilpResult(
                Termination.NO_SOLUTION if status == "Not Solved" else Termination.ERROR,
                seconds=seconds,
            )
        x = np.array([column.varValue for column in columns], dtype=np.float64)
        objective = float(model.c @ x + model.offset)  # PuLP gives None for a constant
        proven = problem.sol_status == pulp.LpSolutionOptimal
        lower = _bound(summary, objective, proven, mip_gap)
        return MilpResult(
            Termination.OPTIMAL if proven else Termination.FEASIBLE, x, objective, lower, seconds
        )
