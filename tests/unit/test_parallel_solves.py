"""The MILP strategy solves a round's inner and outer models at the same time, and stops
the outer solve when the inner plan leaves its bound unwanted (`optimizer.parallel`);
stage-1 solves are capped so stage 2 keeps its time."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from optimizer.clock import Clock
from optimizer.engines import milp_backend
from optimizer.engines.base import MilpModel, MilpResult, Termination
from optimizer.formulation import Formulation
from optimizer.milp import STAGE1_CALL_SHARE, STAGE2_INNER_SHARE, MilpStrategy, solve_milp
from optimizer.milp_rounds import (
    SCOUT_AFTER_SHARE,
    ObjectiveRound,
    Search,
    ShortfallRound,
    held_shortfall,
)
from optimizer.parallel import either, side_by_side
from optimizer.scoring import Incumbent, better, valid_plan
from tests.support.milp import WrappedBackend, incumbent, small_strategy

MEET_S = 20.0  # a call left waiting this long for the other was not run beside it


def test_both_calls_run_at_once_and_both_results_come_back() -> None:
    meeting = threading.Barrier(2, timeout=MEET_S)

    def here(stop: Callable[[], bool]) -> str:
        meeting.wait()  # broken (and raising) unless `there` runs meanwhile
        return "inner"

    def there(stop: Callable[[], bool]) -> str:
        meeting.wait()
        return "outer"

    assert side_by_side(here, there) == ("inner", "outer")


def test_an_unwanted_second_call_is_stopped_and_ended_before_the_return() -> None:
    seen: list[str] = []

    def there(stop: Callable[[], bool]) -> str:
        deadline = time.monotonic() + MEET_S
        while not stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append("stopped" if stop() else "ran out")
        return "outer"

    first, second = side_by_side(lambda stop: 0, there, needed=lambda first: first > 0)
    assert (first, second) == (0, None)
    assert seen == ["stopped"]  # it had ended by the time side_by_side returned


def test_a_failing_first_call_stops_the_second_and_raises() -> None:
    seen: list[bool] = []

    def here(stop: Callable[[], bool]) -> int:
        raise ValueError("no model")

    def there(stop: Callable[[], bool]) -> int:
        deadline = time.monotonic() + MEET_S
        while not stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(stop())
        return 1

    with pytest.raises(ValueError, match="no model"):
        side_by_side(here, there)
    assert seen == [True]


def test_a_second_result_that_settles_the_pair_stops_the_first_call_and_is_kept() -> None:
    # The outer solve proving its cut-off certifies the best plan: the inner solve has
    # nothing to add and stops, and the proof is kept even though the inner found nothing.
    seen: list[str] = []

    def here(stop: Callable[[], bool]) -> int | None:
        deadline = time.monotonic() + MEET_S
        while not stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append("stopped" if stop() else "ran out")
        return None

    first, second = side_by_side(
        here,
        lambda stop: "cut_off",
        needed=lambda first: first is not None,
        settles=lambda second: second == "cut_off",
    )
    assert (first, second) == (None, "cut_off")
    assert seen == ["stopped"]


def test_a_second_result_that_does_not_settle_leaves_the_first_call_alone() -> None:
    def here(stop: Callable[[], bool]) -> str:
        time.sleep(0.3)  # the second call has ended by now
        return "stopped" if stop() else "ran"

    assert side_by_side(here, lambda stop: "optimal", settles=lambda s: s == "cut_off") == (
        "ran",
        "optimal",
    )


def test_either_stop_check() -> None:
    assert either(None, None) is None
    yes, no = (lambda: True), (lambda: False)
    assert either(yes, None) is yes and either(None, no) is no
    combined = either(no, yes)
    assert combined is not None and combined()
    neither = either(no, no)
    assert neither is not None and not neither()


class _Highs(WrappedBackend):
    """HiGHS behind the backend interface, for wrappers that change how a solve runs."""

    def __init__(self) -> None:
        super().__init__("highs")


class _MeetingBackend(_Highs):
    """HiGHS, except that every solve first waits for a second solve to start."""

    def __init__(self) -> None:
        super().__init__()
        self.meeting = threading.Barrier(2, timeout=MEET_S)

    def solve(self, model: MilpModel, **options: object) -> MilpResult:
        self.meeting.wait()
        return self.inner.solve(model, **options)  # type: ignore[arg-type]


def test_a_stage_two_round_solves_inner_and_outer_models_at_once() -> None:
    strategy = small_strategy()
    assert not strategy.exact  # S-curves: the outer model differs from the inner one
    strategy.backend = _MeetingBackend()
    found = strategy._objective_round(held_shortfall(None, []), Clock(60.0))
    assert isinstance(found, ObjectiveRound)
    assert found.outer is not found.inner and found.bound is not None


class _HoldingBackend(_Highs):
    """HiGHS, after which a solve holds its result until stopped (or MEET_S): it returns
    early only if someone stops it. Every solve of a pair has a stop check; with
    `outer_only`, only the round's second solve (the outer one, on the pair's worker
    thread) holds."""

    def __init__(self, outer_only: bool = False) -> None:
        super().__init__()
        self.endings: list[str] = []
        self.outer_only = outer_only

    def solve(
        self, model: MilpModel, *, should_stop: Callable[[], bool] | None = None, **options: object
    ) -> MilpResult:
        result = self.inner.solve(model, **options)  # type: ignore[arg-type]
        outer = threading.current_thread().name.startswith("milp-pair")
        if should_stop is not None and (outer or not self.outer_only):
            deadline = time.monotonic() + MEET_S
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(0.01)
            self.endings.append("stopped" if should_stop() else "held")
        return result


def test_a_stage_one_plan_reaching_every_target_stops_the_outer_solve() -> None:
    strategy = small_strategy()
    backend = _HoldingBackend(outer_only=True)
    strategy.backend = backend
    found = strategy._shortfall_round([], Clock(60.0), 1)
    assert isinstance(found, ShortfallRound)
    assert found.cap == 0 and found.proven  # two partners reach ¥100 on the inner model
    assert backend.endings == ["stopped"]  # the outer solve, no longer wanted


def test_a_cancelled_job_stops_both_solves_of_a_round() -> None:
    strategy = small_strategy()
    backend = _HoldingBackend()
    strategy.backend = backend
    cancelled = threading.Event()
    timer = threading.Timer(0.2, cancelled.set)
    timer.start()
    try:
        strategy._objective_round(held_shortfall(None, []), Clock(60.0, cancelled.is_set))
    finally:
        timer.cancel()
    assert backend.endings == ["stopped", "stopped"]  # the inner solve's and the outer's


class _RecordingBackend(_Highs):
    """HiGHS, recording each solve's time limit; with `fail_capped`, a solve given less
    than the whole time left ends as if out of time before its first plan."""

    def __init__(self, clock: Clock, fail_capped: bool = False) -> None:
        super().__init__()
        self.clock = clock
        self.fail_capped = fail_capped
        self.limits: list[float] = []
        self.lock = threading.Lock()

    def solve(self, model: MilpModel, *, time_limit_s: float, **options: object) -> MilpResult:
        with self.lock:
            self.limits.append(time_limit_s)
        if self.fail_capped and time_limit_s < self.clock.left() - 1.0:
            return MilpResult(Termination.NO_SOLUTION)
        return self.inner.solve(model, time_limit_s=time_limit_s, **options)  # type: ignore[arg-type]


def test_a_stage_one_solve_is_capped_to_leave_stage_two_its_time() -> None:
    strategy = small_strategy()
    clock = Clock(40.0)
    backend = _RecordingBackend(clock)
    strategy.backend = backend
    assert isinstance(strategy._shortfall_round([], clock, 1), ShortfallRound)
    assert backend.limits and max(backend.limits) <= STAGE1_CALL_SHARE * 40.0
    strategy._objective_round(held_shortfall(None, []), clock)  # stage 2 is not capped
    assert max(backend.limits) > STAGE1_CALL_SHARE * 40.0


def test_a_stage_one_solve_capped_before_its_first_plan_runs_again_uncapped() -> None:
    strategy = small_strategy()
    clock = Clock(40.0)
    backend = _RecordingBackend(clock, fail_capped=True)
    strategy.backend = backend
    found = strategy._shortfall_round([], clock, 1)
    assert isinstance(found, ShortfallRound)  # a plan, from the second, uncapped solve
    # Both models again: a bound from the inner model alone would prove nothing.
    uncapped = [limit for limit in backend.limits if limit > STAGE1_CALL_SHARE * 40.0]
    assert len(uncapped) == 2


class _ProvingBackend(_Highs):
    """A solve given a cut-off (the outer one) proves it at once; any other solve with a
    stop check holds until stopped (or MEET_S) and then has found no plan."""

    def __init__(self) -> None:
        super().__init__()
        self.endings: list[str] = []

    def solve(
        self,
        model: MilpModel,
        *,
        should_stop: Callable[[], bool] | None = None,
        cutoff: float | None = None,
        **options: object,
    ) -> MilpResult:
        if cutoff is not None:
            return MilpResult(Termination.CUT_OFF, bound=cutoff)
        deadline = time.monotonic() + MEET_S
        while should_stop is not None and not should_stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.endings.append("stopped" if should_stop is not None and should_stop() else "ran")
        return MilpResult(Termination.NO_SOLUTION)


def test_an_outer_proof_of_the_cut_off_stops_the_inner_solve_and_certifies_the_best_plan() -> None:
    strategy = small_strategy()
    planned = solve_milp(strategy.arrays, milp_backend("highs"), time_limit_s=20.0)
    best = incumbent(strategy, planned.candidates[0].amounts)
    search = Search(best=best, shortfall_proven=True)
    cutoff = search.cutoff(strategy.request.objective, strategy.options.mip_gap)
    assert cutoff is not None
    backend = _ProvingBackend()
    strategy.backend = backend
    started = time.monotonic()
    found = strategy._objective_round(held_shortfall(None, []), Clock(60.0), search)
    assert backend.endings == ["stopped"], "the inner solve was stopped, not left to run"
    assert time.monotonic() - started < MEET_S / 2
    assert isinstance(found, ObjectiveRound)
    assert found.plan is best
    assert found.bound is not None and math.isclose(found.bound, cutoff, rel_tol=1e-9)


class _OuterFirstBackend(_Highs):
    """HiGHS for the outer solve (on the pair's thread), at once; the inner solve first
    waits up to HOLD_S for a stop, then solves unless stopped."""

    HOLD_S = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.endings: list[str] = []

    def solve(
        self, model: MilpModel, *, should_stop: Callable[[], bool] | None = None, **options: object
    ) -> MilpResult:
        if threading.current_thread().name.startswith("milp-pair"):
            return self.inner.solve(model, **options)  # type: ignore[arg-type]
        deadline = time.monotonic() + self.HOLD_S
        while should_stop is not None and not should_stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        if should_stop is not None and should_stop():
            self.endings.append("stopped")
            return MilpResult(Termination.NO_SOLUTION)
        self.endings.append("ran")
        return self.inner.solve(model, **options)  # type: ignore[arg-type]


def _half_a_plan(strategy: MilpStrategy) -> Incumbent:
    """A valid plan any round beats: half the amounts of one HiGHS finds."""
    planned = solve_milp(strategy.arrays, milp_backend("highs"), time_limit_s=20.0)
    return incumbent(strategy, planned.candidates[0].amounts * 0.5)


def test_an_outer_solution_repaired_into_a_better_valid_plan_stops_the_inner_solve() -> None:
    strategy = small_strategy()
    weak = _half_a_plan(strategy)
    backend = _OuterFirstBackend()
    strategy.backend = backend
    found = strategy._objective_round(
        held_shortfall(None, []), Clock(60.0), Search(best=weak, shortfall_proven=True)
    )
    assert backend.endings == ["stopped"], "stopped once the outer's repaired plan beat the best"
    assert isinstance(found, ObjectiveRound)
    assert found.plan is not weak
    assert better(weak, found.plan, strategy.request.objective) is found.plan
    assert valid_plan(strategy.arrays, strategy.columns, found.plan[0])


def test_an_outer_solution_no_better_than_the_best_plan_leaves_the_inner_solve_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strategy = small_strategy()
    planned = solve_milp(strategy.arrays, milp_backend("highs"), time_limit_s=20.0)
    best = incumbent(strategy, planned.candidates[0].amounts)
    backend = _OuterFirstBackend()
    strategy.backend = backend
    repaired: list[int] = []
    exact = strategy.outer_repair.exact

    def counting(form: Formulation, solution: np.ndarray) -> Incumbent:
        repaired.append(id(solution))
        return exact(form, solution)

    monkeypatch.setattr(strategy.outer_repair, "exact", counting)
    found = strategy._objective_round(
        held_shortfall(None, []), Clock(60.0), Search(best=best, shortfall_proven=True)
    )
    assert backend.endings == ["ran"]
    assert isinstance(found, ObjectiveRound)
    # The outer solution is repaired once, for the stop check and the round's plan alike.
    assert found.outer[1].x is not None
    assert repaired.count(id(found.outer[1].x)) == 1


class _SolvedFlagBackend(_Highs):
    """HiGHS, recording what each solve's `stop_at_solution` said: the inner solve (this
    thread) first waits HOLD_S so the outer one (the pair's thread) can look before it ends;
    the outer one then waits up to MEET_S for the flag to turn true."""

    HOLD_S = 0.3

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, object] = {}

    def solve(
        self,
        model: MilpModel,
        *,
        stop_at_solution: Callable[[], bool] | None = None,
        **options: object,
    ) -> MilpResult:
        if not threading.current_thread().name.startswith("milp-pair"):
            self.seen["inner"] = stop_at_solution
            time.sleep(self.HOLD_S)
            return self.inner.solve(model, **options)  # type: ignore[arg-type]
        if stop_at_solution is None:
            self.seen["outer"] = None
            return self.inner.solve(model, **options)  # type: ignore[arg-type]
        self.seen["outer before"] = stop_at_solution()
        deadline = time.monotonic() + MEET_S
        while not stop_at_solution() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.seen["outer after"] = stop_at_solution()
        return self.inner.solve(model, **options)  # type: ignore[arg-type]


def test_an_outer_solve_with_a_cutoff_may_stop_at_a_solution_once_the_inner_one_ends() -> None:
    strategy = small_strategy()
    weak = _half_a_plan(strategy)
    backend = _SolvedFlagBackend()
    strategy.backend = backend
    strategy._objective_round(
        held_shortfall(None, []), Clock(60.0), Search(best=weak, shortfall_proven=True)
    )
    assert backend.seen == {"inner": None, "outer before": False, "outer after": True}


def test_an_outer_solve_without_a_cutoff_runs_for_its_bound() -> None:
    strategy = small_strategy()
    backend = _SolvedFlagBackend()
    strategy.backend = backend
    search = Search(best=None, shortfall_proven=True)
    strategy._objective_round(held_shortfall(None, []), Clock(60.0), search)
    assert backend.seen == {"inner": None, "outer": None}


def test_an_outer_solve_may_stop_only_after_its_grace_past_the_inner_solve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from optimizer import milp_rounds

    now = [100.0]
    monkeypatch.setattr(milp_rounds.time, "monotonic", lambda: now[0])
    grace = milp_rounds.OuterGrace()
    now[0] = 104.0
    assert not grace(), "the inner solve is still running"
    grace.inner_ended()  # after 4 s
    assert not grace()
    now[0] = 104.0 + milp_rounds.OUTER_GRACE * 4.0 - 0.01
    assert not grace(), "still within its grace"
    now[0] += 0.02
    assert grace()


class _ScoutingBackend(_Highs):
    """HiGHS, recording how long each outer solve (the pair's thread) waited for its
    `stop_at_solution` to turn true before it "stopped at" its solution, and whether each
    inner solve (this thread), which first waits up to HOLD_S for a stop, was stopped."""

    HOLD_S = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.inner_stopped: list[bool] = []
        self.outer_waited: list[float] = []
        self.outer_at_once: list[bool] = []  # `stop_at_solution` already true as it started

    def solve(
        self,
        model: MilpModel,
        *,
        should_stop: Callable[[], bool] | None = None,
        stop_at_solution: Callable[[], bool] | None = None,
        cutoff: float | None = None,
        **options: object,
    ) -> MilpResult:
        started = time.monotonic()
        if threading.current_thread().name.startswith("milp-pair"):
            assert stop_at_solution is not None, "a stage-2 outer solve with a cut-off"
            self.outer_at_once.append(stop_at_solution())
            while not stop_at_solution() and time.monotonic() - started < MEET_S:
                time.sleep(0.01)
            self.outer_waited.append(time.monotonic() - started)
            # Its cut-off left out, so that it has a solution to stop at.
            solved = self.inner.solve(model, **options)  # type: ignore[arg-type]
            return replace(solved, termination=Termination.FEASIBLE)
        while should_stop is not None and not should_stop():
            if time.monotonic() - started >= self.HOLD_S:
                break
            time.sleep(0.01)
        stopped = should_stop is not None and should_stop()
        self.inner_stopped.append(stopped)
        if stopped:
            return MilpResult(Termination.NO_SOLUTION)
        return self.inner.solve(model, **options)  # type: ignore[arg-type]


def _held_plan_search(strategy: MilpStrategy, standing: bool) -> Search:
    """A search holding HiGHS's plan, with a bound from elsewhere (1% above it) or none."""
    planned = solve_milp(strategy.arrays, milp_backend("highs"), time_limit_s=20.0)
    best = incumbent(strategy, planned.candidates[0].amounts)
    bound = 1.01 * best[1].final(strategy.request.objective) if standing else None
    return Search(best=best, shortfall_proven=True, bound=bound)


def test_the_first_round_against_a_standing_bound_scouts_and_the_next_does_not() -> None:
    # The finish holds the decomposition's bound: its first round's outer solve stops at a
    # solution past the cut-off once it has run SCOUT_AFTER_SHARE of the limit, and the
    # inner solve with it, the plan held; the rounds after it wait for the inner solve.
    strategy = small_strategy()
    strategy.options = replace(strategy.options, time_limit_s=20.0)
    after_s = SCOUT_AFTER_SHARE * 20.0
    search = _held_plan_search(strategy, standing=True)
    best = search.best
    backend = _ScoutingBackend()
    strategy.backend = backend
    first = strategy._objective_round(held_shortfall(None, []), Clock(60.0), search)
    assert backend.inner_stopped == [True]
    assert backend.outer_at_once == [False], f"not before {after_s:.1f} s"
    assert backend.outer_waited[0] < backend.HOLD_S
    assert isinstance(first, ObjectiveRound)
    assert first.plan is best, "the held plan stands: the outer solution repairs into no better"
    assert first.outer[1].x is not None, "the solution the next round refines at"
    strategy._objective_round(held_shortfall(None, []), Clock(60.0), search)
    assert backend.inner_stopped == [True, False]
    assert backend.outer_waited[1] >= backend.HOLD_S, "it waited for the inner solve to end"


def test_no_round_scouts_without_a_standing_bound() -> None:
    strategy = small_strategy()
    strategy.options = replace(strategy.options, time_limit_s=20.0)
    backend = _ScoutingBackend()
    strategy.backend = backend
    search = _held_plan_search(strategy, standing=False)
    strategy._objective_round(held_shortfall(None, []), Clock(60.0), search)
    assert backend.inner_stopped == [False]
    assert backend.outer_waited[0] >= backend.HOLD_S


def test_a_stage_two_inner_solve_beside_an_outer_one_with_a_plan_held_is_capped() -> None:
    # An inner model far from its own bound would otherwise take every second left; the
    # outer solve keeps the time left for its proof, and a round whose inner solve is all
    # there is (plan-only, or an exact model's) is not capped.
    strategy = small_strategy()
    limit = strategy.options.time_limit_s
    cap = STAGE2_INNER_SHARE * limit
    clock = Clock(limit)
    backend = _RecordingBackend(clock)
    strategy.backend = backend
    search = _held_plan_search(strategy, standing=False)
    strategy._objective_round(held_shortfall(None, []), clock, search)
    inner, outer = sorted(backend.limits)
    assert inner <= cap + 1e-9 < outer
    backend.limits.clear()
    strategy.plan_only = True
    strategy._objective_round(held_shortfall(None, []), clock, search)
    assert backend.limits and min(backend.limits) > cap
    # Nor an exact model's (points and linear curves): its inner solve is its own bound.
    backend.limits.clear()
    strategy.plan_only, strategy.exact = False, True
    strategy._objective_round(held_shortfall(None, []), clock, search)
    assert len(backend.limits) == 1 and backend.limits[0] > cap
