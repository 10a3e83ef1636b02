"""`windmaker serve` (the HTTP API under gunicorn) and `windmaker worker` (a Celery
worker)."""

from __future__ import annotations

import os
import sys

import click

from adapters.queue.celery_app import run_worker


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="gunicorn worker processes.",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Request threads per worker.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option("--access-log", is_flag=True, help="Log every request.")
def serve(
    host: str, port: int, workers: int, threads: int, log_level: str, access_log: bool
) -> None:
    """Run the HTTP API.

    SQLite and an in-process job runner unless WINDMAKER_DATABASE_URL /
    WINDMAKER_BROKER_URL say otherwise.
    """
    # The command line and the HTTP API are sibling rings that never import each other:
    # this process becomes the API's own server program (same PID, so signals reach it).
    argv = [
        sys.executable,
        "-m",
        "api.server",
        f"--host={host}",
        f"--port={port}",
        f"--workers={workers}",
        f"--threads={threads}",
        f"--log-level={log_level}",
        *(["--access-log"] if access_log else []),
    ]
    os.execv(sys.executable, argv)


@click.command()
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Solver processes (default: WINDMAKER_WORKER_CONCURRENCY or CPU count).",
)
@click.option(
    "--log-level",
    "loglevel",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option("--pool", help="Celery pool implementation (e.g. prefork, solo).")
def worker(concurrency: int | None, loglevel: str, pool: str | None) -> None:
    """Run a Celery worker for solves and comparisons.

    Needs WINDMAKER_BROKER_URL (and the same WINDMAKER_DATABASE_URL as the server).
    """
    run_worker(concurrency=concurrency, loglevel=loglevel.upper(), pool=pool)
