"""With auth on, the page asks for a key, and with one it solves and downloads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from service.keys import create_key
from tests.web.conftest import LiveApp, start_app, watch_page
from tests.web.test_planner import SOLVE_TIMEOUT_MS


@pytest.fixture(scope="module")
def secured_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    live = start_app(tmp_path_factory.mktemp("web-auth"), REQUIRE_AUTH=True)
    yield live
    live.stop()


def test_key_entry(page: Page, secured_app: LiveApp, tmp_path: Path) -> None:
    store = secured_app.app.extensions["windmaker"].store
    _, token = create_key(store, "planner", "web test")
    watch = watch_page(page, secured_app.url)
    page.goto(secured_app.url + "/")
    page.get_by_label("Time limit (seconds)").fill("2")
    page.get_by_role("button", name="Solve", exact=True).click()
    expect(page.locator("#notice")).to_contain_text("API key")
    expect(page.get_by_label("API key")).to_be_focused()

    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Solve", exact=True).click()
    expect(page.locator("#progress-status")).to_have_text("succeeded", timeout=SOLVE_TIMEOUT_MS)
    expect(page.locator("#partner-table tbody tr").first).to_be_visible()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = tmp_path / "plan.csv"
    download.value.save_as(saved)
    job_id = page.evaluate("document.getElementById('download-csv').dataset.filename")
    job_id = job_id.split("-plan-")[0]
    expected = requests.get(
        f"{secured_app.url}/v1/allocations/{job_id}/plans/1.csv",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert expected.status_code == 200
    assert saved.read_bytes() == expected.content
    # The 401 before the key was entered is the API's answer, not a page error; anything
    # else logged to the console is.
    watch.errors = [e for e in watch.errors if "401" not in e]
    watch.assert_clean()
