"""Load benchmark of the HTTP API: many concurrent clients polling like the planner page.

Starts `python -m api.server` on a free loopback port (SQLite in a temporary folder,
in-process runner), submits one job to poll, then runs `--clients` threads for
`--seconds`. Each client polls about twice a second in rotation: health, the job list,
the job, its plan CSV, each client starting at a random moment of its first half second
(pages are opened one by one; `--lockstep` starts them together, so 50 requests arrive at
once every half second). Across all clients one POST (the bundled `--fixture`, `tiny` by
default) goes in every `--post-every` seconds. `--closed-loop` drops the pauses
(throughput); `--auth` creates a planner key and sends it on every call. Traffic never
leaves 127.0.0.1 and every loop is bounded by the duration.

    python -m bench.load --clients 50 --seconds 60 [--auth] [--closed-loop] [--lockstep]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.store import Store
from service.keys import PLANNER, create_key

ROOT = Path(__file__).resolve().parents[1]


# The bundled tiny programme by reference: what the planner page submits by default.
def post_body(fixture: str) -> dict[str, Any]:
    scenario = json.loads((ROOT / "fixtures" / "data" / f"{fixture}.scenario.json").read_text())
    return {**scenario, "partners": {"fixture": fixture}}


@dataclass
class Tally:
    """What every client thread records (appends are atomic under the GIL)."""

    reads: list[float] = field(default_factory=list)
    by_path: dict[str, list[float]] = field(default_factory=dict)
    posts: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


class Client:
    """One keep-alive HTTP/1.1 connection, reopened after an error."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if data else {})}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(directory: Path, port: int, threads: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WINDMAKER_DATABASE_URL": f"sqlite:///{directory / 'load.db'}"}
    env["PYTHONPATH"] = str(ROOT)
    log = open(directory / "server.log", "wb")  # noqa: SIM115 (the child owns it)
    server = subprocess.Popen(
        [sys.executable, "-m", "api.server", "--port", str(port), "--threads", str(threads)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if Client(port, {}).call("GET", "/v1/health")[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the server did not come up; see " + str(directory / "server.log"))


def wait_for(client: Client, job_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = json.loads(client.call("GET", f"/v1/allocations/{job_id}")[1])["status"]
        if status in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return str(status)
        time.sleep(0.2)


def poll(
    client: Client, job_id: str, tally: Tally, stop: float, pause: float, lockstep: bool
) -> None:
    paths = ["/v1/health", "/v1/allocations?page_size=20", f"/v1/allocations/{job_id}"]
    paths.append(f"/v1/allocations/{job_id}/plans/1.csv")
    turn = 0
    if pause and not lockstep:  # pages are opened at random moments, not all at once
        time.sleep(random.uniform(0.0, pause))
    while time.monotonic() < stop:
        path = paths[turn % len(paths)]
        turn += 1
        started = time.perf_counter()
        try:
            status, _ = client.call("GET", path)
            if status != 200:
                tally.errors.append(f"GET {path}: {status}")
        except (OSError, http.client.HTTPException) as error:
            tally.errors.append(f"GET {path}: {error}")
        tally.reads.append(time.perf_counter() - started)
        tally.by_path.setdefault(path.split("?")[0], []).append(tally.reads[-1])
        if pause:
            time.sleep(max(0.0, pause - (time.perf_counter() - started)))


def post(client: Client, body: dict[str, Any], tally: Tally, stop: float, every: float) -> None:
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            status, answer = client.call("POST", "/v1/allocations", body)
            if status == 202:
                tally.jobs.append(json.loads(answer)["id"])
            else:
                tally.errors.append(f"POST: {status} {answer[:200]!r}")
        except (OSError, http.client.HTTPException) as error:
            tally.errors.append(f"POST: {error}")
        tally.posts.append(time.perf_counter() - started)
        pause = min(every - (time.perf_counter() - started), stop - time.monotonic())
        time.sleep(max(0.0, pause))


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="windmaker-load-") as tmp:
        directory = Path(tmp)
        port = _free_port()
        server = start_server(directory, port, args.threads)
        try:
            return measure(args, directory, port)
        finally:
            server.terminate()
            server.wait(timeout=30)


def measure(args: argparse.Namespace, directory: Path, port: int) -> dict[str, Any]:
    headers: dict[str, str] = {}
    if args.auth:
        store = Store(f"sqlite:///{directory / 'load.db'}")
        headers["Authorization"] = "Bearer " + create_key(store, PLANNER, "load")[1]
        store.dispose()
    setup = Client(port, headers)
    body = post_body(args.fixture)
    seed = json.loads(setup.call("POST", "/v1/allocations", body)[1])["id"]
    if wait_for(setup, seed, 60) != "succeeded":
        raise RuntimeError("the job to poll did not succeed")
    tally = Tally()
    stop = time.monotonic() + args.seconds
    pause = 0.0 if args.closed_loop else 0.5
    threads = [
        threading.Thread(
            target=poll,
            args=(Client(port, headers), seed, tally, stop, pause, args.lockstep),
        )
        for _ in range(args.clients)
    ]
    threads.append(
        threading.Thread(
            target=post, args=(Client(port, headers), body, tally, stop, args.post_every)
        )
    )
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.seconds + 120)
    elapsed = time.monotonic() - started
    setup = Client(port, headers)  # its idle connection was closed by the server meanwhile
    finished = [wait_for(setup, job, 120) for job in tally.jobs]
    return summarise(args, tally, elapsed, finished)


def _ms(values: list[float], q: int) -> float:
    if len(values) < 2:
        return round(1000 * (values[0] if values else 0.0), 1)
    return round(1000 * statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def summarise(
    args: argparse.Namespace, tally: Tally, elapsed: float, finished: list[str]
) -> dict[str, Any]:
    requests_made = len(tally.reads) + len(tally.posts)
    return {
        "mode": "closed loop" if args.closed_loop else "2 polls/s per client",
        "auth": bool(args.auth),
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "requests": requests_made,
        "requests_per_s": round(requests_made / elapsed, 1),
        "errors": len(tally.errors),
        "first_errors": tally.errors[:5],
        "read_p50_ms": _ms(tally.reads, 50),
        "read_p99_ms": _ms(tally.reads, 99),
        "post_p50_ms": _ms(tally.posts, 50),
        "read_p99_ms_by_path": {path: _ms(times, 99) for path, times in tally.by_path.items()},
        "jobs_submitted": len(tally.jobs),
        "jobs_succeeded": finished.count("succeeded"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--post-every", type=float, default=2.0, help="seconds between POSTs")
    parser.add_argument("--fixture", default="tiny", help="bundled fixture the POSTs submit")
    parser.add_argument("--threads", type=int, default=8, help="server request threads")
    parser.add_argument("--auth", action="store_true", help="send a planner key")
    parser.add_argument("--closed-loop", action="store_true", help="no pauses: throughput")
    parser.add_argument(
        "--lockstep",
        action="store_true",
        help="every client polls at the same instants (bursts of --clients requests)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 500 or not 0 < args.seconds <= 600:
        parser.error("1-500 clients for at most 600 seconds")
    # SIGTERM as an exception, so the server this started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
