"""A `points` curve on a stepped resource: only grid amounts can be allocated, so the
approximations must hold at every grid amount, including those beside a kink that is
off the grid. Rounding the kinks onto the grid made the outer line cut below the curve
there, and HiGHS reported a plan `optimal` 0.36% under a valid one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.curves import points_curve
from models.request import AllocationRequest, Bounds, Partner, Resource
from optimizer.arrays import build_arrays
from optimizer.pwl import initial_points, segments


def approximation_on_grid(xs: list[float], ys: list[float], step: float, top: float):  # type: ignore[no-untyped-def]
    curve = points_curve(xs, ys)
    request = AllocationRequest(
        resources=(Resource("subsidy", budget=10 * top, step=step),),
        tiers=(),
        partners=(
            Partner("a", 0.0, curves={"subsidy": curve}, bounds={"subsidy": Bounds(max=top)}),
        ),
    )
    arrays = build_arrays(request)
    points = initial_points(arrays)
    grid = np.arange(0.0, top + 1e-9, step)
    exact = curve.value(grid)
    inner, outer = (_evaluate(segments(arrays, points, outer=o), grid) for o in (False, True))
    return exact, inner, outer


def _evaluate(pieces, xs):  # type: ignore[no-untyped-def]
    """The approximation's value at each x: pieces of one pair are consecutive and in
    order of amount, so the value is the first piece's start value plus the filled
    lengths times their slopes."""
    values = np.full(len(xs), pieces.value0[0])
    for start, length, slope in zip(pieces.start, pieces.length, pieces.slope, strict=True):
        values += slope * np.clip(xs - start, 0.0, length)
    return values


def test_a_kink_between_grid_amounts_keeps_both_neighbours() -> None:
    # Concave: steep to 0.83, flatter to 2.5, flat after. At 3 units the line through
    # the rounded kinks (0, 1, 2, 4) gave 26.5 where the curve gives 28.4.
    xs, ys = [0.0, 0.8333, 2.5, 5.0], [0.0, 15.74, 28.4075, 28.4098]
    exact, inner, outer = approximation_on_grid(xs, ys, step=1.0, top=4.0)
    np.testing.assert_allclose(outer, exact, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(inner, exact, rtol=1e-9, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(0.05, 3.0), min_size=2, max_size=6),
    rises=st.lists(st.floats(0.0, 20.0), min_size=6, max_size=6),
    step=st.sampled_from([0.25, 0.5, 1.0, 1.5]),
    share=st.floats(0.3, 1.0),
)
def test_both_approximations_are_exact_at_every_grid_amount(
    gaps: list[float], rises: list[float], step: float, share: float
) -> None:
    xs = list(np.cumsum([0.0, *gaps]))
    ys = list(np.cumsum([0.0, *rises[: len(gaps)]]))
    top = max(step, np.floor(share * xs[-1] / step) * step)
    exact, inner, outer = approximation_on_grid(xs, ys, step, top)
    tolerance = 1e-9 * max(1.0, float(np.abs(exact).max()))
    assert np.all(outer >= exact - tolerance)
    assert np.all(inner <= exact + tolerance)
    np.testing.assert_allclose(inner, exact, atol=tolerance)
