"""`windmaker compare` as a planner reads it: figures rounded (float noise is no change),
a caveat for a plan that is not optimal, a reason for a surprising change, and the JSON
keeping exact numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.plan import Plan, SolverReport, SolveStatus, build_plan
from models.request import AllocationRequest
from service import solving
from tests.integration.test_cli import files, inline_partners, run, scenario, write_json

__all__ = ["files"]  # the fixture, shared with the main CLI tests

NOISE = 1.49e-07


def _steered(request: AllocationRequest, **_: Any) -> list[Plan]:
    """Plans with known figures: the base spends its budget on p1; "noise" is the base
    plus float noise; "half" stops at its time limit with a 10.2% gap and spreads its
    (halved) budget, which the curves turn into more GMV than the base's."""
    budget = request.resource("subsidy").budget or 0.0
    shares = np.array([[4e7], [0.0], [0.0]])
    status = SolverReport("steered", SolveStatus.OPTIMAL, 0.0)
    if budget == 4e7 + 1:  # the "noise" scenario
        shares = shares + NOISE
    elif budget < 4e7:
        shares = np.array([[5e6], [5e6], [1e7]])
        status = SolverReport("steered", SolveStatus.TIME_LIMIT, 0.102)
    return [build_plan(request, shares, status)]


def test_compare_rounds_figures_and_prints_caveats_and_reasons(
    files: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(solving, "solve_request", _steered)
    changes = write_json(
        tmp_path / "changes.json",
        [
            {"name": "noise", "changes": {"budgets": {"subsidy": 4e7 + 1}}},
            {"name": "half", "changes": {"budgets": {"subsidy": "x0.5"}}},
        ],
    )
    request = write_json(tmp_path / "r.json", scenario(partners=inline_partners()))
    as_json = tmp_path / "comparison.json"
    result = run(
        "compare", "--request", request, "--changes", changes, "--json", str(as_json), "-q",
        "--workers", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "e-0" not in out  # no float noise anywhere in the text
    gmv_line = next(line for line in out.splitlines() if line.strip().startswith("projected GMV"))
    base_gmv, noise_gmv = gmv_line.split()[2:4]
    assert base_gmv == noise_gmv and base_gmv.startswith("¥")  # no "(+¥...)" for noise
    assert "half: stopped at the time limit with a 10.2% gap" in out
    assert "half: projected GMV rose although the subsidy budget fell: " in out
    assert "not proven optimal (time_limit, a 10.2% gap)" in out
    assert "noise vs base: 0 partners changed" in out  # noise below a unit is no change

    comparison = json.loads(as_json.read_text(encoding="utf-8"))
    base, noise, half = comparison["scenarios"]
    exact = noise["kpis"]["total_projected_gmv"] - base["kpis"]["total_projected_gmv"]
    assert 0 < abs(exact) < 1e-5  # the JSON keeps the exact (noisy) numbers
    assert half["caveat"].startswith("stopped at the time limit")
    assert half["reason"] and noise["reason"] is None and base["caveat"] is None
