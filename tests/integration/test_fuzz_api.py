"""Schemathesis over every operation of the OpenAPI document: whatever it sends, the
service never answers 5xx, and every answer (status, content type, body) is one the
document describes. Deterministic (derandomized), so CI sees the same cases every run.

    WINDMAKER_FUZZ_EXAMPLES=500 bin/test tests/integration/test_fuzz_api.py   # longer

Jobs are stored but never solved (a queue that keeps them): the fuzzer exercises the HTTP
surface, not the optimizer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from service.records import Job

EXAMPLES = int(os.environ.get("WINDMAKER_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


class _QueueThatKeepsJobs:
    """A healthy job queue that never runs anything."""

    def dispatch(self, job: Job) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"mode": "fuzz", "ok": True}


# Built at collection: schemathesis makes one test per operation from the document.
# (Its lazy from_fixture loader does not work with this pytest.)
_DIRECTORY = tempfile.TemporaryDirectory(prefix="windmaker-fuzz-")
_APP = create_app(
    {
        "DATABASE_URL": f"sqlite:///{_DIRECTORY.name}/w.db",
        "RUN_MIGRATIONS": 1,
        "RUNNER_AUTOSTART": 0,
    }
)
_APP.extensions["windmaker"].dispatcher = _QueueThatKeepsJobs()
schema = schemathesis.openapi.from_wsgi("/openapi.json", _APP)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    _APP.extensions["windmaker"].store.dispose()
    _DIRECTORY.cleanup()


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
