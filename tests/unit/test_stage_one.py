"""Stage 1 of the decomposition (issue 12): honest subgradients at zero prices, the
tier-option MILP's plans, and the stage-1 certificate every plan carries."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

import optimizer
from fixtures.families import family_request
from models.check import check_plan
from models.curves import CurveKind
from models.schemas import PlanSchema, plan_to_dict
from optimizer.arrays import build_arrays
from optimizer.clock import Clock, relative_gap
from optimizer.decomposition import assignment
from optimizer.decomposition.assignment import (
    Options,
    _model,
    _with_incumbent,
    assign_by_milp,
    ticket_grid_mixes,
    tier_options,
)
from optimizer.decomposition.lagrangian import Stage
from optimizer.decomposition.primal import breaks_hard_rows, evaluate_plan
from optimizer.decomposition.problem import build_problem
from optimizer.decomposition.repair import fixed_amounts, mandatory
from optimizer.decomposition.stage_one import stage_one
from optimizer.decomposition.stages import run_stage
from optimizer.decomposition.subproblem import respond
from optimizer.engines import milp_backend
from tests.support.bruteforce import solve_reference
from tests.support.instances import random_small_request

KINDS = (CurveKind.SATURATING, CurveKind.LOG, CurveKind.LINEAR, CurveKind.HILL)


def test_at_zero_prices_the_amounts_reaching_a_tier_reach_it() -> None:
    """The subgradient must show what reaching a tier uses, or budgets look slack."""
    request = random_small_request(3, n_partners=8, n_resources=2, kinds=KINDS)
    problem = build_problem(build_arrays(request))
    response = respond(problem, np.zeros((problem.n, problem.n_resources)), alpha=0.0)
    reach = response.reach[0]
    assert reach is not None and reach.rows.size > 0
    gmv = problem.baseline[reach.rows].copy()
    for r, family in enumerate(problem.families):
        gmv += family.take(reach.rows).envelope(reach.amounts[:, r])
    assert np.all(gmv >= problem.thresholds[0] * (1 - 1e-9))


@pytest.mark.parametrize("seed", range(6))
def test_tier_option_milp_plans_are_exact_and_within_budgets(seed: int) -> None:
    request = random_small_request(
        seed, n_partners=10, n_resources=2, n_tiers=2, kinds=KINDS, with_min=True
    )
    problem = build_problem(build_arrays(request))
    prices = np.ones((problem.n, problem.n_resources)) / np.maximum(problem.budget, 1.0)
    found = assign_by_milp(problem, prices, problem.targets, Clock(10.0), 1.0)
    if found is None:
        assert len(tier_options(problem, prices, problem.targets)) == 0
        return
    levels, amounts = found
    assert np.all(amounts.sum(axis=0) <= problem.budget * (1 + 1e-9))
    gmv = problem.values(amounts)
    reached = (gmv[:, None] >= problem.thresholds[None, :]).sum(axis=1)
    assert np.all(reached >= levels)  # every level the MILP counts is reached exactly
    reference = solve_reference(request)
    assert evaluate_plan(problem, amounts).shortfall >= reference.weighted_shortfall - 1e-9


@pytest.mark.parametrize("engine", ["decomposition", "highs"])
def test_plans_carry_the_stage_one_certificate(engine: str) -> None:
    request = random_small_request(11, n_partners=6, n_resources=2, kinds=KINDS)
    request = replace(request, options=replace(request.options, engine=engine, time_limit_s=20.0))
    plan = optimizer.solve(request)[0]
    assert check_plan(request, plan) == []
    reference = solve_reference(request)
    solver = plan.solver
    assert solver.shortfall_proven is not None and solver.shortfall_bound is not None
    # The bound never exceeds the true least shortfall; proven means the plan meets it.
    assert solver.shortfall_bound <= reference.weighted_shortfall + 1e-9
    if solver.shortfall_proven:
        assert plan.objective.weighted_shortfall == pytest.approx(reference.weighted_shortfall)
    dumped = plan_to_dict(plan)
    assert dumped["solver"]["shortfall_proven"] == solver.shortfall_proven
    again = PlanSchema().load(dumped)
    assert again.solver.shortfall_bound == pytest.approx(solver.shortfall_bound)


def test_the_gap_is_relative_to_the_bound_and_never_negative() -> None:
    assert relative_gap(99.0, 100.0, minimise=False) == pytest.approx(0.01)
    assert relative_gap(101.0, 100.0, minimise=True) == pytest.approx(0.01)
    assert relative_gap(100.0 + 1e-7, 100.0, minimise=False) == 0.0
    assert relative_gap(5.0, None, minimise=False) is None


def test_the_tier_option_milp_counts_a_partner_lifted_past_its_tier_once() -> None:
    """A partner already at tier 1 lifted to tier 2 adds a tier-2 partner, not a tier-1 one."""
    request = random_small_request(2, n_partners=4, n_resources=2, n_tiers=2, kinds=KINDS)
    problem = build_problem(build_arrays(request))
    start = np.array([1, 0, 0, 0], dtype=np.intp)
    options = Options(
        np.array([0, 1], dtype=np.intp),
        np.array([2, 1], dtype=np.intp),
        np.zeros((2, problem.n_resources)),
    )
    targets = np.array([3, 1], dtype=np.int64)  # tier 1 (the lower threshold) then tier 2
    model = _model(problem, options, fixed_amounts(problem), start, targets)
    result = milp_backend("highs").solve(model, time_limit_s=10.0, mip_gap=0.0)
    assert result.x is not None
    assert np.all(result.x[:2] > 0.5)
    # Partners 0 and 1 reach tier 1: one short of 3; partner 0 meets tier 2's target.
    assert result.x[2:4] == pytest.approx([1.0, 0.0])


@pytest.mark.parametrize("seed", range(3))
def test_the_milp_starts_from_exactly_the_incumbents_tier_mixes(seed: int) -> None:
    """The start marks, for each partner the incumbent lifts, the one option holding its
    own mix and level, and nothing else; its shortfall columns are the incumbent's."""
    request, _ = family_request(seed, 300, 0.95)
    problem = build_problem(build_arrays(request))
    prices = np.ones((problem.n, problem.n_resources)) / np.maximum(problem.budget, 1.0)
    options = tier_options(problem, prices, problem.targets, grid=False)
    fixed = fixed_amounts(problem)
    start = problem.levels(fixed)
    # An incumbent lifting some partners with options' mixes and some with mixes of its own.
    rng = np.random.default_rng(seed)
    incumbent = fixed.copy()
    picked = rng.choice(len(options), size=min(40, len(options)), replace=False)
    incumbent[options.partner[picked]] = options.amounts[picked]
    incumbent[options.partner[picked[::3]]] *= 1.5
    merged, warm = _with_incumbent(problem, options, incumbent, start, problem.targets)
    reached = problem.levels(incumbent)
    lifted = np.flatnonzero(reached > start)
    assert lifted.size > 0
    chosen = np.flatnonzero(warm[: len(merged)] == 1.0)
    assert np.all(np.isin(warm[: len(merged)], (0.0, 1.0)))
    assert sorted(merged.partner[chosen]) == sorted(lifted)
    assert np.array_equal(merged.level[chosen], reached[merged.partner[chosen]])
    assert np.array_equal(merged.amounts[chosen], incumbent[merged.partner[chosen]])
    achieved = [np.count_nonzero(reached >= t) for t in range(1, problem.n_tiers + 1)]
    short = np.maximum(problem.targets - np.array(achieved), 0)
    assert warm[len(merged) :] == pytest.approx(short)


