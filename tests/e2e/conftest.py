"""The real service as subprocesses: `python -m api.server` (gunicorn) on a free loopback
port, optionally with a Celery worker (`python -m adapters.queue.celery_app`) on Redis, against a
throwaway SQLite file or PostgreSQL schema. Every response the tests read is validated
against the service's own OpenAPI document."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.api_support import validate_against_spec
from tests.integration.db_support import REDIS_SERVER, database, redis_available

ROOT = Path(__file__).resolve().parents[2]
FINAL = ("succeeded", "failed", "cancelled")
BODY_LIMIT = 1_000_000  # bytes; small so the 413 test stays cheap


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A running Windmaker deployment under test and a validating HTTP client for it."""

    def __init__(self, env: dict[str, str], log_dir: Path, *, celery: bool) -> None:
        self.env = env
        self.log_dir = log_dir
        self.celery = celery
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.spec: dict[str, Any] = {}
        self.session = requests.Session()
        self.headers: dict[str, str] = {}
        self.database_url = env["WINDMAKER_DATABASE_URL"]

    # -- processes --------------------------------------------------------------------

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed by the child)
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill it and its children
        )

    def start(self) -> None:
        if self.celery and self.worker is None:
            self.worker = self._spawn(
                ["-m", "adapters.queue.celery_app", "--concurrency", "2", "--loglevel", "INFO"],
                "worker",
            )
        self.server = self._spawn(
            ["-m", "api.server", "--port", str(self.port), "--threads", "8"], "server"
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.logs()}")
            try:
                if requests.get(self.url + "/v1/health", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not up yet, or its first answer is slow on a loaded machine
            time.sleep(0.2)
        else:
            raise RuntimeError(f"server not healthy in time:\n{self.logs()}")
        self.spec = requests.get(self.url + "/openapi.json", timeout=10).json()

    def kill_server(self) -> None:
        """SIGKILL the whole server process group, as a crash or an OOM kill would."""
        assert self.server is not None
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait(timeout=30)
        self.server = None

    def stop(self) -> None:
        for process in (self.server, self.worker):
            if process is None or process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
        self.server = self.worker = None

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-6000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    # -- HTTP -------------------------------------------------------------------------

    def call(
        self,
        method: str,
        template: str,
        *,
        expect: int | tuple[int, ...] | None = None,
        validate: bool = True,
        path: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """`template` is the documented path ("/v1/allocations/{job_id}"), filled in from
        `path`; other keywords go to `requests`. The response is checked against the
        OpenAPI document."""
        url = template.format(**(path or {}))
        response = self.session.request(
            method,
            self.url + url,
            headers={**self.headers, **(headers or {})},
            timeout=60,
            **kwargs,
        )
        if expect is not None:
            wanted = expect if isinstance(expect, tuple) else (expect,)
            assert response.status_code in wanted, (
                f"{method} {url}: {response.status_code} {response.text[:2000]}"
            )
        if validate and response.headers.get("Content-Type", "").startswith("application/json"):
            validate_against_spec(
                self.spec, template, method, response.status_code, response.json()
            )
        return response

    def submit(self, body: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        response = self.call("POST", "/v1/allocations", json=body, expect=202, **kwargs)
        submitted: dict[str, Any] = response.json()
        assert response.headers["Location"].endswith(f"/v1/allocations/{submitted['id']}")
        return submitted

    def wait(self, kind: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
        template = f"/v1/{kind}/{{job_id}}"
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self.call(
                "GET", template, path={"job_id": job_id}, expect=200
            ).json()
            if job["status"] in FINAL:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"{kind} {job_id} still {job['status']}:\n{self.logs()}")
            time.sleep(0.1)


def service_env(database_url: str, *, broker: str | None, queue: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("WINDMAKER_") and key != "DATABASE_URL"
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "WINDMAKER_DATABASE_URL": database_url,
            "WINDMAKER_JOB_POLL_S": "0.2",
            "WINDMAKER_HEARTBEAT_S": "0.5",
            "WINDMAKER_STALE_AFTER_S": "3",
            "WINDMAKER_MAX_CONTENT_LENGTH": str(BODY_LIMIT),
            "WINDMAKER_CELERY_QUEUE": queue,
        }
    )
    if broker:
        env["WINDMAKER_BROKER_URL"] = broker
    return env


BACKENDS = [
    pytest.param(("sqlite", "in-process"), id="sqlite-inprocess"),
    pytest.param(("postgres", "in-process"), id="postgres-inprocess", marks=pytest.mark.postgres),
    pytest.param(("sqlite", "celery"), id="sqlite-celery", marks=pytest.mark.celery),
    pytest.param(
        ("postgres", "celery"),
        id="postgres-celery",
        marks=[pytest.mark.postgres, pytest.mark.celery],
    ),
]


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


def launch(
    stack: ExitStack,
    db: str,
    runner: str,
    directory: Path,
    run_id: str,
    extra_env: dict[str, str] | None = None,
) -> Service:
    """Start a deployment whose database, queue and processes `stack` tears down."""
    url = stack.enter_context(database(db, directory))
    broker = None
    queue = f"windmaker-test-{run_id}-{uuid.uuid4().hex[:6]}"
    if runner == "celery":
        if not redis_available():
            pytest.skip(f"Redis is not reachable at {REDIS_SERVER}")
        broker = f"{REDIS_SERVER}/{random.randint(1, 15)}"
        stack.callback(_purge_queue, broker, queue)
    env = {**service_env(url, broker=broker, queue=queue), **(extra_env or {})}
    service = Service(env, directory, celery=bool(broker))
    stack.callback(service.stop)
    service.start()
    return service


def _purge_queue(broker: str, queue: str) -> None:
    import redis

    client = redis.Redis.from_url(broker)
    client.delete(queue)
    client.close()


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, run_id: str
) -> Iterator[Service]:
    db, runner = request.param
    with ExitStack() as stack:
        yield launch(stack, db, runner, tmp_path_factory.mktemp(f"{db}-{runner}"), run_id)


@pytest.fixture(scope="module")
def embedded_service(tmp_path_factory: pytest.TempPathFactory, run_id: str) -> Iterator[Service]:
    """The default deployment (SQLite, in-process runner), one per module."""
    with ExitStack() as stack:
        yield launch(stack, "sqlite", "in-process", tmp_path_factory.mktemp("embedded"), run_id)
