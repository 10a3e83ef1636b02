"""CBC, the binary the `cbcbox` package ships (PuLP's `pulp[cbc]` extra; without cbcbox, a
`cbc` on PATH), run on an MPS file of the model.

PuLP rebuilt the model (already in matrix form) as one Python object per variable and
term and then wrote it out: on the neighbourhood MILPs of 3,000 family partners that took
0.7 s per call around 0.95 s of CBC. The file PuLP wrote is now written straight from the
arrays, the same file (layout, names, digits), and CBC gets the arguments PuLP's
`COIN_CMD` gave it; its solution file is read the way PuLP read it. The same file and
arguments make CBC search as before: only the overhead is gone.

A cancelled job stops CBC the way Ctrl-C does: SIGINT to its process (found by the run's
own temporary folder in its command line), after which CBC writes its best solution. So
does a CBC still running `overrun_grace` past its time limit; one still running as long
again after that is killed, and the call answers NO_SOLUTION."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.engines.base import MilpModel, MilpResult, Termination, overrun_grace

MIN_LIMIT_S = 0.1
# How often a running CBC's `should_stop` is asked. Often: inside the MILP rounds it is an
# in-memory flag that another solve sets (an outer bound proving the plan), and at 0.5 s
# the inner solve ran on 0.5-0.7 s for nothing in most finishing rounds. A job's check
# throttles its own database reads (`service.execution`).
STOP_POLL_S = 0.05


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


# How CBC's log announces a new incumbent: this build's branch-and-bound table marks the
# row with a star; classic builds print "Integer solution of ...".
_INCUMBENT_MARKS = ("\N{BLACK STAR}".encode(), b"Integer solution of")


class _LogWatch:
    """Has CBC's log, read as it grows (CBC flushes it line by line), announced a solution?"""

    def __init__(self, path: str) -> None:
        self.path, self.offset, self.tail, self.solved = path, 0, b"", False

    def has_solution(self) -> bool:
        if not self.solved:
            with suppress(OSError), open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = self.tail + handle.read()
                self.offset += len(chunk) - len(self.tail)
                self.solved = any(mark in chunk for mark in _INCUMBENT_MARKS)
                self.tail = chunk[-32:]  # a mark split across two reads
        return self.solved


@contextmanager
def _interruptible(
    folder: str,
    should_stop: Callable[[], bool] | None,
    stop_at_solution: Callable[[], bool] | None = None,
) -> Iterator[None]:
    """While the block runs CBC, a watcher asks `should_stop` and on a stop sends SIGINT to
    this run's CBC process (its files live in `folder`, a folder of its own); so it does
    once `stop_at_solution` is true and the run's log has announced a solution."""
    if should_stop is None and stop_at_solution is None:
        yield
        return
    done = threading.Event()
    log = _LogWatch(os.path.join(folder, "cbc.log"))

    def stopping() -> bool:
        if should_stop is not None and should_stop():
            return True
        return stop_at_solution is not None and stop_at_solution() and log.has_solution()

    def watch() -> None:
        while not done.wait(STOP_POLL_S):
            if stopping():
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


def _allowable_gap(model: MilpModel, mip_gap: float) -> float:
    """CBC's absolute gap for a relative `mip_gap` on the objective with its constant. CBC
    reads the file's objective, which leaves the constant out, and its ratio gap on that is
    tighter by the constant's share: GMV models carry the baseline GMV there (a neighbourhood
    MILP of 300 family partners, 5,000, seed 5: 7.5 times tighter). `mip_gap` times the
    constant's size is no looser than the gap asked for when every objective term has the
    constant's sign (nonnegative columns, costs of one sign); 0 (none) otherwise."""
    offset = model.offset
    if offset == 0 or np.any(model.col_lo < 0):
        return 0.0
    same_sign = np.all(model.c <= 0) if offset < 0 else np.all(model.c >= 0)
    return float(mip_gap * abs(offset)) if same_sign else 0.0


def cbc_path() -> str | None:
    """The CBC binary cbcbox ships, else a `cbc` on PATH, else None."""
    try:
        from cbcbox import cbc_bin_path
    except ImportError:
        return shutil.which("cbc")
    return str(cbc_bin_path())


