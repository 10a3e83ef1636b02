"""What the service needs from the outside world, as small protocols.

`adapters.store.Store` (SQLAlchemy) implements `JobStore` and `KeyStore`; the queues of
`adapters.queue` provide a `Dispatch`. Tests use in-memory fakes of the same protocols.

Every state change of a job is conditional, and the store is the arbiter: `claim_job` is
true for one worker only; `finish_job`, `save_scenario`, `set_progress` and `heartbeat`
only land while the job is still running (and, when `worker` is given, still that
worker's), so a cancelled job never becomes succeeded. A cancelled job may still receive
the plans its worker had found when it stopped (`keep_interrupted`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from service.records import ApiKey, Job, ScenarioResult

Dispatch = Callable[[Job], None]
"""Hands a newly stored job to whatever runs jobs; raises when it cannot."""


class JobStore(Protocol):
    def create_job(
        self,
        kind: str,
        *,
        name: str = "",
        request_body: dict[str, Any] | None = None,
        request_id: str | None = None,
        comparison: dict[str, Any] | None = None,
        scenario_names: Sequence[str] = (),
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> Job:
        """Raises `service.errors.DuplicateSubmission` when `idempotency_key` is taken."""
        ...

    def find_idempotent(self, idempotency_key: str) -> Job | None: ...

    def get_job(self, job_id: str, kind: str | None = None) -> Job | None: ...

    def job_status(self, job_id: str) -> str | None: ...

    def list_jobs(
        self, kind: str, *, offset: int, limit: int, status: str | None = None
    ) -> tuple[list[Job], int]: ...

    def request_body(self, request_id: str) -> dict[str, Any]: ...

    def cancel_job(self, job_id: str) -> Job | None: ...

    def claim_job(
        self, job_id: str, worker: str, *, stale_before: datetime | None = None
    ) -> bool: ...

    def heartbeat(self, job_id: str, worker: str | None) -> bool: ...

    def set_progress(self, job_id: str, worker: str | None, progress: dict[str, Any]) -> None: ...

    def finish_job(
        self,
        job_id: str,
        worker: str | None,
        *,
        plans: Sequence[dict[str, Any]] = (),
        summary: dict[str, Any] | None = None,
    ) -> bool: ...

    def keep_interrupted(self, job_id: str, worker: str, plans: Sequence[dict[str, Any]]) -> bool:
        """Store the best plans of a job cancelled while `worker` ran it; False (nothing
        stored) unless the job is cancelled, was last this worker's and has no plans."""
        ...

    def fail_job(self, job_id: str, worker: str | None, error: str) -> bool: ...

    def plans(self, job_id: str, scenario: int = 0) -> list[dict[str, Any]]: ...

    def plan(self, job_id: str, rank: int, scenario: int = 0) -> dict[str, Any] | None: ...

    def comparison(self, job_id: str) -> dict[str, Any] | None: ...

    def scenario_results(self, job_id: str) -> list[ScenarioResult]: ...

    def save_scenario(
        self,
        job_id: str,
        idx: int,
        *,
        status: str,
        plans: Sequence[dict[str, Any]] = (),
        error: str | None = None,
    ) -> bool: ...


class KeyStore(Protocol):
    """API keys. The store keeps only a hash of each token (see `adapters.store.keys`)."""

    def add_key(self, *, key_id: str, name: str, role: str, token: str) -> ApiKey: ...

    def find_key(self, token: str) -> ApiKey | None: ...

    def touch_key(self, key_id: str, older_than: timedelta) -> None: ...

    def list_keys(self) -> list[ApiKey]: ...

    def revoke_key(self, key_id: str) -> bool: ...

    def any_active_key(self) -> bool: ...
