"""The CBC MILP finishing what the decomposition leaves (issue 12).

The Lagrangian's duality gap keeps the decomposition's certificate at 0.3-0.7% on family
programmes of 2,000-3,000 partners; the MILP, started from its plan and its proven least
shortfall, certifies the gap with its own bound. These tests hold the pieces: a start the
inner model can represent, stage 1 settled by the handed-over proof, and an answer never
worse than the decomposition's.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import replace

import numpy as np
import pytest

from fixtures.families import family_request
from models.plan import SolveStatus, curve_columns
from optimizer.arrays import build_arrays
from optimizer.decomposition import solve_decomposition
from optimizer.engines import available_engines, milp_backend
from optimizer.milp import MilpStrategy, solve_milp
from optimizer.milp_finish import (
    FINISH_BY_MILP_MARGIN,
    FINISH_BY_MILP_SHARE,
    finish_by_milp,
    milp_can_finish,
    milp_finishes,
)
from optimizer.outcome import Candidate
from optimizer.progress import ProgressEvent
from optimizer.pwl import domain, tangent_point
from optimizer.scoring import better_score, score
from optimizer.solve import run_engine

pytestmark = pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")


def test_a_start_on_an_s_curves_convex_stretch_makes_that_pair_exact() -> None:
    request, _ = family_request(3, 60, 0.9, time_limit_s=10.0)
    arrays = build_arrays(request)
    strategy = MilpStrategy(arrays, milp_backend("cbc"), None)
    relaxed = sorted(strategy.approximation.relaxed)
    assert relaxed, "the family's S-curves start relaxed"
    k = relaxed[0]
    low, high, _ = domain(arrays, k)
    touch = tangent_point(arrays.pair_curve[k], low, high)
    assert touch is not None
    amounts = np.zeros((arrays.n_partners, arrays.n_resources))
    i, r = int(arrays.pair_partner[k]), int(arrays.pair_resource[k])
    amounts[i, r] = touch / 2
    strategy.seed(Candidate(amounts))
    assert k not in strategy.approximation.relaxed
    assert set(strategy.approximation.relaxed) == set(relaxed) - {k}, "pairs at 0 stay relaxed"


def test_a_proven_shortfall_settles_stage_one_and_the_start_is_never_lost() -> None:
    request, _ = family_request(1, 300, 0.95, time_limit_s=20.0)
    arrays = build_arrays(request)
    # Stage 1's proof is what this test needs, and it comes first: a loose gap ends the
    # search soon after it, and a roomy limit leaves time for it on a slow machine (5 s
    # was not enough on a 2-core host with a third of its CPU stolen).
    first = solve_decomposition(request, time_limit_s=30.0, mip_gap=1e-2)
    assert first.shortfall_proven and first.shortfall_bound is not None
    start = first.candidates[0]
    events: list[ProgressEvent] = []
    outcome = solve_milp(
        arrays, milp_backend("cbc"), progress=events.append, warm_start=start,
        time_limit_s=20.0, proven_shortfall=first.shortfall_bound,
    )  # fmt: skip
    assert not [e for e in events if e.message.startswith("stage 1")], "no stage-1 rounds"
    assert [e for e in events if e.message.startswith("stage 2")]
    assert outcome.shortfall_proven and outcome.shortfall_bound == first.shortfall_bound
    columns = curve_columns(request)
    mine, theirs = score(arrays, columns, start), score(arrays, columns, outcome.candidates[0])
    assert theirs.shortfall <= mine.shortfall + 1e-9
    assert theirs.shortfall < mine.shortfall or theirs.gmv >= mine.gmv * (1 - 1e-12)


def test_another_engines_bound_certifies_the_start_after_one_round() -> None:
    """The rounds certify against the tighter of their own bound and the decomposition's:
    where the Lagrangian's is the tighter, rounds that only tighten their own toward it
    (family seed 0, 3,000 partners: five rounds, 45 s, the plan unmoved) count as stalled.
    A gap the MILP's own bound cannot certify in one round, a known bound within it: one
    round, `optimal`, and that bound reported."""
    request, _ = family_request(1, 300, 0.95, time_limit_s=20.0)
    first = solve_decomposition(request, time_limit_s=30.0, mip_gap=1e-2)
    assert first.shortfall_proven and first.shortfall_bound is not None
    start = first.candidates[0]
    tight = replace(request.options, mip_gap=1e-7)
    arrays = build_arrays(replace(request, options=tight))
    gmv = score(arrays, curve_columns(request), start).gmv
    known = gmv * (1 + 5e-8)
    events: list[ProgressEvent] = []
    outcome = solve_milp(
        arrays, milp_backend("cbc"), progress=events.append, warm_start=start,
        time_limit_s=20.0, proven_shortfall=first.shortfall_bound, known_bound=known,
    )  # fmt: skip
    rounds = [e for e in events if e.message.startswith("stage 2")]
    assert len(rounds) == 1
    assert outcome.status is SolveStatus.OPTIMAL
    assert outcome.best_bound is not None and outcome.best_bound <= known
    assert outcome.mip_gap is not None and outcome.mip_gap <= 1e-7


@pytest.mark.slow
def test_the_milp_closes_the_decompositions_gap_without_losing_its_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(1, 1000, 0.95, time_limit_s=40.0, mip_gap=1e-3)
    arrays = build_arrays(request)
    # Stage 2's option plan certifies this programme on its own now (0.08%); without it
    # the decomposition leaves the gap the MILP is to close here.
    monkeypatch.setattr("optimizer.decomposition.engine.first_pass", lambda *_: None)
    first = solve_decomposition(request, time_limit_s=15.0, mip_gap=1e-3, arrays=arrays)
    assert first.status is SolveStatus.FEASIBLE and first.mip_gap is not None
    assert first.mip_gap > 1e-3, "the Lagrangian alone does not certify this one"
    start = Candidate(first.candidates[0].amounts.copy())
    finished = finish_by_milp(arrays, first, None, None, left_s=25.0, limit_s=40.0)
    assert finished is not first, "the MILP ran and brought a bound of its own"
    assert finished.mip_gap is not None and finished.mip_gap < first.mip_gap
    # The reduced-cost fixing holds for any plan better than the decomposition's: the
    # neighbourhoods after the finish claim tiers within it.
    assert first.tier_levels is not None and finished.tier_levels is first.tier_levels
    assert finished.shortfall_proven
    columns = curve_columns(request)
    mine = score(arrays, columns, start)
    theirs = score(arrays, columns, finished.candidates[0])
    assert not better_score(mine, theirs, request.objective)


def test_only_auto_requests_and_unfinished_decompositions_go_on_to_the_milp() -> None:
    request, _ = family_request(1, 300, 0.95, time_limit_s=10.0)
    arrays = build_arrays(request)
    first = solve_decomposition(request, time_limit_s=3.0, mip_gap=0.0, arrays=arrays)
    first.status = SolveStatus.FEASIBLE
    assert finish_by_milp(arrays, first, None, None, left_s=0.1, limit_s=10.0) is first
    named = replace(request, options=replace(request.options, engine="decomposition"))
    assert finish_by_milp(build_arrays(named), first, None, None, 7.0, 10.0) is first
    first.status = SolveStatus.OPTIMAL
    assert finish_by_milp(arrays, first, None, None, left_s=7.0, limit_s=10.0) is first


def _stage_two_searches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the decomposition's stage-2 price searches (stage 1 has its own module)."""
    from optimizer.decomposition import engine

    searches: list[int] = []
    original = engine.run_stage

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        searches.append(int(kwargs.get("attempt", 0)))
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "run_stage", counting)
    return searches


