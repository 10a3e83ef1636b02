"""XLSX downloads and adopting a plan from the page, against the real API: the files are
the API's, and the adoption the page shows is the one `GET /v1/programmes/{name}/adopted`
returns."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.web.conftest import LiveApp, Watch
from tests.web.test_planner import SOLVE_TIMEOUT_MS

PLAN_XLSX = "/v1/allocations/{job_id}/plans/{rank}.xlsx"
COMPARISON_XLSX = "/v1/comparisons/{job_id}.xlsx"
ADOPT = "/v1/allocations/{job_id}/plans/{rank}/adopt"
ADOPTED = "/v1/programmes/{name}/adopted"


def require(live_app: LiveApp, *paths: str) -> None:
    """Skip, naming the endpoint, when the API does not have it yet."""
    spec = requests.get(f"{live_app.url}/openapi.json", timeout=10).json()
    missing = [path for path in paths if path not in spec["paths"]]
    if missing:
        pytest.skip(f"the API has no {', '.join(missing)} yet")


def solve(page: Page, url: str, name: str | None = None) -> str:
    """Solve the tiny fixture from the page (as programme `name`); returns the job id."""
    page.goto(url + "/")
    page.get_by_label("Fixture", exact=True).select_option("tiny")
    if name is not None:
        page.get_by_label("Programme name").fill(name)
    page.get_by_label("Time limit (seconds)").fill("2")
    with page.expect_response(
        lambda r: r.url.endswith("/v1/allocations") and r.request.method == "POST"
    ) as posted:
        page.get_by_role("button", name="Solve", exact=True).click()
    expect(page.locator("#progress-status")).to_have_text("succeeded", timeout=SOLVE_TIMEOUT_MS)
    return str(posted.value.json()["id"])


def download(page: Page, link: str, tmp_path: Path) -> bytes:
    with page.expect_download() as saved:
        page.get_by_role("link", name=link, exact=True).click()
    path = tmp_path / saved.value.suggested_filename
    saved.value.save_as(path)
    return path.read_bytes()


def assert_same_workbook(downloaded: bytes, api: bytes) -> None:
    """Byte for byte: a workbook's bytes do not depend on when it was saved."""
    assert downloaded[:4] == b"PK\x03\x04"
    assert downloaded == api


def test_xlsx_and_csv_downloads_are_the_apis(
    page: Page, live_app: LiveApp, watched: Watch, tmp_path: Path
) -> None:
    require(live_app, PLAN_XLSX, COMPARISON_XLSX)
    job_id = solve(page, live_app.url)
    base = f"{live_app.url}/v1/allocations/{job_id}/plans/1"

    xlsx = download(page, "Download XLSX", tmp_path)
    assert_same_workbook(xlsx, requests.get(base + ".xlsx", timeout=30).content)

    every = download(page, "Download all partners (CSV)", tmp_path)
    assert every == requests.get(base + ".csv?all=1", timeout=30).content
    funded = requests.get(base + ".csv", timeout=30).content
    assert len(every.splitlines()) >= len(funded.splitlines())

    page.get_by_label("Scenario name").fill("more traffic")
    page.get_by_label("traffic budget ×").fill("1.5")
    with page.expect_response(
        lambda r: r.url.endswith("/v1/comparisons") and r.request.method == "POST"
    ) as posted:
        page.get_by_role("button", name="Compare", exact=True).click()
    comparison_id = posted.value.json()["id"]
    expect(page.locator("#comparison-table")).to_be_visible(timeout=SOLVE_TIMEOUT_MS)
    book = download(page, "Download comparison XLSX", tmp_path)
    expected = requests.get(f"{live_app.url}/v1/comparisons/{comparison_id}.xlsx", timeout=30)
    assert_same_workbook(book, expected.content)
    watched.assert_clean()


def test_adopt_a_plan(page: Page, live_app: LiveApp, watched: Watch, screenshot: Any) -> None:
    require(live_app, ADOPT, ADOPTED)
    name = f"Spring push {uuid.uuid4().hex[:6]}"
    adopted_url = f"{live_app.url}/v1/programmes/{quote(name, safe='')}/adopted"
    first = solve(page, live_app.url, name)
    status = page.locator("#adopt-status")
    expect(page.locator("#programme-name")).to_have_text(name)
    expect(status).to_have_text(f"No plan of programme “{name}” is adopted yet.")
    assert requests.get(adopted_url, timeout=10).status_code == 404

    page.get_by_role("button", name="Adopt this plan").click()
    expect(status).to_contain_text("Adopted by anonymous on ")
    adopted = requests.get(adopted_url, timeout=10).json()
    assert (adopted["job_id"], adopted["rank"], adopted["adopted_by"]) == (first, 1, "anonymous")
    expect(status).to_have_attribute("data-adopted-at", adopted["adopted_at"])
    expect(status).to_have_attribute("data-adopted-by", "anonymous")
    expect(page.get_by_role("button", name="Adopt this plan")).to_be_disabled()
    screenshot(page, "10-adopted", "#plan-section .adopt-row")

    # A later job of the same programme: the page says which plan is adopted, and
    # adopting this one replaces it (the earlier one stays in the history).
    second = solve(page, live_app.url, name)
    expect(status).to_contain_text(f"The programme's adopted plan is job {first[:8]}")
    page.get_by_role("button", name="Adopt this plan").click()
    expect(status).to_contain_text("Adopted by anonymous on ")
    assert requests.get(adopted_url, timeout=10).json()["job_id"] == second
    history = page.locator("#adopt-history-table tbody tr")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text(second)
    expect(history.nth(1)).to_contain_text(first)

    page.get_by_role("button", name="中文").click()
    expect(status).to_contain_text("anonymous 于")
    expect(page.get_by_role("button", name="采用此方案")).to_be_disabled()
    page.get_by_role("button", name="English").click()
    watched.assert_clean()
