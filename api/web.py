"""The planner web page (SPEC §8): `GET /` and the bundled-fixture data the page starts from.

The page is a server-rendered template plus small plain-JS modules (api/static/web/) that
talk to the same JSON API as every other client, with the user's key when auth is on.
Every script, style and chart library is served from api/static, so the page and `/docs`
work with no internet.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Flask, abort, jsonify, render_template, request
from flask.typing import ResponseReturnValue

blp = Blueprint("web", __name__, template_folder="templates")

# The page's own scripts, in load order (classic scripts sharing the `WM` namespace, so the
# static report can inline the very same files).
SCRIPTS = ("i18n.js", "format.js", "client.js", "charts.js", "plan.js", "whatif.js", "app.js")
VENDOR_SCRIPTS = (
    "vendor/vega-6.4.0/vega.min.js",
    "vendor/vega-lite-6.5.0/vega-lite.min.js",
    "vendor/vega-embed-7.3.0/vega-embed.min.js",
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


@blp.get("/web/fixtures/<name>/partners.json")
def fixture_partners(name: str) -> ResponseReturnValue:
    """Names and attributes of a bundled fixture's partners, so the page can label the
    partner table and group spend by an attribute. Partner data: the same key rule as
    /v1/fixtures."""
    from api.routes.common import require_api_key
    from fixtures import load_partners

    require_api_key()

    try:
        partners = load_partners(name)
    except KeyError:
        abort(404)
    return jsonify(_partner_rows(partners))


def _partner_rows(partners: Any) -> list[dict[str, Any]]:
    return [{"id": p.id, "name": p.name, "attributes": dict(p.attributes)} for p in partners]


@blp.post("/web/partners.json")
def uploaded_partners() -> ResponseReturnValue:
    """Names and attributes from an uploaded partners CSV (multipart part `partners`, and
    the request's resource names as `resources`, comma separated), read by the same
    parser as the API, so the page can label a plan solved from an upload."""
    from api.routes.common import abort_with, require_api_key
    from models.csvio import read_partners_csv
    from models.schemas import RequestValidationError

    require_api_key()
    upload = request.files.get("partners")
    if upload is None:
        abort(400)
    buffer = io.BytesIO(upload.read())
    names = [n for n in request.form.get("resources", "").split(",") if n]
    try:
        partners = read_partners_csv(
            buffer, resources=names or None, label=upload.filename or "partners.csv"
        )
    except RequestValidationError as error:
        abort_with(error)
    return jsonify(_partner_rows(partners))
