"""Plans report docs/uncertainty.md figures, and the checker re-derives them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from models.check import check_plan
from models.curves import Curve, CurveKind
from models.plan import SolverReport, SolveStatus, build_plan
from models.request import (
    AllocationRequest,
    Objective,
    Options,
    Partner,
    Resource,
    Tier,
    UncertaintyOptions,
)

SOLVER = SolverReport("test", SolveStatus.OPTIMAL)


def _request(confidence: float | None = None, **spread: object) -> AllocationRequest:
    linear = {"subsidy": Curve(CurveKind.LINEAR, roi=2.0)}
    partners = tuple(
        Partner(
            id=f"p{i}",
            baseline_gmv=base,
            baseline_gmv_p10=base * 0.8 if i % 2 == 0 else None,
            baseline_gmv_p90=base * 1.3 if i % 2 == 0 else None,
            attributes={"region": "north" if i < 3 else "south"},
            curves=linear,
        )
        for i, base in enumerate([9e7, 9.5e7, 1.05e8, 6e7, 2e8, 9.9e8])
    )
    return AllocationRequest(
        resources=(Resource("subsidy", budget=5e7),),
        tiers=(Tier("1B", 1e9, 1), Tier("100M", 1e8, 4)),
        partners=partners,
        objective=Objective.MAX_ATTAINMENT,
        options=Options(
            confidence=confidence,
            uncertainty=UncertaintyOptions(**spread),  # type: ignore[arg-type]
        ),
    )


def _amounts(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64).reshape(-1, 1)


def test_plan_reports_the_spec_figures() -> None:
    request = _request()
    plan = build_plan(request, _amounts(6e6, 0, 0, 0, 0, 0), SOLVER)
    assert plan.uncertainty is not None
    block = plan.uncertainty
    assert (block.confidence, block.correlation, block.method) == (0.9, 0.0, "exact")
    sigma = math.log(1.3 / 0.8) / (2 * stats.norm.ppf(0.9))
    p0 = stats.norm.cdf(math.log(1.02e8 / 1e8) / sigma)
    first = next(a for a in plan.allocations if a.partner_id == "p0")
    assert first.p_reach == pytest.approx(p0, rel=1e-12)
    # p1, p3 (no band, default σ 0) are certain; p2 and p4 have bands.
    hundred = next(t for t in block.tiers if t.name == "100M")
    p2 = stats.norm.cdf(math.log(1.05) / sigma)
    p4 = stats.norm.cdf(math.log(2.0) / sigma)
    p5 = 1.0  # p5 has no band: 9.9e8 ≥ 1e8 for certain
    assert hundred.expected_achieved == pytest.approx(p0 + p2 + p4 + p5, rel=1e-12)
    assert check_plan(request, plan) == []


def test_no_spread_means_no_block() -> None:
    request = _request()
    bare = dataclasses.replace(
        request,
        partners=tuple(
            dataclasses.replace(p, baseline_gmv_p10=None, baseline_gmv_p90=None)
            for p in request.partners
        ),
    )
    plan = build_plan(bare, _amounts(0, 0, 0, 0, 0, 0), SOLVER)
    assert plan.uncertainty is None
    assert all(a.p_reach is None for a in plan.allocations)
    assert check_plan(bare, plan) == []


def test_confidence_counts_shortfall_against_achieved_at_confidence() -> None:
    request = _request(confidence=0.95, default_sigma=0.1)
    plan = build_plan(request, _amounts(6e6, 3e6, 0, 0, 0, 5e6), SOLVER)
    block = plan.uncertainty
    assert block is not None and block.confidence == 0.95
    expected = sum(
        tier.weight
        * max(
            0,
            tier.target
            - next(t for t in block.tiers if t.name == tier.name).achieved_at_confidence,
        )
        for tier in request.tiers
    )
    assert plan.objective.weighted_shortfall == expected
    deterministic = sum(t.shortfall for t in plan.tiers)
    assert expected > deterministic  # the 95% count is lower than the median count
    assert check_plan(request, plan) == []


def test_correlated_plans_use_monte_carlo_and_recompute() -> None:
    request = _request(default_sigma=0.15, correlation=0.3, group_by="region", draws=4000)
    plan = build_plan(request, _amounts(6e6, 0, 0, 0, 0, 0), SOLVER)
    assert plan.uncertainty is not None
    assert plan.uncertainty.method == "monte_carlo" and plan.uncertainty.draws == 4000
    assert all(t.std_error > 0 or t.p_target in (0.0, 1.0) for t in plan.uncertainty.tiers)
    assert check_plan(request, plan) == []


def test_checker_catches_misreported_figures() -> None:
    request = _request()
    plan = build_plan(request, _amounts(6e6, 0, 0, 0, 0, 0), SOLVER)
    assert plan.uncertainty is not None
    plan.uncertainty.tiers[0].p_target += 0.01
    plan.uncertainty.tiers[1].achieved_at_confidence += 1
    plan.allocations[0].p_reach = 0.5
    problems = check_plan(request, plan)
    assert any("p_target" in p for p in problems)
    assert any("achieved_at_confidence" in p for p in problems)
    assert any("p_reach" in p for p in problems)
    plan.uncertainty = None
    assert any("no uncertainty block" in p for p in check_plan(request, plan))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0, 4e6), min_size=6, max_size=6),
    st.lists(st.floats(0, 4e6), min_size=6, max_size=6),
    st.sampled_from([None, 0.8, 0.95]),
)
def test_more_amounts_never_lower_the_figures(
    amounts: list[float], extra: list[float], confidence: float | None
) -> None:
    request = _request(confidence=confidence, default_sigma=0.05)
    before = build_plan(request, _amounts(*amounts), SOLVER)
    after = build_plan(
        request, _amounts(*(a + e for a, e in zip(amounts, extra, strict=True))), SOLVER
    )
    assert before.uncertainty is not None and after.uncertainty is not None
    for old, new in zip(before.uncertainty.tiers, after.uncertainty.tiers, strict=True):
        assert new.expected_achieved >= old.expected_achieved - 1e-12
        assert new.p_target >= old.p_target - 1e-12
        assert new.achieved_at_confidence >= old.achieved_at_confidence
    assert after.objective.weighted_shortfall <= before.objective.weighted_shortfall
