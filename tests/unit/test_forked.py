"""A solver call in a forked child keeps its deadline and its cancel even where the solver
never looks at either (HiGHS 1.16's presolve on some outer models), and otherwise answers
as the same call in-process would."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from optimizer.engines import forked, highs
from optimizer.engines.base import OVERRUN_GRACE_S, Termination
from optimizer.engines.forked import run_forked
from optimizer.engines.highs import HighsBackend
from tests.support.milp import hard_knapsack


def _spin_forever(pid_file: Path) -> Callable[[Callable[[], bool]], int]:
    """A solve that ignores its clock and every stop, as HiGHS's presolve did."""

    def solve(stopping: Callable[[], bool]) -> int:
        pid_file.write_text(str(os.getpid()))
        while True:
            pass

    return solve


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_childs_answer_comes_back() -> None:
    answer = run_forked(lambda stopping: (os.getpid(), np.arange(200_000.0)), 30)
    assert answer is not None
    pid, values = answer
    assert pid != os.getpid()  # it ran in another process
    assert float(values.sum()) == pytest.approx(199_999 * 200_000 / 2)  # over 1 MiB of pipe


def test_an_exception_in_the_child_is_raised_here() -> None:
    def solve(stopping: Callable[[], bool]) -> int:
        raise ValueError("a model the solver rejects")

    with pytest.raises(ValueError, match="rejects"):
        run_forked(solve, 30)


def test_a_child_past_its_deadline_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    assert run_forked(_spin_forever(pid_file), 1.0) is None
    assert time.monotonic() - started < 5
    assert _gone(int(pid_file.read_text()))  # killed and reaped, not left spinning


def test_a_stop_asks_the_child_for_its_best_so_far() -> None:
    def solve(stopping: Callable[[], bool]) -> str:
        while not stopping():
            time.sleep(0.01)
        return "best so far"

    started = time.monotonic()
    answer = run_forked(solve, 60, should_stop=lambda: time.monotonic() > started + 0.5)
    assert answer == "best so far"
    assert time.monotonic() - started < 5


def test_a_child_that_ignores_a_stop_is_killed_after_a_grace(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    stop = lambda: time.monotonic() > started + 0.5  # noqa: E731
    assert run_forked(_spin_forever(pid_file), 60, should_stop=stop) is None
    assert time.monotonic() - started < 0.5 + forked.STOP_GRACE_S + 3
    assert _gone(int(pid_file.read_text()))


def test_highs_forks_only_wide_milps() -> None:
    knapsack = hard_knapsack()
    assert not highs.forks(knapsack)  # 400 columns
    wide = knapsack.__class__(**{**knapsack.__dict__, "integer": np.zeros(400, dtype=bool)})
    assert not highs.forks(wide)  # an LP never does


@pytest.fixture
def forking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every HiGHS MIP solves in a forked child."""
    monkeypatch.setattr(highs, "FORK_COLUMNS", 0)


def _calls_in_process(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pids: list[int] = []
    original = HighsBackend._solve_once

    def recorded(self: HighsBackend, *args: object) -> object:
        pids.append(os.getpid())
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(HighsBackend, "_solve_once", recorded)
    return pids


@pytest.mark.usefixtures("forking")
def test_a_forked_highs_solve_answers_as_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    pids = _calls_in_process(monkeypatch)  # only calls made in this process are seen
    model = hard_knapsack()
    there = HighsBackend().solve(model, time_limit_s=3, mip_gap=0.0, seed=1)
    assert not pids  # the solve ran in the child
    monkeypatch.setattr(highs, "FORK_COLUMNS", 10**9)
    here = HighsBackend().solve(model, time_limit_s=3, mip_gap=0.0, seed=1)
    assert pids
    for result in (there, here):
        assert result.termination is Termination.FEASIBLE and result.x is not None
        assert result.objective == pytest.approx(float(model.c @ result.x))
        assert result.bound is not None and result.bound <= result.objective
    assert there.seconds < 3 + OVERRUN_GRACE_S


@pytest.mark.usefixtures("forking")
def test_a_cancel_stops_a_forked_highs_search_with_its_incumbent() -> None:
    started = time.monotonic()
    result = HighsBackend().solve(
        hard_knapsack(), time_limit_s=60, mip_gap=0.0,
        should_stop=lambda: time.monotonic() > started + 1.0,
    )  # fmt: skip
    assert time.monotonic() - started < 1.0 + forked.STOP_GRACE_S + 2
    assert result.termination is Termination.FEASIBLE and result.x is not None


@pytest.mark.usefixtures("forking")
def test_a_forked_highs_cutoff_is_still_proved() -> None:
    """The cutoff's callback runs in the child and its CUT_OFF comes back: no solution
    is below -10^6 (the knapsack's LP bound is about -11,400)."""
    result = HighsBackend().solve(hard_knapsack(), time_limit_s=30, mip_gap=0.0, cutoff=-1e6)
    assert result.termination is Termination.CUT_OFF and result.bound == -1e6
    assert result.seconds < 10


@pytest.mark.usefixtures("forking")
def test_a_forked_highs_solve_that_runs_past_its_deadline_gives_no_solution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A HiGHS call that never returns (as its presolve did for 146 s under a 29 s limit)
    is killed OVERRUN_GRACE_S after its limit and answers NO_SOLUTION."""

    def stuck(self: HighsBackend, *args: object) -> object:
        while True:
            time.sleep(1)

    monkeypatch.setattr(HighsBackend, "_solve_once", stuck)
    started = time.monotonic()
    result = HighsBackend().solve(hard_knapsack(), time_limit_s=1.0, mip_gap=0.0)
    elapsed = time.monotonic() - started
    assert result.termination is Termination.NO_SOLUTION and result.x is None
    assert 1.0 + OVERRUN_GRACE_S - 0.5 < elapsed < 1.0 + OVERRUN_GRACE_S + 3
