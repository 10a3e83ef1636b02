"""Comparison jobs over in-memory fakes: a base given by `allocation_id` is that job's
stored plan (a spy solver proves no base solve), scenarios solve in parallel and come back
in scenario order, and every scenario's plans and differences download as CSV."""

from __future__ import annotations

import csv
import io
import threading
import time
from typing import Any

import pytest

from models.plan import Plan
from models.request import AllocationRequest
from models.schemas import plan_from_dict
from service import comparison_downloads, execution, jobs, solving
from service.comparisons import (
    PreparedScenario,
    prepare_scenarios,
    scenario_kpis,
    solve_scenarios,
)
from service.errors import Conflict, NotFound
from service.execution import JobSettings
from tests.integration.api_support import small_request
from tests.support.fakes import FakeQueue, FakeStore

FAST = JobSettings(heartbeat_s=0.05, stale_after_s=1.0, max_attempts=3)
SCENARIOS = [
    {"name": "more", "changes": {"budgets": {"subsidy": "x1.5"}}},
    {"name": "less", "changes": {"budgets": {"subsidy": "x0.5"}}},
]


def _solved_allocation(store: FakeStore) -> str:
    request = solving.parse_allocation(small_request(partners=6, budget=2e8))
    job_id = jobs.submit_allocation(store, FakeQueue(), request).id
    assert execution.run_job(store, job_id, FAST)
    return job_id


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[AllocationRequest]:
    seen: list[AllocationRequest] = []
    real = solving.solve_request

    def spy(request: AllocationRequest, **kwargs: Any) -> list[Plan]:
        seen.append(request)
        return real(request, **kwargs)

    monkeypatch.setattr(solving, "solve_request", spy)
    return seen


def _on_allocation(store: FakeStore, base_id: str, settings: JobSettings = FAST) -> str:
    body = {"base": {"allocation_id": base_id}, "scenarios": SCENARIOS}
    job_id = jobs.submit_comparison(store, FakeQueue(), body).id
    assert execution.run_job(store, job_id, settings)
    return job_id


def test_a_base_by_allocation_id_is_the_stored_plan_never_a_solve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    base_id = _solved_allocation(store)
    seen = _spy(monkeypatch)
    job_id = _on_allocation(store, base_id)
    view = jobs.get_comparison(store, job_id)
    assert view["status"] == "succeeded", view["error"]
    budgets = sorted(request.resource("subsidy").budget or 0 for request in seen)
    assert budgets == [1e8, 3e8]  # the two scenarios; the 2e8 base was not solved
    stored = store.plans(base_id)[0]
    base_row = view["scenarios"][0]
    assert base_row["name"] == "base"
    assert base_row["kpis"] == scenario_kpis(plan_from_dict(stored))
    assert base_row["plan"] == stored
    assert store.plans(job_id, 0) == store.plans(base_id)


def test_a_base_allocation_without_plans_fails_that_row_without_a_solve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    base_id = _solved_allocation(store)
    store.results.pop((base_id, 0))  # the plans are gone (never in practice)
    seen = _spy(monkeypatch)
    view = jobs.get_comparison(store, _on_allocation(store, base_id))
    assert len(seen) == 2
    base_row = view["scenarios"][0]
    assert base_row["status"] == "failed" and "no stored plans" in base_row["error"]


def _gated_solve(order: list[float]) -> Any:
    """A solve that finishes the scenarios (by subsidy budget) in `order`: each waits for
    the one before it to finish, which only works when they run at the same time."""
    done = {budget: threading.Event() for budget in order}
    real = solving.solve_request  # before a test patches it with this

    def solve(request: AllocationRequest, **kwargs: Any) -> list[Plan]:
        budget = request.resource("subsidy").budget or 0.0
        position = order.index(budget)
        if position > 0 and not done[order[position - 1]].wait(30):
            raise AssertionError(f"budget {budget:g} waited in vain: scenarios ran one by one")
        plans = real(request, explain=False)
        done[budget].set()
        return plans

    return solve


def test_scenarios_solve_at_once_and_come_back_in_scenario_order() -> None:
    base = solving.parse_allocation(small_request(partners=4, budget=2e8))
    prepared = prepare_scenarios(base, SCENARIOS)
    finished: list[str] = []
    outcomes = solve_scenarios(
        prepared,
        solve=_gated_solve([1e8, 3e8, 2e8]),  # less, more, base: the reverse order
        workers=3,
        on_outcome=lambda idx, outcome: finished.append(outcome.name),
    )
    assert finished == ["less", "more", "base"]
    assert [o.name for o in outcomes] == ["base", "more", "less"]
    assert all(o.plans and o.error is None for o in outcomes)


