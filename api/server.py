"""Serving the API with gunicorn (production WSGI), started programmatically.

The app is built inside each gunicorn worker process (after the fork), and that process
starts its in-process job runner in `post_worker_init`; on a graceful stop the runner
hands its unfinished jobs back to the queue. Several worker processes are safe: they
claim jobs from the database atomically.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from adapters.config import load_config
from adapters.store import Store
from api.app import create_app, release_job_runner, start_job_runner

log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app()


def _post_worker_init(worker: Any) -> None:
    start_job_runner(worker.wsgi)


def _worker_exit(_server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        release_job_runner(app)


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    threads: int = 8,
    *,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve until stopped (blocks). Configuration comes from WINDMAKER_* as usual."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = load_config()
    # Migrate once before forking; workers then find the schema current.
    Store(config["DATABASE_URL"]).dispose()
    options = {
        "bind": f"{host}:{port}",
        "workers": max(1, int(workers)),
        "worker_class": "gthread",
        "threads": max(1, int(threads)),
        # Requests are short (solving runs on runner threads), but a busy solver can
        # starve the worker's heartbeat to gunicorn for a while.
        "timeout": 120,
        "graceful_timeout": 10,
        "loglevel": log_level,
        "accesslog": "-" if access_log else None,
        "post_worker_init": _post_worker_init,
        "worker_exit": _worker_exit,
        "proc_name": "windmaker",
        # One shared default socket path would make two servers on a host collide.
        "control_socket_disable": True,
    }
    log.info("serving Windmaker on http://%s:%d (%s)", host, port, _mode(config))
    _Gunicorn(options).run()


def _mode(config: Any) -> str:
    return "Celery workers" if config.get("BROKER_URL") else "in-process job runner"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="request threads per process")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    run(
        args.host,
        args.port,
        args.workers,
        args.threads,
        log_level=args.log_level,
        access_log=args.access_log,
    )


if __name__ == "__main__":
    main()