@pytest.mark.parametrize("seed", range(3))
def test_ticket_grid_mixes_reach_their_tier_exactly_on_the_grid(seed: int) -> None:
    """Every mix kept as an option reaches its tier on the exact curves, with the ticket on
    its grid and every amount within the partner's own domain."""
    request, _ = family_request(seed, 60, 0.95, resources=3)
    problem = build_problem(build_arrays(request))
    (r,) = problem.lumpy_resources()[:1]
    prices = np.ones((problem.n, problem.n_resources)) / np.maximum(problem.budget, 1.0)
    threshold = problem.thresholds[0]
    below = problem.baseline < threshold
    pool = np.flatnonzero(below & (problem.baseline + problem.reach >= threshold))
    rows, x, ok = ticket_grid_mixes(problem, pool, 1, prices)
    assert ok.any() or not mandatory(problem, pool, 1, prices)[1].any()
    # Every ticket amount of a partner who may take the ticket: the grid, not one best mix.
    eligible = problem.can_use[pool, r]
    assert np.count_nonzero(problem.can_use[rows, r]) > np.count_nonzero(eligible) or not any(
        eligible
    )
    rows, x = rows[ok], x[ok]
    assert np.all(problem.subset(rows).values(x) >= problem.thresholds[0])
    step = problem.step[r]
    assert np.allclose(x[:, r] / step, np.round(x[:, r] / step))
    for s, family in enumerate(problem.families):
        hi, lo = family.hi[rows], family.lo[rows]
        assert np.all(x[:, s] <= hi * (1 + 1e-12))
        assert np.all((x[:, s] == 0) | (x[:, s] >= lo * (1 - 1e-12)))
        assert np.all((x[:, s] == 0) | problem.can_use[rows, s])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "size", "ambition"), [(2, 300, 0.9), (4, 300, 0.95), (2, 300, 0.98), (3, 5000, 0.98)]
)
def test_stage_one_reaches_the_proven_least_shortfall_on_family_programmes(
    seed: int, size: int, ambition: float
) -> None:
    """Programmes where the price-variant options alone left the plan 1 short of the
    certificate's floor (the ticket budget binds: one partner must take many tickets),
    and one (5,000 partners) where the option MILP's choice at the floor lost a ¥1B tier
    to the group repair on a float edge (see `primal.minimum_keeping_tier`)."""
    request, _ = family_request(seed, size, ambition, resources=3)
    problem = build_problem(build_arrays(request))
    one = stage_one(problem, Clock(60.0), None, None)
    assert one.plan is not None
    assert one.proven and one.plan.shortfall <= one.floor + 1e-9
    assert breaks_hard_rows(problem, one.plan.amounts) == []
    assert np.all(one.plan.amounts.sum(axis=0) <= problem.budget * (1 + 1e-9))


