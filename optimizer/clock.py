"""The time budget every engine runs against, and the one rule for a certified gap."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

StopCheck = Callable[[], bool] | None


class Clock:
    """Seconds since the start against a limit; `should_stop` (a cancelled job) ends the
    run early and is remembered, so the engine can report the stop as a time limit."""

    def __init__(self, limit_s: float, should_stop: StopCheck = None) -> None:
        self.started = time.perf_counter()
        self.limit = limit_s
        self.should_stop = should_stop
        self.stopped = False
        # The longest single step (`timed`) an engine has taken: no step starts that would
        # end past the limit, so an anytime engine stops on time, not one step late.
        self.step_s = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self, share: float = 1.0) -> float:
        """Seconds left until `share` of the limit has passed (negative once it has)."""
        return self.limit * share - self.elapsed()

    def out(self, share: float = 1.0) -> bool:
        """Cancelled, or `share` of the time limit used up."""
        if not self.stopped and self.should_stop is not None and self.should_stop():
            self.stopped = True
        return self.stopped or self.left(share) <= 0

    def room(self, share: float = 1.0) -> bool:
        """Time for one more step before `share` of the limit (and not cancelled)."""
        return not self.out(share) and self.left(share) >= self.step_s

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Time one step of an engine (see `room`)."""
        began = time.perf_counter()
        yield
        self.step_s = max(self.step_s, time.perf_counter() - began)


# Below this (request units: CNY, or GMV) a plan and a bound differ by float noise only: a
# request whose targets cost nothing had a cost bound of 1.2e-7 against a plan costing 0
# (hypothesis example).
BOUND_NOISE = 1e-6


def relative_gap(objective: float, bound: float | None, minimise: bool) -> float | None:
    """How far the bound leaves room above (below, when minimising) the objective,
    relative to the bound; None without a bound. Never negative: a bound a rounding error
    on the wrong side of a proven optimum means gap 0. Room within BOUND_NOISE is none: a
    plan costing 0 against a bound of -6.8e-13 was 68% short of it (a brute-force
    programme, `min_cost`, whose neighbourhood searches then ran to the time limit)."""
    if bound is None:
        return None
    room = (objective - bound) if minimise else (bound - objective)
    if room <= BOUND_NOISE:
        return 0.0
    return room / max(abs(bound), 1e-12)


def better_than_bound(objective: float, bound: float, minimise: bool) -> bool:
    """Would the plan beat the bound (beyond float noise)? Then the bound is no
    certificate: only an infeasible plan, or a wrong bound, can."""
    slack = max(1e-9 * abs(bound), BOUND_NOISE)
    return objective < bound - slack if minimise else objective > bound + slack