def write_mps(model: MilpModel, path: str, name: str = "MODEL") -> None:
    """`model` as the MPS file PuLP's `writeMPS` wrote for it (renamed columns X0000000…,
    rows C0000000…, numbers as `% .12e`, the objective's constant left out), written from
    the arrays: byte for byte PuLP's file for a model laid out as `_in_pulps_layout` does
    (tests/unit/test_cbc_backend.py), without a Python object per variable and term. One
    difference: a column in no row and not in the objective stays (PuLP left it out of the
    file and then read no value back for it, which the old backend took for no solution)."""
    n, m = model.n_cols, model.n_rows
    lo, hi = model.row_lo, model.row_hi
    kinds = np.where(np.isfinite(lo) & (lo == hi), "E", np.where(np.isfinite(lo), "G", "L"))
    rhs = np.where(np.isfinite(lo), lo, hi)
    matrix = model.A.tocsc(copy=True)
    matrix.sort_indices()
    counts = np.diff(matrix.indptr)
    integer = model.integer.astype(bool)
    costed = model.c != 0
    # Each column's lines, in order: INTORG marker, its entries, its objective, INTEND.
    sizes = counts + costed + 2 * integer
    first = _offsets(sizes)
    lines = np.empty(int(sizes.sum()), dtype=object)
    lines[first[integer]] = _INTORG
    entry_at = np.repeat(first + integer, counts) + (
        np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], counts)
    )
    owner = np.repeat(np.arange(n), counts)
    lines[entry_at] = _lines("    X%07d  C%07d  % .12e\n", owner, matrix.indices, matrix.data)
    where = np.flatnonzero(costed)
    lines[first[where] + integer[where] + counts[where]] = _lines(
        "    X%07d  OBJ       % .12e\n", where, model.c[where]
    )
    lines[first[integer] + sizes[integer] - 1] = _INTEND
    head = f"*SENSE:Minimize\nNAME          {name}\nROWS\n N  OBJ\n"
    rows = "".join(f" {kind}  C{i:07d}\n" for i, kind in enumerate(kinds.tolist()))
    right = "".join(_lines("    RHS       C%07d  % .12e\n", np.arange(m), rhs))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(head + rows + "COLUMNS\n")
        handle.write("".join(lines.tolist()))
        handle.write("RHS\n" + right + "BOUNDS\n")
        handle.write(_bounds(model.col_lo, model.col_hi, integer) + "ENDATA\n")


_INTORG = "    MARK      'MARKER'                 'INTORG'\n"
_INTEND = "    MARK      'MARKER'                 'INTEND'\n"


def _offsets(sizes: NDArray[np.integer]) -> NDArray[np.intp]:
    """Where each block of `sizes` lines starts when the blocks are laid end to end."""
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)


def _lines(template: str, *fields: NDArray[np.generic]) -> list[str]:
    """`template` (one line) filled in with each row of `fields`, in one formatting call."""
    count = len(fields[0])
    if count == 0:
        return []
    values = np.empty(count * len(fields), dtype=object)
    for k, field in enumerate(fields):
        values[k :: len(fields)] = field.tolist()
    return (template * count % tuple(values.tolist())).splitlines(keepends=True)


