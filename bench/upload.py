"""A whole programme uploaded as CSV through the HTTP API, end to end.

Generates `--n` partners (`fixtures.generate`) and the bundled programme's scenario scaled
to them (`bench.instances.scenario`), starts `python -m api.server` on a loopback port
with `WINDMAKER_MAX_UPLOAD_MB` set to `--max-upload-mb`, and POSTs the CSV as
`multipart/form-data` to `/v1/allocations`. It reports the upload's answer time (the CSV
parsed and validated, the job stored), the job's status, solver status and gap when it
ends, the plan CSV's download, and the peak memory of the largest server process (the
API's or its solver process's, from /proc).

    python -m bench.upload --n 1000000 --max-upload-mb 400 --time-limit 300
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.instances import scenario
from bench.load import Client, _free_port, start_server
from fixtures.generate import generate_partners, write_partners_csv


def multipart(fields: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (filename, content, content type) parts."""
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, (filename, content, kind) in fields.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'.encode()
        )
        chunks.extend([content, b"\r\n"])
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _peak_mib(pid: int) -> float:
    """VmHWM (peak resident memory) of a process and its children, in MiB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    total = 0.0
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total = max(total, int(line.split()[1]) / 1024)
    return round(total, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    csv_text = _partners_csv(args.n, args.seed)
    data = scenario(args.n)
    data["options"] = {**data.get("options", {}), "time_limit_s": args.time_limit}
    data["options"]["mip_gap"] = args.mip_gap
    body, kind = multipart(
        {
            "request": ("request.json", json.dumps(data).encode(), "application/json"),
            "partners": ("partners.csv", csv_text, "text/csv"),
        }
    )
    generated_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="windmaker-upload-") as tmp:
        directory = Path(tmp)
        port = _free_port()
        os.environ["WINDMAKER_MAX_UPLOAD_MB"] = str(args.max_upload_mb)
        server = start_server(directory, port, threads=4)
        try:
            return {
                "partners": args.n,
                "csv_mib": round(len(csv_text) / 2**20, 1),
                "generate_s": round(generated_s, 1),
                **_measure(args, port, server, body, kind),
            }
        finally:
            server.terminate()
            server.wait(timeout=60)


def _partners_csv(n: int, seed: int) -> bytes:
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as handle:
        write_partners_csv(generate_partners(n, seed), handle)
        handle.seek(0)
        return handle.read().encode()


def _measure(
    args: argparse.Namespace, port: int, server: subprocess.Popen[bytes], body: bytes, kind: str
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    started = time.perf_counter()
    status, answer = _post(port, body, kind)
    result["upload_s"] = round(time.perf_counter() - started, 1)
    if status != 202:
        result["upload_error"] = [status, answer[:500].decode(errors="replace")]
        return result
    job_id = json.loads(answer)["id"]
    client = Client(port, {})
    solving_started = time.perf_counter()
    deadline = time.monotonic() + args.time_limit * 3 + 600
    while True:
        job = json.loads(client.call("GET", f"/v1/allocations/{job_id}")[1])
        if job["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(2)
    result["job_s"] = round(time.perf_counter() - solving_started, 1)
    result["job_status"] = job["status"]
    if job.get("plans"):
        solver = job["plans"][0]["solver"]
        objective = job["plans"][0]["objective"]
        result["solver"] = {key: solver.get(key) for key in ("engine", "status", "mip_gap")}
        result["shortfall"] = objective.get("weighted_shortfall")
    else:
        result["error"] = job.get("error")
    result["server_peak_mib"] = _peak_mib(server.pid)
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    connection.request("GET", f"/v1/allocations/{job_id}/plans/1.csv")
    response = connection.getresponse()
    lines = response.read().count(b"\n")
    result["plan_csv"] = {"status": response.status, "lines": lines}
    result["plan_csv"]["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _post(port: int, body: bytes, kind: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    connection.request("POST", "/v1/allocations", body=body, headers={"Content-Type": kind})
    response = connection.getresponse()
    return response.status, response.read()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upload", description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="partners")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-upload-mb", type=float, default=400)
    parser.add_argument("--time-limit", type=float, default=300)
    parser.add_argument("--mip-gap", type=float, default=0.01)
    args = parser.parse_args(argv)
    print(json.dumps(run(args), indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
