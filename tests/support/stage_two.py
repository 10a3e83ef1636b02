"""A family programme carried to stage 2's first dual search, for tests of what follows it
(the option plan, the exact-grid dual)."""

from __future__ import annotations

from typing import NamedTuple

from fixtures.families import family_request
from models.curves import FloatArray
from models.request import AllocationRequest
from optimizer.arrays import build_arrays
from optimizer.clock import Clock
from optimizer.decomposition.lagrangian import Stage
from optimizer.decomposition.problem import Problem, build_problem
from optimizer.decomposition.stage_one import StageOne, stage_one
from optimizer.decomposition.stages import run_stage


class StageTwo(NamedTuple):
    request: AllocationRequest
    problem: Problem
    one: StageOne
    stage: Stage
    bound: float  # the plain dual's (no exact-grid refinement, no plans jittered)
    prices: FloatArray
    clock: Clock


def stage_two(seed: int, size: int, ambition: float = 0.95, resources: int = 3) -> StageTwo:
    """The family member after stage 1 and stage 2's plain dual search."""
    request, _ = family_request(seed, size, ambition, resources=resources, time_limit_s=60.0)
    problem = build_problem(build_arrays(request))
    clock = Clock(60.0)
    one = stage_one(problem, clock, None, None)
    assert one.plan is not None
    attainment = None
    if one.plan.shortfall > 0:
        attainment = float((problem.weights * one.targets).sum())
    stage = Stage("gmv", one.targets, True, attainment)
    bound, _, prices = run_stage(
        problem, stage, clock, 0.95, lambda *_: False, one.targets, None, polish_tries=0
    )
    return StageTwo(request, problem, one, stage, bound, prices, clock)
