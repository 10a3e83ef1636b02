"""The job use cases over in-memory fakes of the store and the queue: what is stored,
what is dispatched, which errors a client gets. No database, no broker, no solver."""

from __future__ import annotations

import pytest

from models.schemas import RequestValidationError, parse_request
from service import jobs, keys
from service.errors import (
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from service.records import ALLOCATION, CANCELLED, COMPARISON, FAILED, QUEUED, RUNNING
from tests.integration.api_support import small_request
from tests.support.fakes import FakeQueue, FakeStore


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def _submit(store: FakeStore, queue: FakeQueue | None = None) -> str:
    request = parse_request(small_request(partners=4))
    return jobs.submit_allocation(store, queue or FakeQueue(), request).id


def _succeeded(store: FakeStore) -> str:
    """An allocation that has finished (its plans do not matter to submitting)."""
    job_id = _submit(store)
    assert store.claim_job(job_id, "w") and store.finish_job(job_id, "w")
    return job_id


def test_submitting_stores_the_request_and_hands_the_job_over(store: FakeStore) -> None:
    queue = FakeQueue()
    job_id = _submit(store, queue)
    assert queue.sent == [job_id]
    job = store.get_job(job_id)
    assert job is not None and job.status == QUEUED and job.kind == ALLOCATION
    assert jobs.stored_request(store, job).partners[0].id == "P000"
    view = jobs.get_allocation(store, job_id)
    assert view["status"] == QUEUED and "plans" not in view


def test_an_unreachable_queue_fails_the_job_instead_of_leaving_it_queued(
    store: FakeStore,
) -> None:
    with pytest.raises(ServiceUnavailable, match="job queue"):
        _submit(store, FakeQueue(down=True))
    (job,), total = store.list_jobs(ALLOCATION, offset=0, limit=10)
    assert total == 1 and job.status == FAILED and "job queue" in (job.error or "")


def test_a_retry_after_an_unreachable_queue_makes_a_new_job(store: FakeStore) -> None:
    request = parse_request(small_request(partners=4))
    retry = jobs.Retry("retry-after-503")
    with pytest.raises(ServiceUnavailable):
        jobs.submit_allocation(store, FakeQueue(down=True), request, retry)
    again = jobs.submit_allocation(store, FakeQueue(), request, retry)
    assert again.status == QUEUED
    assert jobs.submit_allocation(store, FakeQueue(), request, retry).id == again.id
    statuses = sorted(job.status for job in store.list_jobs(ALLOCATION, offset=0, limit=10)[0])
    assert statuses == sorted([FAILED, QUEUED])


def test_cancelling_queued_then_finished_jobs(store: FakeStore) -> None:
    job_id = _submit(store)
    assert jobs.cancel_job(store, job_id, ALLOCATION)["status"] == CANCELLED
    assert jobs.cancel_job(store, job_id, ALLOCATION)["status"] == CANCELLED  # no-op
    done = _submit(store)
    store.claim_job(done, "w")
    store.finish_job(done, "w", plans=[{"rank": 1}])
    with pytest.raises(Conflict, match="succeeded"):
        jobs.cancel_job(store, done, ALLOCATION)
    with pytest.raises(NotFound):
        jobs.cancel_job(store, job_id, COMPARISON)  # the right id of the wrong kind


def test_a_plan_csv_exists_once_the_job_succeeded(store: FakeStore) -> None:
    job_id = _submit(store)
    with pytest.raises(Conflict, match="queued"):
        jobs.plan_csv(store, job_id, 1)
    with pytest.raises(NotFound):
        jobs.plan_csv(store, "no-such-job", 1)


def test_listing_pages_newest_first(store: FakeStore) -> None:
    ids = [_submit(store) for _ in range(5)]
    page, total = jobs.list_jobs(store, ALLOCATION, page=2, page_size=2)
    assert total == 5 and [view["id"] for view in page] == [ids[2], ids[1]]
    store.claim_job(ids[0], "w")
    running, count = jobs.list_jobs(store, ALLOCATION, page=1, page_size=10, status=RUNNING)
    assert count == 1 and running[0]["id"] == ids[0]
    assert jobs.list_jobs(store, ALLOCATION, page=jobs.MAX_PAGE, page_size=100) == ([], 5)
    for page in (jobs.MAX_PAGE + 1, 2**63, 10**30, 0):
        with pytest.raises(NotFound, match="no page"):
            jobs.list_jobs(store, ALLOCATION, page=page, page_size=100)


def test_a_comparison_is_validated_whole_before_anything_is_stored(store: FakeStore) -> None:
    body = {
        "base": small_request(partners=4),
        "scenarios": [
            {"name": "fine", "changes": {"budgets": {"subsidy": "x2"}}},
            {"name": "broken", "changes": {"budgets": {"no_such_resource": 1.0}}},
        ],
    }
    with pytest.raises(RequestValidationError) as caught:
        jobs.submit_comparison(store, FakeQueue(), body)
    assert "no_such_resource" in str(caught.value.messages)
    assert store.jobs == {}


def test_a_comparison_on_a_stored_allocation_reuses_its_request(store: FakeStore) -> None:
    base_id = _succeeded(store)
    body = {"base": {"allocation_id": base_id}, "scenarios": [{"name": "x", "changes": {}}]}
    job = jobs.submit_comparison(store, FakeQueue(), body)
    base = store.get_job(base_id)
    assert base is not None and job.request_id == base.request_id
    view = jobs.get_comparison(store, job.id)
    assert view["base_allocation_id"] == base_id
    assert [row["name"] for row in view["scenarios"]] == ["base", "x"]
    assert view["progress"] == {"scenarios_done": 0, "scenarios_total": 2}
    unknown = {"base": {"allocation_id": "nope"}, "scenarios": []}
    with pytest.raises(RequestValidationError, match="invalid comparison"):
        jobs.submit_comparison(store, FakeQueue(), unknown)


def test_a_comparison_needs_its_base_allocation_to_have_succeeded(store: FakeStore) -> None:
    # The base row is the job's stored plan, never a re-solve: it has to exist.
    queued = _submit(store)
    body = {"base": {"allocation_id": queued}, "scenarios": [{"name": "x", "changes": {}}]}
    with pytest.raises(RequestValidationError) as caught:
        jobs.submit_comparison(store, FakeQueue(), body)
    message = caught.value.messages["base"]["allocation_id"][0]
    assert queued in message and "queued" in message and "succeeded" in message
    assert [job.kind for job in store.jobs.values()] == ["allocation"]


def test_keys_authenticate_and_authorize_by_role(store: FakeStore) -> None:
    assert not keys.auth_required(store, require_auth=False)
    viewer_id, viewer = keys.create_key(store, keys.VIEWER, "dashboards")
    _, planner = keys.create_key(store, keys.PLANNER)
    assert keys.auth_required(store, require_auth=False)
    assert all(token not in str(store.keys) for token in (viewer, planner))  # hashes only
    key = keys.authenticate(store, f"Bearer {viewer}")
    assert key.id == viewer_id and key.role == keys.VIEWER
    keys.authorize(key, write=False)
    with pytest.raises(Forbidden):
        keys.authorize(key, write=True)
    keys.authorize(keys.authenticate(store, f"bearer {planner}"), write=True)
    for header in (None, "Basic abc", f"Bearer {viewer}x"):
        with pytest.raises(Unauthorized):
            keys.authenticate(store, header)
    assert keys.revoke_key(store, viewer_id) and not keys.revoke_key(store, viewer_id)
    with pytest.raises(Unauthorized, match="revoked"):
        keys.authenticate(store, f"Bearer {viewer}")


def test_reading_with_a_key_writes_at_most_once_a_minute(
    store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = keys.create_key(store, keys.PLANNER)
    touches: list[str] = []
    real_touch = store.touch_key
    monkeypatch.setattr(
        store,
        "touch_key",
        lambda key_id, every: (touches.append(key_id), real_touch(key_id, every)),
    )
    for _ in range(50):
        keys.authenticate(store, f"Bearer {token}")
    assert len(touches) == 1  # the first use; later ones find a fresh last_used_at


def test_a_retry_with_the_same_key_and_body_gets_the_same_job(store: FakeStore) -> None:
    queue = FakeQueue()
    request = parse_request(small_request(partners=4))
    first = jobs.submit_allocation(store, queue, request, jobs.Retry("k-1", "alice"))
    again = jobs.submit_allocation(store, queue, request, jobs.Retry("k-1", "alice"))
    assert again.id == first.id and queue.sent == [first.id]  # dispatched once
    # The key is the client's own: another client's "k-1" is another submission.
    other = jobs.submit_allocation(store, queue, request, jobs.Retry("k-1", "bob"))
    assert other.id != first.id
    changed = parse_request(small_request(partners=5))
    with pytest.raises(IdempotencyMismatch):
        jobs.submit_allocation(store, queue, changed, jobs.Retry("k-1", "alice"))
    assert len(store.jobs) == 2


def test_a_comparison_retry_is_the_same_job(store: FakeStore) -> None:
    base_id = _succeeded(store)
    body = {"base": {"allocation_id": base_id}, "scenarios": [{"name": "more", "changes": {}}]}
    retry = jobs.Retry("c-1")
    first = jobs.submit_comparison(store, FakeQueue(), body, retry)
    assert jobs.submit_comparison(store, FakeQueue(), body, retry).id == first.id
    renamed = {**body, "scenarios": [{"name": "less", "changes": {}}]}
    with pytest.raises(IdempotencyMismatch):
        jobs.submit_comparison(store, FakeQueue(), renamed, retry)