def test_workers_bound_how_many_scenarios_run_at_once() -> None:
    base = solving.parse_allocation(small_request(partners=4, budget=2e8))
    prepared = prepare_scenarios(base, [*SCENARIOS, {"name": "same", "changes": {}}])
    running, peak = 0, 0
    lock = threading.Lock()

    def solve(request: AllocationRequest, **kwargs: Any) -> list[Plan]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        return solving.solve_request(request, explain=False)

    outcomes = solve_scenarios(prepared, solve=solve, workers=2)
    assert peak == 2 and all(o.plans for o in outcomes)


def test_the_in_process_worker_solves_a_comparisons_scenarios_in_parallel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    base_id = _solved_allocation(store)
    monkeypatch.setattr(solving, "solve_request", _gated_solve([1e8, 3e8]))  # less first
    parallel = JobSettings(heartbeat_s=0.05, stale_after_s=1.0, scenario_workers=2)
    view = jobs.get_comparison(store, _on_allocation(store, base_id, parallel))
    assert [row["name"] for row in view["scenarios"]] == ["base", "more", "less"]
    assert all(row["status"] == "succeeded" for row in view["scenarios"]), view["scenarios"]
    assert (
        JobSettings.from_config(
            {"HEARTBEAT_S": 1, "STALE_AFTER_S": 2, "MAX_ATTEMPTS": 3, "JOB_WORKERS": 3}
        ).scenario_workers
        == 3
    )


def test_reused_plans_skip_the_solver_entirely() -> None:
    base = solving.parse_allocation(small_request(partners=4))
    (plan,) = solving.solve_request(base, explain=False)

    def refuse(request: AllocationRequest, **kwargs: Any) -> list[Plan]:
        raise AssertionError("solved a scenario whose plans were given")

    (outcome,) = solve_scenarios([PreparedScenario("base", base, plans=(plan,))], solve=refuse)
    assert outcome.plans == [plan] and outcome.error is None


def test_every_scenarios_plans_download_as_the_plan_csv() -> None:
    store = FakeStore()
    base_id = _solved_allocation(store)
    job_id = _on_allocation(store, base_id)
    base_csv = comparison_downloads.scenario_plan_csv(store, job_id, "base", 1)
    assert base_csv == jobs.plan_csv(store, base_id, 1)  # the same writer, the same plan
    more = list(csv.DictReader(io.StringIO(comparison_downloads.scenario_plan_csv(
        store, job_id, "more", 1
    ))))  # fmt: skip
    assert sum(float(row["subsidy"]) for row in more) <= 3e8 * (1 + 1e-9)
    with pytest.raises(NotFound, match="'nope'") as unknown:
        comparison_downloads.scenario_plan_csv(store, job_id, "nope", 1)
    assert "base" in str(unknown.value) and unknown.value.errors == {
        "name": ["unknown scenario 'nope'"]
    }
    with pytest.raises(NotFound, match="rank 7 in scenario 'more'") as rank:
        comparison_downloads.scenario_plan_csv(store, job_id, "more", 7)
    assert "rank" in rank.value.errors


def test_the_diff_csv_holds_every_changed_partner_with_amounts_before_and_after() -> None:
    store = FakeStore()
    base_id = _solved_allocation(store)
    job_id = _on_allocation(store, base_id)
    summary = store.comparisons[job_id]["rows"]
    rows = list(csv.DictReader(io.StringIO(comparison_downloads.differences_csv(store, job_id))))
    expected = sum(entry["partners_changed"] for entry in summary["differences"])
    assert len(rows) == expected > 0
    assert set(rows[0]) >= {"scenario", "partner_id", "tier_before", "tier_after"}
    plans = {row["name"]: row["plan"] for row in summary["scenarios"]}
    for row in rows:
        for name, column in (("base", "subsidy_before"), (row["scenario"], "subsidy_after")):
            amounts = {a["partner_id"]: a["amounts"] for a in plans[name]["allocations"]}
            assert float(row[column]) == amounts.get(row["partner_id"], {}).get("subsidy", 0.0)
        delta = float(row["subsidy_after"]) - float(row["subsidy_before"])
        assert float(row["subsidy_delta"]) == pytest.approx(delta)


