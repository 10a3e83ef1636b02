"""Progress on stderr while a solve runs: stage messages with the elapsed time, repeats
thinned unless --verbose, nothing with --quiet."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

import click

from optimizer.progress import Progress, ProgressEvent

_NUMBER = re.compile(r"[-+]?\d[\d.,]*(?:e[-+]?\d+)?%?")
REPEAT_INTERVAL_S = 2.0


def stderr_progress(verbose: bool = False) -> Progress:
    """Stage messages on stderr with the elapsed time.

    Engines report every iteration ("gmv it 57: bound ..."); unless `verbose`, a message
    that differs from the last shown one only in its numbers is shown at most every
    REPEAT_INTERVAL_S, so a new stage always appears but iterations do not flood.
    """
    started = time.monotonic()
    last_kind, last_at = "", -math.inf

    def show(event: ProgressEvent | str) -> None:
        nonlocal last_kind, last_at
        now = time.monotonic()
        text = str(event)  # a ProgressEvent prints as its message
        kind = _NUMBER.sub("#", text)
        if not verbose and kind == last_kind and now - last_at < REPEAT_INTERVAL_S:
            return
        last_kind, last_at = kind, now
        click.echo(f"[{now - started:6.1f}s] {text}", err=True)

    return show


def progress_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Every progress message (by default repeats are thinned).",
    )(func)
    return click.option("-q", "--quiet", is_flag=True, help="No progress messages.")(func)


def progress_printer(quiet: bool, verbose: bool) -> Progress | None:
    return None if quiet else stderr_progress(verbose)