def _bounds(low: FloatArray, high: FloatArray, integer: NDArray[np.bool_]) -> str:
    """The BOUNDS lines as PuLP's `writeMPSBoundLines` wrote them, column by column: FX
    (fixed), BV (a 0–1 integer), else LO where the lower bound is not 0 (or an integer
    column has no upper one: COIN takes an unbounded integer for a binary), MI / FR without
    a lower bound, and UP with an upper one."""
    low_set, high_set = np.isfinite(low), np.isfinite(high)
    fixed = low_set & (low == high)
    binary = ~fixed & (low == 0) & (high == 1) & integer
    rest = ~fixed & ~binary
    first_lines = [  # at most one of these per column, then UP
        (fixed, " FX BND       X%07d  % .12e\n", True),
        (binary, " BV BND       X%07d\n", False),
        (
            rest & low_set & ((low != 0) | (integer & ~high_set)),
            " LO BND       X%07d  % .12e\n",
            True,
        ),
        (rest & ~low_set & high_set, " MI BND       X%07d\n", False),
        (rest & ~low_set & ~high_set, " FR BND       X%07d\n", False),
    ]
    up = rest & high_set
    has_first = np.logical_or.reduce([mask for mask, _, _ in first_lines])
    start = _offsets(has_first.astype(np.intp) + up)
    lines = np.empty(int(has_first.sum() + up.sum()), dtype=object)
    for mask, template, with_value in first_lines:
        where = np.flatnonzero(mask)
        fields = (where, low[where]) if with_value else (where,)
        lines[start[where]] = _lines(template, *fields)
    where = np.flatnonzero(up)
    lines[start[where] + has_first[where]] = _lines(
        " UP BND       X%07d  % .12e\n", where, high[where]
    )
    return "".join(lines.tolist())


def _in_pulps_layout(model: MilpModel) -> tuple[MilpModel, NDArray[np.intp]]:
    """The model as PuLP laid it out for CBC (columns sorted by their names x0, x1, x10,
    x100, …; a row bounded on both sides as two rows, `>=` first; free rows dropped), and
    the original index of each laid-out column. CBC's search depends on that layout
    (branching ties, heuristics), so with it CBC searches exactly as it did under PuLP."""
    order = np.array(sorted(range(model.n_cols), key=lambda j: f"x{j}"), dtype=np.intp)
    lo, hi = model.row_lo, model.row_hi
    low_side = np.isfinite(lo)
    equal = low_side & (lo == hi)
    high_side = np.isfinite(hi) & ~equal
    # Row i becomes its `>=` (or `==`) row, then its `<=` row, in the original row order.
    sides = np.stack([low_side, high_side], axis=1).ravel()
    source = np.repeat(np.arange(model.n_rows), 2)[sides]
    is_low = np.tile([True, False], model.n_rows)[sides]
    row_lo = np.where(is_low, lo[source], -np.inf)
    row_hi = np.where(is_low, np.where(equal[source], lo[source], np.inf), hi[source])
    laid_out = MilpModel(
        c=model.c[order],
        A=model.A.tocsr()[source][:, order],
        row_lo=row_lo,
        row_hi=row_hi,
        col_lo=model.col_lo[order],
        col_hi=model.col_hi[order],
        integer=model.integer[order],
        offset=model.offset,
    )
    return laid_out, order