def test_a_hopeless_stage_one_dual_hands_over_without_jittered_plans() -> None:
    """Once the dual cannot prove the plan, the tier-option MILP and the certificate get
    the time: no plans at jittered prices (they cost 2.3 s of 5.9 at 5,000 partners)."""
    request, _ = family_request(1, 300, 0.98, resources=3)
    problem = build_problem(build_arrays(request))
    attain = Stage("attain", problem.targets, True)
    labels: list[str] = []
    bound, _, _ = run_stage(
        problem, attain, Clock(30.0), 1.0, lambda b, p: False, problem.targets,
        lambda event: labels.append(event.message), hopeless=lambda floor, plan: True,
    )  # fmt: skip
    assert math.isfinite(bound)
    assert labels and not any("polish" in label for label in labels)


def _first_attainment_bound(monkeypatch: pytest.MonkeyPatch, sample_above: int) -> float:
    from optimizer.decomposition import engine

    monkeypatch.setattr(engine, "SAMPLE_ABOVE", sample_above)
    monkeypatch.setattr(engine, "SAMPLE_SIZE", 600)
    request, _ = family_request(1, 2000, 0.98, resources=3)
    request = replace(request, options=replace(request.options, time_limit_s=20.0))
    bounds: list[float] = []

    def progress(event: object) -> None:
        message = getattr(event, "message", "")
        if message.startswith("attain 0:"):
            bounds.append(float(message.split("bound ")[1].split(",")[0]))

    engine.solve_decomposition(request, time_limit_s=20.0, mip_gap=1e-3, progress=progress)
    assert bounds, "stage 1's attainment dual did not run"
    return bounds[0]


@pytest.mark.slow
def test_a_sample_starts_the_attainment_dual_closer_to_its_minimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above SAMPLE_ABOVE partners the sample's stage-1 prices start the full dual (at
    1,000,000 family partners its first bound was below where a dozen cold steps end)."""
    cold = _first_attainment_bound(monkeypatch, 10**9)
    warm = _first_attainment_bound(monkeypatch, 1_000)
    assert warm < cold


@pytest.mark.parametrize("seed", range(4))
def test_a_large_tier_option_model_is_solved_by_its_rounded_lp(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above LP_ROUNDING_OPTIONS the MILP is its LP relaxation rounded: one option per
    partner at most, every budget and group row held exactly, every level it counts
    reached on the exact curves, and at most a few partners fewer than the MILP lifts."""
    request, _ = family_request(seed, 1000, 0.98)
    problem = build_problem(build_arrays(request))
    prices = np.ones((problem.n, problem.n_resources)) / np.maximum(problem.budget, 1.0)
    exact = assign_by_milp(problem, prices, problem.targets, Clock(30.0), 1.0, grid=False)
    monkeypatch.setattr(assignment, "LP_ROUNDING_OPTIONS", 0)
    rounded = assign_by_milp(problem, prices, problem.targets, Clock(30.0), 1.0, grid=False)
    assert exact is not None and rounded is not None
    levels, amounts = rounded
    assert np.all(amounts.sum(axis=0) <= problem.budget * (1 + 1e-12))
    for row in problem.group_budgets:  # floors are filled afterwards (`within_groups`)
        assert amounts[row.members, row.resource].sum() <= row.high * (1 + 1e-12)
    reached = problem.levels(amounts)
    assert np.all(reached >= levels)
    short_exact = evaluate_plan(problem, exact[1]).shortfall
    short_rounded = evaluate_plan(problem, rounded[1]).shortfall
    # k coupling rows (budgets, group rows, tier counts): at most 2k fractional options.
    coupling = problem.n_resources + len(problem.group_budgets) * 2 + problem.n_tiers
    coupling += len(problem.group_counts)
    weight = float(problem.weights.max())
    assert short_exact - 1e-9 <= short_rounded <= short_exact + 2 * coupling * weight
