"""`auto`'s engine for programmes the decomposition cannot model (`optimizer.solve`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from models.check import check_plan
from models.curves import CurveKind
from models.plan import SolveStatus
from models.request import AllocationRequest
from optimizer import solve
from optimizer.arrays import build_arrays
from optimizer.engines import DECOMPOSITION, available_engines
from optimizer.solve import DECOMPOSITION_PAIRS, choose_engine
from tests.support.instances import random_small_request

pytestmark = pytest.mark.skipif(
    DECOMPOSITION not in available_engines() or "cbc" not in available_engines(),
    reason="needs the decomposition and CBC",
)


def programme(kinds: tuple[CurveKind, ...]) -> AllocationRequest:
    request = random_small_request(
        7, n_partners=1000, n_resources=2, n_tiers=2, kinds=kinds, magnitude="realistic"
    )
    return replace(request, options=replace(request.options, time_limit_s=8.0))


def test_a_large_programme_with_points_curves_goes_to_the_decomposition() -> None:
    """Once a MILP's, as the decomposition declined `points` curves; it models them now."""
    request = programme(tuple(CurveKind))
    arrays = build_arrays(request)
    assert arrays.n_pairs > DECOMPOSITION_PAIRS
    assert any(curve.kind is CurveKind.POINTS for curve in arrays.pair_curve)
    assert choose_engine(request, arrays) == DECOMPOSITION
    plan = solve(request)[0]
    assert plan.solver.status is not SolveStatus.ERROR
    assert check_plan(request, plan) == []


def test_the_same_programme_without_points_curves_goes_to_the_decomposition() -> None:
    kinds = tuple(kind for kind in CurveKind if kind is not CurveKind.POINTS)
    request = programme(kinds)
    assert choose_engine(request, build_arrays(request)) == DECOMPOSITION