def test_a_decomposition_the_milp_will_finish_stops_after_its_first_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request, _ = family_request(1, 300, 0.95, time_limit_s=10.0)
    arrays = build_arrays(request)
    searches = _stage_two_searches(monkeypatch)
    # A gap no search reaches: an anytime run searches on (its first search alone took
    # 4.5 s of 8 on a loaded machine, leaving no room for a second).
    anytime = solve_decomposition(request, time_limit_s=14.0, mip_gap=1e-7, arrays=arrays)
    assert len(searches) >= 2 and anytime.candidates
    searches.clear()
    once = solve_decomposition(
        request, time_limit_s=8.0, mip_gap=1e-7, arrays=arrays, anytime=False
    )
    assert searches == [0], "the first search only"
    assert once.candidates and once.status is SolveStatus.FEASIBLE
    assert once.seconds < anytime.seconds


def test_auto_asks_for_one_search_only_where_the_milp_can_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import optimizer.decomposition as decomposition

    asked: list[bool] = []
    original = decomposition.solve_decomposition

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(kwargs["anytime"])
        return original(*args, **kwargs)

    monkeypatch.setattr(decomposition, "solve_decomposition", recording)
    request, _ = family_request(1, 120, 0.95, time_limit_s=6.0)
    arrays = build_arrays(request)
    run_engine(request, arrays, "decomposition", None, None)
    assert milp_can_finish(arrays) and asked == [False]
    named = replace(request, options=replace(request.options, engine="decomposition"))
    run_engine(named, build_arrays(named), "decomposition", None, None)
    assert asked == [False, True], "a request naming the engine gets its anytime search"


