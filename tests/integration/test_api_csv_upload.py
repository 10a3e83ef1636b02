"""Multipart uploads as planners save them: the 202 says how each file was read; a bad
cell, a too-wide header or a curve that overflows is a 422 naming row and column."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapters.config import load_config
from api.app import create_app
from tests.integration.api_support import validate_against_spec

REQUEST = {
    "resources": [{"name": "fund", "budget": 1e7}],
    "tiers": [{"name": "big", "min_gmv": 1e8, "target": 1}],
    "constraints": [
        {"type": "eligibility", "resource": "fund", "where": {"supply_chain": {">=": 50}}}
    ],
}
PARTNERS = (
    "partner_id;name;baseline_gmv;region;supply_chain;fund_curve;fund_coef;fund_scale\r\n"
    "p1;东方直播;95000000;华东;60;log;1000000;100000\r\n"
    "p2;西部优选;90000000;华西;72;log;1000000;100000\r\n"
    "p3;南方小店;20000000;华南;40;log;1000000;100000\r\n"
)
PACKAGES = "partner_id\tpackage\tfund\tuplift\r\n"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
            "RUNNER_AUTOSTART": 0,
            "MAX_CSV_COLUMNS": 20,
            # Threads: a spawned solver pool would outlive the test.
            "JOB_ISOLATION": "thread",
        }
    )
    yield app
    app.extensions["windmaker"].dispatcher.runner.stop()
    app.extensions["windmaker"].store.dispose()


def upload(client: FlaskClient, partners: bytes, **parts: Any) -> Any:
    data: dict[str, Any] = {
        "request": json.dumps(REQUEST),
        "partners": (io.BytesIO(partners), "partners.csv"),
        **parts,
    }
    return client.post("/v1/allocations", data=data, content_type="multipart/form-data")


def test_a_gbk_semicolon_file_is_accepted_and_described(app: Flask) -> None:
    client = app.test_client()
    response = upload(client, PARTNERS.encode("gbk"))
    assert response.status_code == 202, response.data[:500]
    body = response.get_json()
    assert body["csv_files"] == {
        "partners": {"encoding": "GB18030", "delimiter": "semicolon", "rows": 3}
    }
    spec = client.get("/openapi.json").get_json()
    validate_against_spec(spec, "/v1/allocations", "POST", 202, body)
    job = client.get(body["url"]).get_json()
    assert job["status"] in ("queued", "running", "succeeded")


def test_json_submissions_carry_no_csv_files(app: Flask) -> None:
    partners = [
        {"id": "p1", "baseline_gmv": 1, "response": {"fund": {"curve": "linear", "roi": 1}}}
    ]
    response = app.test_client().post(
        "/v1/allocations", json={**REQUEST, "constraints": [], "partners": partners}
    )
    assert response.status_code == 202 and "csv_files" not in response.get_json()


def test_both_files_are_described(app: Flask) -> None:
    partners = PARTNERS.replace(";log;1000000;100000", ";;;").encode("utf-8-sig")
    packages = (PACKAGES + "p1\t入门\t100000\t5000000\r\n").encode("utf-8")
    response = upload(app.test_client(), partners, packages=(io.BytesIO(packages), "pk.csv"))
    assert response.status_code == 202, response.data[:500]
    assert response.get_json()["csv_files"] == {
        "partners": {"encoding": "UTF-8 with BOM", "delimiter": "semicolon", "rows": 3},
        "packages": {"encoding": "UTF-8", "delimiter": "tab", "rows": 1},
    }


def test_a_non_numeric_cell_compared_by_order_is_a_422_naming_row_and_column(
    app: Flask,
) -> None:
    client = app.test_client()
    response = upload(client, PARTNERS.replace(";72;", ";49%;").encode("gbk"))
    assert response.status_code == 422
    body = response.get_json()
    assert list(body["errors"]) == ["partners.csv row 3, column supply_chain"]
    assert "not a number: '49%'" in body["errors"]["partners.csv row 3, column supply_chain"][0]
    validate_against_spec(
        client.get("/openapi.json").get_json(), "/v1/allocations", "POST", 422, body
    )


def test_a_too_wide_file_is_a_422_by_the_configured_cap(app: Flask) -> None:
    header = ";".join(["partner_id", "baseline_gmv", *(f"a{i}" for i in range(19))])
    response = upload(app.test_client(), f"{header}\r\np1;1\r\n".encode())
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "partners.csv": ["has 21 columns; at most 20 are read (WINDMAKER_MAX_CSV_COLUMNS)"]
    }


def test_an_overflowing_curve_is_a_422_naming_row_and_column(app: Flask) -> None:
    bad = PARTNERS.replace(
        "p3;南方小店;20000000;华南;40;log;1000000;100000", "p3;x;1;y;40;log;1e308;1e-308"
    )
    response = upload(app.test_client(), bad.encode("utf-8"))
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["partners.csv row 4, column fund_curve"]


def test_undecodable_bytes_are_a_422_with_a_hint(app: Flask) -> None:
    response = upload(app.test_client(), "partner_id,baseline_gmv\ncafé,1\n".encode("latin-1"))
    assert response.status_code == 422
    (message,) = response.get_json()["errors"]["partners.csv"]
    assert "save it as UTF-8" in message


def test_a_scenario_whose_forecast_overflows_is_a_422_at_submission(app: Flask) -> None:
    curve = {"curve": "log", "coef": 1e6, "scale": 1e5}
    base = {
        **REQUEST,
        "constraints": [],
        "partners": [{"id": "p1", "baseline_gmv": 1e300, "response": {"fund": curve}}],
    }
    scenarios = [{"name": "boom", "changes": {"forecast": {"baseline": 1e10}}}]
    response = app.test_client().post(
        "/v1/comparisons", json={"base": base, "scenarios": scenarios}
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert errors["scenarios"]["0"]["changes"]["forecast"] == [
        "partner 'p1', baseline_gmv: is inf (must be finite)"
    ]


def test_the_column_cap_comes_from_the_environment_and_must_be_a_count() -> None:
    assert load_config(env={})["MAX_CSV_COLUMNS"] == 1000
    assert load_config(env={"WINDMAKER_MAX_CSV_COLUMNS": "50000"})["MAX_CSV_COLUMNS"] == 50000
    for bad in ("0", "many", "2.5"):
        with pytest.raises(ValueError, match="MAX_CSV_COLUMNS must be a whole number"):
            load_config(env={"WINDMAKER_MAX_CSV_COLUMNS": bad})
