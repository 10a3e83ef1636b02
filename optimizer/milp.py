"""The MILP strategy: lexicographic stages on inner/outer approximations, refined until
the inner plan (evaluated exactly) is certified by the outer bound within the gap.

Stage 1 minimises weighted tier shortfall; stage 2 holds it and maximises GMV (or
minimises cost). Each stage is solved on the inner model (its plan is exactly feasible) and
on the outer model (its bound is valid for the exact curves). When they disagree by more
than the requested gap, both solutions' amounts become new breakpoints and the stage is
solved again. Alternatives come from no-good cuts on the set of tier achievers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.plan import SolveStatus, curve_columns, projected_gmv
from models.request import Objective
from optimizer import rounding
from optimizer.arrays import ProblemArrays, UnsupportedRequest
from optimizer.engines.base import MilpBackend, MilpResult, Termination
from optimizer.formulation import Formulation, StageSpec, build
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.pwl import domain, initial_points, refine, segments, tangent_point

MAX_REFINEMENTS = 12
Progress = Callable[[str], None]


@dataclass
class Score:
    """Exact figures of one allocation."""

    shortfall: float
    gmv: float
    cost: float
    achievers: set[tuple[int, int]]

    def final(self, objective: Objective) -> float:
        return self.cost if objective is Objective.MIN_COST else self.gmv


class _Clock:
    def __init__(self, seconds: float, should_stop: Callable[[], bool] | None) -> None:
        self.deadline = time.monotonic() + seconds
        self.should_stop = should_stop

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0 or bool(self.should_stop and self.should_stop())


class MilpStrategy:
    def __init__(
        self, arrays: ProblemArrays, backend: MilpBackend, progress: Progress | None
    ) -> None:
        self.arrays = arrays
        self.backend = backend
        self.progress = progress or (lambda message: None)
        self.request = arrays.request
        self.options = arrays.request.options
        self.points = initial_points(arrays)
        self.columns = curve_columns(arrays.request)
        # Early rounds are dominated by approximation error: solving them to a tight MIP
        # gap is wasted work. The backend gap follows the certified gap down to a quarter
        # of the requested one, which leaves room for the approximation's share.
        self.finest_gap = self.options.mip_gap / 4
        self.backend_gap = self.options.mip_gap
        # Piecewise-linear and linear curves (and packages) are modelled exactly: the
        # inner model is then its own relaxation and its bound needs no outer solve.
        # S-curves start relaxed (tangent-point restriction / concave envelope: tight LPs);
        # a pair goes exact once an outer solution takes an amount below its tangent point.
        self.relaxed = frozenset(
            k for k, c in enumerate(arrays.pair_curve) if tangent_point(c, 0.0, 1.0) is not None
        )
        self.integral_grid = False  # last resort: integer grid indices on fine grids too
        self.warm: tuple[Candidate, Score] | None = None
        self.exact = all(c.kind in ("points", "linear") for c in arrays.pair_curve)

    # -- exact evaluation -------------------------------------------------------------
    def candidate(self, form: Formulation, solution: FloatArray) -> Candidate:
        amounts = self.arrays.pinned.copy()
        amounts[self.arrays.pair_partner, self.arrays.pair_resource] = form.amounts(
            self.arrays, solution
        )
        choice = form.package_choice(self.arrays, solution) if self.arrays.packages else None
        claimed = form.claims(self.arrays, solution)
        rounding.restore_tiers(self.arrays, amounts, choice, claimed, self.columns)
        rounding.trim_to_budgets(self.arrays, amounts, choice, claimed, self.columns)
        if self.request.objective is not Objective.MIN_COST:
            rounding.spend_leftover(self.arrays, amounts, choice)
        return Candidate(amounts, choice)

    def score(self, cand: Candidate) -> Score:
        arrays = self.arrays
        gmv = projected_gmv(self.request, cand.amounts, cand.package_choice, self.columns)
        reached = gmv[:, None] >= arrays.thresholds[None, :]
        achieved = reached.sum(axis=0)
        shortfall = float(np.sum(arrays.weights * np.maximum(arrays.targets - achieved, 0)))
        spent = cand.amounts.sum(axis=0)
        if cand.package_choice is not None:
            for option in arrays.packages:
                if cand.package_choice[option.partner] == option.index:
                    spent = spent + option.amounts
        achievers = {(int(i), int(t)) for i, t in zip(*np.nonzero(reached), strict=True)}
        return Score(shortfall, float(gmv.sum()), float(np.dot(spent, arrays.unit_cost)), achievers)

    # -- solving ----------------------------------------------------------------------
    def _solve(
        self, stage: StageSpec, outer: bool, clock: _Clock
    ) -> tuple[Formulation, MilpResult]:
        segs = segments(self.arrays, self.points, outer=outer, relaxed=self.relaxed)
        form = build(
            self.arrays, segs, stage, tier_margin=not outer, integral_grid=self.integral_grid
        )
        if form.model.n_cols == 0:  # nothing to decide: the empty allocation, if it fits
            model = form.model
            if np.any(model.row_lo > 0) or np.any(model.row_hi < 0):
                return form, MilpResult(Termination.INFEASIBLE)
            return form, MilpResult(Termination.OPTIMAL, np.zeros(0), model.offset, model.offset)
        if not self.backend.supports(form.model):
            raise UnsupportedRequest(
                f"engine {self.backend.name!r} cannot solve this request: it needs every "
                "amount to be integral (packages or stepped amounts without curves)"
            )
        result = self.backend.solve(
            form.model,
            time_limit_s=max(clock.left(), 0.05),
            mip_gap=self.backend_gap,
            seed=self.options.seed,
            should_stop=clock.should_stop,
        )
        return form, result

    def _solve_outer(
        self, stage: StageSpec, clock: _Clock, inner: tuple[Formulation, MilpResult]
    ) -> tuple[Formulation, MilpResult]:
        return inner if self.exact else self._solve(stage, True, clock)

    def run(self, exclude: list[set[tuple[int, int]]], clock: _Clock) -> EngineOutcome | None:
        objective = self.request.objective
        staged = objective is not Objective.MAX_GMV and len(self.arrays.thresholds) > 0
        minimise = objective is Objective.MIN_COST
        engine = self.backend.name
        started = time.perf_counter()
        best: tuple[Candidate, Score] | None = None if exclude else self.warm
        bound: float | None = None
        shortfall_proven = not staged
        proven_cap: tuple[float, float] | None = None
        inner_cap: float | None = None
        status = SolveStatus.FEASIBLE

        for iteration in range(MAX_REFINEMENTS):
            cap: float | None = None
            points_before = self._state()
            if staged and shortfall_proven and proven_cap is not None:
                # Refining only improves the inner model: stage 1 stays solved.
                cap, inner_cap = proven_cap
            elif staged:
                form1, res1 = self._solve(StageSpec(True, exclude_sets=exclude), False, clock)
                if res1.termination is Termination.INFEASIBLE:
                    return None if exclude else EngineOutcome(engine, SolveStatus.INFEASIBLE)
                if not res1.has_solution:
                    break
                assert res1.x is not None
                cand1 = self.candidate(form1, res1.x)
                score1 = self.score(cand1)
                best = _better(best, (cand1, score1), objective)
                cap = score1.shortfall
                # The exact evaluation can beat the inner model's own count (tiers it
                # did not claim); stage 2's inner model must be held where it can be.
                inner_cap = max(cap, float(res1.objective or 0.0))
                out1 = None
                lower = 0.0
                if cap > 0:
                    _, out1 = self._solve_outer(
                        StageSpec(True, exclude_sets=exclude), clock, (form1, res1)
                    )
                    lower = out1.bound if out1.bound is not None else 0.0
                shortfall_proven = cap <= lower + 1e-6 or (
                    _integral(self.arrays.weights) and cap <= math.ceil(lower - 1e-6) + 1e-6
                )
                if shortfall_proven:
                    proven_cap = (cap, inner_cap)
                self.progress(
                    f"stage 1 (round {iteration + 1}): weighted shortfall {cap:g}, "
                    f"bound {lower:g}{' (proven)' if shortfall_proven else ''}"
                )
                if not shortfall_proven and not clock.expired():
                    self._sharpen(form1, res1.x, outer=False)
                    if out1 is not None and out1.x is not None:
                        self._sharpen(form1, out1.x, outer=True)
                    if self._state() > points_before:
                        continue

            stage = StageSpec(False, shortfall_cap=cap, exclude_sets=exclude)
            inner_stage = StageSpec(False, shortfall_cap=inner_cap, exclude_sets=exclude)
            form2, res2 = self._solve(inner_stage, False, clock)
            if res2.termination is Termination.INFEASIBLE and not staged:
                return None if exclude else EngineOutcome(engine, SolveStatus.INFEASIBLE)
            if res2.x is None:
                break
            cand2 = self.candidate(form2, res2.x)
            score2 = self.score(cand2)
            best = _better(best, (cand2, score2), objective)
            if self.exact and inner_cap == cap:
                outer_form, out2 = form2, res2
            else:
                outer_form, out2 = self._solve(stage, True, clock)
            if out2.bound is not None:
                value = out2.bound * outer_form.objective_scale
                bound = value if minimise else -value
            exact = best[1].final(objective)
            gap = _gap(exact, bound, minimise)
            self.progress(
                f"stage 2 (round {iteration + 1}): {'cost' if minimise else 'GMV'} {exact:,.0f}, "
                f"bound {bound if bound is None else f'{bound:,.0f}'}, gap {_pct(gap)}"
            )
            # A solver's bound can sit a rounding error above an optimum it proved.
            if gap is not None and gap <= self.options.mip_gap + 1e-9 and shortfall_proven:
                status = SolveStatus.OPTIMAL
                break
            if clock.expired():
                status = SolveStatus.TIME_LIMIT
                break
            self._sharpen(form2, res2.x, outer=False)
            if out2.x is not None:
                self._sharpen(outer_form, out2.x, outer=True)
            finer = min(max(gap / 8, self.finest_gap), self.backend_gap) if gap else None
            if self._state() == points_before:
                if self.backend_gap > self.finest_gap:
                    finer = self.finest_gap  # the remaining gap is the solver's own
                elif not self.integral_grid and np.any(self.arrays.step > 0):
                    self.integral_grid = True  # or the rounding of fine grids
                else:
                    break  # nothing left to refine or tighten
            self.backend_gap = finer if finer is not None else self.finest_gap
        else:
            status = SolveStatus.FEASIBLE

        if best is None:
            if clock.expired():
                return EngineOutcome(
                    engine, SolveStatus.TIME_LIMIT, seconds=time.perf_counter() - started
                )
            return None if exclude else EngineOutcome(engine, SolveStatus.ERROR)
        if clock.expired() and status is not SolveStatus.OPTIMAL:
            status = SolveStatus.TIME_LIMIT
        return EngineOutcome(
            engine,
            status,
            [best[0]],
            best_bound=bound,
            mip_gap=_gap(best[1].final(objective), bound, minimise),
            seconds=time.perf_counter() - started,
        )

    def seed(self, start: Candidate) -> None:
        """Warm start from another engine's plan: it is the incumbent to beat, and its
        amounts become breakpoints so the inner model can represent it exactly."""
        self.warm = (start, self.score(start))
        arrays = self.arrays
        refine(self.points, arrays, start.amounts[arrays.pair_partner, arrays.pair_resource])

    def _state(self) -> int:
        """Grows whenever the approximations change (points added, pairs made exact)."""
        pairs = self.arrays.n_pairs
        return sum(len(p) for p in self.points) + pairs - len(self.relaxed) + self.integral_grid

    def _sharpen(self, form: Formulation, solution: FloatArray, outer: bool) -> None:
        amounts = form.raw_amounts(self.arrays, solution)
        refine(self.points, self.arrays, amounts)
        if outer and self.relaxed:
            below = set()
            for k in self.relaxed:
                low, high, _ = domain(self.arrays, k)
                touch = tangent_point(self.arrays.pair_curve[k], low, high)
                if touch is not None and 0 < amounts[k] < touch * (1 - 1e-9):
                    below.add(k)
            self.relaxed = self.relaxed - below


def _integral(weights: NDArray[np.float64]) -> bool:
    return bool(np.all(np.abs(weights - np.round(weights)) < 1e-12))


def _better(
    best: tuple[Candidate, Score] | None, new: tuple[Candidate, Score], objective: Objective
) -> tuple[Candidate, Score]:
    if best is None:
        return new
    (_, old), (_, cur) = best, new
    if cur.shortfall < old.shortfall - 1e-9:
        return new
    if cur.shortfall > old.shortfall + 1e-9:
        return best
    if objective is Objective.MIN_COST:
        return new if cur.cost < old.cost else best
    return new if cur.gmv > old.gmv else best


def _gap(exact: float, bound: float | None, minimise: bool) -> float | None:
    if bound is None:
        return None
    difference = (exact - bound) if minimise else (bound - exact)
    return max(difference, 0.0) / max(abs(bound), abs(exact), 1e-9)


def _pct(gap: float | None) -> str:
    return "n/a" if gap is None else f"{100 * gap:.3f}%"


def solve_milp(
    arrays: ProblemArrays,
    backend: MilpBackend,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    warm_start: Candidate | None = None,
    time_limit_s: float | None = None,
) -> EngineOutcome:
    options = arrays.request.options
    limit = options.time_limit_s if time_limit_s is None else time_limit_s
    clock = _Clock(limit, should_stop)
    strategy = MilpStrategy(arrays, backend, progress)
    if warm_start is not None:
        strategy.seed(warm_start)
    first = strategy.run([], clock)
    assert first is not None
    if not first.candidates:
        return first
    for alternative in range(2, options.plans + 1):
        if clock.expired():
            break
        exclude = [strategy.score(c).achievers for c in first.candidates]
        more = strategy.run(exclude, clock)
        if more is None or not more.candidates:
            break
        more.candidates[0].label = f"alternative {alternative - 1}"
        first.candidates.append(more.candidates[0])
    first.seconds = limit - max(clock.left(), 0.0)
    return first
