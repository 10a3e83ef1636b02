"""The math: an AllocationRequest in, ranked exactly-checked plans out."""

from optimizer.errors import OptimizerError
from optimizer.solve import solve

__all__ = ["OptimizerError", "solve"]
