"""Running jobs (`service.execution`) over in-memory fakes: the one claim-and-run path,
cancellation, progress, comparisons resumed and fanned out. Solves are real (small
requests) unless a test needs to steer one."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from models.check import check_plan
from models.plan import Plan
from models.request import AllocationRequest
from models.schemas import plan_from_dict
from optimizer.progress import ProgressEvent
from service import comparisons, execution, jobs, solving
from service.errors import Conflict
from service.execution import JobSettings
from service.records import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, utcnow
from tests.integration.api_support import small_request
from tests.support.fakes import FakeQueue, FakeStore
from tests.support.programmes import generated_request

FAST = JobSettings(heartbeat_s=0.05, stale_after_s=1.0, max_attempts=3)
SCENARIOS = [
    {"name": "more", "changes": {"budgets": {"subsidy": "x1.5"}}},
    {"name": "fewer", "changes": {"targets": {"1B": 1}}},
]


def _allocation(store: FakeStore, **kwargs: Any) -> str:
    request = solving.parse_allocation(small_request(partners=4, **kwargs))
    return jobs.submit_allocation(store, FakeQueue(), request).id


def _comparison(store: FakeStore) -> str:
    body = {"base": small_request(partners=4), "scenarios": SCENARIOS}
    return jobs.submit_comparison(store, FakeQueue(), body).id


def test_run_job_solves_an_allocation_and_stores_ranked_plans() -> None:
    store = FakeStore()
    job_id = _allocation(store, plans=2)
    assert execution.run_job(store, job_id, FAST)
    job = store.get_job(job_id)
    assert job is not None and job.status == SUCCEEDED and job.attempts == 1
    plans = [plan_from_dict(plan) for plan in store.plans(job_id)]
    assert [plan.rank for plan in plans] == list(range(1, len(plans) + 1))
    assert not execution.run_job(store, job_id, FAST)  # finished: nothing to claim


def test_a_job_cancelled_as_its_solve_ends_keeps_the_plans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    job_id = _allocation(store)
    real = solving.solve_request

    def cancelled_meanwhile(request: AllocationRequest, **kwargs: Any) -> list[Plan]:
        plans = real(request)
        store.cancel_job(job_id)  # the DELETE arrives as the solver finishes
        return plans

    monkeypatch.setattr(solving, "solve_request", cancelled_meanwhile)
    assert execution.run_job(store, job_id, FAST)
    assert store.job_status(job_id) == CANCELLED
    view = jobs.get_allocation(store, job_id)
    assert [plan["rank"] for plan in view["plans"]] == [1]
    assert view["plans"][0]["solver"]["status"] == "optimal"  # it had finished: says so


def test_a_job_taken_over_mid_solve_stores_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeStore()
    job_id = _allocation(store)
    real = solving.solve_request

    def taken_over(request: AllocationRequest, **kwargs: Any) -> list[Plan]:
        plans = real(request)
        store.jobs[job_id] = replace(store.jobs[job_id], worker="another-worker")
        store.cancel_job(job_id)  # cancelled while the other worker holds it
        return plans

    monkeypatch.setattr(solving, "solve_request", taken_over)
    assert execution.run_job(store, job_id, FAST)
    assert store.job_status(job_id) == CANCELLED and store.plans(job_id) == []
    with pytest.raises(Conflict):
        jobs.plan_csv(store, job_id, 1)


def test_a_job_cancelled_before_its_solve_starts_searches_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    job_id = _allocation(store)
    assert store.claim_job(job_id, "w")
    store.cancel_job(job_id)
    solved: list[AllocationRequest] = []
    monkeypatch.setattr(solving, "solve_request", lambda request, **_: solved.append(request))
    execution.execute_claimed(store, job_id, "w", FAST)
    assert solved == [] and store.plans(job_id) == []


def test_cancelling_a_running_solve_keeps_its_best_plan_so_far(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real engine is stopped by the DELETE once it has a plan and a bound: the job
    stays cancelled and keeps that plan, marked interrupted, with its gap, downloadable."""
    store = FakeStore()
    # A gap the decomposition cannot certify, so only the cancel stops it early.
    request = generated_request(300, 5, time_limit_s=60.0, engine="decomposition", mip_gap=0.0)
    job_id = jobs.submit_allocation(store, FakeQueue(), request).id
    real = solving.solve_request
    events: list[ProgressEvent] = []
    ended: list[float] = []

    def cancel_on_first_plan(request: AllocationRequest, *, progress: Any, **kwargs: Any) -> Any:
        def watch(event: ProgressEvent | str) -> None:
            if isinstance(event, ProgressEvent) and event.best_objective is not None:
                events.append(event)
                store.cancel_job(job_id)  # the DELETE arrives mid-solve
            progress(event)

        started = time.perf_counter()
        plans = real(request, progress=watch, **kwargs)
        ended.append(time.perf_counter() - started)
        return plans

    monkeypatch.setattr(solving, "solve_request", cancel_on_first_plan)
    assert execution.run_job(store, job_id, FAST)
    assert events, "the engine reported a plan with its figures while running"
    first = events[0]
    assert first.best_bound is not None and first.gap is not None and first.elapsed_s is not None
    assert ended[0] < 20.0, "the cancel stopped the solve long before its 60 s limit"
    assert store.job_status(job_id) == CANCELLED
    view = jobs.get_allocation(store, job_id)
    assert view["status"] == CANCELLED and len(view["plans"]) == 1
    solver = view["plans"][0]["solver"]
    assert solver["status"] == "interrupted"
    assert solver["mip_gap"] is not None and solver["mip_gap"] > 0
    assert solver["best_bound"] is not None
    plan = plan_from_dict(view["plans"][0])
    assert check_plan(request, plan) == []
    seen = first.best_objective
    assert seen is not None and plan.objective.total_projected_gmv >= seen * (1 - 1e-6)
    text = jobs.plan_csv(store, job_id, 1)
    funded = sum(1 for a in plan.allocations if any(a.amounts.values()))
    assert text.startswith("partner_id,") and len(text.splitlines()) > funded > 0


