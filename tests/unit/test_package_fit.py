"""Packages a one_package rule forces must fit every budget jointly (`package_fit`).

Each partner's packages trade subsidy for traffic, so moving the partners to their
smallest package on one budget overdraws the other. The requests are built feasible (the
budgets are one random choice's totals) or not (a little less than the least joint
totals the brute force finds), and the decomposition must tell them apart."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.check import check_plan
from models.curves import CurveKind
from models.plan import Plan, SolverReport, SolveStatus, build_plan
from models.request import (
    AllocationRequest,
    Objective,
    OnePackage,
    Package,
    Partner,
    Pin,
    Resource,
    Tier,
)
from optimizer import solve
from optimizer.arrays import build_arrays
from optimizer.decomposition import package_fit, solve_decomposition
from optimizer.decomposition.package_fit import any_choice_fits, fitting_choice
from optimizer.decomposition.problem import build_problem
from optimizer.engines import DECOMPOSITION, available_engines
from optimizer.engines.base import MilpModel, MilpResult, Termination
from optimizer.outcome import EngineOutcome
from tests.support.bruteforce import solve_reference
from tests.support.instances import random_small_request

pytestmark = pytest.mark.skipif(
    DECOMPOSITION not in available_engines(), reason="no decomposition engine"
)


def _partners(seed: int, n: int) -> tuple[Partner, ...]:
    rng = np.random.default_rng(seed)
    partners = []
    for i in range(n):
        subsidy, traffic = (float(v) for v in rng.integers(5, 15, size=2))
        packages = (
            Package("subsidy", {"s": subsidy, "t": float(rng.integers(0, 3))}, rng.uniform(1, 10)),
            Package("traffic", {"s": float(rng.integers(0, 3)), "t": traffic}, rng.uniform(1, 10)),
            Package("both", {"s": round(0.6 * subsidy), "t": round(0.6 * traffic)},
                    rng.uniform(1, 10)),
        )  # fmt: skip
        partners.append(Partner(f"p{i}", 100.0, packages=packages))
    return tuple(partners)


def _request(
    partners: tuple[Partner, ...], budgets: tuple[float, float], objective: Objective
) -> AllocationRequest:
    return AllocationRequest(
        resources=(
            Resource("s", budget=budgets[0], step=1.0),
            Resource("t", budget=budgets[1], step=1.0),
        ),
        tiers=(Tier("t105", 105.0, 2),),
        partners=partners,
        constraints=(OnePackage(),),
        objective=objective,
    )


def _one_choice_s_totals(partners: tuple[Partner, ...], seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed + 1000)
    chosen = [p.packages[int(rng.integers(len(p.packages)))] for p in partners]
    return (sum(c.amounts["s"] for c in chosen), sum(c.amounts["t"] for c in chosen))


def _plan(request: AllocationRequest, outcome: EngineOutcome) -> Plan:
    """The engine's first candidate as a plan, packages included."""
    chosen = outcome.candidates[0]
    report = SolverReport("decomposition", outcome.status)
    return build_plan(request, chosen.amounts, report, package_choice=chosen.package_choice)


@pytest.mark.parametrize("seed", range(24))
def test_packages_that_fit_only_jointly_make_a_plan(seed: int) -> None:
    partners = _partners(seed, 5 + seed % 3)
    request = _request(partners, _one_choice_s_totals(partners, seed), list(Objective)[seed % 3])
    outcome = solve_decomposition(request, time_limit_s=10.0, mip_gap=1e-6)
    assert outcome.status is not SolveStatus.INFEASIBLE, outcome.binding_constraints
    plan = _plan(request, outcome)
    assert check_plan(request, plan) == []
    assert all(a.package is not None for a in plan.allocations)


def _infeasible_request(seed: int) -> AllocationRequest:
    """Budgets a unit under a choice's totals, on the traffic side where the brute force
    finds none that fits."""
    partners = _partners(seed, 5)
    subsidy, traffic = _one_choice_s_totals(partners, seed)
    for less in range(1, 40):
        request = _request(partners, (subsidy, traffic - less), Objective.MAX_GMV)
        if not solve_reference(request).feasible:
            return request
    pytest.fail("no infeasible budget pair")


@pytest.mark.parametrize("seed", range(8))
def test_packages_that_fit_no_budget_pair_are_infeasible(seed: int) -> None:
    outcome = solve_decomposition(_infeasible_request(seed), time_limit_s=10.0, mip_gap=1e-6)
    assert outcome.status is SolveStatus.INFEASIBLE
    assert outcome.candidates == []


class _Undecided:
    """A backend that runs out of time with neither a solution nor a proof."""

    def solve(self, model: MilpModel, **_: object) -> MilpResult:
        return MilpResult(Termination.NO_SOLUTION)


