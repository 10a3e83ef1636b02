"""The one formula table of models.curves: agrees with the checker's independent scalar
formulas, its derivatives are derivatives, and its inverse derivatives invert them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.curves import (
    Curve,
    CurveColumn,
    CurveKind,
    hill_inflection,
    kind_derivative,
    kind_inverse_derivative,
    kind_value,
    points_curve,
)
from models.scalar_curves import uplift

CURVES = [
    Curve(CurveKind.SATURATING, max_uplift=900.0, scale=250.0),
    Curve(CurveKind.LOG, coef=120.0, scale=40.0),
    Curve(CurveKind.LINEAR, roi=1.7),
    Curve(CurveKind.HILL, max_uplift=500.0, shape=0.6, half_saturation=80.0),
    Curve(CurveKind.HILL, max_uplift=500.0, shape=1.0, half_saturation=80.0),
    Curve(CurveKind.HILL, max_uplift=500.0, shape=3.5, half_saturation=80.0),
    points_curve([0, 10, 30], [2, 12, 15]),
]
AMOUNTS = np.array([0.0, 1e-9, 0.5, 7.0, 10.0, 64.0, 80.0, 333.3, 5e3, 1e7])


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: f"{c.kind}")
def test_shared_formulas_agree_with_the_checkers_scalar_ones(curve: Curve) -> None:
    expected = [uplift(curve, x) for x in AMOUNTS]
    np.testing.assert_allclose(curve.value(AMOUNTS), expected, rtol=1e-13, atol=0)
    column = CurveColumn([curve, None, curve])
    np.testing.assert_allclose(
        column.value([7.0, 5.0, 64.0]), [uplift(curve, 7.0), 0.0, uplift(curve, 64.0)], rtol=1e-13
    )


@pytest.mark.parametrize("curve", CURVES[:-1], ids=lambda c: f"{c.kind}-{c.shape}")
def test_derivative_matches_a_central_difference(curve: Curve) -> None:
    x = np.array([3.0, 40.0, 80.0, 400.0])
    h = 1e-4 * x
    numeric = (curve.value(x + h) - curve.value(x - h)) / (2 * h)
    np.testing.assert_allclose(kind_derivative(curve.kind, x, *curve.packed), numeric, rtol=1e-6)


def test_hill_slope_at_zero_and_far_out() -> None:
    a, s = 500.0, 80.0
    assert kind_derivative(CurveKind.HILL, 0.0, a, s, 0.6) == np.inf
    assert kind_derivative(CurveKind.HILL, 0.0, a, s, 1.0) == pytest.approx(a / s)
    assert kind_derivative(CurveKind.HILL, 0.0, a, s, 3.5) == 0.0
    assert kind_derivative(CurveKind.HILL, 1e300, a, s, 3.5) == 0.0  # not nan


@pytest.mark.parametrize("curve", [CURVES[0], CURVES[1], CURVES[3], CURVES[5]], ids=str)
def test_inverse_derivative_inverts_the_derivative_past_the_floor(curve: Curve) -> None:
    a, s, n = curve.packed
    floor = float(hill_inflection(s, n)) if curve.kind is CurveKind.HILL else 0.0
    x = np.array([1.0, 20.0, 150.0, 900.0]) + floor
    slopes = kind_derivative(curve.kind, x, a, s, n)
    back = kind_inverse_derivative(curve.kind, slopes, a, s, n, floor)
    np.testing.assert_allclose(back, x, rtol=1e-8)
    # A price above the slope at the floor: the answer is the floor itself.
    top = float(kind_derivative(curve.kind, floor, a, s, n))
    if np.isfinite(top):
        assert kind_inverse_derivative(curve.kind, 2 * top + 1, a, s, n, floor) == floor


def test_linear_has_no_interior_optimum() -> None:
    out = kind_inverse_derivative(CurveKind.LINEAR, [1.0, 2.0, 3.0], 2.0, 1.0, 1.0, 5.0)
    assert out.tolist() == [np.inf, 5.0, 5.0]


def test_hill_inflection_is_where_the_slope_peaks() -> None:
    s, n = 80.0, 3.5
    peak = float(hill_inflection(s, n))
    around = np.array([peak * 0.99, peak, peak * 1.01])
    slopes = kind_derivative(CurveKind.HILL, around, 500.0, s, n)
    assert slopes[1] > slopes[0] and slopes[1] > slopes[2]
    assert hill_inflection(s, 1.0) == 0.0 and hill_inflection(s, 0.5) == 0.0


def test_negative_amounts_count_as_zero() -> None:
    assert kind_value(CurveKind.LOG, -5.0, 1.0, 1.0, 1.0) == 0.0
    for curve in CURVES:
        assert curve.value(-3.0) == curve.value(0.0)


def test_a_hill_price_beyond_any_float_slope_gives_the_floor() -> None:
    # The decomposition probes multipliers near 0, so price over multiplier can be inf:
    # the answer is the floor, for every shape (with shape < 1 the Newton steps would
    # take inf − inf), and a row's neighbours keep their own answers.
    for n in (0.7, 1.0, 3.5):
        floor = float(hill_inflection(80.0, n)) + 5.0
        slope = float(kind_derivative(CurveKind.HILL, floor + 40.0, 1e6, 80.0, n))
        prices = [1e305, np.inf, slope]
        out = kind_inverse_derivative(CurveKind.HILL, prices, 1e6, 80.0, n, floor)
        assert out[:2].tolist() == [floor, floor]
        assert out[2] == pytest.approx(floor + 40.0, rel=1e-9)


def test_a_hill_meets_a_price_of_zero_only_at_infinity_and_no_newton_runs_for_it() -> None:
    # Newton from ln(0)'s infinite residual took all 60 steps on every call holding such a
    # price (family seed 22, 1,000 partners: a tenth of the calls), warning on the way.
    a, s, n = Curve(CurveKind.HILL, max_uplift=500.0, shape=3.5, half_saturation=80.0).packed
    x = np.array([120.0, 900.0])
    slopes = kind_derivative(CurveKind.HILL, x, a, s, n)
    with np.errstate(divide="raise", invalid="raise"):
        back = kind_inverse_derivative(
            CurveKind.HILL, np.array([0.0, slopes[0], 0.0, slopes[1]]), a, s, n, 0.0
        )
    assert back[0] == back[2] == np.inf
    np.testing.assert_allclose(back[[1, 3]], x, rtol=1e-8)


@st.composite
def _points(draw: st.DrawFn) -> Curve:
    count = draw(st.integers(2, 7))
    steps = draw(st.lists(st.floats(1e-3, 1e9), min_size=count - 1, max_size=count - 1))
    rises = draw(st.lists(st.floats(0.0, 1e9), min_size=count - 1, max_size=count - 1))
    xs = np.concatenate([[0.0], np.cumsum(steps)])
    ys = np.concatenate([[draw(st.floats(0.0, 1e6))], rises]).cumsum()
    return points_curve(xs, ys)


@settings(max_examples=100, deadline=None)
@given(
    curves=st.lists(
        st.one_of(_points(), st.none(), st.just(Curve(CurveKind.LOG, coef=3e7, scale=2e6))),
        min_size=1,
        max_size=8,
    ),
    where=st.lists(st.floats(-1.0, 1.2), min_size=8, max_size=8),
    on_knots=st.booleans(),
)
def test_a_column_of_points_curves_is_each_curve_to_the_bit(
    curves: list[Curve | None], where: list[float], on_knots: bool
) -> None:
    """Evaluated together (padded to one width), every points curve gives what its own
    np.interp gives, at and between knots and past the last one: a tier reached in one
    evaluator is reached in every other."""
    amounts = []
    for curve, share in zip(curves, where, strict=False):
        top = curve.xs[-1] if curve is not None and curve.kind is CurveKind.POINTS else 1e7
        knot = curve is not None and curve.kind is CurveKind.POINTS and on_knots
        amounts.append(curve.xs[int(abs(share) * 10) % len(curve.xs)] if knot else share * top)
    got = CurveColumn(curves).value(np.array(amounts))
    expected = [
        0.0 if c is None else float(c.value(max(a, 0.0)))
        for c, a in zip(curves, amounts, strict=True)
    ]
    np.testing.assert_array_equal(got, expected)
