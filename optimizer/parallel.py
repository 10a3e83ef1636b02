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
    here: Callable[[StopFlag], First],
    there: Callable[[StopFlag], Second],
    needed: Callable[[First], bool] = lambda first: True,
    settles: Callable[[Second], bool] = lambda second: False,
) -> tuple[First, Second | None]:
    """`here(stop)` on this thread while `there(stop)` runs on another. When `needed(first)`
    says the second result is not wanted, `there`'s stop turns true (a backend polling it
    ends its solve early) and the second result is None. When `settles(second)` says the
    second result makes the first unwanted (an outer bound proving the best plan), `here`'s
    stop turns true and the second result is kept. The call returns only once both have
    ended, so no solve outlives it."""
    cancel, settled = threading.Event(), threading.Event()

    def second(stop: StopFlag) -> Second:
        result = there(stop)
        if settles(result):
            settled.set()
        return result

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="milp-pair") as pool:
        future = pool.submit(second, cancel.is_set)
        try:
            first = here(settled.is_set)
        except BaseException:
            cancel.set()
            raise
        if not needed(first) and not settled.is_set():
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
