"""The planner page used as a planner would: pick a fixture, solve, read the plan, download
it, try a what-if; with no request leaving the app and no console error."""

from __future__ import annotations

from typing import Any

import requests
from playwright.sync_api import Page, expect

from tests.web.conftest import LiveApp, Watch, unlabelled_controls

SOLVE_TIMEOUT_MS = 60_000


def solve_fixture(page: Page, url: str, fixture: str = "tiny", time_limit: int = 5) -> str:
    """Solve `fixture` from the page; returns the job id the page polled."""
    page.goto(url + "/")
    page.get_by_label("Fixture", exact=True).select_option(fixture)
    page.get_by_label("Time limit (seconds)").fill(str(time_limit))
    with page.expect_response(
        lambda r: r.url.endswith("/v1/allocations") and r.request.method == "POST"
    ) as posted:
        page.get_by_role("button", name="Solve", exact=True).click()
    job_id = str(posted.value.json()["id"])
    expect(page.locator("#progress-section")).to_be_visible()
    expect(page.locator("#progress-status")).to_have_text("succeeded", timeout=SOLVE_TIMEOUT_MS)
    expect(page.locator("#plan-section")).to_be_visible()
    return job_id


def api_job(live_app: LiveApp, job_id: str, **kwargs: Any) -> dict[str, Any]:
    response = requests.get(f"{live_app.url}/v1/allocations/{job_id}", timeout=10, **kwargs)
    response.raise_for_status()
    return dict(response.json())


def test_solve_read_download_and_compare(
    page: Page, live_app: LiveApp, watched: Watch, screenshot: Any, tmp_path: Any
) -> None:
    screenshot_page = screenshot
    page.goto(live_app.url + "/")
    expect(page.get_by_label("Fixture", exact=True)).to_be_visible()
    screenshot_page(page, "1-request", "#request-section")

    job_id = solve_fixture(page, live_app.url)
    expect(page.locator("#progress-elapsed")).not_to_have_text("—")
    plan = api_job(live_app, job_id)["plans"][0]

    # The partner table holds exactly the plan's allocations.
    rows = page.locator("#partner-table tbody tr")
    expect(rows).to_have_count(len(plan["allocations"]))
    shown = set(rows.evaluate_all("rows => rows.map(r => r.dataset.partnerId)"))
    assert shown == {a["partner_id"] for a in plan["allocations"]}
    first = plan["allocations"][0]
    row = page.locator(f'#partner-table tr[data-partner-id="{first["partner_id"]}"]')
    expect(row).to_contain_text(first["tier"] or "")

    # Charts are drawn (vega-embed renders SVG).
    expect(page.locator('[data-chart="attainment"] svg')).to_have_count(1)
    expect(page.locator('[data-chart="spend"] svg')).to_have_count(1)
    expect(page.locator("#tier-table tbody tr")).to_have_count(len(plan["tiers"]))
    screenshot_page(page, "2-progress", "#progress-section")
    screenshot_page(page, "3-plan", "#plan-section")

    # Filtering and sorting act on those rows only.
    page.get_by_label("Filter partners").fill(first["partner_id"])
    expect(rows).to_have_count(1)
    page.get_by_label("Filter partners").fill("")
    page.get_by_role("button", name="Baseline GMV").click()
    baselines = sorted(a["baseline_gmv"] for a in plan["allocations"])
    expect(page.locator("#partner-table th", has_text="Baseline GMV")).to_have_attribute(
        "aria-sort", "descending"
    )
    first_id = rows.first.get_attribute("data-partner-id")
    assert (
        next(a for a in plan["allocations"] if a["partner_id"] == first_id)["baseline_gmv"]
        == baselines[-1]
    )

    # The CSV download is the API's CSV, byte for byte.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = tmp_path / "plan.csv"
    download.value.save_as(saved)
    expected = requests.get(f"{live_app.url}/v1/allocations/{job_id}/plans/1.csv", timeout=10)
    assert saved.read_bytes() == expected.content

    # The static report of the job downloads as one HTML file holding its plan.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download report (HTML)").click()
    report = tmp_path / "report.html"
    download.value.save_as(report)
    assert first["partner_id"] in report.read_text(encoding="utf-8")

    # A what-if with less subsidy, solved against the job as its base, side by side.
    page.get_by_label("Scenario name").fill("less subsidy")
    page.get_by_label("subsidy budget ×").fill("0.5")
    page.get_by_role("button", name="Compare", exact=True).click()
    table = page.locator("#comparison-table")
    expect(table).to_be_visible(timeout=SOLVE_TIMEOUT_MS)
    expect(table.locator("thead th")).to_have_text(["", "base", "less subsidy"])
    expect(page.locator('[data-chart="comparison"] svg')).to_have_count(1)
    expect(page.get_by_role("link", name="Download comparison report (HTML)")).to_be_visible()
    screenshot_page(page, "4-what-if", "#whatif-section")

    # The plan and the comparison re-labelled in Chinese, figures unchanged.
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("link", name="下载 CSV")).to_be_visible()
    expect(page.get_by_label("筛选伙伴")).to_be_visible()
    expect(page.locator("#partner-table tbody tr")).to_have_count(len(plan["allocations"]))
    expect(page.locator("#comparison-table thead th")).to_have_text(["", "base", "less subsidy"])
    screenshot_page(page, "5-plan-chinese", "#plan-section")
    page.get_by_role("button", name="English").click()
    watched.assert_clean()


