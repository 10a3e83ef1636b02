"""The in-process runner solving in child processes (`JOB_ISOLATION=process`, the default):
jobs solve in a pool of spawned processes on the same database, a child killed mid-solve
costs only a retry of its job, idle processes end, and stopping the runner leaves no
process behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator

import pytest

from adapters.config import load_config
from adapters.queue import inprocess, make_dispatcher
from adapters.queue.inprocess import JobRunner
from adapters.store import Store
from fixtures.families import family_request
from models.check import check_plan
from models.schemas import parse_request, plan_from_dict, request_to_dict
from service.execution import JobSettings
from service.jobs import stored_request
from service.records import FINAL_STATUSES, RUNNING, SUCCEEDED
from tests.integration.api_support import small_request

# A heartbeat every 0.2 s and a job silent for 2 s counted dead, so a killed child's job is
# re-queued quickly (and a spawned child's import time never looks like a death).
FAST = JobSettings(heartbeat_s=0.2, stale_after_s=2.0, max_attempts=3)


@pytest.fixture
def earlier() -> set[int]:
    """Child processes alive before the runner starts: another test's pool may still be
    winding down (its jobs finishing, or idle for POOL_IDLE_S), and it is not this
    runner's to end."""
    return {child.pid for child in multiprocessing.active_children() if child.pid is not None}


@pytest.fixture
def runner(store: Store, earlier: set[int]) -> Iterator[JobRunner]:
    runner = JobRunner(store, FAST, workers=2, poll_s=0.1, processes=True)
    runner.start()
    yield runner
    runner.stop()


def _wait_for(store: Store, job_id: str, statuses: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = store.job_status(job_id)
        if status in statuses:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {store.job_status(job_id)} after {timeout} s")


def _submit(store: Store, body: dict[str, object]) -> str:
    request = parse_request(body)
    return store.create_job("allocation", name="t", request_body=request_to_dict(request)).id


def _children(earlier: set[int]) -> list[multiprocessing.Process]:
    """The runner's solver processes: children started since `earlier` was taken."""
    return [child for child in multiprocessing.active_children() if child.pid not in earlier]


def test_jobs_solve_in_child_processes_and_stop_leaves_none(
    store: Store, runner: JobRunner, earlier: set[int]
) -> None:
    assert runner.health()["isolation"] == "process"
    job_ids = [_submit(store, small_request()), _submit(store, small_request(partners=6))]
    runner.wake(2)
    for job_id in job_ids:
        assert _wait_for(store, job_id, FINAL_STATUSES, timeout=90) == SUCCEEDED
        job = store.get_job(job_id)
        assert job is not None
        plans = store.plans(job_id)
        assert plans and check_plan(stored_request(store, job), plan_from_dict(plans[0])) == []
    assert _children(earlier), "the jobs ran in the runner's pool processes"
    runner.stop()
    deadline = time.monotonic() + 30
    while _children(earlier) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _children(earlier), "stopping the runner ends its solver processes"


@pytest.mark.slow
def test_a_killed_solver_process_costs_its_job_one_retry(
    store: Store, runner: JobRunner, earlier: set[int]
) -> None:
    request, _ = family_request(3, 300, 0.9, resources=2, time_limit_s=8.0)
    doomed = store.create_job("allocation", name="t", request_body=request_to_dict(request)).id
    runner.wake()
    _wait_for(store, doomed, {RUNNING}, timeout=60)
    solver_processes = _children(earlier)
    assert solver_processes
    for child in solver_processes:
        os.kill(child.pid or 0, signal.SIGKILL)

    # The runner carries on with new work, and the sweeper re-queues the killed job.
    other = _submit(store, small_request())
    runner.wake()
    assert _wait_for(store, other, FINAL_STATUSES, timeout=90) == SUCCEEDED
    assert _wait_for(store, doomed, FINAL_STATUSES, timeout=120) == SUCCEEDED
    job = store.get_job(doomed)
    assert job is not None and job.attempts >= 2
    assert check_plan(request, plan_from_dict(store.plans(doomed)[0])) == []


def test_job_isolation_is_configured_and_checked(store: Store) -> None:
    config = load_config({"DATABASE_URL": "sqlite:///unused.db", "JOB_ISOLATION": "thread"})
    assert make_dispatcher(config, store).health()["isolation"] == "thread"
    assert load_config({})["JOB_ISOLATION"] == "process"
    assert load_config({"JOB_ISOLATION": "thread"})["JOB_ISOLATION"] == "thread"
    with pytest.raises(ValueError, match="JOB_ISOLATION"):
        load_config({"JOB_ISOLATION": "fork"})


def test_idle_solver_processes_end_and_come_back_for_the_next_job(
    store: Store, runner: JobRunner, earlier: set[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inprocess, "POOL_IDLE_S", 0.5)
    first = _submit(store, small_request())
    runner.wake()
    assert _wait_for(store, first, FINAL_STATUSES, timeout=90) == SUCCEEDED
    deadline = time.monotonic() + 30
    while _children(earlier) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _children(earlier), "idle solver processes are ended while the runner runs on"
    second = _submit(store, small_request(partners=6))
    runner.wake()
    assert _wait_for(store, second, FINAL_STATUSES, timeout=90) == SUCCEEDED
