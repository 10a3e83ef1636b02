"""The static report's input handling and escaping (its rendering is driven in a browser
by tests/web/test_report.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapters.browser.report import ReportError, render_report, report_kind, request_context
from cli.main import main
from fixtures import scenario

PLAN: dict[str, Any] = {
    "rank": 1,
    "label": "best",
    "tiers": [{"name": "1B", "min_gmv": 1e9, "target": 1, "achieved": 1, "shortfall": 0}],
    "resources": [{"name": "subsidy", "budget": 10.0, "allocated": 5.0, "utilization": 0.5}],
    "allocations": [
        {"partner_id": "</script><script>alert(1)</script>", "amounts": {"subsidy": 5.0}}
    ],
}


def test_accepts_what_the_cli_and_api_write() -> None:
    assert report_kind([PLAN]) == ("plans", [PLAN])
    assert report_kind({"id": "j", "plans": [PLAN]}) == ("plans", [PLAN])
    comparison = {"scenarios": [{"name": "base", "kpis": None}], "differences": []}
    assert report_kind(comparison) == ("comparison", comparison)


@pytest.mark.parametrize("data", [[], {}, {"id": "x", "status": "failed"}, [{"rank": 1}], "plans"])
def test_refuses_anything_else(data: Any) -> None:
    with pytest.raises(ReportError):
        report_kind(data)


def test_data_cannot_close_its_script_element() -> None:
    html = render_report([PLAN])
    opening = '<script id="report-data" type="application/json">'
    match = re.search(re.escape(opening) + r"(.*?)</script>", html, re.S)
    assert match is not None
    assert json.loads(match.group(1))["payload"][0]["allocations"] == PLAN["allocations"]
    assert "alert(1)</script>" not in html


def test_everything_is_inline() -> None:
    html = render_report([PLAN], title="Q3 <draft>")
    assert "<title>Q3 &lt;draft&gt;</title>" in html
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)


def test_request_context_from_a_fixture_request() -> None:
    request = {**scenario("tiny"), "partners": {"fixture": "tiny"}}
    context = request_context(request)
    assert context["units"] == {"subsidy": "CNY", "traffic": "impressions", "fund": "CNY"}
    assert len(context["partners"]) == 8
    assert {"id", "name", "attributes"} <= set(context["partners"][0])
    inline = request_context({"resources": [], "partners": [{"id": "a", "name": "A"}]})
    assert inline["partners"] == [{"id": "a", "name": "A", "attributes": {}}]


def test_cli_writes_the_report(tmp_path: Path) -> None:
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps([PLAN]), encoding="utf-8")
    out = tmp_path / "out" / "report.html"
    runner = CliRunner()
    result = runner.invoke(
        main, ["report", str(plans), "--fixture", "tiny", "--out", str(out), "--lang", "zh"]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert '"impressions"' in html and 'lang="zh-CN"' in html

    plans.write_text(json.dumps({"id": "x", "status": "failed"}), encoding="utf-8")
    refused = runner.invoke(main, ["report", str(plans), "--out", str(out)])
    assert refused.exit_code == 1 and "expected a plan list" in refused.output
    unknown = runner.invoke(main, ["report", str(plans), "--fixture", "nope", "--out", str(out)])
    assert unknown.exit_code == 2 and "nope" in unknown.output
