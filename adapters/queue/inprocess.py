"""The embedded job queue: a few worker threads of the serving process.

The runner's threads claim queued jobs from the database with the same atomic UPDATE the
Celery worker uses, and a sweeper puts jobs whose worker went silent (a crash, a SIGKILL)
back in the queue, so a restarted service finishes them.

By default (`JOB_ISOLATION=process`) a claimed job is solved in a child process of a
small pool, not in the thread that claimed it: a solve is mostly Python and numpy work
holding the GIL, and in the serving process it made every request wait for it (read p99
93 ms against 17 ms with a 200-partner job solving, `python -m bench.load --fixture
pilot`). A child that dies takes only its job with it; the pool is rebuilt and the
sweeper re-queues the job. Children idle for `POOL_IDLE_S` are ended. `thread` keeps
solves in the serving process (tests that spy on the solver in this process use it).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from adapters.store import Store, store_for
from service.execution import JobSettings, new_worker_id, run_job
from service.records import Job

log = logging.getLogger(__name__)

# Solver processes left without a job this long are ended (the next job starts new ones).
POOL_IDLE_S = 60.0


class JobRunner:
    """Worker threads claiming queued jobs from the database and solving them, in child
    processes when `processes` is true (see the module's docstring)."""

    def __init__(
        self,
        store: Store,
        settings: JobSettings,
        *,
        workers: int = 2,
        poll_s: float = 1.0,
        processes: bool = False,
    ) -> None:
        self.store = store
        self.settings = settings
        self.workers = max(1, int(workers))
        self.poll_s = poll_s
        self._wake = threading.Condition()
        self._pending = 0  # wake-ups not yet consumed by a worker thread
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._current: dict[str, str] = {}  # worker id -> job id, jobs solving now
        self._lock = threading.Lock()
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._idle_since = time.monotonic()

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
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def release(self) -> None:
        """Stop, and put the jobs still solving here back in the queue unfinished."""
        self._stopping.set()
        self.wake(len(self._threads))
        with self._lock:
            current = dict(self._current)
        for worker, job_id in current.items():
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
                claimed = self._run_next()
            except Exception:
                log.exception("job runner could not read the queue")
                claimed = False
            if not claimed:
                self._wait()

    def _run_next(self) -> bool:
        """Run the oldest queued job another worker does not take first; False when
        there was none. Stale jobs come back through the sweeper, not through here."""
        for job_id in self.store.next_queued():
            worker = new_worker_id()
            with self._lock:  # known before the claim, so `release` can hand it back
                self._current[worker] = job_id
            try:
                if self._run(job_id, worker):
                    return True
            except Exception:  # run_job records failures; this is the last guard
                log.exception("job %s crashed its runner thread", job_id)
                return True
            finally:
                with self._lock:
                    self._current.pop(worker, None)
                    self._idle_since = time.monotonic()
        return False

    def _run(self, job_id: str, worker: str) -> bool:
        if not self.processes:
            return run_job(self.store, job_id, self.settings, worker=worker, take_over_stale=False)
        with self._lock:
            if self._pool is None:
                # spawn, not fork: this process has threads (and database connections)
                # a forked child would inherit in whatever state they were in.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=context,
                    initializer=_log_like_parent,
                    initargs=_parent_logging(),
                )
            pool = self._pool
        try:
            future = pool.submit(_run_in_child, self.store.url, job_id, self.settings, worker)
            return bool(future.result())
        except BrokenProcessPool:
            # The child died mid-job (killed, out of memory): its heartbeat stops, so the
            # sweeper re-queues the job; the next job gets a fresh pool.
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            log.error("the solver process running job %s died", job_id)
            return True

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
            self._close_idle_pool()
            if self._stopping.wait(interval):
                return

    def _close_idle_pool(self) -> None:
        # Idle solver processes hold a few hundred MB each; a new job pays ~2 s to spawn.
        with self._lock:
            idle = not self._current and time.monotonic() - self._idle_since > POOL_IDLE_S
            pool = self._pool if idle else None
            if pool is not None:
                self._pool = None
        if pool is not None:
            pool.shutdown(wait=False)

    def health(self) -> dict[str, Any]:
        with self._lock:
            busy = len(self._current)
        return {
            "mode": "in-process",
            "ok": self.running,
            "workers": self.workers,
            "isolation": "process" if self.processes else "thread",
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


def _parent_logging() -> tuple[int, str | None]:
    root = logging.getLogger()
    formatter = root.handlers[0].formatter if root.handlers else None
    return root.level, formatter._fmt if formatter else None


def _log_like_parent(level: int, format: str | None) -> None:
    """A spawned child starts with no logging set up: its job lines would be lost."""
    if format:
        logging.basicConfig(level=level, format=format)
    logging.getLogger().setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _run_in_child(url: str, job_id: str, settings: JobSettings, worker: str) -> bool:
    """A job in a pool process: its own store (engine and connections) per database."""
    return run_job(store_for(url), job_id, settings, worker=worker, take_over_stale=False)
