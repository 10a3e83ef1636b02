"""Scale-out: Celery workers on a Redis broker run jobs through the same service path
(`service.execution.run_job`) as the in-process runner.

An allocation is one task. A comparison's task claims the job and fans out one task per
scenario (`service.execution.run_scenario`) in a chord whose callback writes the summary
(`service.execution.finish_comparison`). Tasks are acknowledged late and re-delivered
when a worker dies; the database claim makes a re-delivered task harmless.

The Celery app is made by `make_celery(config)`, never at import time. Start a worker
with `windmaker worker` (or `python -m adapters.queue.celery_app`).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery, chord
from celery.signals import worker_process_init

from adapters.config import load_config
from adapters.store import Store, forget_connections, store_for
from service import execution
from service.execution import JobSettings
from service.records import FINAL_STATUSES, RUNNING, Job, utcnow

log = logging.getLogger(__name__)

RUN_JOB = "windmaker.run_job"
RUN_SCENARIO = "windmaker.run_scenario"
FINISH_COMPARISON = "windmaker.finish_comparison"
# A re-delivered task whose job still looks alive waits this many times for the old
# worker's heartbeat to go stale before giving up.
_CLAIM_RETRIES = 10


def make_celery(config: Mapping[str, Any]) -> Celery:
    """A Celery app for `config`, with the Windmaker tasks registered."""
    broker = config.get("BROKER_URL") or "redis://127.0.0.1:6379/0"
    app = Celery("windmaker", broker=broker, backend=config.get("RESULT_BACKEND") or broker)
    app.conf.update(
        task_default_queue=str(config["CELERY_QUEUE"]),
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_expires=24 * 3600,
        # A task is only acknowledged once done: a worker killed mid-solve loses nothing.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        windmaker_database_url=config["DATABASE_URL"],
        windmaker_settings={
            "HEARTBEAT_S": config["HEARTBEAT_S"],
            "STALE_AFTER_S": config["STALE_AFTER_S"],
            "MAX_ATTEMPTS": config["MAX_ATTEMPTS"],
        },
    )
    _register_tasks(app)
    return app


def _store(app: Celery) -> Store:
    return store_for(app.conf.windmaker_database_url)


def _settings(app: Celery) -> JobSettings:
    return JobSettings.from_config(app.conf.windmaker_settings)


def _register_tasks(app: Celery) -> None:
    # shared=False: Celery otherwise adds every task to every app made later in the
    # process, where it would run with the first app's database and broker.
    @app.task(name=RUN_JOB, bind=True, max_retries=_CLAIM_RETRIES, shared=False)
    def run_job_task(self: Any, job_id: str) -> str:
        store, settings = _store(app), _settings(app)

        def fan_out(claimed_id: str) -> None:
            _fan_out(app, store, claimed_id)

        if execution.run_job(store, job_id, settings, fan_out=fan_out):
            return store.job_status(job_id) or "unknown"
        status = store.job_status(job_id)
        if status == RUNNING:
            # Re-delivered while the first worker may still be alive: wait until its
            # heartbeat proves it dead (or the job ends).
            raise self.retry(countdown=settings.stale_after_s)
        return status or "unknown"

    @app.task(name=RUN_SCENARIO, shared=False)
    def run_scenario_task(job_id: str, idx: int) -> None:
        execution.run_scenario(_store(app), job_id, idx, _settings(app))

    @app.task(name=FINISH_COMPARISON, shared=False)
    def finish_comparison_task(job_id: str) -> str:
        store = _store(app)
        execution.finish_comparison(store, job_id, None)
        return store.job_status(job_id) or "unknown"


def _fan_out(app: Celery, store: Store, job_id: str) -> None:
    """One task per unsolved scenario, then the summary once all have run."""
    pending = [r.idx for r in store.scenario_results(job_id) if r.status not in FINAL_STATUSES]
    callback = app.signature(FINISH_COMPARISON, args=(job_id,), immutable=True)
    if not pending:
        callback.apply_async()
        return
    header = [app.signature(RUN_SCENARIO, args=(job_id, idx), immutable=True) for idx in pending]
    chord(header)(callback)


class CeleryDispatcher:
    """Sends a stored job to the Celery workers of the configured broker and queue."""

    mode = "celery"

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.celery = make_celery(config)
        self.queue = str(config["CELERY_QUEUE"])

    def dispatch(self, job: Job) -> None:
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


def _fresh_connections(**_kwargs: Any) -> None:
    # A forked pool process must not share the parent's database sockets.
    forget_connections()


def run_worker(
    *,
    concurrency: int | None = None,
    loglevel: str = "INFO",
    pool: str | None = None,
    extra_args: Sequence[str] = (),
) -> None:
    """Run a Celery worker for the configured broker, database and queue (blocks)."""
    config = load_config()
    if not config.get("BROKER_URL"):
        raise SystemExit("WINDMAKER_BROKER_URL is not set: there is no broker to take jobs from")
    # Migrate once in the parent, before the pool forks.
    store_for(config["DATABASE_URL"]).engine.dispose()
    worker_process_init.connect(_fresh_connections, weak=False)
    app = make_celery(config)
    concurrency = concurrency or config.get("WORKER_CONCURRENCY") or os.cpu_count() or 1
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        f"--queues={config['CELERY_QUEUE']}",
        f"--concurrency={int(concurrency)}",
        f"--hostname=windmaker-{os.getpid()}@%h",
        *([f"--pool={pool}"] if pool else []),
        *extra_args,
    ]
    app.worker_main(argv)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m adapters.queue.celery_app", description=__doc__
    )
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--pool", default=None, help="prefork (default), threads or solo")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(message)s")
    run_worker(concurrency=args.concurrency, loglevel=args.loglevel, pool=args.pool)


if __name__ == "__main__":
    main()
