"""The static report: one HTML file that shows a plan list or a comparison with no server
and no internet."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from adapters.browser.report import write_report
from fixtures import scenario
from tests.web.conftest import LiveApp, watch_page

UNITS = {r["name"]: r["unit"] for r in scenario("tiny")["resources"]}


def wait(live_app: LiveApp, kind: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = requests.get(f"{live_app.url}/v1/{kind}/{job_id}", timeout=10).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            assert job["status"] == "succeeded", job
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"{kind} {job_id} did not finish")


@pytest.fixture(scope="module")
def solved(live_app: LiveApp) -> dict[str, Any]:
    body = scenario("tiny")
    body["partners"] = {"fixture": "tiny"}
    body["options"].update(time_limit_s=2, plans=2)
    job_id = requests.post(f"{live_app.url}/v1/allocations", json=body, timeout=10).json()["id"]
    return wait(live_app, "allocations", job_id)


def open_report(page: Page, path: Path) -> Any:
    watch = watch_page(page, "file://")
    page.goto(path.as_uri())
    return watch


def test_plan_report_is_self_contained(
    page: Page, solved: dict[str, Any], tmp_path: Path, screenshot: Any
) -> None:
    plans = solved["plans"]
    path = write_report(plans, tmp_path / "report.html", units=UNITS)
    html = path.read_text(encoding="utf-8")
    # Nothing to fetch: no external script, style, image or font.
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", html)
    watch = open_report(page, path)
    for plan in plans:
        rows = page.locator(f"#plan{plan['rank']}-partner-table tbody tr")
        expect(rows).to_have_count(len(plan["allocations"]))
    expect(page.locator('[data-chart="attainment"] svg')).to_have_count(len(plans))
    screenshot(page, "7-report")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_label("筛选伙伴").first).to_be_visible()
    watch.assert_clean()


def test_comparison_report(
    page: Page, live_app: LiveApp, solved: dict[str, Any], tmp_path: Path
) -> None:
    body = {
        "base": {"allocation_id": solved["id"]},
        "scenarios": [{"name": "more fund", "changes": {"budgets": {"fund": "x1.5"}}}],
    }
    job_id = requests.post(f"{live_app.url}/v1/comparisons", json=body, timeout=10).json()["id"]
    comparison = wait(live_app, "comparisons", job_id)
    path = write_report(comparison, tmp_path / "comparison.html")
    watch = open_report(page, path)
    expect(page.locator("#comparison-table thead th")).to_have_text(["", "base", "more fund"])
    expect(page.locator('[data-chart="comparison"] svg')).to_have_count(1)
    watch.assert_clean()


def explained_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """`plan` with the optional blocks of docs/uncertainty.md and §7, as the API will add them."""
    first = plan["allocations"][0]["partner_id"]
    return {
        **plan,
        "uncertainty": {
            "confidence": 0.9,
            "correlation": 0.0,
            "method": "exact",
            "draws": 0,
            "tiers": [
                {
                    "name": tier["name"],
                    "target": tier["target"],
                    "expected_achieved": tier["achieved"] - 0.4,
                    "p_target": 0.61,
                    "achieved_at_confidence": tier["achieved"] - 1,
                    "std_error": None,
                }
                for tier in plan["tiers"]
            ],
        },
        "explanation": {
            "binding": [
                {
                    "kind": "budget",
                    "resource": "subsidy",
                    "utilization": 1.0,
                    "marginal_value": {"per_unit": 1, "gmv": 2.5, "weighted_shortfall": -1e-6},
                }
            ],
            "near_misses": [
                {
                    "partner_id": first,
                    "tier": "1B",
                    "gmv_gap": 12_000_000.0,
                    "cheapest_extra": {"subsidy": 3_000_000.0},
                    "extra_cost": 3_000_000.0,
                }
            ],
        },
    }


def test_explanation_and_uncertainty_are_shown_when_present(
    page: Page, solved: dict[str, Any], tmp_path: Path
) -> None:
    plan = solved["plans"][0]
    path = write_report([explained_plan(plan)], tmp_path / "explained.html", units=UNITS)
    watch = open_report(page, path)
    expect(page.locator("#plan1-near-miss-table tbody tr")).to_have_count(1)
    expect(page.locator("#plan1-binding-table tbody tr")).to_contain_text("subsidy")
    expect(page.locator("#plan1-tier-table thead")).to_contain_text("P(meet target)")
    expect(page.locator("#plan1-tier-table tbody")).to_contain_text("61%")
    watch.assert_clean()

    # Without those blocks the sections are not there at all.
    bare = {key: value for key, value in plan.items() if key not in ("explanation", "uncertainty")}
    plain = write_report([bare], tmp_path / "plain.html", units=UNITS)
    page.goto(plain.as_uri())
    expect(page.locator("#plan1-partner-table")).to_be_visible()
    expect(page.locator("#plan1-near-miss-table")).to_have_count(0)
    expect(page.locator("#plan1-tier-table thead")).not_to_contain_text("P(meet target)")
