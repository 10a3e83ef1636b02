"""Cancelling a running solve from the page shows the plan the engine kept.

A generated 2,000-partner programme with a gap no engine certifies (0) and a minute's
limit is uploaded; once the progress shows a best plan, Cancel. The page then shows that
plan (the API's, `interrupted`, with its gap) and says it is the plan found before the
cancel, and keeps the controls the API refuses for it (adopt, what-ifs) out of sight.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from fixtures.families import family_programme
from tests.web.conftest import LiveApp, Watch
from tests.web.test_planner import SOLVE_TIMEOUT_MS, api_job

pytestmark = pytest.mark.slow


def test_a_cancelled_solve_shows_its_kept_plan(
    page: Page, live_app: LiveApp, watched: Watch, screenshot: Any, tmp_path: Path
) -> None:
    programme = family_programme(7, 2000, 0.95, mip_gap=0.0, time_limit_s=60.0)
    partners = tmp_path / "partners.csv"
    partners.write_text(programme.csv_text(), encoding="utf-8")
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(programme.scenario), encoding="utf-8")

    page.goto(live_app.url + "/")
    page.get_by_label("Upload CSV").check()
    page.get_by_label("Partners CSV").set_input_files(str(partners))
    page.get_by_label("Scenario JSON", exact=False).set_input_files(str(scenario))
    expect(page.get_by_label("Time limit (seconds)")).to_have_value("60")
    with page.expect_response(
        lambda r: r.url.endswith("/v1/allocations") and r.request.method == "POST"
    ) as posted:
        page.get_by_role("button", name="Solve", exact=True).click()
    job_id = str(posted.value.json()["id"])
    expect(page.locator("#progress-best")).not_to_have_text("—", timeout=SOLVE_TIMEOUT_MS)
    expect(page.locator("#progress-status")).to_have_text("running")
    page.get_by_role("button", name="Cancel", exact=True).click()

    notice = page.locator("#notice")
    expect(notice).to_contain_text("best plan found before the cancel", timeout=30_000)
    job = api_job(live_app, job_id)
    assert job["status"] == "cancelled"
    plan = job["plans"][0]
    assert plan["solver"]["status"] == "interrupted" and plan["solver"]["mip_gap"] > 0
    expect(page.locator("#plan-section")).to_be_visible()
    rows = page.locator("#partner-table tbody tr")
    expect(rows).to_have_count(len(plan["allocations"]))
    shown = set(rows.evaluate_all("rows => rows.map(r => r.dataset.partnerId)"))
    assert shown == {a["partner_id"] for a in plan["allocations"]}
    expect(page.locator("#adopt-row")).to_be_hidden()
    expect(page.locator("#whatif-section")).to_be_hidden()
    expect(page.get_by_role("link", name="Download CSV")).to_be_visible()
    screenshot(page, "cancelled-kept-plan", "#plan-section")
    watched.assert_clean()
