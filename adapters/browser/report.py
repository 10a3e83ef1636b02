"""A self-contained HTML report of a plan list or a comparison, for sending by e-mail.

The report carries the planner page's own stylesheet, chart library and plan/comparison
renderers inline, plus the data as JSON, so it opens in any browser with no server and no
internet and shows the same charts and tables as the page. Used by the CLI
(`windmaker report`) and available to the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

ROOT = Path(__file__).resolve().parent
STATIC = ROOT / "static"
# The page's renderers the report reuses (not client.js/app.js: a report calls no API).
REPORT_SCRIPTS = ("i18n.js", "format.js", "charts.js", "plan.js", "whatif.js")
VENDOR_SCRIPTS = (
    "vendor/vega-6.4.0/vega.min.js",
    "vendor/vega-lite-6.5.0/vega-lite.min.js",
    "vendor/vega-embed-7.3.0/vega-embed.min.js",
)


class ReportError(ValueError):
    """The input is neither a plan list nor a comparison."""


def report_kind(data: Any) -> tuple[str, Any]:
    """("plans", [plan, ...]) or ("comparison", {...}) from what the CLI or API wrote:
    a plan list (`--json`), an allocation job (`GET /v1/allocations/{id}`), or a
    comparison (`windmaker compare --json`, `GET /v1/comparisons/{id}`)."""
    if isinstance(data, list) and data and all(_is_plan(p) for p in data):
        return "plans", data
    if isinstance(data, Mapping):
        plans = data.get("plans")
        if isinstance(plans, list) and plans and all(_is_plan(p) for p in plans):
            return "plans", plans
        scenarios = data.get("scenarios")
        if (
            isinstance(scenarios, list)
            and scenarios
            and all(isinstance(s, Mapping) and "name" in s for s in scenarios)
        ):
            return "comparison", data
        if _is_plan(data):
            return "plans", [data]
    raise ReportError(
        "expected a plan list (windmaker solve --json), an allocation job with plans, "
        "or a comparison (windmaker compare --json)"
    )


def _is_plan(value: Any) -> bool:
    return isinstance(value, Mapping) and {"tiers", "resources", "allocations"} <= set(value)


def _script_text(path: Path) -> str:
    # Inline scripts must not close their own <script> element early.
    return path.read_text(encoding="utf-8").replace("</script", "<\\/script")


def _json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")


def render_report(
    data: Any,
    *,
    title: str | None = None,
    units: Mapping[str, str] | None = None,
    partners: Sequence[Mapping[str, Any]] | None = None,
    lang: str = "en",
) -> str:
    """The report as one HTML document. `units` (resource -> unit, e.g. from the request)
    and `partners` (`{"id", "name", "attributes"}`) add units, names and the spend by
    attribute chart when given."""
    kind, payload = report_kind(data)
    env = Environment(
        loader=FileSystemLoader(ROOT / "templates"),
        autoescape=select_autoescape(["html"]),
    )
    template = env.get_template("report.html")
    return template.render(
        title=title or _default_title(kind, payload),
        kind=kind,
        lang="zh" if lang == "zh" else "en",
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        style=(STATIC / "web" / "style.css").read_text(encoding="utf-8"),
        scripts=[_script_text(STATIC / name) for name in VENDOR_SCRIPTS]
        + [_script_text(STATIC / "web" / name) for name in REPORT_SCRIPTS],
        data_json=_json_text(
            {
                "kind": kind,
                "payload": payload,
                "units": dict(units or {}),
                "partners": list(partners or []),
            }
        ),
    )


def _default_title(kind: str, payload: Any) -> str:
    if kind == "comparison":
        name = payload.get("name") if isinstance(payload, Mapping) else None
        return f"Windmaker comparison — {name}" if name else "Windmaker comparison"
    return "Windmaker plan report"


def request_context(request: Mapping[str, Any]) -> dict[str, Any]:
    """`units` and `partners` for `render_report` from an AllocationRequest's JSON (or a
    scenario without partners): resource units, and partner names and attributes when the
    partners are inline or a bundled fixture."""
    units = {
        str(r["name"]): str(r.get("unit") or "")
        for r in request.get("resources") or []
        if isinstance(r, Mapping) and "name" in r
    }
    partners: list[dict[str, Any]] = []
    given = request.get("partners")
    if isinstance(given, list):
        partners = [
            {"id": p.get("id"), "name": p.get("name", ""), "attributes": p.get("attributes", {})}
            for p in given
            if isinstance(p, Mapping)
        ]
    elif isinstance(given, Mapping) and isinstance(given.get("fixture"), str):
        from fixtures import load_partners

        partners = [
            {"id": p.id, "name": p.name, "attributes": dict(p.attributes)}
            for p in load_partners(given["fixture"])
        ]
    return {"units": units, "partners": partners}


def write_report(data: Any, out: Path | str, **kwargs: Any) -> Path:
    """Render the report of `data` into `out`; returns the path written."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data, **kwargs), encoding="utf-8")
    return path
