"""The planner page's server side: the page, its assets and /docs are local; fixture
partner data follows the API's key rule."""

from __future__ import annotations

import io
import re
from pathlib import Path

from flask import Flask

from api.app import create_app
from api.auth import create_key
from fixtures import load_partners, partners_path


def make_app(tmp_path: Path, **config: object) -> Flask:
    return create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "RUNNER_AUTOSTART": False, **config}
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


def test_fixture_partners_need_a_key_when_auth_is_on(tmp_path: Path) -> None:
    app = make_app(tmp_path, REQUIRE_AUTH=True)
    client = app.test_client()
    assert client.get("/").status_code == 200  # the page itself asks for the key
    assert client.get("/web/fixtures/tiny/partners.json").status_code == 401
    _, token = create_key("viewer", store=app.extensions["windmaker"].store)
    response = client.get(
        "/web/fixtures/tiny/partners.json", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    partners = response.get_json()
    assert len(partners) == 8 and {"id", "name", "attributes"} <= set(partners[0])
    missing = client.get(
        "/web/fixtures/nope/partners.json", headers={"Authorization": f"Bearer {token}"}
    )
    assert missing.status_code == 404


def test_uploaded_partners_are_read_by_the_api_parser(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    good = partners_path("tiny").read_bytes()
    response = client.post(
        "/web/partners.json",
        data={"partners": (io.BytesIO(good), "mine.csv"), "resources": "subsidy,traffic,fund"},
    )
    assert response.status_code == 200
    assert [p["id"] for p in response.get_json()] == [p.id for p in load_partners("tiny")]
    bad = b"partner_id,baseline_gmv\nA,lots\n"
    refused = client.post("/web/partners.json", data={"partners": (io.BytesIO(bad), "bad.csv")})
    assert refused.status_code == 422
    assert "bad.csv row" in str(refused.get_json()["errors"])
    assert client.post("/web/partners.json", data={}).status_code == 400
