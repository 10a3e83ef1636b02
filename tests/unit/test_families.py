"""The seeded programme family (fixtures/families.py): deterministic, valid, as documented."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fixtures.calibrate import budget_lower_bound, default_prices
from fixtures.families import family_programme, family_request, main
from models.request import Eligibility, GroupBudget, GroupCount, MaxShare


def test_the_same_arguments_give_the_same_programme() -> None:
    first = family_programme(3, 120, 0.9, resources=4)
    again = family_programme(3, 120, 0.9, resources=4)
    assert first.csv_text() == again.csv_text()
    assert first.scenario == again.scenario
    other = family_programme(4, 120, 0.9, resources=4)
    assert other.csv_text() != first.csv_text()


@pytest.mark.parametrize("resources", [2, 3, 4])
def test_a_member_has_the_documented_resources_and_rules(resources: int) -> None:
    request, description = family_request(5, 300, 0.95, resources=resources)
    names = [r.name for r in request.resources]
    assert names[: 1 + (resources > 2)] == ["subsidy", "traffic"][: 1 + (resources > 2)]
    assert len(names) == resources and "fund" in names
    fund = request.resource("fund")
    assert fund.step == 1e6
    with_tickets = [p for p in request.partners if "fund" in p.curves]
    assert with_tickets and all(p.bounds["fund"].min > 0 for p in with_tickets)
    assert any(p.curves["fund"].kind == "hill" for p in with_tickets)
    kinds = {type(rule) for rule in request.constraints}
    assert kinds == {MaxShare, Eligibility, GroupBudget, GroupCount}
    assert len(request.partners) == 300 and "ambition=0.95" in description
    plain, _ = family_request(5, 300, 0.95, resources=resources, groups=False)
    assert plain.constraints == ()


@pytest.mark.parametrize("ambition", [0.7, 0.98])
def test_ambition_is_the_share_of_the_budget_the_targets_need(ambition: float) -> None:
    """At budget-parity prices the calibration's lower bound of the targets is at most
    `ambition`, and more ambition asks for at least as many promotions."""
    programme = family_programme(2, 1000, ambition, groups=False)
    scenario = programme.scenario
    bound = budget_lower_bound(programme.partners, scenario, default_prices(scenario))
    assert 0.5 * ambition < bound <= ambition + 1e-9
    easier = family_programme(2, 1000, ambition - 0.2, groups=False).scenario
    assert sum(t["target"] for t in easier["tiers"]) < sum(t["target"] for t in scenario["tiers"])


def test_a_coarse_member_fits_the_brute_force() -> None:
    request, _ = family_request(7, 6, 0.9, resources=3)
    assert len(request.partners) == 6
    assert not any(isinstance(rule, GroupCount) for rule in request.constraints)
    for resource in request.resources:
        assert resource.step is not None and resource.budget is not None
        assert resource.budget % resource.step == 0
        for partner in request.partners:
            bounds = partner.bounds.get(resource.name)
            if resource.name in partner.curves:
                assert bounds is not None and bounds.max is not None
                assert bounds.max <= 2 * resource.step
    gmv = np.array([p.baseline_gmv for p in request.partners])
    assert np.sum(gmv < 1e9) >= 4  # most partners still have a tier to reach


def test_the_cli_writes_a_csv_and_scenario(tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path))
    assert main(["--seed", "1", "--size", "60", "--ambition", "0.7", "--out", str(out)]) == 0
    scenario = json.loads((out / "family-s1-n60-a0.7-r3.scenario.json").read_text())
    assert {t["name"] for t in scenario["tiers"]} == {"1B", "100M"}
    assert all(math.isfinite(r["budget"]) for r in scenario["resources"])
    assert (out / "family-s1-n60-a0.7-r3.csv").read_text().startswith("partner_id,")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="ambition"):
        family_programme(1, 100, 1.5)
    with pytest.raises(ValueError, match="resources"):
        family_programme(1, 100, 0.9, resources=5)
