"""The cross-engine claim check (`bench.claims_sweep`): the programmes it builds, the
claims it refutes, and a short sweep end to end."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.claims_sweep import main, programme, refuted, refuted_alternatives
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


def test_alternatives_that_copy_or_beat_the_first_are_refuted() -> None:
    request, _ = programme(5, [50], 10.0)  # min_cost: this one has alternatives
    plans = solve(replace(request, options=replace(request.options, plans=3)))
    assert len(plans) == 3
    assert refuted_alternatives(request, plans) == []
    assert refuted_alternatives(request, [plans[0], plans[0]]) == ["ALTERNATIVE 2 A COPY"]
    cheaper = replace(
        plans[1],
        objective=replace(plans[1].objective, total_cost=plans[0].objective.total_cost * 0.5),
    )
    found = refuted_alternatives(request, [plans[0], cheaper])
    assert "ALTERNATIVE 2 BEATS THE FIRST" in found
    assert "INVALID ALTERNATIVE 2" in found  # its cost is no longer what its amounts cost
