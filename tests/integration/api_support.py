"""Shared helpers for the API integration and e2e tests: small realistic requests."""

from __future__ import annotations

import copy
import time
from typing import Any

TIERS = [
    {"name": "1B", "min_gmv": 1e9, "target": 2},
    {"name": "100M", "min_gmv": 1e8, "target": 4},
]


def small_request(partners: int = 8, *, budget: float = 3e8, plans: int = 1) -> dict[str, Any]:
    """A request with `partners` inline partners, some near each tier threshold, and a
    subsidy budget covering part of what lifting them all would take."""
    rows = []
    for i in range(partners):
        near_top = i % 2 == 0
        baseline = (8.5e8 if near_top else 7e7) + i * 1e6
        rows.append(
            {
                "id": f"P{i:03d}",
                "name": f"Partner {i}",
                "baseline_gmv": baseline,
                "attributes": {"region": "north" if i % 3 else "south", "capability": 40 + i},
                "response": {
                    "subsidy": {
                        "curve": "saturating",
                        "max_uplift": 3e8 if near_top else 6e7,
                        "scale": 1e8 if near_top else 2e7,
                    }
                },
            }
        )
    return {
        "name": "integration",
        "objective": "max_attainment",
        "resources": [{"name": "subsidy", "unit": "CNY", "budget": budget}],
        "tiers": copy.deepcopy(TIERS),
        "partners": rows,
        "options": {"time_limit_s": 20, "plans": plans},
    }


def documented_schema(
    spec: dict[str, Any], template: str, method: str, status: int
) -> dict[str, Any] | None:
    """The JSON schema the OpenAPI document gives for a response, or None when the
    response is documented without a JSON body. Fails when the status is undocumented."""
    operation = spec["paths"][template][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, (
        f"{method} {template} answered {status}, which the OpenAPI document does not list "
        f"(documented: {sorted(responses)})"
    )
    response = responses[str(status)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    media = response.get("content", {}).get("application/json")
    return None if media is None else dict(media["schema"])


def validate_against_spec(
    spec: dict[str, Any], template: str, method: str, status: int, body: Any
) -> None:
    """Assert a JSON response body matches its documented schema exactly."""
    import jsonschema

    schema = documented_schema(spec, template, method, status)
    assert schema is not None, f"{method} {template} {status} returned JSON but documents none"
    # "#/components/..." references resolve inside this wrapper document.
    document = {**schema, "components": spec["components"]}
    jsonschema.Draft202012Validator(document).validate(body)


FINAL_STATUSES = ("succeeded", "failed", "cancelled")


def wait_for_job(
    client: Any,
    kind: str,
    job_id: str,
    *,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll `GET /v1/<kind>/<job_id>` until the job has finished; its body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/{kind}/{job_id}", headers=headers).get_json()
        if job["status"] in FINAL_STATUSES:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{kind} {job_id} not done after {timeout} s")