def test_upload_partners_csv(page: Page, live_app: LiveApp, watched: Watch) -> None:
    from fixtures import load_partners, partners_path

    page.goto(live_app.url + "/")
    page.get_by_label("Upload CSV").check()
    page.get_by_label("Partners CSV").set_input_files(str(partners_path("tiny")))
    page.get_by_label("Time limit (seconds)").fill("2")
    with page.expect_response(
        lambda r: r.url.endswith("/v1/allocations") and r.request.method == "POST"
    ) as posted:
        page.get_by_role("button", name="Solve", exact=True).click()
    job_id = posted.value.json()["id"]
    expect(page.locator("#progress-status")).to_have_text("succeeded", timeout=SOLVE_TIMEOUT_MS)
    plan = api_job(live_app, job_id)["plans"][0]
    expect(page.locator("#partner-table tbody tr")).to_have_count(len(plan["allocations"]))
    # Names and attributes come from the job's stored request, i.e. the uploaded file.
    names = {p.id: p.name for p in load_partners("tiny")}
    first = plan["allocations"][0]["partner_id"]
    expect(page.locator(f'#partner-table tr[data-partner-id="{first}"]')).to_contain_text(
        names[first]
    )
    expect(page.locator('[data-chart="attribute"] svg')).to_have_count(1)
    watched.assert_clean()


def test_controls_are_labelled_and_chinese_switch(
    page: Page, live_app: LiveApp, watched: Watch, screenshot: Any
) -> None:
    page.goto(live_app.url + "/")
    unlabelled = unlabelled_controls(page)
    assert unlabelled == []

    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("button", name="English")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_label("数据集", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="求解")).to_be_visible()
    expect(page.get_by_label("预算：subsidy（CNY）")).to_be_visible()
    expect(page.get_by_label("数据集", exact=True).locator("option:checked")).to_have_text(
        "tiny — 8 个伙伴"
    )
    screenshot(page, "6-request-chinese", "#request-section")

    # The choice survives a reload; the switch goes back.
    page.reload()
    expect(page.get_by_role("button", name="求解")).to_be_visible()
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("button", name="Solve", exact=True)).to_be_visible()
    expect(page.get_by_label("Fixture", exact=True)).to_be_visible()
    watched.assert_clean()


def test_keyboard_only_solve(page: Page, live_app: LiveApp, watched: Watch) -> None:
    """Tab to the fixture picker and the Solve button and use them with keys alone."""
    page.goto(live_app.url + "/")
    page.get_by_label("Time limit (seconds)").fill("2")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "solve":
            break
    else:
        raise AssertionError("Solve is not reachable with Tab")
    with page.expect_response(
        lambda r: r.url.endswith("/v1/allocations") and r.request.method == "POST"
    ) as posted:
        page.keyboard.press("Enter")
    assert posted.value.status == 202
    expect(page.locator("#progress-section")).to_be_visible()
    # The job ends on its own within its 2 s limit; the page is left as soon as it shows.
    watched.assert_clean()


def test_docs_render_offline(
    page: Page, live_app: LiveApp, watched: Watch, screenshot: Any
) -> None:
    page.goto(live_app.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Windmaker")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 7
    screenshot(page, "8-docs", "viewport")
    watched.assert_clean()


OPTIONAL_PATHS = (
    "/v1/frontiers",
    "/v1/allocations/{job_id}/plans/{rank}.xlsx",
    "/v1/allocations/{job_id}/plans/{rank}/adopt",
    "/v1/comparisons/{job_id}.xlsx",
)


def test_controls_follow_the_api(page: Page, live_app: LiveApp, watched: Watch) -> None:
    """The page offers frontier, XLSX, all-partner CSV and adoption only when the API's
    OpenAPI document has them (an older service behind the same page), so it never shows
    a control that would answer 404."""

    def older_api(route: Any) -> None:
        spec = route.fetch().json()
        for path in OPTIONAL_PATHS:
            spec["paths"].pop(path, None)
        csv = spec["paths"].get("/v1/allocations/{job_id}/plans/{rank}.csv", {}).get("get", {})
        csv["parameters"] = [p for p in csv.get("parameters", []) if p.get("name") != "all"]
        route.fulfill(json=spec)

    page.route("**/openapi.json", older_api)
    solve_fixture(page, live_app.url, time_limit=2)
    expect(page.get_by_role("link", name="Download CSV", exact=True)).to_be_visible()
    expect(page.locator("#download-xlsx")).to_be_hidden()
    expect(page.locator("#download-csv-all")).to_be_hidden()
    expect(page.locator("#adopt-row")).to_be_hidden()
    expect(page.locator("#whatif-section")).to_be_visible()
    expect(page.locator("#frontier-section")).to_be_hidden()
    watched.assert_clean()


def test_bad_input_is_explained(page: Page, live_app: LiveApp, watched: Watch) -> None:
    """The API's 422 reaches the planner as a message naming the field."""
    page.goto(live_app.url + "/")
    page.get_by_label("Budget: subsidy (CNY)").fill("-5")
    page.get_by_role("button", name="Solve", exact=True).click()
    notice = page.get_by_role("alert")
    expect(notice).to_contain_text("budget")
    expect(page.locator("#progress-section")).to_be_hidden()
    # The browser logs the refused request itself; nothing else may be logged.
    watched.errors = [e for e in watched.errors if "422" not in e]
    watched.assert_clean()
