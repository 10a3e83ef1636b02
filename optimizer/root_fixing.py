"""A MILP solved over the columns its LP relaxation leaves in play (reduced-cost fixing).

At an optimal LP solution with value L, a 0-1 column at zero with reduced cost d costs
at least L + d in any solution that takes it. So once some solution of value U is known,
every such column with d > U − L is out of every better one, and the MILP over the rest
has the full model's optimum. The tier-option MILPs of stage 2 are multiple-choice
knapsacks with a few hundred coupling rows whose LP bound is within 1e-5 of their optimum
(5,000 family partners: 9,845 binaries, about 400 left in play): HiGHS took 2.7–4 s to
find and prove that optimum on the whole model, and 0.3–1.1 s with the LP first.

The window starts at `FIRST_WINDOW` of the LP value; when the restricted MILP's solution
is further from L than that, a second MILP over the window U − L settles it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from models.curves import FloatArray
from optimizer.engines import milp_backend
from optimizer.engines.base import MilpModel, MilpResult, Termination

FIRST_WINDOW = 3e-5  # of |L|: columns within this of the LP bound stay in the first MILP
# Reduced costs carry the LP's dual tolerance: a column this close (relative) stays in.
NOISE = 1e-9


def solve_fixed_at_root(
    model: MilpModel,
    *,
    time_limit_s: float,
    mip_gap: float,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> MilpResult:
    """`model` solved by HiGHS over the columns its LP relaxation leaves in play, with
    the whole model's bound; the whole model on HiGHS when the LP gives no reduced costs
    in time."""
    highs = milp_backend("highs")
    started = time.perf_counter()

    def left() -> float:
        return max(time_limit_s - (time.perf_counter() - started), 0.05)

    relaxed = replace(model, integer=np.zeros(model.n_cols, dtype=bool))
    root = highs.solve(relaxed, time_limit_s=left(), mip_gap=0.0, should_stop=should_stop)
    if root.termination is Termination.INFEASIBLE:
        return replace(root, seconds=time.perf_counter() - started)
    if root.reduced_costs is None or root.x is None or root.objective is None:
        whole = highs.solve(
            model, time_limit_s=left(), mip_gap=mip_gap, seed=seed, should_stop=should_stop
        )
        return replace(whole, seconds=time.perf_counter() - started)
    lp = root.objective
    noise = NOISE * max(abs(lp), 1.0)
    # Only 0-1 columns at zero can be fixed; the rest stay whatever their reduced cost.
    fixable = model.integer & (model.col_lo == 0) & (model.col_hi == 1) & (root.x <= 1e-9)
    window = FIRST_WINDOW * max(abs(lp), 1.0)
    warm: FloatArray | None = None
    result = root
    for _ in range(2):
        out = fixable & (root.reduced_costs > window + noise)
        restricted = replace(model, col_hi=np.where(out, 0.0, model.col_hi))
        result = highs.solve(
            restricted, time_limit_s=left(), mip_gap=mip_gap, seed=seed,
            warm_start=warm, should_stop=should_stop,
        )  # fmt: skip
        if result.x is None or result.objective is None:
            return replace(result, seconds=time.perf_counter() - started)
        outside = lp + float(root.reduced_costs[out].min(initial=math.inf))
        bound = min(lp if result.bound is None else max(result.bound, lp), outside)
        if result.objective - lp <= window or left() <= 0.05:
            return _whole(result, bound, mip_gap, time.perf_counter() - started)
        window, warm = result.objective - lp, result.x
    return _whole(result, bound, mip_gap, time.perf_counter() - started)


def _whole(result: MilpResult, bound: float, mip_gap: float, seconds: float) -> MilpResult:
    """`result` with the whole model's bound, optimal when that bound is within the gap."""
    objective = result.objective if result.objective is not None else math.inf
    within = objective - bound <= mip_gap * max(abs(objective), 1e-10) + 1e-12
    solved = result.termination is Termination.OPTIMAL and within
    return replace(
        result,
        termination=Termination.OPTIMAL if solved else Termination.FEASIBLE,
        bound=bound,
        seconds=seconds,
    )
