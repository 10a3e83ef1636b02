"""The one small interface every MILP backend implements.

A model is in matrix form — minimise c·x + offset subject to row_lo <= A·x <= row_hi,
col_lo <= x <= col_hi, x_j integer where `integer[j]` — built in bulk by `optimizer.milp`.
Backends map their native statuses onto `Termination`; infeasible is a status, not an
exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from models.curves import FloatArray


class Termination(StrEnum):
    OPTIMAL = "optimal"  # proven within the requested gap
    FEASIBLE = "feasible"  # stopped early (time) with a solution
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"  # stopped early (time) without a solution
    UNBOUNDED = "unbounded"
    ERROR = "error"
    CUT_OFF = "cut_off"  # proven: no solution below the cutoff (the bound is the cutoff)


@dataclass
class MilpModel:
    c: FloatArray
    A: sp.csr_matrix
    row_lo: FloatArray
    row_hi: FloatArray
    col_lo: FloatArray
    col_hi: FloatArray
    integer: NDArray[np.bool_]
    offset: float = 0.0

    @property
    def n_cols(self) -> int:
        return len(self.c)

    @property
    def n_rows(self) -> int:
        return len(self.row_lo)


@dataclass
class MilpResult:
    termination: Termination
    x: FloatArray | None = None
    objective: float | None = None  # of x, including offset
    bound: float | None = None  # proven lower bound on the minimum, including offset
    seconds: float = 0.0
    # An LP's optimal reduced costs (one per column), where the backend gives them.
    reduced_costs: FloatArray | None = None

    @property
    def has_solution(self) -> bool:
        return self.x is not None


# A backend call still running this long past its time limit is stopped from outside: a
# solver does not check its clock everywhere (HiGHS 1.16's presolve ran 146 s under a 29 s
# limit). The grace covers a solver's own late return on a limit it does check.
OVERRUN_GRACE_S = 2.0
OVERRUN_GRACE_SHARE = 0.1  # of the time limit, when that is more


def overrun_grace(time_limit_s: float) -> float:
    """How long past `time_limit_s` a backend call may run before it is stopped."""
    return max(OVERRUN_GRACE_S, OVERRUN_GRACE_SHARE * time_limit_s)


class MilpBackend(Protocol):
    name: str

    def is_available(self) -> bool: ...

    def supports(self, model: MilpModel) -> bool:
        """Can this backend solve this model as built (e.g. CP-SAT: integral models only)?"""
        ...

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
        """`should_stop` is polled (throttled) by backends that can interrupt a solve;
        the others stop at `time_limit_s`. `target`: a solution with objective at or below
        it is good enough (the caller knows a bound the solver would take long to prove);
        HiGHS stops there, CBC and CP-SAT take it as no more than a hint and run on.
        `cutoff`: only solutions with objective below it are wanted (the caller needs to
        know whether any exists, not how good the best is); a MILP backend that proves none
        does returns CUT_OFF with the cutoff as its bound (HiGHS keeps solutions above it
        while it searches and stops once its dual bound reaches it). CP-SAT, and every
        backend on a model without integer columns, solve as without it. `holds_plan`: the
        caller has a plan of its own, so heuristics that only hunt for a first solution may
        be skipped (CBC's feasibility pump); HiGHS and CP-SAT solve as without it.
        `stop_at_solution`: once it is true, a solution in hand is all the caller wants (with
        a cutoff, one solution below it shows the cutoff cannot be proved, and the search
        for better ones only improves a solution the caller uses as a hint); CBC then stops
        as soon as it holds one, HiGHS and CP-SAT solve as without it."""
        ...
