"""One resource's response curves for many partners, with what the decomposition needs.

Besides exact values and derivatives (the formulas of `models.curves`), each row knows
the *concave envelope* of its curve over its "on" domain `[lo, hi]`: a straight chord from
`(lo, f(lo))` to a tangent point `xt`, then the curve itself. For concave curves `xt = lo`
and the envelope is the curve; for S-shaped hill curves (and a min ticket below the
inflection) the chord replaces the convex part. The envelope lies above the curve, so a
subproblem solved on it is a relaxation: the Lagrangian bound stays valid.

`argmax_slope(p)` inverts the envelope's derivative: the amount where its slope falls to
`p` (closed form for saturating/log/linear, a few monotone Newton steps for hill).

`points` curves (`optimizer.decomposition.points`) have knots instead of parameters, and
an envelope that may leave the curve more than once (a bump after a dip): it is their
concave hull over [lo, hi], and `xt`/`st` are its first vertex past lo and first slope.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.curves import FORMULAS, Curve, CurveKind, FloatArray
from optimizer.decomposition import points

NONE, SATURATING, LOG, LINEAR, HILL, POINTS = 0, 1, 2, 3, 4, 5
_KIND_CODE = {
    CurveKind.SATURATING: SATURATING,
    CurveKind.LOG: LOG,
    CurveKind.LINEAR: LINEAR,
    CurveKind.HILL: HILL,
    CurveKind.POINTS: POINTS,
}
_KIND_OF_CODE = {code: kind for kind, code in _KIND_CODE.items()}
_TINY = 1e-300


def kind_code(curve: Curve | None) -> int:
    if curve is None:
        return NONE
    return _KIND_CODE[curve.kind]


class Family:
    """Curves of one resource for a set of rows (partners), grouped by kind.

    `a`: max_uplift / coef / roi; `s`: scale / half_saturation; `n`: hill shape;
    `knots`: the `points` curves' knots and hulls (`points.Knots`; None without any).
    """

    def __init__(
        self,
        kind: NDArray[np.int8],
        a: FloatArray,
        s: FloatArray,
        n: FloatArray,
        knots: points.Knots | None = None,
    ):
        self.kind, self.a, self.s, self.n = kind, a, s, n
        self.knots = knots
        # Rows grouped by kind with one stable sort (this runs for every row subset).
        order = np.argsort(kind, kind="stable")
        bounds = np.searchsorted(kind[order], np.arange(POINTS + 2))
        self.groups: list[tuple[int, NDArray[np.intp]]] = [
            (code, order[bounds[code] : bounds[code + 1]])
            for code in (SATURATING, LOG, LINEAR, HILL, POINTS)
            if bounds[code + 1] > bounds[code]
        ]
        # Envelope over the on-domain; set by `set_domain`.
        self.lo = np.zeros(len(kind))
        self.hi = np.zeros(len(kind))
        self.xt = np.zeros(len(kind))
        self.st = np.zeros(len(kind))
        self.f_lo = np.zeros(len(kind))
        # The curve's slope at the tangent point: argmax_slope's test of every call.
        self.s_xt = np.zeros(len(kind))

    def __len__(self) -> int:
        return len(self.kind)

    def take(self, rows: NDArray[np.intp]) -> Family:
        knots = None if self.knots is None else self.knots.take(rows)
        out = Family(self.kind[rows], self.a[rows], self.s[rows], self.n[rows], knots)
        out.lo, out.hi, out.xt = self.lo[rows], self.hi[rows], self.xt[rows]
        out.st, out.f_lo, out.s_xt = self.st[rows], self.f_lo[rows], self.s_xt[rows]
        return out

    def pinned(self, rows: NDArray[np.intp], amounts: FloatArray) -> Family:
        """A copy with `rows` curveless and fixed at `amounts` (package partners' choices,
        see `menus.pinned`); the other rows' envelopes are kept, not recomputed."""
        kind = self.kind.copy()
        kind[rows] = NONE
        out = Family(
            kind, self.a, self.s, self.n, None if self.knots is None else self.knots.copy()
        )
        out.lo, out.hi, out.xt = self.lo.copy(), self.hi.copy(), self.xt.copy()
        out.st, out.f_lo, out.s_xt = self.st.copy(), self.f_lo.copy(), self.s_xt.copy()
        for array in (out.lo, out.hi, out.xt):
            array[rows] = amounts
        for array in (out.st, out.f_lo, out.s_xt):
            array[rows] = 0.0
        return out

    # -- exact curve (models.curves formulas) ---------------------------------------
    def value(self, x: FloatArray) -> FloatArray:
        return self._by_kind(x, derivative=False)

    def derivative(self, x: FloatArray) -> FloatArray:
        return self._by_kind(x, derivative=True)

    def _by_kind(self, x: FloatArray, derivative: bool) -> FloatArray:
        """The formula table on the packed parameters, one call per kind (its unused
        slots are ignored), and none of the indexing where every row is of one kind:
        the searches call this tens of thousands of times on a few hundred rows."""
        x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)  # the curves' domain
        out = np.zeros(len(self.kind))
        for code, idx in self.groups:
            if code == POINTS:
                assert self.knots is not None
                knots = self.knots.take(idx)
                out[idx] = knots.right_slope(x[idx]) if derivative else knots.value(x[idx])
                continue
            formulas = FORMULAS[_KIND_OF_CODE[code]]
            formula = formulas.derivative if derivative else formulas.value
            if idx.size == len(self.kind):  # every row of this kind: no indexing
                return np.asarray(formula(x, self.a, self.s, self.n), dtype=np.float64)
            out[idx] = formula(x[idx], self.a[idx], self.s[idx], self.n[idx])
        return out

    # -- envelope on [lo, hi] --------------------------------------------------------
    def set_domain(self, lo: FloatArray, hi: FloatArray) -> None:
        """Fix the on-domain and compute the envelope's chord (tangent point, slope)."""
        self.lo, self.hi = lo, hi
        self.f_lo = self.value(lo)
        self.xt = lo.copy()
        self.st = self.derivative(lo)
        for code, idx in self.groups:
            if code == POINTS:
                self._points_domain(idx)
            if code != HILL:
                continue
            shape = self.n[idx]
            convex = shape > 1.0
            inflection = np.where(
                convex, self.s[idx] * (np.maximum(shape - 1, 0.0) / (shape + 1)) ** (1 / shape), 0.0
            )
            todo = idx[convex & (lo[idx] < inflection) & (hi[idx] > lo[idx])]
            if todo.size == 0:
                continue
            sub = self.take(todo)
            # The tangent point solves f'(x)(x - lo) = f(x) - f(lo) beyond the inflection;
            # the residual is decreasing there, so bisect (in log space) once at setup.
            left = np.maximum(inflection[np.searchsorted(idx, todo)], sub.lo)
            right = np.maximum(left * 2.0, sub.s * 1e3)
            for _ in range(200):
                mid = np.sqrt(left * right)
                resid = sub.derivative(mid) * (mid - sub.lo) - (sub.value(mid) - sub.f_lo)
                positive = resid > 0
                left = np.where(positive, mid, left)
                right = np.where(positive, right, mid)
            tangent = right
            beyond = tangent >= sub.hi
            tangent = np.where(beyond, sub.hi, tangent)
            width = np.maximum(tangent - sub.lo, _TINY)
            slope = (sub.value(tangent) - sub.f_lo) / width
            self.xt[todo] = tangent
            self.st[todo] = slope
        self.s_xt = self.derivative(self.xt)

    def _points_domain(self, idx: NDArray[np.intp]) -> None:
        """The points rows' hull over [lo, hi]; `xt` its first vertex when a knot lies
        under its first segment (a chord), else lo, as for a concave curve."""
        knots = self.knots
        assert knots is not None
        lo = self.lo[idx]
        knots.set_hull(idx, lo, self.hi[idx])
        hx, px = knots.hx[idx], knots.px[idx]
        under = (px > lo[:, None]) & (px < hx[:, 1:2])
        self.xt[idx] = np.where(under.any(axis=1), hx[:, 1], lo)
        self.st[idx] = knots.hs[idx, 0]

    def points_rows(self) -> tuple[NDArray[np.intp], points.Knots] | None:
        """The points rows and their knots (None: no such row)."""
        if self.knots is None:
            return None
        for code, idx in self.groups:
            if code == POINTS:
                return idx, self.knots.take(idx)
        return None

    def envelope(self, x: FloatArray) -> FloatArray:
        on_chord = x < self.xt
        chord = self.f_lo + np.where(on_chord, self.st, 0.0) * (x - self.lo)
        out = np.where(on_chord, chord, self.value(x))
        found = self.points_rows()
        if found is not None:
            rows, knots = found
            out[rows] = points.hull_value(knots.hx, knots.hy, knots.hs, x[rows])
        return out

    def top_slope(self) -> FloatArray:
        """A finite price above which a row takes (almost) nothing beyond lo.

        The chord slope, or where it is infinite (hill with shape < 1 at 0) the slope a
        billionth of the way into the domain.
        """
        inner = self.lo + 1e-9 * np.maximum(self.hi - self.lo, 0.0)
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(self.st), self.st, self.derivative(inner))

    def envelope_slope(self, x: FloatArray) -> FloatArray:
        return self.envelope_slopes(x)[1]

    def envelope_slopes(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The envelope's (left, right) slopes at x: they differ at a chord's end and at a
        points curve's vertex."""
        slope = self.derivative(x)
        left, right = np.where(x <= self.xt, self.st, slope), np.where(x < self.xt, self.st, slope)
        found = self.points_rows()
        if found is not None:
            rows, knots = found
            left[rows], right[rows] = points.hull_slopes(knots.hx, knots.hs, x[rows])
        return left, right

    def least_slope(self) -> FloatArray:
        """A slope at or under the envelope's on the way to its top: its slope at hi, for
        a points curve the least of its hull's rising segments (its slope at hi is often
        the flat tail's 0), inf where none rises (no price moves its amount)."""
        out = self.derivative(self.hi)
        found = self.points_rows()
        if found is not None:
            rows, knots = found
            out[rows] = np.where(knots.hs > 0, knots.hs, np.inf).min(axis=1, initial=np.inf)
        return out

    def argmax_slope(self, p: FloatArray) -> FloatArray:
        """argmax over [lo, hi] of envelope(x) - p x (p >= 0, p = 0 gives hi).

        At p equal to the chord slope any point of the chord is optimal; the tangent end is
        returned (the side that reaches tiers). Past the tangent point the slope's inverse
        is taken per kind: for every row of a closed-form kind (cheaper than picking the
        rows out; the searches call this tens of thousands of times), for only the rows
        past the tangent point of a hill (Newton steps, and only those converge).
        """
        x = np.where(p > self.st, self.lo, self.xt)
        inner = (p < self.s_xt) & (p <= self.st)
        for code, idx in self.groups:
            whole = idx.size == len(self.kind)
            if code == POINTS:
                assert self.knots is not None
                rows = slice(None) if whole else idx
                knots = self.knots.take(rows)
                top = points.hull_argmax(knots.hx, knots.hs, p[rows])
                x[rows] = np.where(p[rows] > 0, top, self.hi[rows])
                continue
            if code == HILL:
                rows = np.flatnonzero(inner) if whole else idx[inner[idx]]
                if rows.size:
                    x[rows] = self._inverse_slope(rows, p[rows], code)
                continue
            group = slice(None) if whole else idx
            past = self._inverse_slope(group, p[group], code)
            x[group] = np.where(inner[group], past, x[group])
        return np.clip(x, self.lo, self.hi)

    def _inverse_slope(
        self, rows: NDArray[np.intp] | slice, p: FloatArray, code: int
    ) -> FloatArray:
        """The amount past the tangent point where a `code` curve's slope equals p (the
        formula table's inverse, floored at the tangent point); hi where p <= 0."""
        inverse = FORMULAS[_KIND_OF_CODE[code]].inverse_derivative
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = inverse(p, self.a[rows], self.s[rows], self.n[rows], self.xt[rows])
        return np.where(p > 0, out, self.hi[rows])
