"""The allocation MILP in matrix form, for one approximation (inner or outer) of the curves.

Columns: x (amount per pair), n (grid index of a stepped amount), δ (fill of each piece of
the approximation), u (piece on a convex stretch is full), y (semi-continuous pair is on),
v (package option taken), z (partner reaches tier), s (tier shortfall). Money is in the
request's money scale (millions of CNY at programme scale); each resource in its own
power-of-ten unit, so coefficients stay within a few orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.arrays import ProblemArrays
from optimizer.engines.base import MilpModel

# Tiers are claimed with this much headroom (CNY, and relative) so that rounding a
# solver's amounts back onto grids and bounds never loses a tier under the exact curves.
TIER_MARGIN_ABS = 1e-6  # in model money units (1 CNY when money is in millions)
TIER_MARGIN_REL = 1e-9
FINE_GRID = 64  # a pair with more grid steps than this has a continuous grid index


def grid_steps(arrays: ProblemArrays) -> FloatArray:
    """Per pair, the whole grid steps its max allows (0 on a resource without steps)."""
    step = arrays.step[arrays.pair_resource]
    steps = np.floor(arrays.pair_max / np.where(step > 0, step, 1.0) + 1e-9)
    return np.where(step > 0, steps, 0.0)


@dataclass
class StageSpec:
    minimise_shortfall: bool  # stage 1; else stage 2 (GMV or cost)
    shortfall_cap: float | None = None  # stage 2: weighted shortfall held at stage 1's value
    exclude_sets: list[set[tuple[int, int]]] = field(default_factory=list)  # no-good cuts


@dataclass
class Formulation:
    model: MilpModel
    x_cols: NDArray[np.intp]
    v_cols: NDArray[np.intp]
    z_cols: dict[tuple[int, int], int]
    # Model objective × this = the stage's objective in request units: weighted shortfall,
    # cost, or GMV (which the model minimises as −GMV, so the scale is negative there).
    objective_scale: float
    piece_cols: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    grid_cols: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    # Pairs with no x column of their own (`x_cols` -1): their amounts in model units from
    # a solution (`optimizer.pooling`).
    pooled: Callable[[FloatArray], FloatArray] | None = None

    def claims(self, arrays: ProblemArrays, solution: FloatArray) -> FloatArray:
        """Per partner: the highest tier threshold the model counts it towards (0: none)."""
        claimed = np.zeros(arrays.n_partners)
        for (i, t), col in self.z_cols.items():
            if solution[col] > 0.5:
                claimed[i] = max(claimed[i], arrays.thresholds[t])
        return claimed

    def raw_amounts(self, arrays: ProblemArrays, solution: FloatArray) -> FloatArray:
        """Per pair amounts in request units as the solver left them (within bounds)."""
        scale = arrays.resource_scale[arrays.pair_resource]
        held = self.x_cols >= 0
        values = np.zeros(arrays.n_pairs)
        values[held] = solution[self.x_cols[held]]
        if self.pooled is not None:
            values[~held] = self.pooled(solution)[~held]
        return np.clip(values * scale, 0.0, arrays.pair_max)

    def amounts(self, arrays: ProblemArrays, solution: FloatArray) -> FloatArray:
        """Per pair amounts in request units, on their grids and within bounds.

        Fine grids are continuous in the model and round to the nearest step here; the
        caller restores any tier that rounding cost (`MilpStrategy.candidate`).
        """
        raw = self.raw_amounts(arrays, solution)
        step = arrays.step[arrays.pair_resource]
        on_grid = step > 0
        ratio = raw / np.where(on_grid, step, 1.0)
        snapped = np.where(on_grid, np.minimum(np.round(ratio) * step, arrays.pair_max), raw)
        # Semi-continuous: anything a hair above 0 but under the minimum is solver noise.
        below_min = (snapped > 0) & (snapped < arrays.pair_min)
        snapped[below_min & (snapped < 0.5 * arrays.pair_min)] = 0.0
        snapped[below_min & (snapped >= 0.5 * arrays.pair_min)] = arrays.pair_min[
            below_min & (snapped >= 0.5 * arrays.pair_min)
        ]
        snapped[snapped < 1e-9 * np.maximum(arrays.pair_max, 1.0)] = 0.0
        return snapped

    def package_choice(self, arrays: ProblemArrays, solution: FloatArray) -> NDArray[np.intp]:
        choice = np.full(arrays.n_partners, -1, dtype=np.intp)
        for option, col in zip(arrays.packages, self.v_cols, strict=True):
            if solution[col] > 0.5:
                choice[option.partner] = option.index
        return choice
