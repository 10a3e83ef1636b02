"""The real server against slow, half-open and hostile clients (issue 11): it keeps
answering, every refusal is a 4xx JSON body, and nothing lands in the log as a traceback."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import BODY_LIMIT, Service
from tests.integration.api_support import small_request


def _raw(service: Service, request: bytes, timeout: float = 30) -> tuple[int, dict[str, Any]]:
    """Send raw bytes, read the whole answer; (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(1 << 16):
                received += chunk
        except ConnectionResetError:
            # Refusing a request it did not read to the end, the server closes with
            # bytes unread, which resets the connection after its answer.
            assert received, "reset before any answer"
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


def _chunks(payload: bytes, size: int = 1 << 16) -> Iterator[bytes]:
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


@pytest.mark.slow
def test_half_open_connections_do_not_starve_health(embedded_service: Service) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(64):
            sock = socket.create_connection(("127.0.0.1", embedded_service.port), timeout=5)
            sock.sendall(b"GET /v1/health HTTP/1.1\r\n")  # and never the rest
            held.append(sock)
        slowest = 0.0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = requests.get(embedded_service.url + "/v1/health", timeout=1)
            slowest = max(slowest, time.monotonic() - started)
            assert response.status_code == 200
            time.sleep(0.5)
        assert slowest < 1.0
    finally:
        for sock in held:
            sock.close()


def test_chunked_body_over_the_limit_is_413_not_truncated(embedded_service: Service) -> None:
    body = small_request()
    body["name"] = "x" * (BODY_LIMIT + 10)
    payload = json.dumps(body).encode()
    response = requests.post(
        embedded_service.url + "/v1/allocations",
        data=_chunks(payload),  # a generator: requests sends Transfer-Encoding: chunked
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413 and response.json()["errors"]["body"]
    small = json.dumps(small_request()).encode()
    accepted = requests.post(
        embedded_service.url + "/v1/allocations",
        data=_chunks(small, 100),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert accepted.status_code == 202, accepted.text


def test_oversized_request_line_and_headers_get_json(embedded_service: Service) -> None:
    start = "HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    long_path = "/v1/allocations/" + "a" * 10_000
    status, body = _raw(embedded_service, f"GET {long_path} {start}\r\n".encode())
    assert status == 404 and body["code"] == 404
    header = "X-Big: " + "b" * 70_000  # over the 64 KiB default
    status, body = _raw(embedded_service, f"GET /v1/health {start}{header}\r\n\r\n".encode())
    assert status == 431 and body["errors"]["headers"]


def test_out_of_range_numbers_and_deep_json_are_4xx(embedded_service: Service) -> None:
    url = embedded_service.url
    for path in ("/v1/allocations", "/v1/comparisons"):
        for page in ("9223372036854775807", str(10**30)):
            response = requests.get(url + path, params={"page": page}, timeout=30)
            assert response.status_code == 404 and response.json()["message"], response.text
    job = embedded_service.submit(small_request())
    for rank in ("9223372036854775808", "0", "-1", "21"):
        response = requests.get(url + f"/v1/allocations/{job['id']}/plans/{rank}.csv", timeout=30)
        assert response.status_code == 404 and response.json()["code"] == 404
    deep = "[" * 2000 + "]" * 2000
    for path in ("/v1/comparisons", "/v1/allocations"):
        response = requests.post(
            url + path, data=deep, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert response.status_code == 400 and "deeper" in response.json()["message"]


def test_nothing_reached_the_log_as_a_traceback(embedded_service: Service) -> None:
    # Runs after the hostile requests above (same module-scoped server).
    assert "Traceback" not in embedded_service.logs()
