"""OR-Tools CP-SAT, for models that are integral: integer columns with finite bounds and
coefficients that become integers under one power-of-ten scaling (e.g. package menus,
OR-Library knapsacks). Continuous curve amounts make a model unsupported."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from models.curves import FloatArray
from optimizer.engines.base import MilpModel, MilpResult, Termination

MAX_SCALE_EXPONENT = 9
MAX_COEFFICIENT = 2**50


def _integer_scale(values: FloatArray) -> float | None:
    """The least power of ten that turns every value into an integer, if there is one."""
    finite = values[np.isfinite(values)]
    for exponent in range(MAX_SCALE_EXPONENT + 1):
        scaled = finite * 10.0**exponent
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))):
            if np.all(np.abs(scaled) < MAX_COEFFICIENT):
                return 10.0**exponent
            return None
    return None


class CpSatBackend:
    name = "cpsat"

    def is_available(self) -> bool:
        try:
            from ortools.sat.python import cp_model  # noqa: F401
        except ImportError:
            return False
        return True

    def supports(self, model: MilpModel) -> bool:
        return self._scales(model) is not None

    def _scales(self, model: MilpModel) -> tuple[FloatArray, float] | None:
        if not model.integer.all():
            return None
        if not (np.all(np.isfinite(model.col_lo)) and np.all(np.isfinite(model.col_hi))):
            return None
        csr = model.A.tocsr()
        row_scale = np.ones(model.n_rows)
        for i in range(model.n_rows):
            coefficients = np.concatenate(
                [csr.data[csr.indptr[i] : csr.indptr[i + 1]], [model.row_lo[i], model.row_hi[i]]]
            )
            scale = _integer_scale(coefficients)
            if scale is None:
                return None
            row_scale[i] = scale
        cost_scale = _integer_scale(np.append(model.c, 0.0))
        if cost_scale is None:
            return None
        return row_scale, cost_scale

    def solve(
        self,
        model: MilpModel,
        *,
        time_limit_s: float,
        mip_gap: float,
        seed: int = 0,
        warm_start: FloatArray | None = None,
        should_stop: Callable[[], bool] | None = None,
        target: float | None = None,
        cutoff: float | None = None,
        holds_plan: bool = False,  # no heuristic of its own is skipped
        stop_at_solution: Callable[[], bool] | None = None,  # not used
    ) -> MilpResult:
        from ortools.sat.python import cp_model

        started = time.perf_counter()
        scales = self._scales(model)
        if scales is None:
            return MilpResult(Termination.ERROR, seconds=0.0)
        row_scale, cost_scale = scales
        cp = cp_model.CpModel()
        columns = [
            cp.new_int_var(int(np.ceil(lo - 1e-9)), int(np.floor(hi + 1e-9)), f"x{j}")
            for j, (lo, hi) in enumerate(zip(model.col_lo, model.col_hi, strict=True))
        ]
        csr = model.A.tocsr()
        for i in range(model.n_rows):
            start, end = csr.indptr[i], csr.indptr[i + 1]
            scale = row_scale[i]
            coefficients = [round(v * scale) for v in csr.data[start:end]]
            expr = sum(
                c * columns[j] for c, j in zip(coefficients, csr.indices[start:end], strict=True)
            )
            if np.isfinite(model.row_lo[i]):
                cp.add(expr >= int(np.ceil(model.row_lo[i] * scale - 1e-9)))
            if np.isfinite(model.row_hi[i]):
                cp.add(expr <= int(np.floor(model.row_hi[i] * scale + 1e-9)))
        cost = [round(v * cost_scale) for v in model.c]
        cp.minimize(sum(c * columns[j] for j, c in enumerate(cost) if c))
        if warm_start is not None:
            for column, value in zip(columns, warm_start, strict=True):
                cp.add_hint(column, round(value))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(float(time_limit_s), 0.05)
        solver.parameters.relative_gap_limit = float(mip_gap)
        solver.parameters.random_seed = int(seed)
        solver.parameters.num_workers = 2
        status = solver.solve(cp)
        seconds = time.perf_counter() - started
        if status == cp_model.INFEASIBLE:
            return MilpResult(Termination.INFEASIBLE, seconds=seconds)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return MilpResult(
                Termination.NO_SOLUTION if status == cp_model.UNKNOWN else Termination.ERROR,
                seconds=seconds,
            )
        x = np.array([solver.value(c) for c in columns], dtype=np.float64)
        objective = solver.objective_value / cost_scale + model.offset
        bound = solver.best_objective_bound / cost_scale + model.offset
        termination = Termination.OPTIMAL if status == cp_model.OPTIMAL else Termination.FEASIBLE
        return MilpResult(termination, x, objective, bound, seconds)
