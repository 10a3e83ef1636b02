"""The in-process runner and job execution with the real solver: plans stored and exact,
cancellation respected, a dead worker's job recovered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from adapters.queue.inprocess import JobRunner
from adapters.store import Store
from adapters.store.tables import jobs_table
from models.check import assert_plan_valid
from models.schemas import parse_request, plan_from_dict, plans_to_list, request_to_dict
from service.execution import (
    JobSettings,
    execute_claimed,
    finish_comparison,
    run_job,
    run_scenario,
)
from service.jobs import stored_request, submit_comparison
from service.records import CANCELLED, FINAL_STATUSES, QUEUED, SUCCEEDED, utcnow
from service.solving import solve_request
from tests.integration.api_support import small_request

FAST = JobSettings(heartbeat_s=0.2, stale_after_s=1.0, max_attempts=3)


@pytest.fixture
def runner(store: Store) -> Iterator[JobRunner]:
    runner = JobRunner(store, FAST, workers=2, poll_s=0.1)
    runner.start()
    yield runner
    runner.stop()


def _wait(store: Store, job_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = store.job_status(job_id)
        if status in FINAL_STATUSES:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {store.job_status(job_id)} after {timeout} s")


def _submit(store: Store, **kwargs: object) -> str:
    request = parse_request(small_request(**kwargs))  # type: ignore[arg-type]
    return store.create_job("allocation", name="t", request_body=request_to_dict(request)).id


def test_runner_solves_queued_jobs_and_stores_exact_plans(store: Store, runner: JobRunner) -> None:
    job_ids = [_submit(store, plans=2), _submit(store, partners=6)]
    runner.wake(2)
    for job_id in job_ids:
        assert _wait(store, job_id) == SUCCEEDED
    job = store.get_job(job_ids[0])
    assert job is not None and job.request_id is not None and job.error is None
    request = parse_request(store.request_body(job.request_id))
    plans = [plan_from_dict(p) for p in store.plans(job.id)]
    assert [plan.rank for plan in plans] == list(range(1, len(plans) + 1))
    for plan in plans:
        assert_plan_valid(request, plan)  # what was stored is what the checker accepts
    assert plans[0].objective.weighted_shortfall <= plans[-1].objective.weighted_shortfall


def test_a_job_cancelled_after_its_claim_stores_nothing(store: Store) -> None:
    job_id = _submit(store)
    assert store.claim_job(job_id, "w")
    store.cancel_job(job_id)
    execute_claimed(store, job_id, "w", FAST)
    assert store.job_status(job_id) == CANCELLED
    assert store.plans(job_id) == []


def test_run_job_skips_a_job_that_is_not_queued(store: Store) -> None:
    job_id = _submit(store)
    store.cancel_job(job_id)
    assert not run_job(store, job_id, FAST)
    assert store.job_status(job_id) == CANCELLED


def test_a_dead_workers_job_is_requeued_and_completed(store: Store, runner: JobRunner) -> None:
    job_id = _submit(store)
    # Simulate a process that claimed the job and was SIGKILLed: running, silent.
    assert store.claim_job(job_id, "dead-host:1:abc")
    with store.write() as conn:
        conn.execute(
            jobs_table.update()
            .where(jobs_table.c.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=5))
        )
    assert _wait(store, job_id) == SUCCEEDED
    job = store.get_job(job_id)
    assert job is not None and job.attempts == 2 and job.worker != "dead-host:1:abc"
    assert store.plans(job_id)


def test_a_failing_job_records_its_error_and_the_runner_carries_on(
    store: Store, runner: JobRunner
) -> None:
    broken = store.create_job("allocation", name="broken", request_body={"resources": "nope"})
    good = _submit(store)
    runner.wake(2)
    assert _wait(store, broken.id) == "failed"
    failed = store.get_job(broken.id)
    assert failed is not None and "RequestValidationError" in (failed.error or "")
    assert _wait(store, good) == SUCCEEDED


def test_release_hands_running_jobs_back(store: Store) -> None:
    runner = JobRunner(store, FAST, workers=1, poll_s=0.1)
    job_id = _submit(store)
    assert store.claim_job(job_id, "w")
    runner._current["w"] = job_id  # as if its thread were solving it
    runner.release()
    assert store.job_status(job_id) == QUEUED


def _comparison(store: Store) -> str:
    body = {
        "base": small_request(),
        "scenarios": [
            {"name": "more", "changes": {"budgets": {"subsidy": "x1.5"}}},
            {"name": "fewer", "changes": {"targets": {"1B": 1}}},
        ],
    }
    return submit_comparison(store, lambda job: None, body).id


def test_a_comparison_resumed_after_a_crash_keeps_finished_scenarios(store: Store) -> None:
    job_id = _comparison(store)
    assert store.claim_job(job_id, "dead")
    job = store.get_job(job_id)
    assert job is not None
    base_plans = plans_to_list(solve_request(stored_request(store, job)))
    base_plans[0]["label"] = "solved before the crash"
    assert store.save_scenario(job_id, 0, status=SUCCEEDED, plans=base_plans)
    with store.write() as conn:
        conn.execute(
            jobs_table.update()
            .where(jobs_table.c.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=5))
        )
    assert store.requeue_stale(FAST.stale_after, FAST.max_attempts) == ([job_id], [])

    assert run_job(store, job_id, FAST)
    comparison = store.comparison(job_id)
    assert store.job_status(job_id) == SUCCEEDED and comparison is not None
    rows = comparison["rows"]["scenarios"]
    assert [row["name"] for row in rows] == ["base", "more", "fewer"]
    assert rows[0]["plan"]["label"] == "solved before the crash"  # not solved again
    assert all(row["status"] == SUCCEEDED for row in rows)


def test_fan_out_functions_complete_a_comparison(store: Store) -> None:
    """What the Celery chord does, without Celery: one call per scenario, then finish."""
    job_id = _comparison(store)
    assert store.claim_job(job_id, "celery-task")
    for idx in (2, 0, 1):  # order does not matter
        run_scenario(store, job_id, idx, FAST)
    assert [r.status for r in store.scenario_results(job_id)] == [SUCCEEDED] * 3
    assert finish_comparison(store, job_id, None)
    comparison = store.comparison(job_id)
    assert comparison is not None
    differences = comparison["rows"]["differences"]
    assert [entry["scenario"] for entry in differences] == ["more", "fewer"]


def test_a_cancelled_comparison_stops_between_scenarios(store: Store) -> None:
    job_id = _comparison(store)
    assert store.claim_job(job_id, "celery-task")
    run_scenario(store, job_id, 0, FAST)
    store.cancel_job(job_id)
    run_scenario(store, job_id, 1, FAST)
    assert not finish_comparison(store, job_id, None)
    assert store.job_status(job_id) == CANCELLED
    assert [r.status for r in store.scenario_results(job_id)][1:] == [QUEUED, QUEUED]
