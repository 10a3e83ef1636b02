"""Provenance over the in-memory fake store: submitters, adoption rules and history,
protection of adopted jobs, the audit log. No database, no solver."""

from __future__ import annotations

import pytest

from models.schemas import RequestValidationError, parse_request
from service import jobs, keys, provenance
from service.errors import Conflict, Forbidden, NotFound
from service.records import (
    ADOPT,
    ALLOCATION,
    CANCEL,
    CANCELLED,
    KEY_CREATE,
    KEY_REVOKE,
    SUBMIT,
    ApiKey,
    utcnow,
)
from tests.integration.api_support import small_request
from tests.support.fakes import FakeQueue, FakeStore


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def _submit(store: FakeStore, name: str = "spring", by: str = "alice") -> str:
    body = small_request(partners=4)
    body["name"] = name
    request = parse_request(body)
    return jobs.submit_allocation(store, FakeQueue(), request, submitted_by=by).id


def _succeed(store: FakeStore, job_id: str, ranks: int = 2) -> None:
    assert store.claim_job(job_id, "w")
    plans = [{"rank": rank, "marker": f"{job_id}/{rank}"} for rank in range(1, ranks + 1)]
    assert store.finish_job(job_id, "w", plans=plans)


def test_jobs_record_who_submitted_them(store: FakeStore) -> None:
    job_id = _submit(store, by="alice")
    assert jobs.get_allocation(store, job_id)["submitted_by"] == "alice"
    anonymous = jobs.submit_allocation(store, FakeQueue(), parse_request(small_request(4)))
    assert jobs.job_view(anonymous)["submitted_by"] == "anonymous"
    body = {"base": {"allocation_id": job_id}, "scenarios": [{"name": "x", "changes": {}}]}
    comparison = jobs.submit_comparison(store, FakeQueue(), body, submitted_by="bob")
    assert jobs.get_comparison(store, comparison.id)["submitted_by"] == "bob"


def test_the_stored_request_is_returned_as_stored(store: FakeStore) -> None:
    job_id = _submit(store)
    job = store.get_job(job_id)
    assert job is not None and job.request_id is not None
    assert jobs.allocation_request(store, job_id) == store.requests[job.request_id]
    assert jobs.allocation_request(store, job_id)["name"] == "spring"
    with pytest.raises(NotFound):
        jobs.allocation_request(store, "no-such-job")


def test_actors_are_key_names_or_anonymous() -> None:
    named = ApiKey("k1", "alice", keys.PLANNER, utcnow(), None, None)
    unnamed = ApiKey("k2", "", keys.VIEWER, utcnow(), None, None)
    assert keys.actor_of(named) == "alice"
    assert keys.actor_of(unnamed) == "key k2"
    assert keys.actor_of(None) == "anonymous"
    keys.require_planner(named, "read the audit log")
    keys.require_planner(None, "read the audit log")  # authentication off
    with pytest.raises(Forbidden, match="planner"):
        keys.require_planner(unnamed, "read the audit log")


def test_adopting_a_plan_replaces_the_programme_s_current_plan(store: FakeStore) -> None:
    first, second = _submit(store), _submit(store)
    _succeed(store, first)
    _succeed(store, second)
    with pytest.raises(NotFound, match="no adopted plan"):
        provenance.adopted(store, "spring")

    view, created = provenance.adopt(store, first, 2, by="alice")
    assert created and view["programme"] == "spring" and view["plan"]["marker"] == f"{first}/2"
    again, created = provenance.adopt(store, first, 2, by="bob")
    assert not created and again["adopted_by"] == "alice"  # nothing changed

    provenance.adopt(store, second, 1, by="bob")
    current = provenance.adopted(store, "spring")
    assert (current["job_id"], current["rank"], current["adopted_by"]) == (second, 1, "bob")
    assert current["plan"]["marker"] == f"{second}/1" and current["current"]

    items, total = provenance.history(store, "spring", page=1, page_size=10)
    assert total == 2
    assert [(i["job_id"], i["rank"], i["current"]) for i in items] == [
        (second, 1, True),
        (first, 2, False),
    ]
    page_two, _ = provenance.history(store, "spring", page=2, page_size=1)
    assert [i["job_id"] for i in page_two] == [first]
    assert provenance.history(store, "autumn", page=1, page_size=10) == ([], 0)
    assert len([a for a in store.adoption_rows if a.current]) == 1


