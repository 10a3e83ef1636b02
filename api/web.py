"""The planner web page (docs/web.md): `GET /`, plus page-side reads of a stored job (partner
names and attributes, the static report as a download) under the API's key rule.

The page is a server-rendered template plus small plain-JS modules
(adapters/browser/static/web/, served at /assets) that
talk to the same JSON API as every other client, with the user's key when auth is on.
Every script, style and chart library is served from adapters/browser/static, so the page
and `/docs`
work with no internet.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, abort, jsonify, render_template
from flask.typing import ResponseReturnValue

from adapters.browser.report import STATIC, VENDOR_SCRIPTS, render_report, request_context

# The assets live in adapters/browser (the CLI's static report inlines the same files).
blp = Blueprint(
    "web", __name__, template_folder="templates", static_folder=STATIC, static_url_path="/assets"
)

# The page's own scripts, in load order (classic scripts sharing the `WM` namespace, so the
# static report can inline the very same files).
SCRIPTS = (
    "i18n.js",
    "format.js",
    "client.js",
    "charts.js",
    "plan.js",
    "whatif.js",
    "frontier.js",
    "adopt.js",
    "app.js",
)


def init_app(app: Flask) -> None:
    """Register the page on `app` (one call in the app factory)."""
    app.register_blueprint(blp)


def fixture_templates() -> list[dict[str, Any]]:
    """Every bundled fixture with its scenario: the starting values of the request form."""
    from fixtures import list_fixtures, scenario

    return [
        {
            "name": info.name,
            "description": info.description,
            "partners": info.partners,
            "has_packages": info.has_packages,
            "scenario": scenario(info.name) if info.has_scenario else None,
        }
        for info in list_fixtures()
    ]


@blp.get("/")
def index() -> ResponseReturnValue:
    """The planner page. It holds no job data: that comes from /v1 with the user's key."""
    return render_template(
        "planner.html",
        fixtures=fixture_templates(),
        scripts=[f"web/{name}" for name in SCRIPTS],
        vendor_scripts=VENDOR_SCRIPTS,
    )


def _stored_request(job_id: str, kind: str) -> dict[str, Any]:
    """The request a job was submitted with (partners inline), after the API's key check."""
    from api.routes.common import backends, require_api_key

    require_api_key()
    store = backends().store
    job = store.get_job(job_id, kind)
    if job is None or job.request_id is None:
        abort(404)
    return store.request_body(job.request_id)


@blp.get("/web/allocations/<job_id>/partners.json")
def job_partners(job_id: str) -> ResponseReturnValue:
    """Names and attributes of the partners of a job's stored request, so the page can
    label the partner table and group spend by an attribute, whatever the partners came
    from (fixture, upload or inline JSON)."""
    return jsonify(request_context(_stored_request(job_id, "allocation"))["partners"])


@blp.get("/web/allocations/<job_id>/report.html")
def allocation_report(job_id: str) -> ResponseReturnValue:
    """The static report of a solved job's plans, as a download."""
    from api.routes.common import backends
    from service import jobs

    context = request_context(_stored_request(job_id, "allocation"))
    job = jobs.get_allocation(backends().store, job_id)
    if job["status"] != "succeeded":
        abort(409)
    return _report_response(job, f"{job_id}-report.html", context)


@blp.get("/web/comparisons/<job_id>/report.html")
def comparison_report(job_id: str) -> ResponseReturnValue:
    """The static report of a finished comparison, as a download."""
    from api.routes.common import backends
    from service import jobs

    context = request_context(_stored_request(job_id, "comparison"))
    comparison = jobs.get_comparison(backends().store, job_id)
    if comparison["status"] != "succeeded":
        abort(409)
    return _report_response(comparison, f"{job_id}-comparison.html", context)


def _report_response(data: Any, filename: str, context: dict[str, Any]) -> ResponseReturnValue:
    html = render_report(data, **context)
    return Response(
        html,
        mimetype="text/html",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
