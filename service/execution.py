"""Running a job: the one path every worker takes, in-process thread or Celery task.

`run_job` claims a job (one atomic UPDATE in the store, so two workers never both win)
and runs it while heartbeating: an allocation is solved and its plans stored; a
comparison runs `service.comparisons.solve_scenarios` and ends in `finish_comparison`; a
frontier (`service.frontiers`) solves its budget points in a thread pool the same way.
A Celery worker may instead fan a claimed comparison or frontier out, one `run_scenario`
task per scenario or point, whose chord callback is `finish_comparison`. Scenario results
are stored as they finish, so a comparison resumed after a crash only solves what is
missing. In-process, a comparison solves up to `JobSettings.scenario_workers` scenarios
at once. A comparison whose base is an `allocation_id` takes that job's stored plans as
its base row (`comparison_scenarios`), on every path, also after a restart.

Cancelling is a status change in the store; the running job notices through
`JobContext.should_stop` (read at most every half second) and stops. An allocation keeps
the best plan its engine had found by then (status `interrupted`, with its gap); a
comparison or frontier stores nothing more.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

from models.plan import Plan, SolveStatus
from models.schemas import plan_from_dict, plans_to_list
from optimizer.progress import ProgressEvent
from optimizer.solve import NO_PLAN_LABEL
from service import comparisons, frontiers, solving
from service.comparisons import PreparedScenario, ScenarioOutcome, error_text
from service.jobs import stored_request
from service.ports import JobStore
from service.progress import as_event
from service.records import (
    ALLOCATION,
    COMPARISON,
    FAILED,
    FINAL_STATUSES,
    FRONTIER,
    RUNNING,
    SUCCEEDED,
    Job,
    utcnow,
)

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
    # Scenarios of one comparison solved at once by an in-process worker (the runner's
    # thread count: a comparison may use as many solver threads as the runner has).
    scenario_workers: int = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> JobSettings:
        return cls(
            heartbeat_s=float(config["HEARTBEAT_S"]),
            stale_after_s=float(config["STALE_AFTER_S"]),
            max_attempts=int(config["MAX_ATTEMPTS"]),
            scenario_workers=max(1, int(config.get("JOB_WORKERS") or 1)),
        )

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.stale_after_s)


def new_worker_id() -> str:
    """Unique per claim, and says where the work ran (host and process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobContext:
    """A running job as its solver sees it: heartbeats in the background, progress
    events, and `should_stop` once the job was cancelled or taken over."""

    def __init__(
        self, store: JobStore, job_id: str, worker: str | None, settings: JobSettings
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

    def progress(self, report: ProgressEvent | str) -> None:
        """Store the event on the job (its figures plus `at`), at most twice a second;
        events in between are dropped, the next one is as good."""
        now = time.monotonic()
        if now - self._last_progress < _PROGRESS_EVERY_S:
            return
        self._last_progress = now
        entry = {**as_event(report).to_dict(), "at": utcnow().isoformat()}
        try:
            self.store.set_progress(self.job_id, self.worker, entry)
        except Exception:
            log.warning("progress of job %s not saved", self.job_id, exc_info=True)


def run_job(
    store: JobStore,
    job_id: str,
    settings: JobSettings,
    *,
    worker: str | None = None,
    take_over_stale: bool = True,
    fan_out: Callable[[str], object] | None = None,
) -> bool:
    """Claim `job_id` and run it to its end; False when it could not be claimed (taken,
    finished or cancelled). `take_over_stale` also claims a running job whose worker
    went silent. With `fan_out`, a comparison is handed to it once claimed instead of
    being solved here."""
    worker = worker or new_worker_id()
    stale_before = utcnow() - settings.stale_after if take_over_stale else None
    if not store.claim_job(job_id, worker, stale_before=stale_before):
        return False
    job = store.get_job(job_id)
    if job is not None and job.kind in (COMPARISON, FRONTIER) and fan_out is not None:
        fan_out(job_id)
    else:
        execute_claimed(store, job_id, worker, settings)
    return True


def execute_claimed(store: JobStore, job_id: str, worker: str, settings: JobSettings) -> None:
    """Run a job this worker has claimed; any failure is recorded on the job."""
    job = store.get_job(job_id)
    if job is None:
        return
    log.info("job %s (%s) started by %s", job_id, job.kind, worker)
    with JobContext(store, job_id, worker, settings) as context:
        try:
            if job.kind == ALLOCATION:
                _run_allocation(store, job, context)
            elif job.kind == FRONTIER:
                _run_frontier(store, job, context)
            else:
                _run_comparison(store, job, context)
        except Exception as error:
            log.exception("job %s failed", job_id)
            store.fail_job(job_id, worker, error_text(error))
    log.info("job %s ended: %s", job_id, store.job_status(job_id))


def _run_allocation(store: JobStore, job: Job, context: JobContext) -> None:
    request = stored_request(store, job)
    if context.should_stop():
        return  # cancelled between its claim and now: nothing was searched
    plans = solving.solve_request(
        request, progress=context.progress, should_stop=context.should_stop
    )
    if not context.should_stop() and store.finish_job(
        job.id, context.worker, plans=plans_to_list(plans)
    ):
        return
    # Cancelled (or taken over) mid-solve: the store keeps the best plan found so far on
    # a cancelled job of this worker's, and nothing otherwise.
    kept = found_plans(plans)
    if kept and context.worker is not None:
        store.keep_interrupted(job.id, context.worker, plans_to_list(kept))


def found_plans(plans: list[Plan]) -> list[Plan]:
    """The plans of a stopped solve worth keeping: none when the engine had found no plan
    yet (its placeholder allocates nothing) or failed."""
    if not plans or plans[0].solver.status is SolveStatus.ERROR:
        return []
    first = plans[0]
    if first.label == NO_PLAN_LABEL and first.solver.status is not SolveStatus.INFEASIBLE:
        return []
    return plans


def _run_comparison(store: JobStore, job: Job, context: JobContext) -> None:
    prepared = comparison_scenarios(store, job)
    done = {r.idx for r in store.scenario_results(job.id) if r.status in FINAL_STATUSES}

    def keep(idx: int, outcome: ScenarioOutcome) -> None:
        save_outcome(store, job.id, idx, outcome, context)

    comparisons.solve_scenarios(
        prepared,
        progress=context.progress,
        should_stop=context.should_stop,
        skip=done,
        on_outcome=keep,
        workers=context.settings.scenario_workers,
        base_plans=stored_base_plans(store, job.id, prepared),
    )
    if not context.should_stop():
        finish_comparison(store, job.id, context.worker, prepared)


def _run_frontier(store: JobStore, job: Job, context: JobContext) -> None:
    points, options = frontiers.job_points(store, job)
    done = {r.idx for r in store.scenario_results(job.id) if r.status in FINAL_STATUSES}

    def keep(idx: int, outcome: ScenarioOutcome) -> None:
        save_outcome(store, job.id, idx, outcome, context)

    frontiers.solve_points(
        points, skip=sorted(done), on_outcome=keep, should_stop=context.should_stop, **options
    )
    if not context.should_stop():
        frontiers.finish_frontier(store, job.id, context.worker)


def comparison_scenarios(store: JobStore, job: Job) -> list[PreparedScenario]:
    """The base and scenario requests of a comparison, base first, as at submission; a
    base given by `allocation_id` carries that job's stored plans (never re-solved)."""
    comparison = store.comparison(job.id)
    if comparison is None:
        raise RuntimeError(f"comparison {job.id} has no stored scenarios")
    prepared = comparisons.prepare_scenarios(stored_request(store, job), comparison["scenarios"])
    allocation_id = comparison.get("base_allocation_id")
    if allocation_id:
        base = prepared[0]
        stored = store.plans(str(allocation_id))
        if stored:
            plans = tuple(plan_from_dict(p) for p in stored)
            prepared[0] = PreparedScenario(base.name, base.request, plans=plans)
        else:
            error = f"allocation {allocation_id} has no stored plans to compare against"
            prepared[0] = PreparedScenario(base.name, None, error)
    return prepared


def save_outcome(
    store: JobStore, job_id: str, idx: int, outcome: ScenarioOutcome, context: JobContext
) -> None:
    """Store one scenario's outcome, unless the comparison was cancelled meanwhile (then
    whatever the solve returned is not a result)."""
    if context.should_stop():
        return
    if outcome.plans:
        store.save_scenario(job_id, idx, status=SUCCEEDED, plans=plans_to_list(outcome.plans))
    else:
        log.warning("scenario %s of %s failed: %s", outcome.name, job_id, outcome.error)
        store.save_scenario(job_id, idx, status=FAILED, error=outcome.error)


def run_scenario(store: JobStore, job_id: str, idx: int, settings: JobSettings) -> None:
    """One scenario of a running comparison (a Celery fan-out task)."""
    job = store.get_job(job_id)
    if job is None or job.status != RUNNING:
        return
    done = {r.idx for r in store.scenario_results(job_id) if r.status in FINAL_STATUSES}
    if idx in done:
        return  # redelivered after it was stored
    with JobContext(store, job_id, None, settings) as context:
        try:
            if job.kind == FRONTIER:
                points, options = frontiers.job_points(store, job)
                item = points[idx]
            else:
                prepared = comparison_scenarios(store, job)
                item = prepared[idx]
        except Exception as error:
            store.fail_job(job_id, None, error_text(error))
            return
        if job.kind == FRONTIER:
            outcome = frontiers.solve_point(item, should_stop=context.should_stop, **options)
        else:
            outcome = comparisons.solve_scenario(
                item,
                progress=context.progress,
                should_stop=context.should_stop,
                warm_start=None
                if idx == 0
                else comparisons.base_start(stored_base_plans(store, job_id, prepared)),
            )
        save_outcome(store, job_id, idx, outcome, context)


def stored_base_plans(
    store: JobStore, job_id: str, prepared: list[PreparedScenario]
) -> list[Plan] | None:
    """The base's plans as far as they are known now: an allocation's (base by id), else
    the base's stored outcome (a resumed comparison, or a fan-out task starting after the
    base's finished); None while the base is still being solved."""
    if prepared and prepared[0].plans:
        return list(prepared[0].plans)
    results = store.scenario_results(job_id)
    if not any(r.idx == 0 and r.status == SUCCEEDED for r in results):
        return None
    return [plan_from_dict(p) for p in store.plans(job_id, 0)] or None


def finish_comparison(
    store: JobStore,
    job_id: str,
    worker: str | None,
    prepared: list[PreparedScenario] | None = None,
) -> bool:
    """Summarise the stored scenario outcomes into the comparison's rows."""
    job = store.get_job(job_id)
    if job is None or job.status != RUNNING:
        return False
    if job.kind == FRONTIER:
        return frontiers.finish_frontier(store, job_id, worker)
    try:
        prepared = prepared if prepared is not None else comparison_scenarios(store, job)
        results = store.scenario_results(job_id)
        outcomes = []
        for item, result in zip(prepared, results, strict=True):
            plans: list[Plan] | None = [plan_from_dict(p) for p in store.plans(job_id, result.idx)]
            if result.status != SUCCEEDED:
                plans = None
            error = result.error or (None if plans else "the scenario was not solved")
            outcomes.append(ScenarioOutcome(item.name, item.request, plans or None, error))
        base = prepared[0].request or stored_request(store, job)
        summary = comparisons.summarize_comparison(base, outcomes)
    except Exception as error:
        log.exception("summary of comparison %s failed", job_id)
        return store.fail_job(job_id, worker, error_text(error))
    return store.finish_job(job_id, worker, summary=summary)
