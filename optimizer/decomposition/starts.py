"""Where a decomposition's price searches start: a nearby request's prices, a sample's, or
stage 1's scaled, each only when it fits the stage and is no worse than the usual start."""

from __future__ import annotations

from models.curves import FloatArray
from optimizer.decomposition.lagrangian import Lagrangian, Stage, initial_point, scaled_start
from optimizer.decomposition.problem import Problem


def better_start(problem: Problem, stage: Stage, warm: FloatArray | None) -> FloatArray | None:
    """`warm` when its dual value is no worse than the usual first point's, else None (the
    usual start): a nearby request's prices can sit far off this one's (a budget grown by
    10% leaves its base's prices too high), and the search would pay for that in time."""
    lagrangian = Lagrangian(problem, stage)
    if warm is None or warm.size != lagrangian.size:
        return None
    usual, _ = initial_point(problem, lagrangian, stage)
    if lagrangian.evaluate(warm).value <= lagrangian.evaluate(usual).value:
        return warm
    return None


def stage_two_start(
    problem: Problem,
    stage: Stage,
    warm: FloatArray | None,
    trust_warm: bool,
    attain_prices: FloatArray | None,
) -> FloatArray | None:
    """Stage 2's first prices: a nearby request's or a sample's (`warm`), else a multiple
    of stage 1's when that beats the usual start, else None (the usual start).

    `warm` may lack the attainment price ρ this stage has (its stage 1 met every target,
    this one's did not) or have one this stage lacks: it then starts with ρ added
    (`Lagrangian.with_rho`) or dropped, when no worse than the usual start. At 1,000,000
    family partners the sample met every target and the full stage 1 did not: the
    mismatched prices were dropped and stage 2 started from clearing prices, its first
    bound 5.8× the plan's (1.04× from the sample's prices)."""
    if warm is not None:
        lagrangian = Lagrangian(problem, stage)
        size = lagrangian.size
        if warm.size == size:
            return warm if trust_warm else better_start(problem, stage, warm)
        if warm.size == size - 1 and lagrangian.rho:
            return better_start(problem, stage, lagrangian.with_rho(warm))
        if warm.size == size + 1:
            return better_start(problem, stage, warm[:-1])
        return None
    if attain_prices is None:
        return None
    return scaled_start(problem, stage, attain_prices)


def prices_fit(problem: Problem, prices: FloatArray) -> bool:
    """Could the prices start the probe or stage 2 (with or without the attainment row)?
    Each takes them only at its own size: a stage with the attainment row (ρ) is not
    started from prices without it (on `programme`, a scenario with a shortfall started
    from its base's prices, ρ added at 0, reached a first bound 9% above a cold start's)."""
    size = Lagrangian(problem, Stage("gmv", problem.targets, problem.n_tiers > 0)).size
    return prices.size in (size, size + 1)
