"""Windmaker's large-scale engine: Lagrangian decomposition with a certified bound.

Budgets, tier counts and group rows are priced; each partner then solves a tiny problem
on its own (vectorised over all partners); the prices are tuned to minimise the dual,
whose value bounds the best plan; repaired primal plans are checked on the exact curves.
"""

from optimizer.decomposition.engine import ENGINE, solve_decomposition

__all__ = ["ENGINE", "solve_decomposition"]