def _write_start(start: FloatArray, path: str) -> None:
    """A MIP start in the solution-file layout CBC's `-mips` reads (as PuLP wrote it)."""
    lines = ["Stopped on time - objective value 0\n"]
    lines += [f"{j:>7} X{j:07d} {float(value)!r:>15} {0:>23}\n" for j, value in enumerate(start)]
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def _read_solution(path: str, n_cols: int) -> tuple[str, FloatArray | None]:
    """CBC's first word for how it ended, and the columns' values when it has an integer
    solution (None otherwise: a run stopped without one writes its LP relaxation's values,
    "continuous used", which break integrality)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        head = handle.readline().split()
        status = head[0] if head else ""
        integral = status == "Optimal" or (
            status == "Stopped" and len(head) >= 5 and head[4] == "objective"
        )
        if not integral:
            return status, None
        x = np.zeros(n_cols)
        for line in handle:
            fields = line.split()
            if fields and fields[0] == "**":  # an infeasibility marker before the index
                fields = fields[1:]
            if len(fields) >= 3 and fields[1].startswith("X") and fields[1][1:].isdigit():
                x[int(fields[1][1:])] = float(fields[2])
    return status, x


class CbcBackend:
    name = "cbc"

    def is_available(self) -> bool:
        path = cbc_path()
        return path is not None and os.access(path, os.X_OK)

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
        holds_plan: bool = False,
        stop_at_solution: Callable[[], bool] | None = None,
    ) -> MilpResult:
        started = time.perf_counter()
        folder = tempfile.mkdtemp(prefix="windmaker-cbc-")
        try:
            return self._solve(
                model, folder, started, time_limit_s, mip_gap, seed, warm_start, should_stop,
                cutoff if model.integer.any() else None, holds_plan, stop_at_solution,
            )  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _solve(
        self,
        model: MilpModel,
        folder: str,
        started: float,
        time_limit_s: float,
        mip_gap: float,
        seed: int,
        warm_start: FloatArray | None,
        should_stop: Callable[[], bool] | None,
        cutoff: float | None,
        holds_plan: bool,
        stop_at_solution: Callable[[], bool] | None = None,
    ) -> MilpResult:
        mps, start, solution, log_path = (
            os.path.join(folder, name) for name in ("model.mps", "start.mst", "cbc.sol", "cbc.log")
        )
        laid_out, order = _in_pulps_layout(model)
        write_mps(laid_out, mps)
        args = [cbc_path() or "cbc", mps]
        if warm_start is not None:
            _write_start(np.clip(warm_start, model.col_lo, model.col_hi)[order], start)
            args += ["-mips", start]
        # Writing the model counts against the limit, which CBC takes in fractions of a
        # second too.
        limit = max(float(time_limit_s) - (time.perf_counter() - started), MIN_LIMIT_S)
        args += ["-sec", f"{round(limit, 2)}", "-randomSeed", str(int(seed) + 1)]
        if cutoff is not None:  # in the file's units: the objective's constant is left out
            args += ["-cutoff", repr(float(cutoff - model.offset))]
            # A cutoff asks for a proof that nothing beats it, or else for the outer model's
            # solution: the root heuristics (feasibility pump, diving) only hunt for
            # solutions. Family programmes of 1,000-3,000 partners: 1-3 s less a run.
            args += ["-heuristicsOnOff", "off"]
        elif holds_plan:
            # The feasibility pump hunts for a first solution, which a caller holding a plan
            # does not need: on a neighbourhood MILP of 300 family partners (5,000, seed 5)
            # it took 2.0 s of 3.2 for a solution 12% below the one B&B found next.
            args += ["-feasibilityPump", "off"]
        args += ["-ratio", str(float(mip_gap))]
        allowable = _allowable_gap(model, mip_gap)
        if allowable > 0:
            args += ["-allowableGap", repr(allowable)]
        args += ["-solve", "-printingOptions", "all"]
        args += ["-solution", solution]
        grace = overrun_grace(limit)
        overrun = time.monotonic() + limit + grace

        def stopping() -> bool:
            return time.monotonic() > overrun or (should_stop is not None and should_stop())

        try:
            with (
                open(log_path, "w", encoding="utf-8") as log,
                _interruptible(folder, stopping, stop_at_solution),
            ):
                code = subprocess.run(
                    args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    check=False, timeout=limit + 2 * grace,
                ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:  # it ignored the SIGINT too: `run` killed it
            return MilpResult(Termination.NO_SOLUTION, seconds=time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if code != 0 or not os.path.exists(solution):
            return MilpResult(Termination.ERROR, seconds=seconds)
        status, laid_out_x = _read_solution(solution, model.n_cols)
        x = None
        if laid_out_x is not None:
            x = np.empty(model.n_cols)
            x[order] = laid_out_x
        if status in ("Infeasible", "Integer"):
            if cutoff is not None:  # a model without solutions has none below it either
                return MilpResult(Termination.CUT_OFF, bound=cutoff, seconds=seconds)
            return MilpResult(Termination.INFEASIBLE, seconds=seconds)
        if status == "Unbounded":
            return MilpResult(Termination.UNBOUNDED, seconds=seconds)
        if x is None:
            return MilpResult(Termination.NO_SOLUTION, seconds=seconds)
        objective = float(model.c @ x + model.offset)
        proven = status == "Optimal"
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            summary = _summary(handle.read())  # only a solution needs its bound
        lower = _bound(summary, objective, proven, mip_gap)
        return MilpResult(
            Termination.OPTIMAL if proven else Termination.FEASIBLE, x, objective, lower, seconds
        )
