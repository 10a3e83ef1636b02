"""A solver call in a forked child process, so that a deadline holds even where the solver
does not check its own clock.

HiGHS 1.16 does not look at its time limit everywhere in presolve: on the outer model of a
1,000-partner programme (4 resources, `max_gmv`, HiGHS named, 30 s) its presolve ran
146 s; without presolve the root LP failed and HiGHS fell back to that same presolve. No
callback runs there either, so a cancel could not stop it. In a child process the parent
can: it asks the child to stop (through a pipe its interrupt callback reads) and, past the
deadline, kills it.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

T = TypeVar("T")
POLL_S = 0.1  # how often the parent reads the child's pipe and asks `should_stop`
STOP_GRACE_S = 2.0  # after a stop request, how long the child has to answer with its best


def can_fork() -> bool:
    return hasattr(os, "fork")


def run_forked(
    solve: Callable[[Callable[[], bool]], T],
    deadline_s: float,
    should_stop: Callable[[], bool] | None = None,
) -> T | None:
    """`solve(stopping)` run in a forked child; its return value, or None when the child
    was killed (`deadline_s` passed, or it ignored a stop for STOP_GRACE_S) or died. The
    child's `stopping()` turns true once `should_stop` does: `solve` should poll it (an
    interrupt callback) and return its best so far. An exception `solve` raises is raised
    here (where it pickles; otherwise a RuntimeError naming it)."""
    started = time.monotonic()
    results_r, results_w = os.pipe()
    stop_r, stop_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns to the caller's code
        os.close(results_r)
        os.close(stop_w)
        _child(solve, stop_r, results_w)
    os.close(results_w)
    os.close(stop_r)
    try:
        data = _collect(pid, results_r, stop_w, started + deadline_s, should_stop)
    finally:
        os.close(results_r)
        with suppress(OSError):
            os.close(stop_w)
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)
    if data is None:
        return None
    try:
        kind, value = pickle.loads(data)
    except Exception:  # a child that died mid-write sent a torn message
        return None
    if kind == "raised":
        raise value
    return value  # type: ignore[no-any-return]


def _child(solve: Callable[[Callable[[], bool]], object], stop_r: int, results_w: int) -> None:
    code = 0
    try:
        stop = select.poll()  # not select.select: a server's descriptors can pass 1,024
        stop.register(stop_r, select.POLLIN)

        def stopping() -> bool:
            return bool(stop.poll(0))

        try:
            message = pickle.dumps(("returned", solve(stopping)))
        except Exception as exc:  # it is handed to the parent to raise
            try:
                message = pickle.dumps(("raised", exc))
            except Exception:
                message = pickle.dumps(("raised", RuntimeError(repr(exc))))
        view = memoryview(message)
        while view:
            view = view[os.write(results_w, view) :]
    except BaseException:  # nothing may escape into the caller's stack
        code = 1
    finally:
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers


def _collect(
    pid: int,
    results_r: int,
    stop_w: int,
    deadline: float,
    should_stop: Callable[[], bool] | None,
) -> bytes | None:
    """The child's message, or None once it is killed (or died without one)."""
    chunks: list[bytes] = []
    stop_asked: float | None = None
    results = select.poll()
    results.register(results_r, select.POLLIN | select.POLLHUP)
    while True:
        if results.poll(POLL_S * 1000):
            chunk = os.read(results_r, 1 << 20)
            if not chunk:  # the child closed its end: it has exited
                return b"".join(chunks) or None
            chunks.append(chunk)
            continue
        now = time.monotonic()
        if stop_asked is None and should_stop is not None and should_stop():
            stop_asked = now
            with suppress(OSError):
                os.write(stop_w, b"x")
        late = stop_asked is not None and now - stop_asked > STOP_GRACE_S
        if now > deadline or late:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return None
