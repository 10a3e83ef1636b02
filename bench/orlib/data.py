"""Where the benchmark files live, the instance types read from them, and the references."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DATA_ENV = "WINDMAKER_ORLIB_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]
MKNAPCB_FILES = tuple(f"mknapcb{k}" for k in range(1, 10))
SETS = ("mknap1", "mknap2", *MKNAPCB_FILES, "mmkp-khan", "mmkp-hifi")

FloatArray = NDArray[np.float64]


class OrlibDataError(Exception):
    """A benchmark file that does not have the documented layout (message names the file)."""


def data_dir() -> Path:
    """Where the benchmark files are: `$WINDMAKER_ORLIB_DIR`, else beside the repository."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured)
    return REPO_ROOT.parent / "shared" / "benchmarks" / "orlib"


@dataclass(frozen=True)
class MkpInstance:
    """0-1 multidimensional knapsack: max p·x s.t. W x <= b, x binary."""

    id: str  # as in best_known.csv, e.g. "mknapcb1/5.100-00"
    profits: FloatArray  # (n,)
    weights: FloatArray  # (m, n)
    capacities: FloatArray  # (m,)
    stated_optimum: float | None = None  # the optimum written in the data file, if any

    @property
    def n(self) -> int:
        return len(self.profits)

    @property
    def m(self) -> int:
        return len(self.capacities)


@dataclass(frozen=True)
class MmkpInstance:
    """Multiple-choice MKP: exactly one option per group, Σ weights <= capacities."""

    id: str  # e.g. "khan/I01"
    values: FloatArray  # (groups, options)
    weights: FloatArray  # (groups, options, m)
    capacities: FloatArray  # (m,)
    # Khan's files end with the exact solution for I01-I06: 0-based option per group.
    stated_choice: tuple[int, ...] | None = None
    stated_optimum: float | None = None

    @property
    def n(self) -> int:
        return self.values.shape[0]

    @property
    def options(self) -> int:
        return self.values.shape[1]

    @property
    def m(self) -> int:
        return len(self.capacities)


Instance = MkpInstance | MmkpInstance


@dataclass(frozen=True)
class Reference:
    best_known: float
    is_optimal: bool
    upper_bound: float | None