def test_downloads_wait_for_the_comparison() -> None:
    store = FakeStore()
    base_id = _solved_allocation(store)
    body = {"base": {"allocation_id": base_id}, "scenarios": SCENARIOS}
    job_id = jobs.submit_comparison(store, FakeQueue(), body).id
    with pytest.raises(Conflict, match="queued"):
        comparison_downloads.differences_csv(store, job_id)
    with pytest.raises(Conflict, match="'more' is queued"):
        comparison_downloads.scenario_plan_csv(store, job_id, "more", 1)


def test_get_comparison_pages_the_differences() -> None:
    store = FakeStore()
    base_id = _solved_allocation(store)
    job_id = _on_allocation(store, base_id)
    whole = jobs.get_comparison(store, job_id)
    assert "diff_page" not in whole  # no page size: everything
    longest = max(len(entry["partners"]) for entry in whole["differences"])
    assert longest >= 2
    first = jobs.get_comparison(store, job_id, diff_page=1, diff_page_size=1)
    assert first["diff_page"] == {"page": 1, "page_size": 1, "pages": longest}
    assert all(len(entry["partners"]) <= 1 for entry in first["differences"])
    counts = [entry["partners_changed"] for entry in first["differences"]]
    assert counts == [entry["partners_changed"] for entry in whole["differences"]]
    pages = [
        jobs.get_comparison(store, job_id, diff_page=page, diff_page_size=1)["differences"]
        for page in range(1, longest + 1)
    ]
    for idx, entry in enumerate(whole["differences"]):
        collected = [row for page in pages for row in page[idx]["partners"]]
        assert collected == entry["partners"]
    with pytest.raises(NotFound) as past:
        jobs.get_comparison(store, job_id, diff_page=longest + 1, diff_page_size=1)
    assert "diff_page" in past.value.errors


def test_the_diff_csv_shows_formula_like_text_as_text() -> None:
    plan = {"resources": [{"name": "subsidy"}], "allocations": []}
    summary = {
        "scenarios": [{"name": "base", "plan": plan}, {"name": "@more", "plan": plan}],
        "differences": [
            {
                "scenario": "@more",
                "partners": [
                    {
                        "partner_id": '=HYPERLINK("http://x","y")',
                        "tier_change": "gained",
                        "base_tier": None,
                        "scenario_tier": "100M",
                        "base_projected_gmv": 1.0,
                        "scenario_projected_gmv": 2.5,
                        "projected_gmv_delta": 1.5,
                    }
                ],
            }
        ],
    }
    text = comparison_downloads.differences_csv_text(summary)
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["scenario"] == "'@more"
    assert row["partner_id"] == '\'=HYPERLINK("http://x","y")'
    assert row["projected_gmv_delta"] == "1.5" and row["subsidy_delta"] == "0"


def _warm_spy(monkeypatch: pytest.MonkeyPatch) -> dict[float, Any]:
    """Each solve's warm start, by the scenario's subsidy budget."""
    starts: dict[float, Any] = {}
    real = solving.solve_request

    def spy(request: AllocationRequest, **kwargs: Any) -> list[Plan]:
        starts[request.resource("subsidy").budget or 0.0] = kwargs.get("warm_start")
        return real(request, **kwargs)

    monkeypatch.setattr(solving, "solve_request", spy)
    return starts


def test_scenarios_on_a_stored_allocation_start_from_its_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    base_id = _solved_allocation(store)
    stored = plan_from_dict(store.plans(base_id)[0])
    starts = _warm_spy(monkeypatch)
    view = jobs.get_comparison(store, _on_allocation(store, base_id))
    assert view["status"] == "succeeded", view["error"]
    assert set(starts) == {1e8, 3e8}
    for start in starts.values():
        assert start is not None
        assert start.amounts == {a.partner_id: a.amounts for a in stored.allocations}


def test_a_fan_out_task_starts_from_the_stored_base_once_it_is_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    base_id = _solved_allocation(store)
    body = {"base": {"allocation_id": base_id}, "scenarios": SCENARIOS}
    job_id = jobs.submit_comparison(store, FakeQueue(), body).id
    assert store.claim_job(job_id, "w")  # running, as a Celery worker leaves it
    starts = _warm_spy(monkeypatch)
    execution.run_scenario(store, job_id, 2, FAST)  # "less": one task of the fan-out
    assert starts[1e8] is not None