def test_the_milp_finish_needs_its_share_of_the_limit() -> None:
    request, _ = family_request(1, 120, 0.95, time_limit_s=10.0)
    arrays = build_arrays(request)
    assert milp_can_finish(arrays)
    assert milp_finishes(arrays, left_s=FINISH_BY_MILP_SHARE * 10.0, limit_s=10.0)
    assert not milp_finishes(arrays, left_s=FINISH_BY_MILP_SHARE * 10.0 - 0.01, limit_s=10.0)


@pytest.mark.parametrize("milp_next", [True, False])
def test_the_neighbourhoods_get_the_time_the_milp_finish_will_not_take(
    monkeypatch: pytest.MonkeyPatch, milp_next: bool
) -> None:
    # Family seed 10, 600 partners, 4 resources, 20 s: the decomposition stopped 1.9% short
    # at 15 s, too late for the MILP finish, and the 5 s left went unused.
    solve_module = importlib.import_module("optimizer.solve")
    calls: list[tuple[str, float, int | None]] = []
    last: list[bool] = []

    def neighbourhoods(arrays, outcome, progress, should_stop, left_s, *rest, **kw):  # type: ignore[no-untyped-def]
        calls.append(("neighbourhoods", left_s, None))
        last.append(kw.get("last", False))
        return outcome

    def finish(arrays, outcome, progress, should_stop, left_s, limit_s, max_pairs=None):  # type: ignore[no-untyped-def]
        calls.append(("milp", left_s, max_pairs))
        return outcome

    monkeypatch.setattr(solve_module, "finish_by_neighbourhoods", neighbourhoods)
    # One search: the stand-in above never changes the outcome, and the searches go on
    # while one could run (see test_neighbourhood's searches to the limit).
    monkeypatch.setattr(solve_module, "can_finish", lambda *_: not calls or calls[-1][0] == "milp")
    monkeypatch.setattr(solve_module, "milp_finishes", lambda *_: milp_next)
    monkeypatch.setattr(solve_module, "finish_by_milp", finish)
    request, _ = family_request(1, 120, 0.95, time_limit_s=6.0)
    run_engine(request, build_arrays(request), "decomposition", None, None)
    # The finish first, then the neighbourhoods with the time it leaves; where the finish
    # cannot run, the neighbourhoods alone, with all of it.
    order = [name for name, _, _ in calls]
    assert last == [True], "nothing follows them: their whole round may take more"
    if milp_next:
        assert order == ["milp", "neighbourhoods"]
        assert calls[0][2] is None, "the finish keeps its own size limit"
        assert calls[1][1] <= calls[0][1]
    else:
        assert order == ["neighbourhoods"]
    assert all(0.0 < left < 6.0 for _, left, _ in calls)


