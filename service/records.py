"""What the store hands back: jobs, scenario results and API keys, with their statuses.

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
