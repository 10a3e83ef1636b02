"""What the service needs from the outside world, as small protocols.

`adapters.store.Store` (SQLAlchemy) implements `JobStore`, `KeyStore` and
`ProvenanceStore`; the queues of
`adapters.queue` provide a `Dispatch`. Tests use in-memory fakes of the same protocols.

Every state change of a job is conditional, and the store is the arbiter: `claim_job` is
true for one worker only; `finish_job`, `save_scenario`, `set_progress` and `heartbeat`
only land while the job is still running (and, when `worker` is given, still that
worker's), so a cancelled job never becomes succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from service.records import ANONYMOUS, Adoption, ApiKey, AuditEntry, Job, ScenarioResult

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
        submitted_by: str = ANONYMOUS,
    ) -> Job:
        """Raises `service.errors.DuplicateSubmission` when `idempotency_key` is taken.
        Records the submission in the audit log with the job."""
        ...

    def find_idempotent(self, idempotency_key: str) -> Job | None: ...

    def get_job(self, job_id: str, kind: str | None = None) -> Job | None: ...

    def job_status(self, job_id: str) -> str | None: ...

    def list_jobs(
        self, kind: str, *, offset: int, limit: int, status: str | None = None
    ) -> tuple[list[Job], int]: ...

    def request_body(self, request_id: str) -> dict[str, Any]: ...

    def cancel_job(self, job_id: str, *, by: str = ANONYMOUS) -> Job | None:
        """Audited (under `by`) only when the job was active and is now cancelled."""
        ...

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

    def add_key(
        self, *, key_id: str, name: str, role: str, token: str, by: str = ANONYMOUS
    ) -> ApiKey: ...

    def find_key(self, token: str) -> ApiKey | None: ...

    def touch_key(self, key_id: str, older_than: timedelta) -> None: ...

    def list_keys(self) -> list[ApiKey]: ...

    def revoke_key(self, key_id: str, *, by: str = ANONYMOUS) -> bool: ...

    def any_active_key(self) -> bool: ...


class ProvenanceStore(Protocol):
    """Adopted plans per programme (at most one current each, whatever the races) and
    the audit log. Changes write their audit entry in their own transaction."""

    def adopt_plan(
        self, programme: str, job_id: str, rank: int, adopted_by: str
    ) -> tuple[Adoption, bool]:
        """(the adoption, whether it is new): re-adopting the current plan changes nothing."""
        ...

    def current_adoption(self, programme: str) -> Adoption | None: ...

    def adoptions(
        self, programme: str, *, offset: int, limit: int
    ) -> tuple[list[Adoption], int]: ...

    def adoptions_of_job(self, job_id: str) -> list[Adoption]: ...

    def audit_entries(
        self, *, offset: int, limit: int, action: str | None = None
    ) -> tuple[list[AuditEntry], int]: ...


class Store(JobStore, KeyStore, ProvenanceStore, Protocol):
    """Everything one deployment's database provides."""
