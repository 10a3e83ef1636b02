"""Stage 2's bound with lumpy resources on their exact grid: the dual again, warm.

The plain dual's envelope chords and continuous steps let it buy "part" of a fund ticket
to lift a partner over a tier; enumerating the grid amounts of the partners reaching for a
tier removes that slack (`subproblem.reach_on_grid`), so the same prices give a lower,
still valid, bound. The grid dual's own minimum sits near the plain one's prices, at
nearly a common multiple of them (3,000 family partners, seed 2: every price 1.17-1.29×
the plain dual's, the bound 0.09% lower than at the plain prices). So the search walks
that ray first, then a bundle confined near the ray's best point finishes it. Every point
evaluated bounds the stage, whichever the search stops at.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from models.curves import FloatArray
from optimizer.clock import Clock
from optimizer.decomposition.dual import LevelBundle, golden_section
from optimizer.decomposition.lagrangian import Lagrangian, Stage
from optimizer.decomposition.problem import Problem

RAY_FACTOR = 1.25  # the ray's first steps multiply the prices by this (or divide)
RAY_OUT = 6  # at most this many such steps out, then
RAY_GOLDEN = 4  # this many golden-section steps inside the bracket found
# The bundle after the ray: confined to this share of each price on either side at first
# (`LevelBundle` radius; 3,000 family partners, seed 2: 0.1 took 32 steps to converge,
# 0.03 26 and 0.01 20, to the same bound within 0.0003%).
RADIUS = 0.01
# At most this many grid-dual steps per lumpy resource, until the bundle's model says the
# bound can fall by less than GAP_SHARE × the requested gap (3,000 family partners, seed 2:
# 13 steps, 0.003% above the converged value).
STEPS = 40
GAP_SHARE = 0.1
# It may take this share of the time limit: at 50,000 family partners (seed 1) the search
# without it added 10 s to the run (36.7 → 46.6 s) for a bound 0.02% tighter.
TIME_SHARE = 0.05


@dataclass
class GridBound:
    """The least grid-dual value found, where: its prices and the lumpy resource whose grid
    was exact (None: nothing evaluated)."""

    value: float = math.inf
    prices: FloatArray | None = None
    resource: int | None = None


class _GridDual:
    """The grid dual, evaluated within a count of steps and the clock; keeps every cut and
    the least value seen (each a valid bound)."""

    def __init__(
        self,
        lagrangian: Lagrangian,
        clock: Clock,
        share: float,
        steps: int,
        settles: Callable[[float], bool],
    ):
        self.lagrangian, self.clock, self.share, self.steps = lagrangian, clock, share, steps
        self.settles = settles
        self.upper = lagrangian.upper()
        self.cuts: list[tuple[FloatArray, float, FloatArray]] = []
        self.best_value = math.inf
        self.best_point: FloatArray | None = None
        self.slowest = 0.0  # a grid step costs more than a plain one: each must fit

    def __call__(self, z: FloatArray) -> tuple[float, FloatArray] | None:
        """The value and subgradient at `z` (capped at the upper prices); None: no steps
        or time left, or the least value seen already settles the stage."""
        clock = self.clock
        if len(self.cuts) >= self.steps or clock.out(self.share):
            return None
        if self.settles(self.best_value):
            return None
        if clock.left(self.share) < self.slowest:
            return None
        began = time.perf_counter()
        z = np.minimum(z, self.upper)
        evaluation = self.lagrangian.evaluate(z)
        self.slowest = max(self.slowest, time.perf_counter() - began)
        self.cuts.append((z, evaluation.value, evaluation.grad))
        if evaluation.value < self.best_value:
            self.best_value, self.best_point = evaluation.value, z
        return evaluation.value, evaluation.grad


def refine_bound(
    problem: Problem,
    stage: Stage,
    clock: Clock,
    share: float,
    mip_gap: float,
    start: FloatArray,
    settles: Callable[[float], bool] = lambda bound: False,
) -> GridBound:
    """The least grid-dual value found from the plain dual's best prices `start`, and its
    prices, within `share` of the clock and TIME_SHARE of it from now; the search ends
    early once `settles` holds for the least value (the caller's plan is then proven
    within `mip_gap`)."""
    bound = GridBound()
    share = min(share, clock.elapsed() / max(clock.limit, 1e-9) + TIME_SHARE)
    for r in problem.lumpy_resources():
        lagrangian = Lagrangian(problem, stage)
        lagrangian.exact_grid = r
        grid = _GridDual(lagrangian, clock, share, STEPS, partial(_either, settles, bound.value))
        multiple = _ray_minimum(grid, start)
        if multiple is not None:
            _bundle_from(grid, multiple * start, GAP_SHARE * mip_gap)
        if grid.best_value < bound.value:
            bound = GridBound(grid.best_value, grid.best_point, r)
    return bound


def _either(settles: Callable[[float], bool], before: float, value: float) -> bool:
    return settles(min(value, before))


def _ray_minimum(grid: _GridDual, start: FloatArray) -> float | None:
    """The multiple t of `start` with the least value seen along the ray (the value is
    convex in t): steps of RAY_FACTOR out from 1 while the value falls, then golden
    section within the last bracket. None: not even t = 1 was evaluated."""
    values: dict[float, float] = {}

    def at(t: float) -> float | None:
        if t not in values:
            found = grid(t * start)
            if found is None:
                return None
            values[t] = found[0]
        return values[t]

    if at(1.0) is None:
        return None
    factor = RAY_FACTOR
    up = at(factor)
    if up is None:
        return 1.0
    if up >= values[1.0]:
        factor = 1.0 / RAY_FACTOR
        down = at(factor)
        if down is None or down >= values[1.0]:
            return _golden(at, 1.0 / RAY_FACTOR, RAY_FACTOR, values)
    t = factor
    for _ in range(RAY_OUT):
        further = at(t * factor)
        if further is None or further >= values[t]:
            break
        t *= factor
    low, high = sorted((t / factor, t * factor))
    return _golden(at, low, high, values)


def _golden(
    at: Callable[[float], float | None], low: float, high: float, values: dict[float, float]
) -> float:
    """Golden-section steps for the least value on [low, high]; the best t seen, on the
    ray or in them."""
    golden_section(at, low, high, RAY_GOLDEN)
    return min(values, key=values.__getitem__)


def _bundle_from(grid: _GridDual, centre: FloatArray, tolerance: float) -> None:
    """Bundle steps confined near `centre`, with every cut the grid dual has, until its
    model says the bound can fall by less than `tolerance` or the grid dual has no more
    steps or time."""
    scale = np.maximum(np.abs(centre), 1e-12)
    bundle = LevelBundle(centre, scale, grid.upper, radius=RADIUS)
    for point, value, grad in grid.cuts:
        bundle.report(point, value, grad)
    while not bundle.model_gap < tolerance:
        z = bundle.propose()
        found = grid(z)
        if found is None:
            return
        bundle.report(z, *found)
