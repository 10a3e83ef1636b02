"""Packages a one_package rule forces must fit every budget jointly (`package_fit`).

Each partner's packages trade subsidy for traffic, so moving the partners to their
smallest package on one budget overdraws the other. The requests are built feasible (the
budgets are one random choice's totals) or not (a little less than the least joint
totals the brute force finds), and the decomposition must tell them apart."""

from __future__ import annotations

import numpy as np
import pytest

from models.check import check_plan
from models.plan import SolverReport, SolveStatus, build_plan
from models.request import (
    AllocationRequest,
    Objective,
    OnePackage,
    Package,
    Partner,
    Resource,
    Tier,
)
from optimizer.arrays import build_arrays
from optimizer.decomposition import solve_decomposition
from optimizer.decomposition.package_fit import fitting_choice
from optimizer.decomposition.problem import build_problem
from optimizer.engines import DECOMPOSITION, available_engines
from tests.support.bruteforce import solve_reference

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


@pytest.mark.parametrize("seed", range(24))
def test_packages_that_fit_only_jointly_make_a_plan(seed: int) -> None:
    partners = _partners(seed, 5 + seed % 3)
    request = _request(partners, _one_choice_s_totals(partners, seed), list(Objective)[seed % 3])
    outcome = solve_decomposition(request, time_limit_s=10.0, mip_gap=1e-6)
    assert outcome.status is not SolveStatus.INFEASIBLE, outcome.binding_constraints
    chosen = outcome.candidates[0]
    plan = build_plan(
        request, chosen.amounts, SolverReport("d", outcome.status),
        package_choice=chosen.package_choice,
    )  # fmt: skip
    assert check_plan(request, plan) == []
    assert all(a.package is not None for a in plan.allocations)


@pytest.mark.parametrize("seed", range(8))
def test_packages_that_fit_no_budget_pair_are_infeasible(seed: int) -> None:
    """Budgets a unit under a choice's totals, on the traffic side where the brute force
    finds none that fits."""
    partners = _partners(seed, 5)
    subsidy, traffic = _one_choice_s_totals(partners, seed)
    for less in range(1, 40):
        request = _request(partners, (subsidy, traffic - less), Objective.MAX_GMV)
        if not solve_reference(request).feasible:
            break
    else:
        pytest.fail("no infeasible budget pair")
    outcome = solve_decomposition(request, time_limit_s=10.0, mip_gap=1e-6)
    assert outcome.status is SolveStatus.INFEASIBLE
    assert outcome.candidates == []


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
