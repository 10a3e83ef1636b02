"""The cross-engine claim check (`bench.claims_sweep`): the programmes it builds, the
claims it refutes, and a short sweep end to end."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.claims_sweep import main, programme, refuted
from models.plan import Plan, SolveStatus
from models.request import OnePackage, Pin
from optimizer import solve


def test_the_seed_picks_the_menus_the_pins_and_the_objective() -> None:
    trading, _ = programme(2, [300], 10.0)  # 3% of 300 partners on trading menus
    assert any(isinstance(rule, OnePackage) for rule in trading.constraints)
    assert any(p.packages for p in trading.partners)
    pinned, label = programme(3, [50], 10.0)
    assert any(isinstance(rule, Pin) for rule in pinned.constraints)
    assert "pins True" in label and "50 partners" in label
    assert programme(3, [50], 10.0) == (pinned, label)


@pytest.fixture(scope="module")
def solved() -> tuple[object, Plan]:
    request, _ = programme(4, [50], 10.0)
    return request, solve(request)[0]


def test_a_plan_against_itself_refutes_nothing(solved: tuple[object, Plan]) -> None:
    request, plan = solved
    assert plan.solver.status is SolveStatus.OPTIMAL
    assert refuted(request, plan, plan) == []  # type: ignore[arg-type]


def test_a_reference_beyond_the_bound_or_the_gap_refutes_those_claims(
    solved: tuple[object, Plan],
) -> None:
    request, plan = solved
    better = replace(
        plan,
        objective=replace(
            plan.objective, total_projected_gmv=plan.objective.total_projected_gmv * 1.01
        ),
    )
    found = refuted(request, plan, better)  # type: ignore[arg-type]
    assert any(claim.startswith("BOUND BEATEN") for claim in found)
    assert any(claim.startswith("FALSE OPTIMAL") for claim in found)
    infeasible = replace(plan, solver=replace(plan.solver, status=SolveStatus.INFEASIBLE))
    assert refuted(request, infeasible, plan) == ["FALSE INFEASIBLE"]  # type: ignore[arg-type]


def test_a_short_sweep_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    lines = main(["0", "2", "--sizes", "50", "--limit", "10"])
    assert len(lines) == 2 and capsys.readouterr().out.count("\n") == 2
    assert all(line.upper() != line and "CBC" in line for line in lines)
    assert not [line for line in lines if "FALSE" in line or "INVALID" in line]
