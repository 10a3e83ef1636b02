"""Adoptions and the audit log on SQLite and PostgreSQL: one current adoption per
programme under concurrent adopters, adopted jobs protected in the database, audit rows
written with their change, and migration 0003 over a database holding 0002 data."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from adapters.store import Store
from adapters.store.tables import adoptions_table, jobs_table
from service.records import ADOPT, CANCEL, KEY_CREATE, KEY_REVOKE, SUBMIT, utcnow


def _succeeded(store: Store, name: str = "spring", plans: int = 2) -> str:
    job = store.create_job("allocation", name=name, request_body={"name": name})
    assert store.claim_job(job.id, "w")
    assert store.finish_job(job.id, "w", plans=[{"rank": r} for r in range(1, plans + 1)])
    return job.id


def test_concurrent_adopters_leave_exactly_one_current_plan(store: Store) -> None:
    job_ids = [_succeeded(store) for _ in range(6)]
    barrier = threading.Barrier(len(job_ids))
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def adopt(job_id: str) -> None:
        barrier.wait()
        try:
            outcomes.append(store.adopt_plan("spring", job_id, 1, f"user-{job_id[:4]}")[1])
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=adopt, args=(job_id,)) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and outcomes == [True] * len(job_ids)

    history, total = store.adoptions("spring", offset=0, limit=50)
    assert total == len(job_ids) and sorted(a.job_id for a in history) == sorted(job_ids)
    assert [a.current for a in history] == [True] + [False] * (len(job_ids) - 1)
    current = store.current_adoption("spring")
    assert current is not None and current == history[0]
    # Each adoption replaced exactly the one before it: the audit's "previous" links
    # form one chain, newest to oldest, ending with nothing.
    entries, count = store.audit_entries(offset=0, limit=50, action=ADOPT)
    assert count == len(job_ids)
    previous = [entry.details["previous"] for entry in entries]
    replaced = [a.job_id for a in history[1:]]
    assert [p["job_id"] if p else None for p in previous] == [*replaced, None]


def test_the_database_refuses_a_second_current_adoption(store: Store) -> None:
    first, second = _succeeded(store), _succeeded(store)
    store.adopt_plan("spring", first, 1, "alice")
    row = {"programme": "spring", "job_id": second, "rank": 1, "adopted_by": "mallory"}
    with pytest.raises(sa.exc.IntegrityError), store.write() as conn:
        conn.execute(adoptions_table.insert().values(**row, adopted_at=utcnow(), is_current=True))
    with store.write() as conn:  # an earlier (not current) adoption is fine
        conn.execute(adoptions_table.insert().values(**row, adopted_at=utcnow(), is_current=False))
    current = store.current_adoption("spring")
    assert current is not None and current.job_id == first


def test_an_adopted_job_cannot_be_deleted(store: Store) -> None:
    adopted, other = _succeeded(store), _succeeded(store)
    store.adopt_plan("spring", adopted, 2, "alice")
    with pytest.raises(sa.exc.IntegrityError), store.write() as conn:
        conn.execute(jobs_table.delete().where(jobs_table.c.id == adopted))
    assert store.plan(adopted, 2) == {"rank": 2}
    with store.write() as conn:  # a job never adopted still can be
        conn.execute(jobs_table.delete().where(jobs_table.c.id == other))
    assert store.get_job(other) is None
    assert [a.job_id for a in store.adoptions_of_job(adopted)] == [adopted]


def test_changes_and_their_audit_entries_land_together(store: Store) -> None:
    from service import keys
    from service.errors import DuplicateSubmission

    key_id, _ = keys.create_key(store, "viewer", "dashboards", by="root")
    job = store.create_job(
        "allocation", name="spring", request_body={}, idempotency_key="k", submitted_by="alice"
    )
    with pytest.raises(DuplicateSubmission):  # rolled back whole: no second audit entry
        store.create_job("allocation", request_body={}, idempotency_key="k", submitted_by="eve")
    stored = store.get_job(job.id)
    assert stored is not None and stored.submitted_by == "alice"
    assert store.cancel_job(job.id, by="bob") is not None
    store.cancel_job(job.id, by="bob")  # already cancelled: nothing happened, no entry
    assert keys.revoke_key(store, key_id, by="root")
    assert not keys.revoke_key(store, key_id, by="root")

    entries, total = store.audit_entries(offset=0, limit=10)
    assert total == 4
    assert [(e.action, e.actor, e.target) for e in entries] == [
        (KEY_REVOKE, "root", key_id),
        (CANCEL, "bob", job.id),
        (SUBMIT, "alice", job.id),
        (KEY_CREATE, "root", key_id),
    ]
    assert entries[2].details == {"kind": "allocation", "name": "spring"}
    assert all(e.at.tzinfo is not None for e in entries)
    page, _ = store.audit_entries(offset=1, limit=1, action=None)
    assert [e.action for e in page] == [CANCEL]


def test_a_0002_database_gains_adoptions_audit_and_submitters(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from adapters.store.database import MIGRATIONS_DIR

    bare = Store(db_url, migrate=False)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with bare.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        conn.execute(
            sa.text(
                "INSERT INTO requests (id, body, created_at) "
                "VALUES ('r-old', '{\"name\": \"legacy\"}', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, kind, status, name, request_id, created_at, attempts, "
                "idempotency_key) VALUES ('old', 'allocation', 'succeeded', 'legacy', 'r-old', "
                "CURRENT_TIMESTAMP, 1, 'idem')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO plans (job_id, scenario, rank, plan) "
                "VALUES ('old', 0, 1, '{\"rank\": 1}')"
            )
        )
    bare.dispose()

    upgraded = Store(db_url)  # migrates 0002 -> 0003 on open
    old = upgraded.get_job("old")
    assert old is not None and old.submitted_by is None and old.idempotency_key == "idem"
    assert upgraded.request_body("r-old") == {"name": "legacy"}
    adoption, created = upgraded.adopt_plan("legacy", "old", 1, "alice")
    assert created and adoption.current and upgraded.plan("old", 1) == {"rank": 1}
    assert upgraded.audit_entries(offset=0, limit=5)[1] == 1
    with upgraded.read() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0003"
    upgraded.dispose()


def test_migration_0003_downgrades_cleanly(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from adapters.store.database import MIGRATIONS_DIR

    store = Store(db_url)
    _succeeded(store)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    tables = set(sa.inspect(store.engine).get_table_names())
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("jobs")}
    assert "adoptions" not in tables and "audit" not in tables
    assert "submitted_by" not in columns and "idempotency_key" in columns
    store.dispose()
