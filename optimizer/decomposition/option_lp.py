"""The tier-option model's LP relaxation, rounded: the MILP of `assignment` above
LP_ROUNDING_OPTIONS options, where HiGHS's root heuristics overrun any time limit.

A basic optimum of a choice-per-partner model with k other rows has at most 2k fractional
options, so rounding loses a few partners at most; but one partner below a tier count is
a unit of shortfall, which outweighs any GMV. So when the rounded choice falls short of
the counts the LP reached, the LP is solved again (at most twice) with those count rows
raised by what rounding lost, and the better rounded choice under the model's own
objective is kept (1,000,000 family partners: stage 2's option plan came out one partner
below the counts it had to keep, and was dropped for a plan 0.7% lower in GMV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.clock import Clock
from optimizer.engines import milp_backend
from optimizer.engines.base import MilpModel, Termination

ROUNDING_TOLERANCE = 1e-6
# Counts within this of a whole number are that number (the LP's float noise).
COUNT_NOISE = 1e-6
# The LP is solved at most this often: once, then with the count rows raised by what
# rounding lost, cumulatively (family programmes of 1,000 and 3,000 partners, seeds 0-7,
# counts a MILP reached: 1-2 partners short after rounding in 12 of 16, with up to two
# more solves in 4).
LP_SOLVES = 3


@dataclass(frozen=True)
class _Rounded:
    chosen: NDArray[np.bool_]  # the options taken
    used: FloatArray  # every row's activity under them
    reached: FloatArray  # the count rows' activity under the LP's own (fractional) options


def rounded_relaxation(
    model: MilpModel, partner: NDArray[np.intp], seconds: float, clock: Clock
) -> NDArray[np.bool_] | None:
    """The options (the model's first `partner.size` columns, one partner each) an LP
    optimum takes whole, plus its fractional ones (largest first) wherever they still fit;
    None without an LP optimum in time or when the rounded choice breaks a hard row (a
    group count). The other columns are the count rows' shortfalls."""
    began = clock.elapsed()
    count = partner.size
    counted = np.asarray(np.abs(model.A[:, count:]).sum(axis=1)).ravel() > 0
    matrix = model.A.tocsc()[:, :count]  # the options' columns: no solve changes them
    shortfall = model.A[counted][:, count:].tocoo()  # (count row, shortfall column) pairs
    floors = model.row_lo[counted]
    best: tuple[float, NDArray[np.bool_]] | None = None
    margin = np.zeros(floors.size)
    for _ in range(LP_SOLVES):
        left = seconds - (clock.elapsed() - began)
        if best is not None and (left <= 0 or clock.out()):
            break
        raised = _with_margin(model, count, counted, shortfall, margin)
        found = _lp_rounded(raised, matrix, partner, counted, left, clock)
        if found is None:
            break
        value = _objective(model, count, counted, shortfall, found)
        if best is None or value < best[0]:
            best = (value, found.chosen)
        # Rows the LP met in full, which rounding left below their floor: raise them. (Where
        # the LP itself fell short, the budgets bind and a higher floor changes nothing.)
        met = found.reached >= floors + margin - COUNT_NOISE
        lost = np.ceil(floors - found.used[counted] - COUNT_NOISE)
        lost = np.where(met, np.maximum(lost, 0.0), 0.0)
        if not np.any(lost > 0):
            break
        margin += lost
    return None if best is None else best[1]


def _with_margin(
    model: MilpModel,
    count: int,
    counted: NDArray[np.bool_],
    shortfall: sp.coo_matrix,
    margin: FloatArray,
) -> MilpModel:
    """The model with its count rows raised by `margin`, and their shortfalls allowed as
    much more."""
    if not np.any(margin > 0):
        return model
    row_lo = model.row_lo.copy()
    row_lo[counted] += margin
    col_hi = model.col_hi.copy()
    np.add.at(col_hi, count + shortfall.col, margin[shortfall.row])
    return replace(model, row_lo=row_lo, col_hi=col_hi)


def _lp_rounded(
    model: MilpModel,
    matrix: sp.csc_matrix,
    partner: NDArray[np.intp],
    counted: NDArray[np.bool_],
    seconds: float,
    clock: Clock,
) -> _Rounded | None:
    """The rounded choice of one LP solve (`matrix`: the model's option columns;
    `counted`: the rows with a shortfall column)."""
    relaxed = replace(model, integer=np.zeros(model.n_cols, dtype=bool))
    result = milp_backend("highs").solve(
        relaxed, time_limit_s=max(seconds, 0.05), mip_gap=0.0, should_stop=clock.should_stop
    )
    if result.x is None or result.termination is not Termination.OPTIMAL:
        return None
    count = partner.size
    weight = result.x[:count]
    reached = (matrix @ weight)[counted]
    chosen = weight > 1 - ROUNDING_TOLERANCE
    used = matrix @ chosen.astype(float)
    over = used > model.row_hi + 1e-9
    while np.any(over):  # whole within the LP's tolerance may not fit exactly whole
        culprits = np.flatnonzero(chosen & (matrix[over].max(axis=0).toarray().ravel() > 0))
        if culprits.size == 0:
            return None  # the rows the options leave alone are broken already
        drop = culprits[np.argmin(weight[culprits])]
        chosen[drop] = False
        used -= matrix[:, drop].toarray().ravel()
        over = used > model.row_hi + 1e-9
    holds = np.zeros(partner.max() + 1, dtype=bool)
    holds[partner[chosen]] = True
    fractional = np.flatnonzero(~chosen & (weight > ROUNDING_TOLERANCE))
    for j in fractional[np.argsort(-weight[fractional], kind="stable")]:
        column = matrix[:, j].toarray().ravel()
        if holds[partner[j]] or np.any(used + column > model.row_hi + 1e-9):
            continue
        chosen[j], holds[partner[j]] = True, True
        used += column
    # Rows without a shortfall column of their own (group counts) must hold as they are.
    if np.any(~counted & (used < model.row_lo - 1e-9)):
        return None
    return _Rounded(chosen, used, reached)


def _objective(
    model: MilpModel,
    count: int,
    counted: NDArray[np.bool_],
    shortfall: sp.coo_matrix,
    rounded: _Rounded,
) -> float:
    """The model's objective at a rounded choice, each shortfall the least its count row
    allows."""
    short = np.maximum(model.row_lo - rounded.used, 0.0)[counted]
    s = np.zeros(model.n_cols - count)
    np.maximum.at(s, shortfall.col, short[shortfall.row])
    total = float(model.c[:count] @ rounded.chosen) + float(model.c[count:] @ s)
    return total if math.isfinite(total) else math.inf
