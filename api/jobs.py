"""Getting jobs to workers: the embedded in-process runner, or Celery when a broker is set.

The in-process runner is a few threads fed from the database: they claim queued jobs with
the same atomic UPDATE the Celery worker uses, and a sweeper puts jobs whose worker went
silent (a crash, a SIGKILL) back in the queue, so a restarted service finishes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from api.execution import JobSettings, execute_claimed, new_worker_id
from api.store import Job, Store, utcnow

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """Hands a newly stored job to whatever runs jobs."""

    mode: str

    def dispatch(self, job: Job) -> None: ...

    def health(self) -> dict[str, Any]: ...


class JobRunner:
    """Solver threads in this process, claiming queued jobs from the database."""

    def __init__(
        self,
        store: Store,
        settings: JobSettings,
        *,
        workers: int = 2,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.settings = settings
        self.workers = max(1, int(workers))
        self.poll_s = poll_s
        self._wake = threading.Condition()
        self._pending = 0  # wake-ups not yet consumed by a worker thread
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._current: dict[str, str] = {}  # job id -> worker id, jobs solving now
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._threads:
                return
            self._stopping.clear()
            self._threads = [
                threading.Thread(target=self._work, name=f"windmaker-job-{n}", daemon=True)
                for n in range(self.workers)
            ]
            self._threads.append(
                threading.Thread(target=self._sweep, name="windmaker-sweeper", daemon=True)
            )
            for thread in self._threads:
                thread.start()
        log.info("in-process job runner started with %d worker thread(s)", self.workers)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; jobs in progress finish (or are re-queued after a restart)."""
        self._stopping.set()
        self.wake(len(self._threads))
        for thread in self._threads:
            thread.join(timeout)
        with self._lock:
            self._threads = []

    def release(self) -> None:
        """Stop, and put the jobs still solving here back in the queue unfinished."""
        self._stopping.set()
        self.wake(len(self._threads))
        with self._lock:
            current = dict(self._current)
        for job_id, worker in current.items():
            try:
                if self.store.release_job(job_id, worker):
                    log.info("job %s handed back to the queue", job_id)
            except Exception:
                log.exception("could not hand job %s back; it is re-queued once stale", job_id)

    @property
    def running(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def wake(self, count: int = 1) -> None:
        with self._wake:
            self._pending += count
            self._wake.notify(count)

    # -- threads ----------------------------------------------------------------------

    def _wait(self) -> None:
        with self._wake:
            if self._pending == 0:
                self._wake.wait(self.poll_s)
            self._pending = max(0, self._pending - 1)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = self._claim()
            except Exception:
                log.exception("job runner could not read the queue")
                claimed = None
            if claimed is None:
                self._wait()
                continue
            job_id, worker = claimed
            with self._lock:
                self._current[job_id] = worker
            try:
                execute_claimed(self.store, job_id, worker, self.settings)
            except Exception:  # execute_claimed records failures; this is the last guard
                log.exception("job %s crashed its runner thread", job_id)
            finally:
                with self._lock:
                    self._current.pop(job_id, None)

    def _claim(self) -> tuple[str, str] | None:
        for job_id in self.store.next_queued():
            worker = new_worker_id()
            if self.store.claim_job(job_id, worker):
                return job_id, worker
        return None

    def _sweep(self) -> None:
        # First pass right away: a restart should pick up a dead process's jobs as soon
        # as their heartbeats are old enough, not one interval later.
        interval = max(0.2, min(self.settings.heartbeat_s, self.settings.stale_after_s / 2))
        while True:
            try:
                requeued, failed = self.store.requeue_stale(
                    self.settings.stale_after, self.settings.max_attempts
                )
                if requeued:
                    log.warning("re-queued jobs of a dead worker: %s", ", ".join(requeued))
                    self.wake(len(requeued))
                if failed:
                    log.error("jobs given up after repeated worker deaths: %s", ", ".join(failed))
            except Exception:
                log.exception("stale-job sweep failed")
            if self._stopping.wait(interval):
                return

    def health(self) -> dict[str, Any]:
        with self._lock:
            busy = len(self._current)
        return {
            "mode": "in-process",
            "ok": self.running,
            "workers": self.workers,
            "busy": busy,
        }


class InProcessDispatcher:
    mode = "in-process"

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def dispatch(self, job: Job) -> None:
        self.runner.start()  # lazily, in the serving process (after any fork)
        self.runner.wake()

    def health(self) -> dict[str, Any]:
        return self.runner.health()


class CeleryDispatcher:
    mode = "celery"

    def __init__(self, config: Mapping[str, Any]) -> None:
        from api.celery_app import make_celery

        self.celery = make_celery(config)
        self.queue = str(config["CELERY_QUEUE"])

    def dispatch(self, job: Job) -> None:
        from api.celery_app import RUN_JOB

        self.celery.send_task(RUN_JOB, args=[job.id], queue=self.queue)

    def health(self) -> dict[str, Any]:
        try:
            with self.celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
            ok = True
        except Exception as error:
            log.warning("broker unreachable: %s", error)
            ok = False
        return {"mode": "celery", "ok": ok, "queue": self.queue, "checked_at": utcnow().isoformat()}
