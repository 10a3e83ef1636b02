"""The job store on SQLite and PostgreSQL: migrations, atomic claims, cancellation,
crash recovery bookkeeping and API keys."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from adapters.store import Store
from adapters.store.keys import hash_token
from adapters.store.tables import jobs_table
from service import keys
from service.records import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, utcnow

ROOT = Path(__file__).resolve().parents[2]


def _tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def test_migrations_create_every_table_and_rerun_harmlessly(store: Store) -> None:
    expected = {"requests", "jobs", "plans", "comparisons", "comparison_scenarios", "api_keys"}
    expected |= {"adoptions", "audit"}
    assert expected <= _tables(store)
    job = store.create_job("allocation", request_body={"name": "kept"})
    again = Store(store.url)  # a second start migrates nothing and loses nothing
    assert again.get_job(job.id) == job
    with again.read() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0003"
    again.dispose()


def test_processes_starting_together_migrate_once(db_url: str) -> None:
    script = "import sys; from adapters.store import Store; Store(sys.argv[1]).dispose()"
    processes = [
        subprocess.Popen([sys.executable, "-c", script, db_url], cwd=ROOT, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr.decode()
    store = Store(db_url, migrate=False)
    with store.read() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert [row[0] for row in versions] == ["0003"]
    store.dispose()


def test_only_one_of_many_racing_workers_claims_a_job(store: Store) -> None:
    job = store.create_job("allocation", request_body={})
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def claim(n: int) -> None:
        barrier.wait()
        results.append(store.claim_job(job.id, f"worker-{n}"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]
    claimed = store.get_job(job.id)
    assert claimed is not None and claimed.status == RUNNING and claimed.attempts == 1
    assert claimed.started_at is not None and claimed.heartbeat_at is not None


def test_a_cancelled_job_never_becomes_succeeded(store: Store) -> None:
    job = store.create_job("allocation", request_body={})
    assert store.claim_job(job.id, "w")
    cancelled = store.cancel_job(job.id)
    assert cancelled is not None and cancelled.status == CANCELLED
    assert cancelled.finished_at is not None
    assert not store.finish_job(job.id, "w", plans=[{"rank": 1}])
    assert not store.heartbeat(job.id, "w")
    assert store.job_status(job.id) == CANCELLED
    assert store.plans(job.id) == []


def test_only_the_owning_worker_can_finish(store: Store) -> None:
    job = store.create_job("allocation", request_body={})
    assert store.claim_job(job.id, "owner")
    assert not store.finish_job(job.id, "someone-else", plans=[{"rank": 1}])
    assert store.finish_job(job.id, "owner", plans=[{"rank": 2, "x": 2}, {"rank": 1, "x": 1}])
    assert store.job_status(job.id) == SUCCEEDED
    assert [p["x"] for p in store.plans(job.id)] == [1, 2]  # rank order
    assert store.plan(job.id, 2) == {"rank": 2, "x": 2}
    finished = store.cancel_job(job.id)
    assert finished is not None and finished.status == SUCCEEDED  # finished stays finished


def _age_heartbeat(store: Store, job_id: str, seconds: float) -> None:
    with store.write() as conn:
        conn.execute(
            jobs_table.update()
            .where(jobs_table.c.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def test_silent_running_jobs_are_requeued_then_given_up(store: Store) -> None:
    alive = store.create_job("allocation", request_body={})
    dead = store.create_job("allocation", request_body={})
    assert store.claim_job(alive.id, "alive")
    assert store.claim_job(dead.id, "dead")
    _age_heartbeat(store, dead.id, 120)

    requeued, failed = store.requeue_stale(timedelta(seconds=30), max_attempts=2)
    assert (requeued, failed) == ([dead.id], [])
    assert store.job_status(alive.id) == RUNNING
    assert store.job_status(dead.id) == QUEUED

    # The job takes its second worker down too: with max_attempts=2 it fails for good.
    assert store.claim_job(dead.id, "second")
    _age_heartbeat(store, dead.id, 120)
    requeued, failed = store.requeue_stale(timedelta(seconds=30), max_attempts=2)
    assert (requeued, failed) == ([], [dead.id])
    gave_up = store.get_job(dead.id)
    assert gave_up is not None and gave_up.status == FAILED and "2 workers" in (gave_up.error or "")


def test_a_stale_job_can_be_claimed_directly_by_a_redelivered_task(store: Store) -> None:
    job = store.create_job("allocation", request_body={})
    assert store.claim_job(job.id, "first")
    assert not store.claim_job(job.id, "second", stale_before=utcnow() - timedelta(seconds=30))
    _age_heartbeat(store, job.id, 60)
    assert store.claim_job(job.id, "second", stale_before=utcnow() - timedelta(seconds=30))
    assert not store.finish_job(job.id, "first")


def test_released_job_goes_back_to_the_queue_without_using_an_attempt(store: Store) -> None:
    job = store.create_job("allocation", request_body={})
    assert store.claim_job(job.id, "w")
    assert store.release_job(job.id, "w")
    released = store.get_job(job.id)
    assert released is not None and released.status == QUEUED and released.attempts == 0
    assert store.next_queued() == [job.id]


def test_jobs_list_newest_first_with_totals(store: Store) -> None:
    ids = [store.create_job("allocation", name=f"j{n}", request_body={}).id for n in range(5)]
    store.create_job("comparison", request_body={}, comparison={"scenarios": []})
    page, total = store.list_jobs("allocation", offset=0, limit=2)
    assert total == 5 and [job.id for job in page] == ids[::-1][:2]
    page, _ = store.list_jobs("allocation", offset=4, limit=2)
    assert [job.id for job in page] == [ids[0]]
    store.cancel_job(ids[2])
    cancelled, total = store.list_jobs("allocation", offset=0, limit=10, status=CANCELLED)
    assert total == 1 and cancelled[0].id == ids[2]


def test_api_keys_are_stored_hashed_and_revocable(store: Store) -> None:
    key_id, token = keys.create_key(store, "viewer", "dashboards")
    with store.read() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM api_keys")).scalar_one()
    assert token not in stored and stored == hash_token(token)
    assert store.any_active_key()
    assert keys.authenticate(store, f"Bearer {token}").id == key_id
    assert [key.name for key in keys.list_keys(store)] == ["dashboards"]
    assert keys.revoke_key(store, key_id)
    assert not keys.revoke_key(store, key_id)
    assert not store.any_active_key()


def test_concurrent_retries_with_one_idempotency_key_store_one_job(store: Store) -> None:
    from service.errors import DuplicateSubmission

    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def submit() -> None:
        barrier.wait()
        try:
            job = store.create_job(
                "allocation", request_body={"n": 1}, idempotency_key="k" * 64, request_hash="h"
            )
            outcomes.append(job.id)
        except DuplicateSubmission:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    created = [outcome for outcome in outcomes if outcome != "duplicate"]
    assert len(outcomes) == 6 and len(created) == 1
    stored = store.find_idempotent("k" * 64)
    assert stored is not None and stored.id == created[0] and stored.request_hash == "h"
    with store.read() as conn:  # the losers' requests rolled back with them
        assert conn.execute(sa.text("SELECT count(*) FROM requests")).scalar_one() == 1


def test_an_old_database_gains_the_idempotency_columns(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from adapters.store.database import MIGRATIONS_DIR

    bare = Store(db_url, migrate=False)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with bare.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, kind, status, name, created_at, attempts) "
                "VALUES ('old', 'allocation', 'succeeded', '', CURRENT_TIMESTAMP, 1)"
            )
        )
    bare.dispose()
    upgraded = Store(db_url)  # migrates 0001 -> 0002 on open
    old = upgraded.get_job("old")
    assert old is not None and old.idempotency_key is None
    upgraded.dispose()
