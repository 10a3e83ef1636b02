"""The planner page's server side: the page, its assets and /docs are local; fixture
partner data follows the API's key rule."""

from __future__ import annotations

import re
import time
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app, release_job_runner
from fixtures import load_partners, scenario
from service.keys import create_key


def make_app(tmp_path: Path, **config: object) -> Flask:
    # Threads: a spawned solver pool would outlive the test (see test_runner_processes).
    return create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
            "RUNNER_AUTOSTART": False,
            "JOB_ISOLATION": "thread",
            **config,
        }
    )


def test_page_and_docs_load_only_local_assets(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    for path in ("/", "/docs"):
        response = client.get(path)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assets = re.findall(r"""<(?:script|link)[^>]+(?:src|href)=["']([^"']+)""", html)
        assert assets, path
        for asset in assets:
            if asset.startswith("data:"):
                continue
            assert asset.startswith("/") and not asset.startswith("//"), f"{path} loads {asset}"
            assert client.get(asset).status_code == 200, asset


def test_page_labels(tmp_path: Path) -> None:
    html = make_app(tmp_path).test_client().get("/").get_data(as_text=True)
    assert '<label for="fixture" data-i18n="fixture">Fixture</label>' in html
    assert ">Solve</button>" in html
    assert ">Download CSV</a>" in html
    assert ">中文</button>" in html


def solved(client: FlaskClient, headers: dict[str, str]) -> str:
    body = {**scenario("tiny"), "partners": {"fixture": "tiny"}}
    body["options"].update(time_limit_s=2)
    job_id = str(client.post("/v1/allocations", json=body, headers=headers).get_json()["id"])
    deadline = time.monotonic() + 60
    while client.get(f"/v1/allocations/{job_id}", headers=headers).get_json()["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return job_id


def test_job_partners_and_reports_follow_the_key_rule(tmp_path: Path) -> None:
    app = make_app(tmp_path, REQUIRE_AUTH=True, RUNNER_AUTOSTART=True, JOB_POLL_S=0.1)
    try:
        client = app.test_client()
        assert client.get("/").status_code == 200  # the page itself asks for the key
        store = app.extensions["windmaker"].store
        _, token = create_key(store, "planner")
        headers = {"Authorization": f"Bearer {token}"}
        job_id = solved(client, headers)

        for path in (
            f"/web/allocations/{job_id}/partners.json",
            f"/web/allocations/{job_id}/report.html",
        ):
            assert client.get(path).status_code == 401
        partners = client.get(f"/web/allocations/{job_id}/partners.json", headers=headers)
        assert partners.status_code == 200
        names = {p.id: p.name for p in load_partners("tiny")}
        assert {p["id"]: p["name"] for p in partners.get_json()} == names

        report = client.get(f"/web/allocations/{job_id}/report.html", headers=headers)
        assert report.status_code == 200 and report.mimetype == "text/html"
        assert "attachment" in report.headers["Content-Disposition"]
        html = report.get_data(as_text=True)
        assert next(iter(names.values())) in html and '"impressions"' in html
        assert client.get("/web/allocations/nope/partners.json", headers=headers).status_code == 404
        assert client.get("/web/comparisons/nope/report.html", headers=headers).status_code == 404
    finally:
        release_job_runner(app)
