"""`points` curves in the decomposition's families (`optimizer.decomposition.points`):
exact values as the plan computes them, and an envelope the Lagrangian may rely on:
above the curve, concave, its slope inverse optimal and its tangents above it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.curves import Curve, CurveKind
from optimizer.decomposition.problem import _family

SATURATING = Curve(CurveKind.SATURATING, max_uplift=5.0, scale=2.0)


@st.composite
def knots(draw: st.DrawFn) -> Curve:
    count = draw(st.integers(2, 6))
    steps = draw(st.lists(st.floats(0.05, 5.0), min_size=count - 1, max_size=count - 1))
    rises = draw(st.lists(st.floats(0.0, 5.0), min_size=count - 1, max_size=count - 1))
    xs = np.concatenate([[0.0], np.cumsum(steps)])
    ys = np.concatenate([[0.0], np.cumsum(rises)])
    return Curve(CurveKind.POINTS, xs=tuple(xs.tolist()), ys=tuple(ys.tolist()))


def _grid(curve: Curve, lo: float, hi: float) -> np.ndarray:
    """801 amounts over [lo, hi] and the knots inside, none within a billionth of the
    range of the one before: over a gap of a few ulps (a grid point on a knot, up to
    rounding) the envelope's rise is rounding noise, not a slope."""
    inside = [x for x in curve.xs if lo <= x <= hi]
    grid = np.unique(np.concatenate([np.linspace(lo, hi, 801), inside, [lo, hi]]))
    return grid[np.concatenate([[True], np.diff(grid) > 1e-9 * max(hi - lo, 1e-300)])]


@settings(max_examples=80, deadline=None)
@given(
    curves=st.lists(knots(), min_size=1, max_size=4),
    lo_share=st.sampled_from([0.0, 0.0, 0.3]),
    hi_share=st.floats(0.2, 1.5),
    with_other_kind=st.booleans(),
)
def test_points_rows_are_exact_and_their_envelope_is_a_valid_relaxation(
    curves: list[Curve], lo_share: float, hi_share: float, with_other_kind: bool
) -> None:
    rows: list[Curve | None] = [*curves, SATURATING] if with_other_kind else list(curves)
    family = _family(rows)
    last = np.array([c.xs[-1] if c.kind is CurveKind.POINTS else 10.0 for c in rows])
    lo = lo_share * last
    hi = lo + hi_share * last
    family.set_domain(lo, hi)
    for i, curve in enumerate(curves):
        grid = _grid(curve, lo[i], hi[i])
        # The values are np.interp's to the bit (a tier seen reached is reached), and the
        # slopes the curve's own right derivatives; beyond the last knot, flat.
        beyond = np.concatenate([grid, [curve.xs[-1] * 2 + 1]])
        at = np.full((beyond.size, len(rows)), 0.0)
        at[:, i] = beyond
        values = np.array([family.value(row)[i] for row in at])
        np.testing.assert_array_equal(values, np.interp(beyond, curve.xs, curve.ys))
        slopes = np.array([family.derivative(row)[i] for row in at])
        np.testing.assert_array_equal(slopes, curve.derivative(beyond))

        sub = family.take(np.array([i]))
        envelope = np.array([sub.envelope(np.array([x]))[0] for x in grid])
        exact = curve.value(grid)
        scale = max(float(np.max(np.abs(exact))), 1.0)
        assert np.all(envelope >= exact - 1e-9 * scale), "the envelope lies above the curve"
        assert envelope[0] == pytest.approx(exact[0]) and envelope[-1] == pytest.approx(exact[-1])
        rises = np.diff(envelope) / np.maximum(np.diff(grid), 1e-300)
        assert np.all(np.diff(rises) <= 1e-6 * max(float(np.max(np.abs(rises))), 1.0)), "concave"
        for price in (0.01, 0.2, 0.7, 1.0, 2.5, 40.0):
            x = sub.argmax_slope(np.array([price]))[0]
            assert lo[i] - 1e-12 <= x <= hi[i] + 1e-12
            found = float(sub.envelope(np.array([x]))[0] - price * x)
            assert found >= float(np.max(envelope - price * grid)) - 1e-9 * scale
        for k in range(0, grid.size, 40):
            x = grid[k]
            left, right = sub.envelope_slopes(np.array([x]))
            above = envelope[k] + np.where(grid >= x, right[0], left[0]) * (grid - x)
            assert np.all(envelope <= above + 1e-9 * scale), "a tangent at x bounds the envelope"


def test_an_s_shaped_points_curve_has_a_chord_then_follows_its_hull() -> None:
    """Convex to 3, concave after, flat from 6: the envelope's chord runs from 0 to the
    knot at 3, then the hull is the curve until the flat tail, which no price pays for."""
    curve = Curve(CurveKind.POINTS, xs=(0.0, 1.0, 3.0, 6.0), ys=(0.0, 0.5, 4.0, 5.0))
    family = _family([curve])
    family.set_domain(np.zeros(1), np.array([8.0]))
    assert family.xt[0] == 3.0 and family.st[0] == pytest.approx(4.0 / 3.0)
    assert family.envelope(np.array([1.0]))[0] == pytest.approx(4.0 / 3.0)  # the curve: 0.5
    takes = [family.argmax_slope(np.array([p]))[0] for p in (2.0, 1.0, 0.2, 0.0)]
    assert takes == [0.0, 3.0, 6.0, 8.0]  # nothing, the chord's end, the flat's start, all
