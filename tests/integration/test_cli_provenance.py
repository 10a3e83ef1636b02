"""`windmaker adopt`, `windmaker audit` and the audit entries of `windmaker keys`, on the
configured (SQLite) database, acting as the operating-system user."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import cli.provenance
from adapters.store import Store, store_for
from cli.main import main


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("WINDMAKER_DATABASE_URL", url)
    monkeypatch.setattr(cli.provenance.getpass, "getuser", lambda: "olga")
    store = store_for(url)  # the one the commands get from default_store()
    yield store
    store.dispose()


def _succeeded(store: Store, name: str) -> str:
    job = store.create_job("allocation", name=name, request_body={"name": name})
    assert store.claim_job(job.id, "w")
    assert store.finish_job(job.id, "w", plans=[{"rank": 1}, {"rank": 2}])
    return job.id


def test_adopt_then_read_the_audit_log(store: Store) -> None:
    job_id = _succeeded(store, "spring")
    adopted = run("adopt", job_id, "2")
    assert adopted.exit_code == 0 and "adopted plan 2" in adopted.stdout
    assert "already" in run("adopt", job_id, "2").stdout
    current = store.current_adoption("spring")
    assert current is not None and (current.job_id, current.rank) == (job_id, 2)
    assert current.adopted_by == "olga"

    key = run("keys", "create", "--role", "viewer", "--name", "dashboards")
    key_id = key.stdout.split("key id:")[1].split()[0]
    assert run("keys", "revoke", key_id).exit_code == 0

    lines = run("audit", "--json").stdout.splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("key.revoke", "olga"),
        ("key.create", "olga"),
        ("adopt", "olga"),
        ("submit", "anonymous"),
    ]
    assert entries[2]["target"] == "spring" and entries[2]["details"]["rank"] == 2
    table = run("audit", "--action", "adopt").stdout
    assert "adopt" in table and "spring" in table and "key.create" not in table
    limited = run("audit", "--limit", "1")
    assert "key.revoke" in limited.stdout and "1 of 4 entries" in limited.stderr
    assert run("audit", "--action", "delete").exit_code == 2


def test_adopt_refuses_what_cannot_be_adopted(store: Store) -> None:
    job_id = _succeeded(store, "spring")
    for args, reason in [
        ((job_id, "3"), "no plan of rank 3"),
        (("no-such-job", "1"), "no allocation"),
    ]:
        result = run("adopt", *args)
        assert result.exit_code == 1 and reason in result.output
        assert "Traceback" not in result.output
    queued = store.create_job("allocation", name="spring", request_body={})
    result = run("adopt", queued.id, "1")
    assert result.exit_code == 1 and "queued" in result.output
    assert run("adopt", job_id, "0").exit_code == 2
    assert store.current_adoption("spring") is None


def test_the_cli_user_falls_back_to_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise KeyError("uid 1234 has no passwd entry")

    monkeypatch.setattr(cli.provenance.getpass, "getuser", no_user)
    assert cli.provenance.cli_actor() == "cli"