def test_only_a_succeeded_job_s_existing_plan_can_be_adopted(store: FakeStore) -> None:
    queued = _submit(store)
    with pytest.raises(Conflict, match="queued"):
        provenance.adopt(store, queued, 1, by="alice")
    jobs.cancel_job(store, queued, ALLOCATION)
    with pytest.raises(Conflict, match="cancelled"):
        provenance.adopt(store, queued, 1, by="alice")
    done = _submit(store)
    _succeed(store, done, ranks=1)
    with pytest.raises(NotFound, match="rank 3") as caught:
        provenance.adopt(store, done, 3, by="alice")
    assert caught.value.errors == {"rank": ["no such plan (1 to 1)"]}
    with pytest.raises(NotFound):
        provenance.adopt(store, "no-such-job", 1, by="alice")
    unnamed = _submit(store, name="")
    _succeed(store, unnamed)
    with pytest.raises(Conflict, match="no name"):
        provenance.adopt(store, unnamed, 1, by="alice")
    assert store.adoption_rows == []


def test_an_adopted_job_cannot_be_cancelled(store: FakeStore) -> None:
    job_id = _submit(store)
    _succeed(store, job_id)
    provenance.adopt(store, job_id, 1, by="alice")
    with pytest.raises(Conflict, match="adopted") as caught:
        jobs.cancel_job(store, job_id, ALLOCATION)
    assert caught.value.errors == {"job_id": ["adopted"]}
    # Still protected once another plan replaced it: the history points at it.
    other = _submit(store)
    _succeed(store, other)
    provenance.adopt(store, other, 1, by="alice")
    with pytest.raises(Conflict, match="adopted"):
        jobs.cancel_job(store, job_id, ALLOCATION)


def test_the_audit_log_lists_every_kind_of_change_newest_first(store: FakeStore) -> None:
    key_id, _ = keys.create_key(store, keys.VIEWER, "dashboards", by="root")
    job_id = _submit(store, by="alice")
    jobs.cancel_job(store, job_id, ALLOCATION, by="bob")
    jobs.cancel_job(store, job_id, ALLOCATION, by="bob")  # no-op: not audited twice
    done = _submit(store, by="alice")
    _succeed(store, done)
    provenance.adopt(store, done, 1, by="carol")
    provenance.adopt(store, done, 1, by="carol")  # no-op: not audited twice
    assert keys.revoke_key(store, key_id, by="root")

    entries, total = provenance.audit_log(store, page=1, page_size=50)
    assert total == 6
    assert [(e["action"], e["actor"], e["target"]) for e in entries] == [
        (KEY_REVOKE, "root", key_id),
        (ADOPT, "carol", "spring"),
        (SUBMIT, "alice", done),
        (CANCEL, "bob", job_id),
        (SUBMIT, "alice", job_id),
        (KEY_CREATE, "root", key_id),
    ]
    assert entries[1]["details"] == {"job_id": done, "rank": 1, "previous": None}
    assert entries[-1]["details"] == {"name": "dashboards", "role": "viewer"}
    assert entries[2]["details"] == {"kind": ALLOCATION, "name": "spring"}
    submits, count = provenance.audit_log(store, page=1, page_size=1, action=SUBMIT)
    assert count == 2 and [e["target"] for e in submits] == [done]
    with pytest.raises(RequestValidationError) as caught:
        provenance.audit_log(store, page=1, page_size=10, action="delete")
    assert "action" in caught.value.messages
    with pytest.raises(NotFound, match="no page"):
        provenance.audit_log(store, page=0, page_size=10)
    assert store.get_job(job_id) is not None and store.job_status(job_id) == CANCELLED