@pytest.mark.parametrize("seed", range(3))
def test_a_fit_that_runs_out_of_time_proves_nothing(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same requests, with the fit MILP undecided: a plan over budget is no proof that
    none fits, so the request is not reported infeasible; the run ends on the time limit
    with no plan (it was reported infeasible, with `one_package` binding)."""
    monkeypatch.setattr(package_fit, "milp_backend", lambda name: _Undecided())
    request = _infeasible_request(seed)
    outcome = solve_decomposition(request, time_limit_s=10.0, mip_gap=1e-6)
    assert outcome.status is SolveStatus.TIME_LIMIT
    assert outcome.candidates == [] and outcome.binding_constraints == []
    assert outcome.best_bound is None and outcome.mip_gap is None  # no plan, no bound
    assert outcome.seconds > 0
    options = replace(request.options, engine=DECOMPOSITION, time_limit_s=10.0)
    plan = solve(replace(request, options=options))[0]
    assert plan.solver.status is SolveStatus.TIME_LIMIT
    assert "one_package" not in plan.binding_constraints


class _Timed(_Undecided):
    """An undecided backend that records the time limit of each fit."""

    def __init__(self) -> None:
        self.limits: list[float] = []

    def solve(self, model: MilpModel, **options: object) -> MilpResult:
        limit = options["time_limit_s"]
        assert isinstance(limit, float)
        self.limits.append(limit)
        return super().solve(model)


@pytest.mark.parametrize("seed", range(3))
def test_no_fit_takes_more_than_the_time_the_request_has_left(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The joint choice inside each plan had a fixed 10 s guard, whatever the request's
    limit (a 1 s request whose fits never end would have run 10 s per plan built)."""
    timed = _Timed()
    monkeypatch.setattr(package_fit, "milp_backend", lambda name: timed)
    outcome = solve_decomposition(_infeasible_request(seed), time_limit_s=1.0, mip_gap=1e-6)
    assert outcome.status is SolveStatus.TIME_LIMIT
    assert len(timed.limits) >= 2  # the plans' choices and the closing proof
    assert max(timed.limits) <= 1.0


def test_the_joint_choice_keeps_what_fits_and_finds_none_where_none_fits() -> None:
    """Four partners, each with 10 of subsidy or 10 of traffic: two of each fit budgets of
    20 and 20, and the choice keeps two of the subsidy picks it was handed."""
    partners = tuple(
        Partner(
            f"p{i}",
            100.0,
            packages=(
                Package("s", {"s": 10.0, "t": 0.0}, 2.0),
                Package("t", {"s": 0.0, "t": 10.0}, 1.0),
            ),
        )
        for i in range(4)
    )
    menus = build_problem(build_arrays(_request(partners, (20.0, 20.0), Objective.MAX_GMV))).menus
    assert menus is not None and menus.must.all()
    everyone = np.ones(4, dtype=bool)
    all_subsidy = np.flatnonzero(menus.index == 0)
    fit = fitting_choice(menus, all_subsidy, [(everyone, 0, 20.0), (everyone, 1, 20.0)])
    assert fit is not None
    used = menus.amounts_of(fit).sum(axis=0)
    assert used.tolist() == [20.0, 20.0]
    assert np.count_nonzero(menus.index[fit] == 0) == 2
    assert fitting_choice(menus, all_subsidy, [(everyone, 0, 20.0), (everyone, 1, 19.0)]) is None
    # Whether any choice fits at all, whatever was picked: a proof either way.
    assert any_choice_fits(menus, [(everyone, 0, 20.0), (everyone, 1, 20.0)], 5.0) is True
    assert any_choice_fits(menus, [(everyone, 0, 20.0), (everyone, 1, 19.0)], 5.0) is False
    # A resource without a budget is no cap: 40 of subsidy fits beside it.
    fit = fitting_choice(menus, all_subsidy, [(everyone, 0, 40.0), (everyone, 1, np.inf)])
    assert fit is not None and np.array_equal(fit, all_subsidy)


def test_a_curve_partner_s_pin_is_spent_before_packages_are_chosen() -> None:
    """A pin of 10M subsidy leaves 30M of the 40M budget (and half of it to the south's
    cap) to two must-partners' packages; choosing them against the whole 40M left the plan
    over budget, reported infeasible (found by a sweep of 200 generated menu requests)."""
    request = random_small_request(
        177, n_partners=6, n_resources=2, n_tiers=1, objective=Objective.MAX_ATTAINMENT,
        kinds=(CurveKind.SATURATING, CurveKind.LOG, CurveKind.LINEAR, CurveKind.HILL),
        magnitude="realistic", with_packages=True, with_group_budget=True, with_pins=True,
        with_min=True,
    )  # fmt: skip
    request = replace(request, constraints=(*request.constraints, OnePackage()))
    assert any(isinstance(c, Pin) for c in request.constraints)
    assert solve_reference(request).feasible
    outcome = solve_decomposition(request, time_limit_s=10.0, mip_gap=1e-6)
    assert outcome.status is not SolveStatus.INFEASIBLE, outcome.binding_constraints
    assert check_plan(request, _plan(request, outcome)) == []


@pytest.mark.parametrize("seed", range(60))
def test_one_package_menu_requests_agree_with_the_brute_force_on_feasibility(seed: int) -> None:
    """Generated menu requests (curves and packages, pins, group caps, minimum tickets)
    with every package partner bound to one package: the engine reports infeasible exactly
    when the brute force finds no allocation, and its plan passes the exact check."""
    request = random_small_request(
        seed, n_partners=6, n_resources=1 + seed % 2, n_tiers=1 + (seed // 2) % 2,
        objective=list(Objective)[seed % 3],
        kinds=(CurveKind.SATURATING, CurveKind.LOG, CurveKind.LINEAR, CurveKind.HILL),
        magnitude="realistic" if seed % 3 == 0 else "unit", with_packages=True,
        packages_only=seed % 2 == 0, with_group_budget=seed % 4 == 1, with_pins=seed % 5 == 2,
        with_min=seed % 3 == 0,
    )  # fmt: skip
    request = replace(request, constraints=(*request.constraints, OnePackage()))
    outcome = solve_decomposition(request, time_limit_s=10.0, mip_gap=1e-6)
    infeasible = outcome.status is SolveStatus.INFEASIBLE
    assert infeasible is not solve_reference(request).feasible, outcome.binding_constraints
    if not infeasible:
        assert check_plan(request, _plan(request, outcome)) == []
