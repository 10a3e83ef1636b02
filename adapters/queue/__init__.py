"""Getting jobs to workers: the embedded in-process runner (`inprocess`), or Celery on a
Redis broker (`celery_app`) when `BROKER_URL` is set. Both run jobs through
`service.execution.run_job`; `make_dispatcher` picks one from the configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from adapters.queue.inprocess import InProcessDispatcher, JobRunner
from adapters.store import Store
from service.execution import JobSettings
from service.records import Job


class Dispatcher(Protocol):
    """Hands a newly stored job to whatever runs jobs (its `dispatch` is the service's
    `service.ports.Dispatch`), and says whether that is up."""

    mode: str

    def dispatch(self, job: Job) -> None: ...

    def health(self) -> dict[str, Any]: ...


def make_dispatcher(config: Mapping[str, Any], store: Store) -> Dispatcher:
    """Celery when a broker is configured, else the in-process runner (not started yet:
    it starts in the serving process, after any fork)."""
    if config.get("BROKER_URL"):
        # Imported here: Celery and its broker client are not needed (nor worth their
        # import time) in the in-process runner's solver processes or the CLI.
        from adapters.queue.celery_app import CeleryDispatcher

        return CeleryDispatcher(config)
    runner = JobRunner(
        store,
        JobSettings.from_config(config),
        workers=int(config["JOB_WORKERS"]),
        poll_s=float(config["JOB_POLL_S"]),
        processes=str(config["JOB_ISOLATION"]) == "process",
    )
    return InProcessDispatcher(runner)


__all__ = ["Dispatcher", "InProcessDispatcher", "JobRunner", "make_dispatcher"]
