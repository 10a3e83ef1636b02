"""Adopted plans per programme and the audit log in the database.

One programme has at most one current adoption: a partial unique index holds that
whatever the writers race, and adopting takes a per-programme lock first (PostgreSQL
advisory lock; SQLite's write lock is already global) so concurrent adoptions queue
instead of failing. Audit rows are written inside the transaction of the change they
record, so a change never lands without its entry, nor an entry without its change.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from adapters.store.database import Database
from adapters.store.tables import adoptions_table, audit_table
from service.records import ADOPT, Adoption, AuditEntry, utcnow

# Any constant of our own (the migration lock uses another): first key of the advisory
# lock that serialises adoptions of one programme on PostgreSQL.
_PG_ADOPTION_LOCK = 0x57494E45


def record_audit(
    conn: Connection, actor: str, action: str, target: str, details: dict[str, Any]
) -> None:
    """Add an audit entry within the caller's transaction."""
    conn.execute(
        audit_table.insert().values(
            at=utcnow(), actor=actor[:200], action=action, target=target[:200], details=details
        )
    )


def _adoption(row: sa.Row[Any]) -> Adoption:
    data = row._mapping
    return Adoption(
        id=data["id"],
        programme=data["programme"],
        job_id=data["job_id"],
        rank=data["rank"],
        adopted_by=data["adopted_by"],
        adopted_at=data["adopted_at"],
        current=bool(data["is_current"]),
    )


class ProvenanceTables(Database):
    """The adoption and audit half of the store (`service.ports.ProvenanceStore`)."""

    def adopt_plan(
        self, programme: str, job_id: str, rank: int, adopted_by: str
    ) -> tuple[Adoption, bool]:
        """Make (job, rank) the programme's adopted plan. Returns the adoption and
        whether anything changed (re-adopting the current plan changes nothing)."""
        table = adoptions_table
        with self.write() as conn:
            if not self.is_sqlite:
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(:programme))"),
                    {"key": _PG_ADOPTION_LOCK, "programme": programme},
                )
            current = conn.execute(
                sa.select(table).where(table.c.programme == programme, table.c.is_current)
            ).one_or_none()
            if current is not None and (current.job_id, current.rank) == (job_id, rank):
                return _adoption(current), False
            if current is not None:
                conn.execute(
                    table.update().where(table.c.id == current.id).values(is_current=False)
                )
            conn.execute(
                table.insert().values(
                    programme=programme,
                    job_id=job_id,
                    rank=rank,
                    adopted_by=adopted_by[:200],
                    adopted_at=utcnow(),
                    is_current=True,
                )
            )
            previous = None if current is None else {"job_id": current.job_id, "rank": current.rank}
            details = {"job_id": job_id, "rank": rank, "previous": previous}
            record_audit(conn, adopted_by, ADOPT, programme, details)
            row = conn.execute(
                sa.select(table).where(table.c.programme == programme, table.c.is_current)
            ).one()
        return _adoption(row), True

    def current_adoption(self, programme: str) -> Adoption | None:
        table = adoptions_table
        with self.read() as conn:
            row = conn.execute(
                sa.select(table).where(table.c.programme == programme, table.c.is_current)
            ).one_or_none()
        return _adoption(row) if row is not None else None

    def adoptions(self, programme: str, *, offset: int, limit: int) -> tuple[list[Adoption], int]:
        """A page of the programme's adoptions, newest first, and how many in all."""
        table = adoptions_table
        where = table.c.programme == programme
        with self.read() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(where)
            ).scalar_one()
            rows = conn.execute(
                sa.select(table)
                .where(where)
                .order_by(table.c.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return [_adoption(row) for row in rows], int(total)

    def adoptions_of_job(self, job_id: str) -> list[Adoption]:
        """Every adoption (current or earlier) of one of the job's plans, newest first."""
        table = adoptions_table
        with self.read() as conn:
            rows = conn.execute(
                sa.select(table).where(table.c.job_id == job_id).order_by(table.c.id.desc())
            ).all()
        return [_adoption(row) for row in rows]

    def audit_entries(
        self, *, offset: int, limit: int, action: str | None = None
    ) -> tuple[list[AuditEntry], int]:
        """A page of the audit log, newest first, and how many entries match in all."""
        table = audit_table
        where = [] if action is None else [table.c.action == action]
        with self.read() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(*where)
            ).scalar_one()
            rows = conn.execute(
                sa.select(table)
                .where(*where)
                .order_by(table.c.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return [AuditEntry(**row._mapping) for row in rows], int(total)
