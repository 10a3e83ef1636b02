"""Two independent backend solves at once.

The MILP backends solve in native code on one thread each without holding the GIL (CBC
in a process of its own, HiGHS with `threads=1` releasing it around `run`), so on two
cores a pair of solves takes as long as the slower one instead of both together. The
MILP strategy solves its inner and outer models of one round this way."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

First = TypeVar("First")
Second = TypeVar("Second")
StopFlag = Callable[[], bool]


def side_by_side(
    here: Callable[[], First],
    there: Callable[[StopFlag], Second],
    needed: Callable[[First], bool] = lambda first: True,
) -> tuple[First, Second | None]:
    """`here()` on this thread while `there(stop)` runs on another. When `needed(first)`
    says the second result is not wanted, `stop()` turns true (a backend polling it ends
    its solve early) and the second result is None; the call returns only once both have
    ended, so no solve outlives it."""
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="milp-pair") as pool:
        future = pool.submit(there, cancel.is_set)
        try:
            first = here()
        except BaseException:
            cancel.set()
            raise
        if not needed(first):
            cancel.set()
            future.result()
            return first, None
        return first, future.result()


def either(first: StopFlag | None, second: StopFlag | None) -> StopFlag | None:
    """A stop check true once either is (None: neither is set)."""
    if first is None or second is None:
        return first or second
    return lambda: first() or second()


__all__ = ["StopFlag", "either", "side_by_side"]
