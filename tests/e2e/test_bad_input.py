"""Bad input over HTTP: every malformed request or CSV gets a 4xx JSON body naming the
offending field (CSV: file, row and column), nothing is stored, and the service keeps
serving other jobs. Also access control against the live server."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from adapters.store import Store
from service import keys
from tests.e2e.conftest import BODY_LIMIT, Service
from tests.integration.api_support import small_request

Body = dict[str, Any]


def _flat(errors: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(errors, dict):
        for key, value in errors.items():
            yield from _flat(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix


def _changed(change: Callable[[Body], Any]) -> Body:
    body = small_request(partners=3)
    change(body)
    return body


def _curve(body: Body, **curve: Any) -> None:
    body["partners"][0]["response"]["subsidy"] = curve


def _constraint(body: Body, **rule: Any) -> None:
    body["constraints"] = [rule]


JSON_CASES: list[tuple[str, Any, str]] = [
    ("unknown field", _changed(lambda b: b.update(budget_total=5)), "budget_total"),
    ("resources not a list", _changed(lambda b: b.update(resources={"subsidy": 1})), "resources"),
    ("no resources", _changed(lambda b: b.pop("resources")), "resources"),
    (
        "negative budget",
        _changed(lambda b: b["resources"][0].update(budget=-1)),
        "resources.0.budget",
    ),
    (
        "budget as text",
        _changed(lambda b: b["resources"][0].update(budget="lots")),
        "resources.0.budget",
    ),
    (
        "duplicate partner id",
        _changed(lambda b: b["partners"][1].update(id="P000")),
        "partners.1.id",
    ),
    (
        "baseline as text",
        _changed(lambda b: b["partners"][0].update(baseline_gmv="abc")),
        "partners.0.baseline_gmv",
    ),
    (
        "zero curve scale",
        _changed(lambda b: _curve(b, curve="saturating", max_uplift=1e8, scale=0)),
        "partners.0.response.subsidy.scale",
    ),
    (
        "unknown curve kind",
        _changed(lambda b: _curve(b, curve="cubic")),
        "partners.0.response.subsidy.curve",
    ),
    (
        "points not increasing",
        _changed(lambda b: _curve(b, curve="points", x=[0, 2, 1], y=[0, 1, 2])),
        "partners.0.response.subsidy.x",
    ),
    (
        "curve for unknown resource",
        _changed(lambda b: b["partners"][0]["response"].update(cash={"curve": "linear", "roi": 1})),
        "partners.0.response.cash",
    ),
    ("tier without target", _changed(lambda b: b["tiers"][0].pop("target")), "tiers.0.target"),
    (
        "duplicate tier",
        _changed(lambda b: b["tiers"].append(copy.deepcopy(b["tiers"][0]))),
        "tiers.2.name",
    ),
    ("unknown objective", _changed(lambda b: b.update(objective="max_fun")), "objective"),
    (
        "constraint on unknown resource",
        _changed(lambda b: _constraint(b, type="max_share", resource="cash", max_share=0.1)),
        "constraints.0.resource",
    ),
    (
        "share above one",
        _changed(lambda b: _constraint(b, type="max_share", resource="subsidy", max_share=1.5)),
        "constraints.0.max_share",
    ),
    (
        "count on unknown tier",
        _changed(lambda b: _constraint(b, type="group_count", tier="10B", min=1)),
        "constraints.0.tier",
    ),
    (
        "pin of unknown partner",
        _changed(
            lambda b: _constraint(b, type="pin", partner_id="ZZ", resource="subsidy", amount=1)
        ),
        "constraints.0.partner_id",
    ),
    (
        "unknown where operator",
        _changed(
            lambda b: _constraint(
                b, type="eligibility", resource="subsidy", where={"capability": {"~": 3}}
            )
        ),
        "constraints.0.where.capability",
    ),
    (
        "unknown constraint type",
        _changed(lambda b: _constraint(b, type="magic")),
        "constraints.0.type",
    ),
    (
        "unknown fixture",
        _changed(lambda b: b.update(partners={"fixture": "nope"})),
        "partners.fixture",
    ),
    ("zero plans", _changed(lambda b: b["options"].update(plans=0)), "options.plans"),
    (
        "negative time limit",
        _changed(lambda b: b["options"].update(time_limit_s=-5)),
        "options.time_limit_s",
    ),
    ("unknown engine", _changed(lambda b: b["options"].update(engine="gurobi")), "options.engine"),
    ("array instead of object", [1, 2], "_schema"),
]

PARTNERS_CSV = (
    "partner_id,name,baseline_gmv,region,subsidy_curve,subsidy_max_uplift,subsidy_scale\n"
    "P1,Alpha,850000000,north,saturating,300000000,100000000\n"
    "P2,Beta,70000000,south,saturating,60000000,20000000\n"
    "P3,Gamma,72000000,south,saturating,60000000,20000000\n"
)


def _csv(*, replace: tuple[str, str] | None = None) -> bytes:
    text = PARTNERS_CSV if replace is None else PARTNERS_CSV.replace(*replace)
    return text.encode("utf-8")


def _scenario() -> str:
    body = small_request()
    body.pop("partners")
    return json.dumps(body)


CSV_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "baseline not a number",
        {"partners": ("p.csv", _csv(replace=("70000000,south", "lots,south")))},
        "p.csv row 3, column baseline_gmv",
    ),
    (
        "duplicate partner id",
        {"partners": ("p.csv", _csv(replace=("P3,", "P2,")))},
        "p.csv row 4, column partner_id",
    ),
    (
        "negative curve scale",
        {"partners": ("p.csv", _csv(replace=("100000000\n", "-1\n")))},
        "p.csv row 2, column subsidy_scale",
    ),
    (
        "unknown curve kind",
        {
            "partners": (
                "p.csv",
                _csv(replace=("P2,Beta,70000000,south,saturating", "P2,Beta,70000000,south,cubic")),
            )
        },
        "p.csv row 3, column subsidy_curve",
    ),
    (
        "no baseline column",
        {"partners": ("p.csv", _csv(replace=("baseline_gmv", "baseline")))},
        "baseline_gmv",
    ),
    (
        "not UTF-8",
        {"partners": ("p.csv", "partner_id,baseline_gmv\nP\xe9,1\n".encode("latin-1"))},
        "p.csv",
    ),
    (
        "packages of an unknown partner",
        {
            "partners": ("p.csv", _csv()),
            "packages": (
                "k.csv",
                b"partner_id,package,subsidy,uplift\nNOPE,gold,1000000,5000000\n",
            ),
        },
        "k.csv row 2, column partner_id",
    ),
    (
        "packages without partners",
        {"packages": ("k.csv", b"partner_id,package,subsidy,uplift\nP1,gold,1,2\n")},
        "partners",
    ),
    ("request part missing", {"partners": ("p.csv", _csv()), "request": None}, "request"),
    ("request part not JSON", {"partners": ("p.csv", _csv()), "request": "{oops"}, "request"),
    (
        "request repeats the partners",
        {"partners": ("p.csv", _csv()), "request": json.dumps(small_request())},
        "partners",
    ),
    ("unknown part", {"partners": ("p.csv", _csv()), "extras": ("x.csv", b"a\n1\n")}, "extras"),
]

COMPARISON_CASES: list[tuple[str, Body, str]] = [
    (
        "unknown base allocation",
        {"base": {"allocation_id": "no-such-job"}, "scenarios": [{"name": "a", "changes": {}}]},
        "base.allocation_id",
    ),
    (
        "invalid base request",
        {
            "base": _changed(lambda b: b["resources"][0].update(budget=-1)),
            "scenarios": [{"name": "a", "changes": {}}],
        },
        "base.resources.0.budget",
    ),
    (
        "budget of an unknown resource",
        {
            "base": small_request(),
            "scenarios": [{"name": "a", "changes": {"budgets": {"cash": 1}}}],
        },
        "scenarios.0.changes.budgets.cash",
    ),
    (
        "duplicate scenario names",
        {
            "base": small_request(),
            "scenarios": [{"name": "a", "changes": {}}, {"name": "a", "changes": {}}],
        },
        "scenarios.1.name",
    ),
    (
        "scenario named base",
        {"base": small_request(), "scenarios": [{"name": "base", "changes": {}}]},
        "scenarios.0.name",
    ),
    ("no scenarios", {"base": small_request(), "scenarios": []}, "scenarios"),
    ("unknown field", {"base": small_request(), "scenarios": [{"name": "a"}], "when": 1}, "when"),
]


@pytest.fixture(scope="module")
def service(embedded_service: Service) -> Service:
    return embedded_service


@pytest.fixture(scope="module")
def job_before(service: Service) -> str:
    """A job submitted before the bad input; it must finish unharmed."""
    return str(service.submit(small_request())["id"])


def _total(service: Service, kind: str) -> int:
    response = service.call("GET", f"/v1/{kind}", expect=200)
    return int(json.loads(response.headers["X-Pagination"])["total"])


def _assert_names(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text[:1000]
    body = response.json()
    assert body["code"] == status and body["message"]
    paths = list(_flat(body["errors"]))
    assert any(field in path for path in paths), f"{field!r} not in {paths}"


@pytest.mark.parametrize(("name", "body", "field"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_bad_json_requests_name_the_field(
    service: Service, job_before: str, name: str, body: Any, field: str
) -> None:
    before = _total(service, "allocations")
    response = service.call("POST", "/v1/allocations", json=body)
    _assert_names(response, 422, field)
    assert _total(service, "allocations") == before


@pytest.mark.parametrize(("name", "parts", "field"), CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_bad_csv_uploads_name_file_row_and_column(
    service: Service, job_before: str, name: str, parts: dict[str, Any], field: str
) -> None:
    parts = {"request": _scenario(), **parts}
    files = {
        key: (value if isinstance(value, tuple) else (None, value))
        for key, value in parts.items()
        if value is not None
    }
    before = _total(service, "allocations")
    response = service.call("POST", "/v1/allocations", files=files)
    _assert_names(response, 422, field)
    assert _total(service, "allocations") == before


@pytest.mark.parametrize(
    ("name", "body", "field"), COMPARISON_CASES, ids=[c[0] for c in COMPARISON_CASES]
)
def test_bad_comparisons_name_the_field(
    service: Service, job_before: str, name: str, body: Body, field: str
) -> None:
    before = _total(service, "comparisons")
    _assert_names(service.call("POST", "/v1/comparisons", json=body), 422, field)
    assert _total(service, "comparisons") == before


def test_bad_transport_is_a_clear_4xx(service: Service, job_before: str) -> None:
    post = "/v1/allocations"
    _assert_names(
        service.call("POST", post, data=b"{bad json", headers={"Content-Type": "application/json"}),
        400,
        "body",
    )
    deep = b"[" * 50_000 + b"]" * 50_000
    _assert_names(
        service.call("POST", post, data=deep, headers={"Content-Type": "application/json"}),
        400,
        "body",
    )
    _assert_names(
        service.call("POST", post, data=b"x=1", headers={"Content-Type": "text/plain"}),
        415,
        "Content-Type",
    )
    huge = json.dumps({"name": "x" * (BODY_LIMIT + 1000)}).encode()
    _assert_names(
        service.call("POST", post, data=huge, headers={"Content-Type": "application/json"}),
        413,
        "body",
    )
    _assert_names(service.call("GET", post, params={"page_size": 1000}), 422, "query.page_size")
    _assert_names(service.call("GET", post, params={"status": "done"}), 422, "query.status")
    missing = service.call("GET", "/v1/allocations/{job_id}", path={"job_id": "nope"})
    assert missing.status_code == 404 and missing.json()["message"]
    unknown_route = service.call("GET", "/v1/nothing-here", validate=False)
    assert unknown_route.status_code == 404 and unknown_route.json()["code"] == 404


def test_service_still_serves_jobs_afterwards(service: Service, job_before: str) -> None:
    assert service.wait("allocations", job_before)["status"] == "succeeded"
    after = service.submit(small_request())
    assert service.wait("allocations", after["id"])["status"] == "succeeded"
    assert service.call("GET", "/v1/health", expect=200).json()["status"] == "ok"


def test_access_control_on_the_live_server(service: Service) -> None:
    store = Store(service.database_url)
    before = _total(service, "allocations")
    planner_id, planner = keys.create_key(store, "planner", "e2e")
    viewer_id, viewer = keys.create_key(store, "viewer", "e2e")
    try:
        post = "/v1/allocations"
        for headers in ({}, {"Authorization": "Bearer wm_wrong"}):
            response = service.call("POST", post, json=small_request(), headers=headers)
            assert response.status_code == 401 and response.json()["message"]
        as_viewer = {"Authorization": f"Bearer {viewer}"}
        assert service.call("GET", post, headers=as_viewer).status_code == 200
        forbidden = service.call("POST", post, json=small_request(), headers=as_viewer)
        assert forbidden.status_code == 403 and forbidden.json()["message"]
        assert keys.revoke_key(store, planner_id)
        revoked = service.call(
            "POST", post, json=small_request(), headers={"Authorization": f"Bearer {planner}"}
        )
        assert revoked.status_code == 401
        assert service.call("GET", "/v1/health", expect=200).status_code == 200
        assert _total_with(service, as_viewer) == before  # nothing stored on refusal
    finally:
        keys.revoke_key(store, planner_id)
        keys.revoke_key(store, viewer_id)
        store.dispose()
    assert service.call("GET", "/v1/allocations", expect=200)  # open again without keys


def _total_with(service: Service, headers: dict[str, str]) -> int:
    response = service.call("GET", "/v1/allocations", headers=headers, expect=200)
    return int(json.loads(response.headers["X-Pagination"])["total"])
