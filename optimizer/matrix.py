"""Bulk assembly of a matrix-form MILP from numpy blocks (no per-constraint Python loops)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from optimizer.engines.base import MilpModel


class MatrixBuilder:
    def __init__(self) -> None:
        self._col_lo: list[NDArray[np.float64]] = []
        self._col_hi: list[NDArray[np.float64]] = []
        self._integer: list[NDArray[np.bool_]] = []
        self._row_lo: list[NDArray[np.float64]] = []
        self._row_hi: list[NDArray[np.float64]] = []
        self._rows: list[NDArray[np.intp]] = []
        self._cols: list[NDArray[np.intp]] = []
        self._vals: list[NDArray[np.float64]] = []
        self.n_cols = 0
        self.n_rows = 0

    def add_columns(self, lo: ArrayLike, hi: ArrayLike, integer: bool = False) -> NDArray[np.intp]:
        lo_arr = np.asarray(lo, dtype=np.float64).ravel()
        hi_arr = np.broadcast_to(np.asarray(hi, dtype=np.float64), lo_arr.shape).copy()
        index = np.arange(self.n_cols, self.n_cols + len(lo_arr), dtype=np.intp)
        self._col_lo.append(lo_arr)
        self._col_hi.append(hi_arr)
        self._integer.append(np.full(len(lo_arr), integer))
        self.n_cols += len(lo_arr)
        return index

    def add_rows(self, lo: ArrayLike, hi: ArrayLike, count: int | None = None) -> NDArray[np.intp]:
        lo_arr = np.atleast_1d(np.asarray(lo, dtype=np.float64))
        size = count if count is not None else max(len(lo_arr), np.size(hi))
        lo_arr = np.broadcast_to(lo_arr, (size,)).copy()
        hi_arr = np.broadcast_to(np.asarray(hi, dtype=np.float64), (size,)).copy()
        index = np.arange(self.n_rows, self.n_rows + size, dtype=np.intp)
        self._row_lo.append(lo_arr)
        self._row_hi.append(hi_arr)
        self.n_rows += size
        return index

    def add_one_per_owner(
        self, cols: NDArray[np.intp], owner: NDArray[np.intp], exactly: NDArray[np.bool_]
    ) -> None:
        """A row per distinct owner over its columns (binaries): at most one taken, exactly
        one where `exactly[owner]` (options of a partner, packages under one_package)."""
        owners, row_of = np.unique(owner, return_inverse=True)
        rows = self.add_rows(np.where(exactly[owners], 1.0, -np.inf), 1.0)
        self.add_entries(rows[row_of], cols, 1.0)

    def tighten_row_upper(self, row: int, amount: float) -> None:
        """Lower an existing row's upper limit by `amount`."""
        offset = 0
        for block in self._row_hi:
            if row < offset + len(block):
                block[row - offset] -= amount
                return
            offset += len(block)
        raise IndexError(row)

    def add_entries(self, rows: ArrayLike, cols: ArrayLike, vals: ArrayLike) -> None:
        rows_arr = np.asarray(rows, dtype=np.intp).ravel()
        cols_arr = np.asarray(cols, dtype=np.intp).ravel()
        vals_arr = np.broadcast_to(np.asarray(vals, dtype=np.float64), rows_arr.shape).ravel()
        self._rows.append(rows_arr)
        self._cols.append(cols_arr)
        self._vals.append(vals_arr.copy())

    def build(self, cost: NDArray[np.float64], offset: float = 0.0) -> MilpModel:
        def cat(parts: list, dtype: type) -> NDArray:  # type: ignore[type-arg]
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        matrix = sp.csr_matrix(
            (cat(self._vals, np.float64), (cat(self._rows, np.intp), cat(self._cols, np.intp))),
            shape=(self.n_rows, self.n_cols),
        )
        matrix.sum_duplicates()
        return MilpModel(
            c=np.asarray(cost, dtype=np.float64),
            A=matrix,
            row_lo=cat(self._row_lo, np.float64),
            row_hi=cat(self._row_hi, np.float64),
            col_lo=cat(self._col_lo, np.float64),
            col_hi=cat(self._col_hi, np.float64),
            integer=cat(self._integer, np.bool_),
            offset=offset,
        )
