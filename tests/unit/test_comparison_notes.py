"""A comparison row's `caveat` (not optimal) and `reason` (a change against the direction
of the scenario's changes), on plans built with the exact `build_plan` so every figure
the text quotes is known."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.curves import Curve, CurveKind
from models.figures import percent
from models.plan import Plan, SolverReport, SolveStatus, build_plan
from models.request import (
    AllocationRequest,
    Objective,
    Partner,
    Resource,
    Tier,
    UncertaintyOptions,
)
from models.scenario import apply_changes
from service.comparison_notes import caveat, reason, scenario_notes
from service.comparisons import run_comparison

LINEAR = Curve(CurveKind.LINEAR, roi=1.0)
OPTIMAL = SolverReport("test", SolveStatus.OPTIMAL, 0.0)


def _request(
    baselines: dict[str, float], tiers: tuple[Tier, ...], budget: float
) -> AllocationRequest:
    return AllocationRequest(
        name="notes",
        resources=(Resource("subsidy", budget=budget),),
        tiers=tiers,
        partners=tuple(
            Partner(id=pid, baseline_gmv=gmv, curves={"subsidy": LINEAR})
            for pid, gmv in baselines.items()
        ),
    )


def _plan(request: AllocationRequest, amounts: list[float], solver: SolverReport = OPTIMAL) -> Plan:
    return build_plan(request, np.array(amounts, dtype=float).reshape(-1, 1), solver)


FOUR = {"p1": 9.3e7, "p2": 8.5e7, "p3": 5e7, "p4": 2e7}
ONE_TIER = (Tier("t100m", min_gmv=1e8, target=3),)


def test_caveat_names_the_status_and_gap_only_when_not_optimal() -> None:
    request = _request(FOUR, ONE_TIER, 4e7)
    assert caveat(_plan(request, [0, 0, 0, 0])) is None
    stopped = _plan(request, [0, 0, 0, 0], SolverReport("t", SolveStatus.TIME_LIMIT, 0.102))
    assert caveat(stopped) == (
        "stopped at the time limit with a 10.2% gap: figures may improve with more time"
    )
    feasible = _plan(request, [0, 0, 0, 0], SolverReport("t", SolveStatus.FEASIBLE, None))
    assert "not proven optimal (no proven gap)" in (caveat(feasible) or "")
    infeasible = _plan(request, [0, 0, 0, 0], SolverReport("t", SolveStatus.INFEASIBLE))
    assert (caveat(infeasible) or "").startswith("infeasible")


def test_a_plan_at_a_confidence_claims_no_gap_and_says_why() -> None:
    # Its solves certified a scaled request with raised targets: the caveat must not read
    # as a plan whose engine stopped early, nor call the targets proven out of reach.
    request = _request(FOUR, ONE_TIER, 4e7)
    spread = UncertaintyOptions(default_sigma=0.2)
    options = replace(request.options, confidence=0.9, uncertainty=spread)
    request = replace(request, options=options)
    short = _plan(
        request, [0, 0, 0, 0], SolverReport("t", SolveStatus.FEASIBLE, shortfall_proven=False)
    )
    assert caveat(short, request) == (
        "planned at 90.0% confidence, where no gap or bound is proven; its weighted "
        f"shortfall of {short.objective.weighted_shortfall:g} is not proven least"
    )
    assert caveat(short) is not None and "confidence" not in (caveat(short) or "")


def test_gmv_up_with_a_smaller_budget_is_explained_by_the_objective_order() -> None:
    base = _request(FOUR, ONE_TIER, 4e7)
    cut = apply_changes(base, {"budgets": {"subsidy": 3e7}})
    lifts_p1 = _plan(base, [7e6, 0, 0, 0])  # p1 over 1e8: shortfall 2, GMV +7e6
    spends_on_p3 = _plan(cut, [0, 0, 2e7, 0])  # nobody over: shortfall 3, GMV +2e7
    text = reason(base, lifts_p1, cut, spends_on_p3)
    assert text == (
        "projected GMV rose although the subsidy budget fell: the plan meets fewer targets "
        "(weighted shortfall 2 → 3); max_attainment ranks targets before GMV, and budget no "
        "longer spent lifting partners over tier thresholds buys more GMV elsewhere"
    )


def test_gmv_up_with_a_budget_the_base_left_unused() -> None:
    base = _request(FOUR, ONE_TIER, 4e7)
    cut = apply_changes(base, {"budgets": {"subsidy": 3e7}})
    text = reason(base, _plan(base, [0, 1e7, 0, 0]), cut, _plan(cut, [0, 0, 2e7, 0]))
    assert text is not None
    assert text.endswith("subsidy did not bind in the base (¥10M spent), so the cut did not "
                         "constrain the plan")  # fmt: skip


def test_a_gap_or_a_new_objective_is_named_before_anything_else() -> None:
    base = _request(FOUR, ONE_TIER, 4e7)
    cut = apply_changes(base, {"budgets": {"subsidy": 3e7}})
    stopped = SolverReport("t", SolveStatus.TIME_LIMIT, 0.1)
    text = reason(base, _plan(base, [7e6, 0, 0, 0], stopped), cut, _plan(cut, [0, 0, 2e7, 0]))
    assert (
        text is not None and "the base plan is not proven optimal (time_limit, a 10.0% gap)" in text
    )
    gmv = replace(cut, objective=Objective.MAX_GMV)
    text = reason(base, _plan(base, [7e6, 0, 0, 0]), gmv, _plan(gmv, [0, 0, 2e7, 0]))
    assert text is not None and "objective changed from max_attainment to max_gmv" in text


def test_a_count_down_although_targets_rose_names_the_trade_between_tiers() -> None:
    tiers = (Tier("top", min_gmv=1e8, target=1), Tier("low", min_gmv=9e7, target=2))
    base = _request({"a": 9.5e7, "b": 8.5e7, "c": 8.5e7}, tiers, 1e7)
    raised = apply_changes(base, {"targets": {"low": 3}})
    before = _plan(base, [5e6, 0, 0])  # a reaches top: top 1, low 1
    after = _plan(raised, [0, 5e6, 5e6])  # b and c reach low: top 0, low 3
    assert reason(base, before, raised, after) == (
        "top achieved fell although targets rose: the plan trades one tier for another "
        "(low 1 → 3, top 1 → 0), for a weighted shortfall of 1 against the new targets"
    )


def test_what_the_data_cannot_explain_is_said_plainly() -> None:
    base = _request(FOUR, ONE_TIER, 4e7)
    raised = apply_changes(base, {"targets": {"t100m": 4}})
    text = reason(base, _plan(base, [7e6, 1.5e7, 0, 0]), raised, _plan(raised, [7e6, 0, 0, 0]))
    assert text == "t100m achieved fell although targets rose: the plans' data does not explain it"


def test_expected_changes_get_no_reason_and_rows_carry_both_fields() -> None:
    base = _request(FOUR, ONE_TIER, 4e7)
    more = apply_changes(base, {"budgets": {"subsidy": 8e7}})
    assert reason(base, _plan(base, [1e7] * 4), more, _plan(more, [2e7] * 4)) is None
    assert scenario_notes(None, base, None) == {"caveat": None, "reason": None}

    def even(request: AllocationRequest, **_: object) -> list[Plan]:
        share = (request.resource("subsidy").budget or 0.0) / len(request.partners)
        return [_plan(request, [share] * len(request.partners))]

    result = run_comparison(
        base, [{"name": "double", "changes": {"budgets": {"subsidy": "x2"}}}], solve=even
    )
    assert [(row["caveat"], row["reason"]) for row in result["scenarios"]] == [(None, None)] * 2


def test_changes_pointing_both_ways_are_no_surprise() -> None:
    base = _request(FOUR, ONE_TIER, 4e7)
    plan = _plan(base, [0, 1e7, 0, 0])
    richer = apply_changes(base, {"budgets": {"subsidy": 3e7}, "forecast": {"baseline": 1.1}})
    assert reason(base, plan, richer, _plan(richer, [0, 1e7, 0, 0])) is None
    # A lower forecast with a higher GMV is a surprise of its own.
    poorer = apply_changes(base, {"forecast": {"baseline": 0.999}})
    text = reason(base, plan, poorer, _plan(poorer, [0, 0, 3e7, 0]))
    assert text is not None and text.startswith("projected GMV rose although the forecast fell")
    # Fewer partners and higher targets: a count falling is no surprise.
    raised = apply_changes(base, {"targets": {"t100m": 4}, "exclude_partners": ["p1"]})
    lifted = _plan(base, [7e6, 0, 0, 0])
    assert reason(base, lifted, raised, _plan(raised, [0, 0, 0])) is None


def test_a_cut_below_what_the_base_spent_is_not_called_unconstraining() -> None:
    base = _request(FOUR, ONE_TIER, 4e7)
    cut = apply_changes(base, {"budgets": {"subsidy": 5e6}})
    text = reason(base, _plan(base, [0, 1e7, 0, 0]), cut, _plan(cut, [0, 0, 5e6, 0]))
    assert text is None  # GMV fell here; and with it rising, the text would not say "did not bind"
    risen = _plan(cut, [0, 0, 5e6, 0])
    risen.objective.total_projected_gmv += 1e8  # a GMV the figures cannot explain
    text = reason(base, _plan(base, [0, 1e7, 0, 0]), cut, risen)
    assert text == (
        "projected GMV rose although the subsidy budget fell: the plans' data does not explain it"
    )


def test_a_caveat_says_why_a_plan_ended_short_of_the_requested_gap() -> None:
    request = _request(FOUR, ONE_TIER, 4e7)
    options = request.options
    short = _plan(request, [0, 0, 0, 0])  # nobody over 1e8: weighted shortfall 3

    def with_solver(**fields: object) -> Plan:
        report = SolverReport("decomposition", SolveStatus.FEASIBLE, 0.119, seconds=40.0)
        return replace(short, solver=replace(report, **fields))  # type: ignore[arg-type]

    unproven = caveat(with_solver(shortfall_proven=False, shortfall_bound=1.0), request)
    assert unproven is not None
    assert f"11.9% gap, {percent(options.mip_gap)} requested" in unproven
    assert "weighted shortfall of 3 is not proven least (at least 1 is proven unavoidable)" in (
        unproven
    )
    assert "GMV bound is loose" in unproven
    milp = caveat(with_solver(engine="cbc", shortfall_proven=False, shortfall_bound=1.0), request)
    assert milp is not None and "loose" not in milp and "not proven least" in milp
    assert f"stopped after 40 s of its {options.time_limit_s:g} s" in unproven

    close = caveat(
        with_solver(mip_gap=options.mip_gap / 2, shortfall_proven=False, shortfall_bound=2.0),
        request,
    )
    assert close is not None and "the GMV is within the requested gap" in close
    assert "not proven least (at least 2 is proven unavoidable)" in close
    assert "loose" not in close

    proven = caveat(with_solver(shortfall_proven=True, shortfall_bound=3.0), request)
    assert proven is not None and "targets are out of reach" in proven
    assert "shortfall of 3 is proven least" in proven

    met = _plan(request, [7e6, 1.5e7, 0, 0])  # p1 and p2 over 1e8, p3 short: shortfall 1
    stopped = replace(
        met,
        solver=SolverReport(
            "t", SolveStatus.TIME_LIMIT, 0.05, shortfall_proven=False, shortfall_bound=0.0
        ),
    )
    assert caveat(stopped, request) == (
        f"stopped at the time limit with a 5.0% gap, {percent(options.mip_gap)} requested: "
        "figures may improve with more time; "
        "its weighted shortfall of 1 is not proven least"
    )
    # Without its request a caveat reads as before.
    assert caveat(with_solver(shortfall_proven=False, shortfall_bound=1.0)) == (
        "valid but not proven optimal (a 11.9% gap): figures may improve with more time"
    )