def test_progress_stores_the_event_fields_and_accepts_plain_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    job_id = _allocation(store)
    seen: list[dict[str, Any] | None] = []

    def reporting(request: AllocationRequest, *, progress: Any, **_: Any) -> list[Plan]:
        progress(ProgressEvent("stage 1", stage="shortfall", gap=0.25, elapsed_s=1.5))
        seen.append(store.jobs[job_id].progress)
        progress("a plain message")
        seen.append(store.jobs[job_id].progress)
        return []

    monkeypatch.setattr(execution, "_PROGRESS_EVERY_S", 0.0)  # keep every event
    monkeypatch.setattr(solving, "solve_request", reporting)
    execution.run_job(store, job_id, FAST)
    first, second = seen
    assert first is not None and second is not None
    assert first["message"] == "stage 1" and first["stage"] == "shortfall"
    assert first["gap"] == 0.25 and "at" in first and "best_bound" not in first
    assert second["message"] == "a plain message" and set(second) == {"message", "at"}


def test_a_failing_solve_fails_the_job_with_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeStore()
    job_id = _allocation(store)

    def broken(*_args: Any, **_kwargs: Any) -> list[Plan]:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(solving, "solve_request", broken)
    assert execution.run_job(store, job_id, FAST)
    job = store.get_job(job_id)
    assert job is not None and job.status == FAILED
    assert job.error == "RuntimeError: engine exploded"


def test_a_stale_running_job_is_taken_over_only_when_asked() -> None:
    store = FakeStore()
    job_id = _allocation(store)
    assert store.claim_job(job_id, "dead-worker")
    assert not execution.run_job(store, job_id, FAST, take_over_stale=False)
    assert not execution.run_job(store, job_id, FAST)  # its heartbeat is still fresh
    old = utcnow().replace(year=2000)
    store.jobs[job_id] = replace(store.jobs[job_id], heartbeat_at=old)  # it died long ago
    assert execution.run_job(store, job_id, FAST)
    job = store.get_job(job_id)
    assert job is not None and job.status == SUCCEEDED and job.attempts == 2


def test_a_comparison_runs_through_the_one_scenario_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    job_id = _comparison(store)
    solved: list[str] = []
    real = comparisons.solve_scenario

    def counting(item: comparisons.PreparedScenario, **kwargs: Any) -> Any:
        solved.append(item.name)
        return real(item, **kwargs)

    monkeypatch.setattr(comparisons, "solve_scenario", counting)
    assert execution.run_job(store, job_id, FAST)
    assert solved == ["base", "more", "fewer"]
    summary = store.comparisons[job_id]["rows"]
    assert [row["name"] for row in summary["scenarios"]] == ["base", "more", "fewer"]
    assert all(row["status"] == SUCCEEDED for row in summary["scenarios"])
    assert [entry["scenario"] for entry in summary["differences"]] == ["more", "fewer"]


def test_a_resumed_comparison_solves_only_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FakeStore()
    job_id = _comparison(store)
    store.claim_job(job_id, "first")
    execution.run_scenario(store, job_id, 1, FAST)  # "more" was done before a crash
    store.jobs[job_id] = replace(store.jobs[job_id], status=QUEUED, worker=None)  # requeued
    solved: list[str] = []
    real = comparisons.solve_scenario

    def counting(item: comparisons.PreparedScenario, **kwargs: Any) -> Any:
        solved.append(item.name)
        return real(item, **kwargs)

    monkeypatch.setattr(comparisons, "solve_scenario", counting)
    assert execution.run_job(store, job_id, FAST)
    assert solved == ["base", "fewer"] and store.job_status(job_id) == SUCCEEDED


def test_fanned_out_scenarios_then_finish_complete_a_comparison() -> None:
    store = FakeStore()
    job_id = _comparison(store)
    fanned: list[str] = []
    assert execution.run_job(store, job_id, FAST, fan_out=fanned.append)
    assert fanned == [job_id] and store.job_status(job_id) == RUNNING
    for idx in (2, 0, 1):  # order does not matter
        execution.run_scenario(store, job_id, idx, FAST)
    assert execution.finish_comparison(store, job_id, None)
    assert store.job_status(job_id) == SUCCEEDED


def test_a_cancelled_comparison_stores_no_more_scenarios() -> None:
    store = FakeStore()
    job_id = _comparison(store)
    execution.run_job(store, job_id, FAST, fan_out=lambda _job_id: None)
    execution.run_scenario(store, job_id, 0, FAST)
    store.cancel_job(job_id)
    execution.run_scenario(store, job_id, 1, FAST)
    assert not execution.finish_comparison(store, job_id, None)
    assert [r.status for r in store.scenario_results(job_id)] == [SUCCEEDED, QUEUED, QUEUED]
