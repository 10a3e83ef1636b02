"""Concave pairs pooled in a MILP finish's models: one short concave function per budget
class in place of every piece of every pair in it.

A pair whose pieces are all concave (no ordered stretch, no all-or-nothing start, no
integral grid) and whose partner has no tier row only adds its GMV and draws on budget
rows. For a set of such pairs drawing on the same rows with the same coefficients (a
"class": one resource, one set of group budgets), the most GMV a total B buys is F(B):
all their pieces filled greedily by slope, a concave piecewise-linear function, which
the model uses in place of the pairs. F is kept exact around the total the plan in hand
gives the class; beyond that its pieces merge into buckets of doubling size. In an outer
model a bucket becomes the two tangents at its ends (above F: still a relaxation), in an
inner one its secant (below F: its plans hold). An exact model (points and linear curves)
is its own bound and is never pooled (`MilpStrategy._solve`).

On family programmes of 1,000-3,000 partners, four in five pairs pool; the finish keeps
the pairs of partners who may move across a tier, and CBC solves it on a fraction of the
columns. A solution's amounts for the pooled pairs come back by filling their pieces
greedily up to the class's total (`Formulation.pooled`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.arrays import ProblemArrays
from optimizer.engines.base import MilpModel
from optimizer.formulation import Formulation
from optimizer.pwl import Segments

# Pieces kept exact on either side of the plan's fill of a class; beyond them buckets
# double in size. The outer solution's class total rarely moves further than this from
# the plan's: only partners in doubt change their amounts by much.
EXACT_PIECES = 64
# Where an outer solution takes a class, its pooled function is kept exact too: the plan's
# window alone left the finish's bound on coarse buckets (family seed 1, 1,000 partners, 4
# resources: 163 M of the 224 M between bound and plan after the second round).
MAX_CENTRES = 4
# Classes with fewer pieces than this are left as they are.
MIN_PIECES = 4 * EXACT_PIECES


@dataclass
class _Class:
    """One pooled class: the budget rows it draws on, its fine pieces in fill order, and
    the coarse pieces that replace them."""

    rows: NDArray[np.intp]
    coefs: FloatArray
    pairs: NDArray[np.intp]
    pieces: NDArray[np.intp]  # their columns in the model as built, in fill order
    piece_pair: NDArray[np.intp]
    length: FloatArray  # of each fine piece, model units
    coarse_length: FloatArray
    coarse_slope: FloatArray
    columns: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))


@dataclass
class _Fill:
    """Amounts of the pooled pairs (model units) from a pooled model's solution: each
    class's fine pieces filled greedily up to the class's total."""

    classes: list[_Class]
    n_pairs: int

    def __call__(self, solution: FloatArray) -> FloatArray:
        amounts = np.zeros(self.n_pairs)
        for group in self.classes:
            total = float(solution[group.columns].sum())
            ends = np.cumsum(group.length)
            filled = np.clip(total - (ends - group.length), 0.0, group.length)
            amounts += np.bincount(group.piece_pair, weights=filled, minlength=self.n_pairs)
        return amounts


def with_centre(near: FloatArray, amounts: FloatArray) -> FloatArray:
    """Per pair, the amounts each class stays exact around (`pool_concave_pairs`'s `near`):
    the plan's (the first row) and the latest MAX_CENTRES - 1 solutions', `amounts` last."""
    rows = np.atleast_2d(near)
    return np.vstack([rows[:1], rows[1:][len(rows) + 1 - MAX_CENTRES :], amounts[None, :]])


def pool_concave_pairs(
    form: Formulation, arrays: ProblemArrays, segs: Segments, near: FloatArray, outer: bool
) -> Formulation:
    """`form` (a model built on `segs`) with its poolable pairs pooled by class; `near`:
    per pair, the amounts (request units) around which each class stays exact. Merged
    buckets lie above the pooled function in an `outer` model (a relaxation still) and on
    their secants, below it, in an inner one (its plans still hold)."""
    if not len(form.piece_cols) or len(form.piece_cols) != len(segs.pair):
        return form
    model = form.model
    columns = model.A.tocsc()
    scale = arrays.resource_scale[arrays.pair_resource]
    classes = []
    for (rows, coefs), pairs in _classes(form, segs, columns, arrays.n_pairs).items():
        in_class = np.isin(segs.pair, pairs)
        if in_class.sum() < MIN_PIECES:
            continue
        pieces = form.piece_cols[in_class]
        order = np.lexsort((np.flatnonzero(in_class), model.c[pieces]))
        pieces = pieces[order]
        length, gain = model.col_hi[pieces], -model.c[pieces]
        centres = (np.atleast_2d(near)[:, pairs] / scale[pairs]).sum(axis=1)
        coarse_length, coarse_slope = _coarse(length, gain, centres.tolist(), outer)
        group = _Class(
            np.array(rows, dtype=np.intp), np.array(coefs), pairs, pieces,
            segs.pair[in_class][order], length, coarse_length, coarse_slope,
        )  # fmt: skip
        classes.append(group)
    if not classes:
        return form
    return _rebuilt(form, columns, segs, classes, arrays.n_pairs)


def _rebuilt(
    form: Formulation,
    columns: sp.csc_matrix,
    segs: Segments,
    classes: list[_Class],
    n_pairs: int,
) -> Formulation:
    """The model without the classes' pairs (x, grid index, pieces, link and grid rows)
    and with each class's coarse pieces, drawing on its rows as its pairs' x did."""
    model = form.model
    keep_col = np.ones(model.n_cols, dtype=bool)
    keep_row = np.ones(model.n_rows, dtype=bool)
    for group in classes:
        grids = form.grid_cols[group.pairs]
        keep_col[np.r_[form.x_cols[group.pairs], group.pieces, grids[grids >= 0]]] = False
        keep_row[_link_rows(columns, form, segs, group.pairs)] = False
    kept, n_rows = int(keep_col.sum()), int(keep_row.sum())
    col_map = np.full(model.n_cols, -1, dtype=np.intp)
    col_map[keep_col] = np.arange(kept)
    row_map = np.cumsum(keep_row) - 1
    rows, cols, vals = [], [], []
    added = kept
    for group in classes:
        count = len(group.coarse_length)
        group.columns = np.arange(added, added + count, dtype=np.intp)
        added += count
        rows.append(np.repeat(row_map[group.rows], count))
        cols.append(np.tile(group.columns, len(group.rows)))
        vals.append(np.repeat(group.coefs, count))
    extra = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols) - kept)),
        shape=(n_rows, added - kept),
    )
    new = added - kept
    pooled = MilpModel(
        c=np.r_[model.c[keep_col], -np.concatenate([g.coarse_slope for g in classes])],
        A=sp.hstack([model.A[keep_row][:, keep_col], extra], format="csr"),
        row_lo=model.row_lo[keep_row],
        row_hi=model.row_hi[keep_row],
        col_lo=np.r_[model.col_lo[keep_col], np.zeros(new)],
        col_hi=np.r_[model.col_hi[keep_col], np.concatenate([g.coarse_length for g in classes])],
        integer=np.r_[model.integer[keep_col], np.zeros(new, dtype=bool)],
        offset=model.offset,
    )

    def remap(cols: NDArray[np.intp]) -> NDArray[np.intp]:
        return np.where(cols >= 0, col_map[np.maximum(cols, 0)], -1)

    return replace(
        form,
        model=pooled,
        x_cols=remap(form.x_cols),
        v_cols=remap(form.v_cols),
        z_cols={key: int(col_map[col]) for key, col in form.z_cols.items()},
        piece_cols=remap(form.piece_cols),
        grid_cols=remap(form.grid_cols),
        pooled=_Fill(classes, n_pairs),
    )


def _poolable(
    form: Formulation, segs: Segments, columns: sp.csc_matrix, n_pairs: int
) -> NDArray[np.bool_]:
    """Pairs whose pieces are concave and appear only in their link row, whose x has no
    cost, starts at 0, spans its pieces, and whose grid index (if any) is continuous and
    only in its grid row."""
    model = form.model
    entries = np.diff(columns.indptr)
    pieces = form.piece_cols
    simple = (entries[pieces] == 1) & ~segs.ordered & (model.col_lo[pieces] == 0)
    ok = np.bincount(segs.pair, weights=~simple, minlength=n_pairs) == 0
    ok &= np.bincount(segs.pair, minlength=n_pairs) > 0
    ok &= segs.jump == 0
    x = form.x_cols
    ok &= (model.c[x] == 0) & (model.col_lo[x] == 0) & ~model.integer[x]
    spans = np.bincount(segs.pair, weights=model.col_hi[pieces], minlength=n_pairs)
    ok &= np.isclose(spans, model.col_hi[x], rtol=1e-9, atol=1e-12)
    grid = form.grid_cols
    on_grid = grid >= 0
    safe = np.maximum(grid, 0)
    ok &= ~on_grid | (~model.integer[safe] & (entries[safe] == 1))
    return ok


def _classes(
    form: Formulation, segs: Segments, columns: sp.csc_matrix, n_pairs: int
) -> dict[tuple[tuple[int, ...], tuple[float, ...]], NDArray[np.intp]]:
    """Poolable pairs by the budget rows their x draws on (rows, coefficients): rows whose
    every column is an x or a package option. A pair whose x sits in any other row (beyond
    its link and grid rows) is left out."""
    candidates = np.flatnonzero(_poolable(form, segs, columns, n_pairs))
    budget_like = _budget_like_rows(form)
    own = np.zeros(form.model.n_rows, dtype=bool)
    own[_link_rows(columns, form, segs, candidates)] = True
    found: dict[tuple[tuple[int, ...], tuple[float, ...]], list[int]] = {}
    for k in candidates.tolist():
        col = int(form.x_cols[k])
        start, end = columns.indptr[col], columns.indptr[col + 1]
        rows, vals = columns.indices[start:end], columns.data[start:end]
        others = ~own[rows]
        if not others.any() or not np.all(budget_like[rows[others]]):
            continue
        order = np.argsort(rows[others])
        key = (tuple(rows[others][order].tolist()), tuple(vals[others][order].tolist()))
        found.setdefault(key, []).append(k)
    return {key: np.array(pairs, dtype=np.intp) for key, pairs in found.items()}


def _budget_like_rows(form: Formulation) -> NDArray[np.bool_]:
    model = form.model
    xv = np.zeros(model.n_cols, dtype=bool)
    xv[form.x_cols[form.x_cols >= 0]] = True
    xv[form.v_cols[form.v_cols >= 0]] = True
    pattern = model.A.copy()
    pattern.data = np.ones_like(pattern.data)
    return np.asarray(pattern @ (~xv).astype(float)).ravel() == 0


def _link_rows(
    columns: sp.csc_matrix, form: Formulation, segs: Segments, pairs: NDArray[np.intp]
) -> NDArray[np.intp]:
    """The link rows (x = Σ δ) and grid rows (x = step·n) of these pairs: the one row of
    each pair's first piece, and of its grid index."""
    starts = np.flatnonzero(np.r_[True, segs.pair[1:] != segs.pair[:-1]])
    first = np.full(len(form.x_cols), -1, dtype=np.intp)
    first[segs.pair[starts]] = form.piece_cols[starts]
    rows = [columns.indices[columns.indptr[first[pairs]]]]
    grids = form.grid_cols[pairs]
    grids = grids[grids >= 0]
    if len(grids):
        rows.append(columns.indices[columns.indptr[grids]])
    return np.concatenate(rows)


def _doubling(edge: int, until: int) -> list[int]:
    """Bucket ends from `edge` towards `until`, each bucket twice the one before."""
    towards = 1 if until > edge else -1
    out, size = [], 1
    while (until - edge) * towards > 0:
        edge = min(edge + size, until) if towards > 0 else max(edge - size, until)
        out.append(edge)
        size *= 2
    return out


def _coarse(
    length: FloatArray, gain: FloatArray, centres: Sequence[float], outer: bool
) -> tuple[FloatArray, FloatArray]:
    """Lengths and slopes of a concave function above (`outer`; else below)
    the greedy fill of these pieces (already in fill order, `gain` their slopes), exact
    within EXACT_PIECES of where the fill reaches each of `centres`, and at every bucket
    end beyond: buckets double in size away from each exact stretch."""
    n = len(length)
    ends = np.cumsum(length)
    exact: set[int] = set()
    for centre in centres:
        at = int(np.searchsorted(ends, centre))
        exact.update(range(max(at - EXACT_PIECES, 0), min(at + EXACT_PIECES, n) + 1))
    marks = sorted(exact)
    cuts = exact | {0, n}
    cuts.update(_doubling(marks[0], 0))
    cuts.update(_doubling(marks[-1], n))
    for low, high in pairwise(marks):  # between two exact stretches: from both ends
        middle = (low + high) // 2
        cuts.update(_doubling(low, middle) + _doubling(high, middle) + [middle])
    bounds = np.array(sorted(cuts), dtype=np.intp)
    value = np.r_[0.0, np.cumsum(length * gain)]
    start = np.r_[0.0, ends]
    lengths: list[float] = []
    slopes: list[float] = []
    for a, b in pairwise(bounds.tolist()):
        span = start[b] - start[a]
        if span <= 0:
            continue
        first, last = gain[a], gain[b - 1]
        if not outer:  # the secant
            lengths.append(span)
            slopes.append((value[b] - value[a]) / span)
            continue
        if b - a == 1 or first - last <= 1e-12 * max(abs(first), 1.0):
            lengths.append(span)
            slopes.append(first)  # at or above the bucket's own pieces: still a relaxation
            continue
        # The tangents at the bucket's two ends meet at `cross` (between them: concave).
        cross = (value[b] - value[a] - last * span) / (first - last)
        cross = min(max(cross, 0.0), span)
        lengths += [cross, span - cross]
        slopes += [first, last]
    return np.array(lengths), np.array(slopes)
