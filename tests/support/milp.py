"""A small MILP strategy and scored incumbents for tests of `optimizer.milp`'s rounds, a
MILP no backend closes quickly for tests of stopping early, and the first bound of a MILP
finish for tests of what tightens it."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from optimizer.arrays import ProblemArrays, build_arrays
from optimizer.engines import milp_backend
from optimizer.engines.base import MilpModel, MilpResult
from optimizer.milp import MilpStrategy, solve_milp
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.progress import ProgressEvent
from optimizer.scoring import Incumbent, score
from tests.support.instances import random_small_request


def small_strategy() -> MilpStrategy:
    request = random_small_request(3, n_partners=6, n_resources=2)
    return MilpStrategy(build_arrays(request), milp_backend("highs"), None)


def incumbent(strategy: MilpStrategy, amounts: np.ndarray) -> Incumbent:
    candidate = Candidate(amounts)
    return candidate, score(strategy.arrays, strategy.columns, candidate)


def hard_knapsack() -> MilpModel:
    """A 400-item, 30-constraint 0-1 knapsack CBC does not close in a minute."""
    rng = np.random.default_rng(0)
    weights = rng.integers(10, 100, (30, 400)).astype(float)
    return MilpModel(
        c=-rng.integers(10, 100, 400).astype(float),
        A=sp.csr_matrix(weights),
        row_lo=np.full(30, -np.inf),
        row_hi=weights.sum(axis=1) / 3,
        col_lo=np.zeros(400),
        col_hi=np.ones(400),
        integer=np.ones(400, dtype=bool),
    )


class WrappedBackend:
    """A real backend (`engine`) behind the backend interface, for test wrappers that
    change how a solve runs: they override `solve` and call `self.inner`."""

    def __init__(self, engine: str = "cbc") -> None:
        self.inner = milp_backend(engine)
        self.name = self.inner.name

    def is_available(self) -> bool:
        return True

    def supports(self, model: MilpModel) -> bool:
        return True

    def solve(self, model: MilpModel, **kwargs: Any) -> MilpResult:
        return self.inner.solve(model, **kwargs)


class _SolvedToItsGap(WrappedBackend):
    """CBC, every call solved to its gap: an outer solve is not stopped at its first
    solution once the inner one has ended (`MilpStrategy._solve_pair`), which would make
    its bound depend on which of the two ended first."""

    def solve(self, model: MilpModel, **kwargs: Any) -> MilpResult:
        kwargs.pop("stop_at_solution", None)
        return self.inner.solve(model, **kwargs)


def first_bounded_round(
    arrays: ProblemArrays, first: EngineOutcome, time_limit_s: float, **flags: bool
) -> ProgressEvent:
    """The first stage-2 round that reports a bound, of CBC's MILP started as the finish
    starts it from the decomposition outcome `first` (`flags`: `solve_milp`'s
    `exact_tier_curves`, `crossing_points`); the round's outer model solved to its gap,
    so the bound is its relaxation's strength."""
    events: list[ProgressEvent] = []
    solve_milp(
        arrays, _SolvedToItsGap(), progress=events.append, time_limit_s=time_limit_s,
        warm_start=Candidate(first.candidates[0].amounts.copy()),
        proven_shortfall=first.shortfall_bound, **flags,
    )  # fmt: skip
    bounded = [e for e in events if e.message.startswith("stage 2") and e.best_bound is not None]
    assert bounded, "a stage-2 round reported its bound"
    return bounded[0]
