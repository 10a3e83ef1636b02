"""Serving the API with waitress, started programmatically.

Waitress reads every request — request line, headers and the whole body — in its event
loop before a worker thread sees it, so slow or half-open clients cost a socket, not one
of the few request threads: they cannot starve `/v1/health` or anyone else. Bodies over
the upload limit and oversized headers are refused there too, with the API's JSON error
body (see `_json_error_response`).

One process, `THREADS` request threads, and the in-process job runner (or Celery
workers); scale out with more processes behind a load balancer, all on one database.
SIGTERM and SIGINT stop taking requests and hand the jobs still solving back to the queue.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from types import FrameType
from typing import Any

import waitress
import waitress.utilities
from flask import Flask

from api.app import create_app, release_job_runner, start_job_runner

log = logging.getLogger(__name__)


def _json_error_response(
    self: waitress.utilities.Error, ident: str | None = None
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Waitress's own error answers (400, 413, 431, ...) in the API's error shape."""
    status = HTTPStatus(self.code)
    field, detail = _WAITRESS_ERRORS.get(self.code, ("request", str(self.body)))
    body: dict[str, Any] = {
        "code": status.value,
        "status": status.phrase,
        "message": f"{status.phrase.lower()}: {detail}",
        "errors": {field: [detail]},
    }
    headers = [("Content-Type", "application/json")]
    return f"{status.value} {status.phrase}", headers, json.dumps(body).encode("utf-8")


_WAITRESS_ERRORS = {
    413: ("body", "larger than the upload limit (WINDMAKER_MAX_UPLOAD_MB)"),
    431: ("headers", "request line and headers exceed WINDMAKER_MAX_HEADER_KB"),
}


# Waitress renders errors it finds before the app runs as text/plain; clients of a JSON
# API should not have to parse two formats.
waitress.utilities.Error.to_response = _json_error_response  # type: ignore[method-assign]


def server_options(config: Mapping[str, Any], threads: int | None = None) -> dict[str, Any]:
    """waitress adjustments from the service configuration (see docs/configuration.md)."""
    timeout = max(1, int(config["CHANNEL_TIMEOUT_S"]))
    return {
        "threads": max(1, int(threads or config["THREADS"])),
        # An idle or stalled connection is closed after this long; checked this often.
        "channel_timeout": timeout,
        "cleanup_interval": max(1, min(30, timeout // 2)),
        "connection_limit": max(1, int(config["CONNECTION_LIMIT"])),
        # waitress refuses a body reaching max_request_body_size: one byte over the limit.
        "max_request_body_size": int(config["MAX_CONTENT_LENGTH"]) + 1,
        "max_request_header_size": int(config["MAX_HEADER_KB"]) * 1024,
        "ident": "windmaker",
        "expose_tracebacks": False,
        "clear_untrusted_proxy_headers": True,
    }


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int | None = None,
    *,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve until SIGTERM/SIGINT (blocks). Configuration comes from WINDMAKER_* as usual."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = create_app()
    options = server_options(app.config, threads)
    wsgi: Any = app
    if access_log:
        from waitress.utilities import logger as waitress_logger

        wsgi = _AccessLog(app)
        waitress_logger.setLevel(logging.INFO)
    server = waitress.create_server(wsgi, host=host, port=port, **options)
    _stop_on_signals()
    start_job_runner(app)
    log.info(
        "serving Windmaker on http://%s:%d (%s, %d request threads)",
        host,
        port,
        _mode(app),
        options["threads"],
    )
    try:
        server.run()
    finally:
        server.close()
        release_job_runner(app)
        log.info("stopped; unfinished jobs are back in the queue")


def _stop_on_signals() -> None:
    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        raise SystemExit(0)  # waitress's loop catches it and shuts its threads down

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


class _AccessLog:
    """One line per request (method, path, status, seconds) for --access-log."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.log = logging.getLogger("windmaker.access")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()

        def logged(status: str, headers: Any, exc_info: Any = None) -> Any:
            self.log.info(
                "%s %s %s %.3fs",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                status.split(" ", 1)[0],
                time.perf_counter() - started,
            )
            return start_response(status, headers, exc_info)

        return self.app(environ, logged)


def _mode(app: Flask) -> str:
    return "Celery workers" if app.config.get("BROKER_URL") else "in-process job runner"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--threads", type=int, default=None, help="request threads (default: WINDMAKER_THREADS)"
    )
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    run(
        args.host,
        args.port,
        args.threads,
        log_level=args.log_level,
        access_log=args.access_log,
    )


if __name__ == "__main__":
    main()
