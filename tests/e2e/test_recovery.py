"""Crash recovery: SIGKILL the embedded service mid-solve, start it again, and every job
finishes, the interrupted one included; nothing stored before the crash is lost."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from adapters.store import Store
from tests.e2e.conftest import Service, launch
from tests.e2e.plan_checks import check_plans, fixture_request, local_request
from tests.integration.api_support import small_request

# One runner thread, so the jobs behind the long one are still queued at the crash.
ONE_THREAD = {"WINDMAKER_JOB_WORKERS": "1"}


def _status(service: Service, job_id: str) -> dict[str, object]:
    return dict(
        service.call("GET", "/v1/allocations/{job_id}", path={"job_id": job_id}, expect=200).json()
    )


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_mid_solve_then_restart_completes_every_job(
    db: str, tmp_path: Path, run_id: str
) -> None:
    with ExitStack() as stack:
        service = launch(stack, db, "in-process", tmp_path, run_id, ONE_THREAD)
        done = service.submit(small_request())
        finished = service.wait("allocations", done["id"])
        long_body = fixture_request("pilot", time_limit_s=3)
        interrupted = service.submit(long_body)
        queued = [service.submit(small_request(partners=n)) for n in (4, 5)]

        deadline = time.monotonic() + 60
        while _status(service, interrupted["id"])["status"] != "running":
            assert time.monotonic() < deadline, service.logs()
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the solve
        assert _status(service, interrupted["id"])["status"] == "running"
        service.kill_server()

        service.start()  # same database: the new process must finish the work
        recovered = service.wait("allocations", interrupted["id"], timeout=120)
        assert recovered["status"] == "succeeded", recovered["error"]
        assert recovered["attempts"] == 2  # the dead process's attempt, then this one
        check_plans(local_request(long_body), recovered["plans"])
        for job in queued:
            assert service.wait("allocations", job["id"])["status"] == "succeeded"
        assert _status(service, done["id"]) == finished  # untouched by the crash


def test_graceful_stop_hands_the_running_job_back(tmp_path: Path, run_id: str) -> None:
    with ExitStack() as stack:
        service = launch(stack, "sqlite", "in-process", tmp_path, run_id, ONE_THREAD)
        body = fixture_request("pilot", time_limit_s=3)
        job = service.submit(body)
        deadline = time.monotonic() + 60
        while _status(service, job["id"])["status"] != "running":
            assert time.monotonic() < deadline, service.logs()
            time.sleep(0.05)
        service.stop()  # SIGTERM: gunicorn stops its worker, which releases the job

        store = Store(service.database_url)
        stored = store.get_job(job["id"])
        store.dispose()
        assert stored is not None and stored.status == "queued" and stored.attempts == 0

        service.start()
        finished = service.wait("allocations", job["id"], timeout=120)
        assert finished["status"] == "succeeded" and finished["attempts"] == 1
        check_plans(local_request(body), finished["plans"])
