"""Windmaker on programmes nobody tuned for (issue 12): the seeded family against references.

Small members (4–8 partners on a coarse grid) are solved exactly by the brute force of
tests/support/bruteforce.py: the plan must have the same stage-1 shortfall and a GMV
within the requested gap of the optimum. Mid-size members (50–3,000 partners) are solved
by the plain PuLP + CBC model of bench/baseline_pulp.py (its plan rebuilt with the exact
curves and checked like any plan): Windmaker's shortfall must be no worse and, at equal
shortfall, its GMV within the requested gap. Every plan must be exactly valid.

Instances today's engine fails are marked xfail with the measured figures. Every failure
measured so far depended on where the 10 s time limit cut the engine (the same instance
failed on some runs and passed on others), so the marks are not strict: a strict one
would fail at random on a loaded machine. Un-mark them once the engine stops before its
limit; a failure that does not depend on the clock gets `xfail(strict=True)`. Seeds 2, 3,
6 and 8 failed when `auto` took the HiGHS MILP; since it takes CBC from 100 variable
amounts they pass (measured at the 10 s limit, GMV +0.01 to +0.06% of the reference's at
equal shortfall), so they are un-marked.

CI cost: measured 4.5 min for the mid members and ~1 min for the brute-force ones on 2
cores shared with three other test runs (each mid member takes up to MID_TIME_LIMIT_S for
Windmaker plus BASELINE_CAP_S for CBC; nothing is cached between runs).
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from bench.baseline_pulp import solve_baseline
from fixtures.families import family_request
from models.check import check_plan
from models.request import AllocationRequest
from optimizer import solve
from tests.support.bruteforce import solve_reference
from tests.support.family_checks import Figures, plan_figures, reference_plan, shortcomings

pytestmark = pytest.mark.slow

SMALL_GAP = 1e-4
MID_GAP = 1e-3
MID_TIME_LIMIT_S = 10.0
BASELINE_CAP_S = 30.0


def _issue12_clock(reason: str) -> pytest.MarkDecorator:
    """A shortfall that depends on where the time limit cuts the engine: measured failing
    on some runs and passing on others on the shared 2-core machine, so a strict mark
    would fail at random. Not strict; un-mark once the engine stops before its limit."""
    return pytest.mark.xfail(strict=False, reason=f"issue 12 (clock-dependent): {reason}")


# (seed, partners, ambition, resources): sizes 4–8, every ambition band, 2–4 resources.
SMALL = [
    (seed, 4 + seed % 5, (0.5, 0.7, 0.85, 0.95, 0.98)[seed % 5], 2 + seed % 3) for seed in range(20)
]

# (seed, partners, ambition, resources, marks)
MID: list[tuple[int, int, float, int, tuple[pytest.MarkDecorator, ...]]] = [
    (1, 50, 0.6, 2, ()),
    (2, 100, 0.9, 3, ()),
    (3, 150, 0.95, 4, ()),
    (
        4,
        300,
        0.98,
        3,
        (
            _issue12_clock(
                "auto takes CBC, which now starts from the decomposition's stage 1. Alone on "
                "the machine that proves shortfall 0 in 1.5 s and the run ends `optimal` in "
                "7-8 s at 25.790 B, 0.23% above the CBC reference's 25.7304 B. Under the "
                "full suite on 2 cores (2026-12-02) stage 1 took 5.3 s and stopped at "
                "shortfall 1 unproven (the reference's is 0), or proved 0 and CBC's stage-2 "
                "rounds took the rest of the 10 s at 25.676 B, 0.2% below the reference"
            ),
        ),
    ),
    (5, 500, 0.8, 2, ()),
    (6, 80, 0.5, 4, ()),
    (7, 200, 0.7, 2, ()),
    (8, 120, 0.98, 3, ()),
    (9, 1000, 0.9, 2, ()),
    (10, 3000, 0.95, 2, ()),
]


def _small_request(seed: int, size: int, ambition: float, resources: int) -> AllocationRequest:
    request, _ = family_request(
        seed, size, ambition, resources=resources, mip_gap=SMALL_GAP, time_limit_s=20.0
    )
    return request


@pytest.mark.parametrize(("seed", "size", "ambition", "resources"), SMALL)
def test_small_family_matches_brute_force(
    seed: int, size: int, ambition: float, resources: int
) -> None:
    request = _small_request(seed, size, ambition, resources)
    reference = solve_reference(request)
    assert reference.feasible, "family programmes always admit the empty plan"
    plan = solve(request)[0]
    optimum = Figures(reference.weighted_shortfall, reference.total_gmv)
    problems = shortcomings(request, plan, optimum, exact=True)
    assert not problems, f"{problems}: plan {plan_figures(plan)}; optimum {optimum}"


def _mid_params() -> list[object]:
    return [
        pytest.param(seed, size, ambition, resources, marks=marks, id=f"s{seed}-n{size}")
        for seed, size, ambition, resources, marks in MID
    ]


@pytest.mark.parametrize(("seed", "size", "ambition", "resources"), _mid_params())
def test_mid_family_matches_milp_reference(
    seed: int, size: int, ambition: float, resources: int
) -> None:
    request, description = family_request(
        seed, size, ambition, resources=resources, mip_gap=MID_GAP, time_limit_s=MID_TIME_LIMIT_S
    )
    started = time.perf_counter()
    baseline = solve_baseline(request, "cbc", BASELINE_CAP_S)
    reference = reference_plan(request, baseline.amounts, "pulp-cbc")
    assert check_plan(request, reference) == [], "the reference itself must be valid"
    figures = replace(
        plan_figures(reference), seconds=time.perf_counter() - started, status=baseline.status
    )
    started = time.perf_counter()
    plan = solve(request)[0]
    found = plan_figures(plan, time.perf_counter() - started)
    problems = shortcomings(request, plan, figures, exact=False)
    assert not problems, f"{problems}: Windmaker {found}; CBC {figures} ({description})"
