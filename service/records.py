"""What the store hands back: jobs, scenario results, API keys, adoptions and audit
entries, with their statuses.

Plain frozen dataclasses, so the service and its in-memory test fakes need no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
ACTIVE_STATUSES = (QUEUED, RUNNING)
FINAL_STATUSES = (SUCCEEDED, FAILED, CANCELLED)

ALLOCATION = "allocation"
COMPARISON = "comparison"
FRONTIER = "frontier"  # stored like a comparison: one scenario row per budget point

# Who acted when no key identifies them (authentication off).
ANONYMOUS = "anonymous"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    name: str
    request_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int
    error: str | None
    progress: dict[str, Any] | None
    # A client's Idempotency-Key (scoped and hashed) and the hash of what it submitted.
    idempotency_key: str | None = None
    request_hash: str | None = None
    # Who submitted it: an API key's name, "anonymous", or the CLI's user. None for jobs
    # stored before submitters were recorded.
    submitted_by: str | None = None


@dataclass(frozen=True)
class ScenarioResult:
    idx: int
    name: str
    status: str
    error: str | None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


# Audit actions: what the audit log records.
SUBMIT = "submit"
CANCEL = "cancel"
ADOPT = "adopt"
KEY_CREATE = "key.create"
KEY_REVOKE = "key.revoke"
AUDIT_ACTIONS = (SUBMIT, CANCEL, ADOPT, KEY_CREATE, KEY_REVOKE)


@dataclass(frozen=True)
class Adoption:
    """A plan made the adopted plan of a programme; `current` until another replaces it."""

    id: int
    programme: str
    job_id: str
    rank: int
    adopted_by: str
    adopted_at: datetime
    current: bool


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which target, when; `details` says more (kind, names, ranks)."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
