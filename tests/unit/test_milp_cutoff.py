"""A cutoff tells a MILP backend that only solutions below it matter: a backend that proves
there are none says so (CUT_OFF, with the cutoff as its bound). The MILP strategy cuts its
stage-2 outer solves off at the bound that would certify its best plan."""

from __future__ import annotations

import importlib
import itertools
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
import scipy.sparse as sp

from fixtures.families import family_request
from models.plan import SolveStatus, curve_columns
from models.request import Objective
from optimizer.arrays import build_arrays
from optimizer.clock import relative_gap
from optimizer.engines import available_engines, milp_backend
from optimizer.engines.base import MilpBackend, MilpModel, MilpResult, Termination
from optimizer.milp import solve_milp
from optimizer.milp_rounds import CUTOFF_SHARE, Search
from optimizer.outcome import Candidate
from optimizer.scoring import score, valid_plan
from tests.support.instances import random_small_request
from tests.support.milp import hard_knapsack, incumbent, small_strategy

BACKENDS = [name for name in ("cbc", "highs") if name in available_engines()]


def _knapsack(offset: float) -> tuple[MilpModel, float]:
    """A 12-item 0-1 knapsack (minimise −value) and its optimum, offset included, found by
    trying every subset."""
    rng = np.random.default_rng(7)
    value = rng.integers(5, 40, 12).astype(float)
    weight = rng.integers(3, 20, 12).astype(float)
    capacity = weight.sum() / 3
    best = max(
        float(value @ bits)
        for bits in map(np.array, itertools.product((0, 1), repeat=12))
        if weight @ bits <= capacity
    )
    model = MilpModel(
        c=-value,
        A=sp.csr_matrix(weight[None, :]),
        row_lo=np.array([-np.inf]),
        row_hi=np.array([capacity]),
        col_lo=np.zeros(12),
        col_hi=np.ones(12),
        integer=np.ones(12, dtype=bool),
        offset=offset,
    )
    return model, offset - best


@pytest.mark.parametrize("engine", BACKENDS)
def test_a_cutoff_past_the_optimum_is_proved_and_one_short_of_it_changes_nothing(
    engine: str,
) -> None:
    model, optimum = _knapsack(offset=250.0)  # the constant must count in the cutoff
    backend = milp_backend(engine)
    cut = backend.solve(model, time_limit_s=30, mip_gap=1e-9, cutoff=optimum - 0.5)
    assert cut.termination is Termination.CUT_OFF
    assert cut.x is None and cut.bound == optimum - 0.5
    kept = backend.solve(model, time_limit_s=30, mip_gap=1e-9, cutoff=optimum + 0.5)
    assert kept.termination is Termination.OPTIMAL
    assert kept.objective == pytest.approx(optimum)


@pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")
def test_cbc_leaves_its_root_heuristics_out_only_under_a_cutoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cbc = importlib.import_module("optimizer.engines.cbc")
    calls: list[list[str]] = []
    run = cbc.subprocess.run

    def recording(args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(list(args))
        return run(args, **kwargs)

    monkeypatch.setattr(cbc.subprocess, "run", recording)
    model, optimum = _knapsack(offset=250.0)
    backend = milp_backend("cbc")
    plain = backend.solve(model, time_limit_s=30, mip_gap=1e-9)
    kept = backend.solve(model, time_limit_s=30, mip_gap=1e-9, cutoff=optimum + 0.5)
    # Without them the solve under a cutoff still finds the optimum.
    assert plain.objective == pytest.approx(optimum) == kept.objective
    off = [" ".join(args).count("-heuristicsOnOff off") for args in calls]
    assert off == [0, 1]


@pytest.mark.parametrize("engine", BACKENDS)
def test_no_backend_applies_a_cutoff_to_an_lp(engine: str) -> None:
    model, _ = _knapsack(offset=250.0)
    model = replace(model, integer=np.zeros(12, dtype=bool))
    backend = milp_backend(engine)
    plain = backend.solve(model, time_limit_s=30, mip_gap=1e-9)
    assert plain.objective is not None and plain.bound is not None
    cut = backend.solve(model, time_limit_s=30, mip_gap=1e-9, cutoff=plain.objective - 1)
    assert cut.termination is Termination.OPTIMAL
    assert cut.objective == pytest.approx(plain.objective)
    assert cut.bound == pytest.approx(plain.bound)


def test_highs_ends_its_search_once_its_bound_reaches_the_cutoff() -> None:
    """A knapsack HiGHS does not close in seconds: cut off below its LP bound it stops at
    once (CUT_OFF, no solution); cut off above the bound it reaches, it searches on to its
    limit."""
    model = hard_knapsack()
    backend = milp_backend("highs")
    relaxed = backend.solve(replace(model, integer=np.zeros(400, dtype=bool)),
                            time_limit_s=30, mip_gap=0.0)  # fmt: skip
    assert relaxed.objective is not None
    started = time.perf_counter()
    cut = backend.solve(model, time_limit_s=60, mip_gap=0.0, cutoff=relaxed.objective - 1)
    assert time.perf_counter() - started < 30, "stopped by its bound, not its limit"
    assert cut.termination is Termination.CUT_OFF and cut.x is None
    assert cut.bound == relaxed.objective - 1
    searched = backend.solve(model, time_limit_s=2, mip_gap=0.0, cutoff=relaxed.objective + 100)
    assert searched.termination is Termination.FEASIBLE and searched.x is not None
    assert searched.bound is not None and searched.bound < relaxed.objective + 100


@pytest.mark.parametrize("objective", [Objective.MAX_ATTAINMENT, Objective.MIN_COST])
def test_the_cutoff_is_the_bound_that_certifies_the_best_plan_just_inside_the_gap(
    objective: Objective,
) -> None:
    strategy = small_strategy()
    amounts = np.zeros((strategy.arrays.n_partners, strategy.arrays.n_resources))
    amounts[:, 0] = 1.0
    search = Search(best=incumbent(strategy, amounts), shortfall_proven=True)
    assert search.best is not None
    plan = search.best[1].final(objective)
    cutoff = search.cutoff(objective, 1e-3)
    assert cutoff is not None
    minimise = objective is Objective.MIN_COST
    assert relative_gap(plan, cutoff, minimise) == pytest.approx(CUTOFF_SHARE * 1e-3)
    assert (cutoff < plan) if minimise else (cutoff > plan)
    assert Search(best=None, shortfall_proven=True).cutoff(objective, 1e-3) is None


@dataclass
class _Recording:
    """A backend that keeps every model it was given, with the cutoff and the result."""

    inner: MilpBackend
    calls: list[tuple[MilpModel, float | None, MilpResult]] = field(default_factory=list)
    holds_plan: list[object] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    def is_available(self) -> bool:
        return self.inner.is_available()

    def supports(self, model: MilpModel) -> bool:
        return self.inner.supports(model)

    def solve(self, model: MilpModel, **options: object) -> MilpResult:
        result = self.inner.solve(model, **options)  # type: ignore[arg-type]
        cutoff = options.get("cutoff")
        self.calls.append((model, cutoff if isinstance(cutoff, float) else None, result))
        self.holds_plan.append(options.get("holds_plan"))
        return result


def test_the_backend_is_told_when_the_strategy_holds_a_plan_of_its_own() -> None:
    # With a start, the backend may skip heuristics hunting for a first solution (CBC's
    # feasibility pump); without one it must not.
    request = random_small_request(3, n_partners=6, n_resources=2)
    arrays = build_arrays(request)
    cold = _Recording(milp_backend("highs"))
    planned = solve_milp(arrays, cold)
    assert cold.holds_plan and not any(cold.holds_plan)
    warm = _Recording(milp_backend("highs"))
    solve_milp(arrays, warm, warm_start=Candidate(planned.candidates[0].amounts.copy()))
    assert warm.holds_plan and all(h is True for h in warm.holds_plan)


@pytest.mark.skipif("cbc" not in available_engines(), reason="CBC not installed")
def test_a_cut_off_outer_solve_certifies_a_bound_its_full_solve_confirms() -> None:
    request, _ = family_request(2, 120, 0.9, time_limit_s=30.0)
    arrays = build_arrays(request)
    backend = _Recording(milp_backend("cbc"))
    outcome = solve_milp(arrays, backend)
    cut_off = [(m, c) for m, c, r in backend.calls if r.termination is Termination.CUT_OFF]
    assert cut_off, "an outer solve on this programme is cut off"
    for model, cutoff in cut_off:
        assert cutoff is not None
        full = milp_backend("cbc").solve(model, time_limit_s=60, mip_gap=1e-7)
        assert full.bound is not None
        # Cut off means no solution below the cutoff: the full solve's proof agrees.
        assert full.bound >= cutoff - 1e-6 * abs(cutoff)
    assert outcome.status is SolveStatus.OPTIMAL
    plan = outcome.candidates[0]
    assert valid_plan(arrays, curve_columns(request), plan)
    gmv = score(arrays, curve_columns(request), plan).final(request.objective)
    assert outcome.best_bound is not None and outcome.best_bound >= gmv
    assert outcome.mip_gap is not None and outcome.mip_gap <= request.options.mip_gap
