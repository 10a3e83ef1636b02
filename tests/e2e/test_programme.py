"""The full 5,000-partner programme through the default deployment (slow)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Service
from tests.e2e.plan_checks import check_plan_csv, check_plans, fixture_request, local_request


@pytest.mark.slow
def test_programme_fixture(embedded_service: Service) -> None:
    service = embedded_service
    # What is checked here is the service path at full size (upload by reference, a valid
    # plan, its CSV), not plan quality: bench/ measures that, so a short limit is enough.
    body = fixture_request("programme", time_limit_s=30)
    submitted = service.submit(body)
    job = service.wait("allocations", submitted["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    request = local_request(body)
    plans = check_plans(request, job["plans"])
    csv_text = service.call(
        "GET",
        "/v1/allocations/{job_id}/plans/{rank}.csv",
        path={"job_id": job["id"], "rank": 1},
        expect=200,
    ).text
    check_plan_csv(request, plans[0], csv_text)
