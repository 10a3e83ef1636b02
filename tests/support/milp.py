"""A small MILP strategy and scored incumbents for tests of `optimizer.milp`'s rounds."""

from __future__ import annotations

import numpy as np

from optimizer.arrays import build_arrays
from optimizer.engines import milp_backend
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
