"""A small MILP strategy and scored incumbents for tests of `optimizer.milp`'s rounds, and
a MILP no backend closes quickly for tests of stopping early."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optimizer.arrays import build_arrays
from optimizer.engines import milp_backend
from optimizer.engines.base import MilpModel
from optimizer.milp import MilpStrategy
from optimizer.outcome import Candidate
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