@pytest.mark.parametrize("runs_out", [True, False])
def test_a_plan_short_of_the_gap_when_the_time_is_used_up_ended_on_the_time_limit(
    monkeypatch: pytest.MonkeyPatch, runs_out: bool
) -> None:
    """Family seed 4, 2,500 partners, 60 s: the neighbourhoods after the MILP finish ran
    out of time at 58.8 s, 0.113% from the bound, and the plan said `feasible`, as if the
    search had given up. A plan no search can go on with (a request the neighbourhoods
    do not model) stays `feasible`."""
    solve_module = importlib.import_module("optimizer.solve")
    limit = 6.0

    def neighbourhoods(arrays, outcome, progress, should_stop, left_s, *rest, **kw):  # type: ignore[no-untyped-def]
        if runs_out:
            time.sleep(max(left_s, 0.0))
        return outcome

    monkeypatch.setattr(solve_module, "finish_by_neighbourhoods", neighbourhoods)
    monkeypatch.setattr(solve_module, "milp_finishes", lambda *_: True)
    monkeypatch.setattr(solve_module, "finish_by_milp", lambda arrays, outcome, *_: outcome)
    # Where the time runs out, a search starts whatever the time left (on a loaded machine
    # the decomposition may leave less than a round).
    searches = (lambda arrays, outcome, left_s: left_s > 0) if runs_out else (lambda *_: False)
    monkeypatch.setattr(solve_module, "can_finish", searches)
    request, _ = family_request(1, 120, 0.95, time_limit_s=limit, mip_gap=1e-9)
    started = time.perf_counter()
    outcome = run_engine(request, build_arrays(request), "decomposition", None, None)
    elapsed = time.perf_counter() - started
    assert outcome.candidates and outcome.mip_gap is not None and outcome.mip_gap > 1e-9
    if runs_out:
        assert elapsed >= (1 - 2 * FINISH_BY_MILP_MARGIN) * limit
        assert outcome.status is SolveStatus.TIME_LIMIT
    else:
        assert elapsed < (1 - 2 * FINISH_BY_MILP_MARGIN) * limit, "it gave up early"
        assert outcome.status is SolveStatus.FEASIBLE


def test_a_five_thousand_partner_programme_goes_to_the_milp_finish() -> None:
    # Family seed 6, 5,000 partners (10,813 amounts), 60 s: the decomposition's searches
    # and neighbourhoods gave up at 27 s and the MILP after them ended `optimal` at 36.5 s;
    # with the models pooled, the finish straight after the decomposition: 20.2 s.
    request, _ = family_request(6, 5000, 0.95, time_limit_s=120.0)
    arrays = build_arrays(request)
    share = FINISH_BY_MILP_SHARE * 120.0
    assert milp_can_finish(arrays)
    assert milp_finishes(arrays, left_s=share, limit_s=120.0)
    assert not milp_finishes(arrays, left_s=share - 0.01, limit_s=120.0)


def test_a_programme_above_the_size_given_is_not_finished() -> None:
    request, _ = family_request(1, 120, 0.95, time_limit_s=10.0)
    arrays = build_arrays(request)
    first = solve_decomposition(request, time_limit_s=3.0, mip_gap=0.0, arrays=arrays)
    first.status = SolveStatus.FEASIBLE
    smaller = arrays.n_pairs - 1
    assert milp_can_finish(arrays) and not milp_can_finish(arrays, smaller)
    assert finish_by_milp(arrays, first, None, None, 7.0, 10.0, max_pairs=smaller) is first
