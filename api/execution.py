"""Running a job: the code every worker shares, in-process thread or Celery task.

`run_job(job_id)` claims a queued job, solves it while heartbeating, and stores the plans.
A comparison runs scenario by scenario (`solve_scenario`) and ends in `finish_comparison`;
the Celery worker calls the same two functions from a chord, one task per scenario.
Scenario results are stored as they finish, so a comparison resumed after a crash only
solves what is missing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

from api.comparisons import (
    PreparedScenario,
    ScenarioOutcome,
    prepare_scenarios,
    summarize_comparison,
)
from api.services import load_request, solve_request
from api.store import (
    ALLOCATION,
    FAILED,
    FINAL_STATUSES,
    RUNNING,
    SUCCEEDED,
    Job,
    Store,
    default_store,
    utcnow,
)
from models.plan import Plan
from models.schemas import plan_from_dict, plans_to_list
from optimizer.progress import ProgressEvent

log = logging.getLogger(__name__)

# Cancellation is noticed within this many seconds of a DELETE; reading one row this
# often costs nothing next to a solve.
_STOP_CHECK_S = 0.5
_PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class JobSettings:
    heartbeat_s: float = 5.0
    stale_after_s: float = 30.0
    max_attempts: int = 3

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> JobSettings:
        return cls(
            heartbeat_s=float(config["HEARTBEAT_S"]),
            stale_after_s=float(config["STALE_AFTER_S"]),
            max_attempts=int(config["MAX_ATTEMPTS"]),
        )

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.stale_after_s)


def default_settings() -> JobSettings:
    from api.config import load_config

    return JobSettings.from_config(load_config())


def new_worker_id() -> str:
    """Unique per claim, and says where the work ran (host and process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobContext:
    """A running job as its solver sees it: heartbeats in the background, progress
    messages, and `should_stop` once the job was cancelled or taken over."""

    def __init__(
        self, store: Store, job_id: str, worker: str | None, settings: JobSettings
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.worker = worker
        self.settings = settings
        self._stop = threading.Event()  # set: cancelled, lost or finished
        self._finished = threading.Event()
        self._last_check = 0.0
        self._last_progress = 0.0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> JobContext:
        self._thread = threading.Thread(
            target=self._heartbeat, name=f"heartbeat-{self.job_id[:8]}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finished.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _heartbeat(self) -> None:
        while not self._finished.wait(self.settings.heartbeat_s):
            try:
                if not self.store.heartbeat(self.job_id, self.worker):
                    self._stop.set()
            except Exception:  # a database hiccup must not kill the solve
                log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)

    def should_stop(self) -> bool:
        if self._stop.is_set():
            return True
        now = time.monotonic()
        if now - self._last_check >= _STOP_CHECK_S:
            self._last_check = now
            try:
                if self.store.job_status(self.job_id) != RUNNING:
                    self._stop.set()
            except Exception:
                log.warning("status check of job %s failed", self.job_id, exc_info=True)
        return self._stop.is_set()

    def progress(self, message: Any = "", *args: Any, **kwargs: Any) -> None:
        """Accepts whatever the solver reports (a message, optional fraction) and keeps
        the latest, written at most twice a second."""
        now = time.monotonic()
        if now - self._last_progress < _PROGRESS_EVERY_S:
            return
        self._last_progress = now
        entry: dict[str, Any] = {"message": str(message), "at": utcnow().isoformat()}
        if isinstance(message, ProgressEvent):  # the best plan's figures, bound, gap, time
            entry.update({k: v for k, v in message.to_dict().items() if k != "message"})
        fraction = kwargs.get("fraction", args[0] if args else None)
        if isinstance(fraction, int | float):
            entry["fraction"] = float(fraction)
        try:
            self.store.set_progress(self.job_id, self.worker, entry)
        except Exception:
            log.warning("progress of job %s not saved", self.job_id, exc_info=True)


def run_job(
    job_id: str, *, store: Store | None = None, settings: JobSettings | None = None
) -> bool:
    """Claim and run one job to its end. False when it could not be claimed (already
    taken, finished or cancelled)."""
    store = store or default_store()
    settings = settings or default_settings()
    worker = new_worker_id()
    if not store.claim_job(job_id, worker, stale_before=utcnow() - settings.stale_after):
        return False
    execute_claimed(store, job_id, worker, settings)
    return True


def execute_claimed(store: Store, job_id: str, worker: str, settings: JobSettings) -> None:
    """Run a job this worker has claimed; any failure is recorded on the job."""
    job = store.get_job(job_id)
    if job is None:
        return
    log.info("job %s (%s) started by %s", job_id, job.kind, worker)
    with JobContext(store, job_id, worker, settings) as context:
        try:
            if job.kind == ALLOCATION:
                _run_allocation(store, job, context)
            else:
                prepared = comparison_requests(store, job)
                done = {r.idx for r in store.scenario_results(job_id) if r.status in FINAL_STATUSES}
                for idx, item in enumerate(prepared):
                    if idx not in done and not context.should_stop():
                        solve_scenario(store, job_id, idx, item, context)
                if not context.should_stop():
                    finish_comparison(store, job_id, worker, prepared)
        except Exception as error:
            log.exception("job %s failed", job_id)
            store.fail_job(job_id, worker, describe_error(error))
    log.info("job %s ended: %s", job_id, store.job_status(job_id))


def _run_allocation(store: Store, job: Job, context: JobContext) -> None:
    request = load_request(store, job)
    plans = solve_request(request, progress=context.progress, should_stop=context.should_stop)
    if context.should_stop():
        return  # cancelled mid-solve: whatever came back is not a result
    store.finish_job(job.id, context.worker, plans=plans_to_list(plans))


def comparison_requests(store: Store, job: Job) -> list[PreparedScenario]:
    """The base and scenario requests of a comparison, base first, as at submission."""
    comparison = store.comparison(job.id)
    if comparison is None:
        raise RuntimeError(f"comparison {job.id} has no stored scenarios")
    return prepare_scenarios(load_request(store, job), comparison["scenarios"])


def solve_scenario(
    store: Store, job_id: str, idx: int, item: PreparedScenario, context: JobContext
) -> None:
    """Solve one scenario of a comparison and store its outcome; a failure is that
    scenario's row, not the comparison's end."""
    if item.request is None:
        store.save_scenario(job_id, idx, status=FAILED, error=item.error)
        return

    def progress(message: Any = "", *args: Any, **kwargs: Any) -> None:
        context.progress(f"[{item.name}] {message}", *args, **kwargs)

    try:
        plans = solve_request(item.request, progress=progress, should_stop=context.should_stop)
    except Exception as error:
        if context.should_stop():
            return
        log.warning("scenario %s of %s failed", item.name, job_id, exc_info=True)
        store.save_scenario(job_id, idx, status=FAILED, error=describe_error(error))
        return
    if context.should_stop():
        return
    store.save_scenario(job_id, idx, status=SUCCEEDED, plans=plans_to_list(plans))


def run_scenario(
    job_id: str, idx: int, *, store: Store | None = None, settings: JobSettings | None = None
) -> None:
    """One scenario of a running comparison (a Celery fan-out task)."""
    store = store or default_store()
    settings = settings or default_settings()
    job = store.get_job(job_id)
    if job is None or job.status != RUNNING:
        return
    done = {r.idx for r in store.scenario_results(job_id) if r.status in FINAL_STATUSES}
    if idx in done:
        return  # redelivered after it was stored
    with JobContext(store, job_id, None, settings) as context:
        try:
            item = comparison_requests(store, job)[idx]
        except Exception as error:
            store.fail_job(job_id, None, describe_error(error))
            return
        solve_scenario(store, job_id, idx, item, context)


def finish_comparison(
    store: Store,
    job_id: str,
    worker: str | None,
    prepared: list[PreparedScenario] | None = None,
) -> bool:
    """Summarise the stored scenario outcomes into the comparison's rows."""
    job = store.get_job(job_id)
    if job is None or job.status != RUNNING:
        return False
    try:
        prepared = prepared if prepared is not None else comparison_requests(store, job)
        results = store.scenario_results(job_id)
        outcomes = []
        for item, result in zip(prepared, results, strict=True):
            plans: list[Plan] | None = [plan_from_dict(p) for p in store.plans(job_id, result.idx)]
            if result.status != SUCCEEDED:
                plans = None
            error = result.error or (None if plans else "the scenario was not solved")
            outcomes.append(ScenarioOutcome(item.name, item.request, plans or None, error))
        summary = summarize_comparison(prepared[0].request or load_request(store, job), outcomes)
    except Exception as error:
        log.exception("summary of comparison %s failed", job_id)
        return store.fail_job(job_id, worker, describe_error(error))
    return store.finish_job(job_id, worker, summary=summary)


def describe_error(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
