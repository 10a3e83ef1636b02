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
from collections.abc import Callable, Sequence

from models.curves import FloatArray
from models.plan import SolveStatus, curve_columns
from models.request import Objective
from optimizer.alternatives import add_alternatives
from optimizer.arrays import ProblemArrays, UnsupportedRequest
from optimizer.clock import Clock
from optimizer.engines.base import MilpBackend, MilpResult, Termination
from optimizer.formulation import Formulation, StageSpec
from optimizer.milp_rounds import (
    SCOUT_AFTER_SHARE,
    BackendGap,
    ObjectiveRound,
    OuterGrace,
    Search,
    ShortfallRound,
    empty_model_result,
    held_shortfall,
    integral,
    objective_event,
    shortfall_event,
    stopped_status,
    tighter,
)
from optimizer.model_builder import build
from optimizer.outcome import Candidate, EngineOutcome, TierLevels
from optimizer.outer_repair import OuterRepair
from optimizer.parallel import StopFlag, either, side_by_side
from optimizer.polish import polished
from optimizer.pooling import with_centre
from optimizer.progress import Progress
from optimizer.pwl import Approximation
from optimizer.scoring import Incumbent, Score, better, score
from optimizer.tier_crossings import add_tier_crossings

MAX_REFINEMENTS = 12
# A stage-1 solve stops after this share of the limit: an inner model (tier headroom) can
# spend it all on its own count (1,200 family partners, 10 s: 9.4 s, plan 0 short already).
STAGE1_CALL_SHARE = 0.25
# A stage-2 inner solve beside an outer one, with a plan held, stops after this share of
# the limit (the outer may then stop at a solution, `OuterGrace`): an inner model whose
# claimed steps went integral (`Approximation.onto_claimed_steps`) sat 9.3% from its own
# bound for the 51 s left (family seed 27, 600 partners, ambition 0.98: `time_limit` 0.75%).
# A round whose capped inner solve found nothing (which stops its outer one) before any
# stage-2 bound is run once more uncapped: with no bound no neighbourhood can follow (3,000
# family partners, 80% on menus, HiGHS named: `feasible`, no gap, after 8 s of 30).
STAGE2_INNER_SHARE = 0.1
# No backend call starts with less time left: CBC's start-up alone would run past the limit.
MIN_CALL_S = 0.25  # (once stage 2 has a plan: see `MilpStrategy.found`)
POLISH_SHARE = 0.97  # of the time limit: exact pairwise moves on a plan short of the gap
# An inner solve: its model and result, and its plan scored exactly (None: no plan).
Solved = tuple[Formulation, MilpResult, Incumbent | None]


class MilpStrategy:
    def __init__(
        self, arrays: ProblemArrays, backend: MilpBackend, progress: Progress | None,
        exact_tier_curves: bool = False,
        tier_levels: TierLevels | None = None,
    ) -> None:  # fmt: skip
        self.arrays, self.backend = arrays, backend
        self.progress: Progress = progress or (lambda event: None)
        self.request, self.options = arrays.request, arrays.request.options
        self.columns = curve_columns(arrays.request)
        self.backend_gap = BackendGap(self.options.mip_gap)
        # S-curves start relaxed (tangent-point restriction / concave envelope: tight LPs);
        # a pair goes exact once an outer solution takes an amount below its tangent point.
        self.tier_levels = tier_levels  # see `solve_milp`
        may_claim = None if tier_levels is None else tier_levels[1] > 0
        self.approximation = Approximation(arrays, exact_tier_curves, may_claim)
        self.warm: Incumbent | None = None
        self.proven_floor: float | None = None  # proven by another engine (`hold_proven`)
        # Stage 2 has a plan; until then calls run however late (family seed 4, 300: +5.4%).
        self.found = False
        # Points and linear curves (and packages) are modelled exactly: stage 2's inner model
        # is its own relaxation, holding nothing back. Stage 1's proof is the outer model's,
        # free of the inner tier margin (two partners at ¥100M exactly: HiGHS "proved" 1 short).
        self.exact = all(c.kind in ("points", "linear") for c in arrays.pair_curve)
        self.plan_only = self.whole_steps_retry = False  # see `solve_milp`
        self.tier_prices: FloatArray | None = None  # see `optimizer.tier_cuts`
        self.pool_near: FloatArray | None = None  # see `solve_milp`'s `pool`
        self.reserve = not self.exact  # budget held back for rounding (`run` may lift it)
        self.inner_capped = True  # see STAGE2_INNER_SHARE
        self.outer_repair = OuterRepair(arrays, self.columns)

    def score(self, cand: Candidate) -> Score:
        return score(self.arrays, self.columns, cand)

    def _solve(
        self,
        stage: StageSpec,
        outer: bool,
        clock: Clock,
        stop: StopFlag | None = None,
        cap_s: float = math.inf,
        cutoff: float | None = None,
        solved: StopFlag | None = None,
    ) -> tuple[Formulation, MilpResult]:
        """One backend call of at most `cap_s`; `stop` ends it early, as a cancel does.
        `cutoff`: stage 2's bound in request units that would do (see `Search.cutoff`).
        `solved`: the backend's `stop_at_solution`."""
        approximation = self.approximation
        form = build(
            self.arrays, approximation.segments(outer), stage, tier_margin=not outer,
            integral_grid=approximation.integral_grids(), tier_prices=self.tier_prices,
            # They hold for plans better than the start at its shortfall: stage 2 only.
            tier_levels=None if stage.minimise_shortfall else self.tier_levels,
            pool_near=None if self.exact else self.pool_near,  # an exact model is its bound
            reserve=self.reserve,
        )  # fmt: skip
        if form.model.n_cols == 0:
            return form, empty_model_result(form.model)
        if not self.backend.supports(form.model):
            raise UnsupportedRequest(
                f"engine {self.backend.name!r} cannot solve this request: it needs every "
                "amount to be integral (packages or stepped amounts without curves)"
            )
        if self.found and (clock.left() < MIN_CALL_S or clock.out()):
            return form, MilpResult(Termination.NO_SOLUTION)  # the plan found stands
        if cutoff is not None:
            cutoff /= form.objective_scale  # to model units
        result = self.backend.solve(
            form.model,
            cutoff=cutoff,
            time_limit_s=max(min(clock.left(), cap_s), 0.05),
            mip_gap=self.backend_gap.value,
            seed=self.options.seed,
            should_stop=either(clock.should_stop, stop),
            holds_plan=self.warm is not None,
            stop_at_solution=solved,
        )
        return form, result

    def _solve_pair(
        self,
        inner_stage: StageSpec,
        outer_stage: StageSpec,
        clock: Clock,
        needed: Callable[[Solved], bool],
        cap_s: float = math.inf,
        cutoff: float | None = None,
        beats: Incumbent | None = None,
        scout: bool = False,
        inner_cap_s: float = math.inf,
    ) -> tuple[Solved, tuple[Formulation, MilpResult] | None]:
        """The inner solve (plan scored exactly) and the outer one side by side (1,000 family
        partners, CBC: 21 s to 16.5 s; no outer in stage 2 for an exact model held alike).
        The outer stops, and is None, unless `needed`. The inner stops once the outer proves
        `cutoff` or its solution, repaired, is a valid plan better than `beats`
        (`OuterRepair.settles`), or a `scout` stopped at one (`Search.scouts`). An outer
        solve with a cutoff may stop at a solution once the inner one has ended (`OuterGrace`).
        `inner_cap_s` caps the inner solve only beside an outer one."""
        grace = OuterGrace(SCOUT_AFTER_SHARE * self.options.time_limit_s if scout else math.inf)

        def inner(stop: StopFlag | None = None, cap: float = min(cap_s, inner_cap_s)) -> Solved:
            form, result = self._solve(inner_stage, False, clock, stop, cap)
            grace.inner_ended()  # (a failed solve stops the outer one: `side_by_side`)
            if result.x is None:
                return form, result, None
            plan = self.outer_repair.exact(form, result.x)
            if self.outer_repair.lost_claim(form, result.x, plan):
                self.approximation.claims_on_steps = True
            return form, result, plan

        alike = self.exact and inner_stage.shortfall_cap == outer_stage.shortfall_cap
        if (self.plan_only or alike) and not outer_stage.minimise_shortfall:
            return inner(None, cap_s), None  # alone it is all the round has: not capped
        solved = None if cutoff is None else grace
        return side_by_side(
            inner,
            lambda stop: self._solve(outer_stage, True, clock, stop, cap_s, cutoff, solved),
            needed,
            settles=lambda got: self.outer_repair.settles(got, beats) or grace.scouted(got[1]),
        )

    def run(
        self, exclude: list[set[tuple[int, int]]], clock: Clock, known: float | None = None
    ) -> EngineOutcome | None:
        """Alternate stage-1 and stage-2 rounds, refining the approximations after each,
        until the best plan is certified within the gap or time runs out. None: no
        alternative outside `exclude` exists. `known`: see `solve_milp`'s `known_bound`."""
        staged = self.request.objective is not Objective.MAX_GMV and len(self.arrays.thresholds)
        self.outer_repair.excluded = exclude
        search = Search(best=None if exclude else self.warm, shortfall_proven=not staged)
        handed = staged and not exclude and self._start_proven()
        if handed:
            assert self.warm is not None and self.proven_floor is not None
            cap = self.warm[1].shortfall
            search.proven_caps = (cap, cap)
            search.shortfall_proven, search.shortfall_bound = True, self.proven_floor
        if (handed or not staged) and not exclude:
            search.bound = known  # the same held problem's: it stands
        for round_number in range(1, MAX_REFINEMENTS + 1):
            approximations = self.approximation.state()
            caps: tuple[float, float] | None = None
            if staged and search.proven_caps is not None:
                caps = search.proven_caps  # refining only improves the inner model
            elif staged and search.held_caps is not None:
                caps = search.held_caps  # stage 1 stalled: the rest is stage 2's
            elif staged:
                shortfall = self._shortfall_round(exclude, clock, round_number)
                if shortfall is Termination.INFEASIBLE:
                    return None if exclude else self._outcome(SolveStatus.INFEASIBLE)
                if not isinstance(shortfall, ShortfallRound):
                    break
                caps = (shortfall.cap, shortfall.inner_cap)
                settled = search.take_stage_one(shortfall, self.request.objective)
                if not settled and not clock.out():
                    self._sharpen_round(shortfall.inner, shortfall.outer)
                    if self.approximation.state() > approximations:
                        continue
            held = held_shortfall(caps, exclude)
            gmv_round = self._objective_round(held, clock, search)
            if gmv_round is Termination.INFEASIBLE and not staged:
                return None if exclude else self._outcome(SolveStatus.INFEASIBLE)
            if gmv_round is Termination.INFEASIBLE and handed and self.reserve:
                # The start spends what the inner model holds back (family seed 2, 3,000
                # partners, 4 resources: stage 1 again, 58 s `time_limit`; now 18.7 s `optimal`).
                self.reserve = False
                continue
            if not isinstance(gmv_round, ObjectiveRound) and handed and not self.plan_only:
                # The inner model's secants can leave a partner the start lifts exactly to a
                # tier just below it: stage 1 finds the inner model's own cap (which a known
                # bound, at the proven shortfall, does not hold).
                handed, search.proven_caps, search.bound = False, None, None
                continue
            retry = self.inner_capped and search.bound is None  # nothing else would follow
            if gmv_round is Termination.NO_SOLUTION and retry and not clock.out():
                self.inner_capped = False
                continue
            if not isinstance(gmv_round, ObjectiveRound):
                break
            handed = False
            search.keep(gmv_round.plan, self.request.objective)
            if gmv_round.bound is not None:
                # Every round's outer model relaxes the same held problem: the tightest bound
                # stands (a round stopped on time reports a loose one: family seed 2, 1,000).
                search.bound = tighter(search.bound, gmv_round.bound, self.request.objective)
            assert search.best is not None  # it holds this round's plan at least
            if (
                not exclude
                and not search.certified(self.request.objective, self.options.mip_gap)
                and clock.room(POLISH_SHARE)
            ):
                # Exact pairwise moves take milliseconds and often close what the rounds
                # leave (family seed 2, 1,000 partners: 0.145% to 0.094% after the fourth
                # round, where five more rounds and 30 s had moved nothing).
                search.best = self._polished(search.best, clock)
            event = objective_event(search, round_number, self.request.objective, clock)
            self.progress(event)
            within = search.certified(self.request.objective, self.options.mip_gap)
            if within and self._on_whole_steps(search):
                continue
            if within and search.shortfall_proven:
                search.status = SolveStatus.OPTIMAL
                break
            if clock.out():
                break
            lever = self.approximation.onto_claimed_steps  # see `Approximation.add`
            if search.stalled_in_stage_two(self.request.objective, lever):
                break
            if within and search.held_caps is not None:
                # Stage 2 is certified at the held shortfall: more rounds of it only refine
                # a plan already within the gap (family seed 4, 300 partners, ambition 0.98:
                # nine such rounds, 25 s). Stage 1 gets the breakpoints stage 2 added for
                # one more try at its proof; when that moves nothing either, the search ends.
                if search.retried_stage1:
                    break
                search.retried_stage1, search.held_caps = True, None
            self._sharpen_round(gmv_round.inner, (gmv_round.outer[0], gmv_round.outer[1].x))
            if not self.backend_gap.tighten(event.gap, self.approximation, approximations):
                break  # nothing left to refine or tighten
        return self._finish(search, exclude, clock)

    def _on_whole_steps(self, search: Search) -> bool:
        """See `solve_milp`'s `whole_steps_retry`: none where the inner model values the start."""
        undervalued = search.undervalues_start(self.warm, self.request.objective)
        return self.whole_steps_retry and undervalued and self.approximation.onto_whole_steps()

    def _shortfall_round(
        self, exclude: list[set[tuple[int, int]]], clock: Clock, round_number: int
    ) -> ShortfallRound | Termination:
        """Stage 1 on the current approximations: the inner plan's exact shortfall, and
        whether the outer bound proves no plan has less."""
        stage = StageSpec(True, exclude_sets=exclude)
        known = self.proven_floor or 0.0  # another engine's bound holds here too

        def short(got: Solved) -> bool:  # only then is the outer model wanted
            if got[1].termination is Termination.INFEASIBLE:
                return True  # its solution may still be a plan (`OuterRepair.rescued`)
            return got[2] is not None and got[2][1].shortfall > known + 1e-9

        cap_s = STAGE1_CALL_SHARE * clock.limit
        (form, result, plan), outer_solved = self._solve_pair(stage, stage, clock, short, cap_s)
        if plan is None and result.termination is Termination.NO_SOLUTION and not clock.out():
            # Capped before its first plan: without one there is nothing to hold. Both
            # models again, uncapped: the capped outer solve went with the capped pair.
            (form, result, plan), outer_solved = self._solve_pair(stage, stage, clock, short)
        if plan is None and outer_solved is not None and outer_solved[1].x is not None:
            plan = self.outer_repair.rescued(outer_solved[0], outer_solved[1].x)
        if plan is None:
            return result.termination
        cap = plan[1].shortfall
        # The exact evaluation can beat the inner model's own count (tiers it did not
        # claim); stage 2's inner model must be held where it can be.
        inner_cap = max(cap, float(result.objective or 0.0))
        refine_at, lower = None, known
        if cap > known + 1e-9:
            outer_form, outer = outer_solved if outer_solved is not None else (form, result)
            lower = max(lower, outer.bound if outer.bound is not None else 0.0)
            # With its own model: its columns are not the inner model's (an IndexError on
            # a 4-partner request whose outer model had fewer).
            refine_at = None if outer.x is None else (outer_form, outer.x)
            if outer.x is not None and outer_form is not form:
                plan = self.outer_repair.better(plan, outer_form, outer.x)
                cap = plan[1].shortfall
        proven = cap <= lower + 1e-6 or (
            integral(self.arrays.weights) and cap <= math.ceil(lower - 1e-6) + 1e-6
        )
        self.progress(shortfall_event(round_number, cap, lower, proven, clock.elapsed()))
        if integral(self.arrays.weights):
            lower = float(math.ceil(lower - 1e-6))
        floor = cap if proven else max(lower, 0.0)
        return ShortfallRound((form, result), refine_at, plan, cap, inner_cap, floor, proven)

    def _objective_round(
        self, held: tuple[StageSpec, StageSpec], clock: Clock, search: Search | None = None
    ) -> ObjectiveRound | Termination:
        """Stage 2 (GMV or cost) with the shortfall held: the inner plan (the best one if the
        outer solve proved `Search.cutoff` first) and the outer bound in request units."""
        stage, inner_stage = held
        cutoff = search.cutoff(self.request.objective, self.options.mip_gap) if search else None
        beats = search.best if search else None
        scout = cutoff is not None and search is not None and search.scouts()
        capped = beats is not None and self.inner_capped
        inner_cap_s = STAGE2_INNER_SHARE * self.options.time_limit_s if capped else math.inf
        (form, result, found), outer_solved = self._solve_pair(
            inner_stage, stage, clock, lambda got: got[2] is not None, cutoff=cutoff,
            beats=beats, scout=scout, inner_cap_s=inner_cap_s,
        )  # fmt: skip
        if found is None and outer_solved and outer_solved[1].termination is Termination.CUT_OFF:
            found = beats  # the outer proof certifies it
        if found is None and outer_solved and self.outer_repair.took(outer_solved[1]):
            found = beats  # stopped by the outer plan, which `OuterRepair.better` takes below
        if found is None and scout and outer_solved and outer_solved[1].x is not None:
            found = beats  # stopped by the outer's solution: the round refines where it lies
        if found is None:
            return result.termination
        plan, inner = found, (form, result)
        self.found = True
        outer = inner if outer_solved is None else outer_solved
        if outer is not inner and outer[1].x is not None:
            plan = self.outer_repair.better(plan, outer[0], outer[1].x)
        scale, bound = outer[0].objective_scale, outer[1].bound
        return ObjectiveRound(inner, outer, plan, None if bound is None else bound * scale)

    def _finish(
        self, search: Search, exclude: list[set[tuple[int, int]]], clock: Clock
    ) -> EngineOutcome | None:
        if search.best is None:
            if clock.out():
                return self._outcome(stopped_status(clock))
            return None if exclude else self._outcome(SolveStatus.ERROR)
        status = search.status
        if status is not SolveStatus.OPTIMAL and clock.room(POLISH_SHARE):
            search.best = self._polished(search.best, clock)
        # The last polish may have closed the gap.
        proven = search.shortfall_proven and not clock.stopped
        closed = proven and search.certified(self.request.objective, self.options.mip_gap)
        status = SolveStatus.OPTIMAL if closed else status
        if clock.out() and status is not SolveStatus.OPTIMAL:
            status = stopped_status(clock)
        if self.plan_only and not self.exact:
            # Its stage-2 "bound" was the inner model's own, which the exact curves beat.
            search.bound = None
            status = SolveStatus.FEASIBLE if status is SolveStatus.OPTIMAL else status
        outcome = self._outcome(status, [search.best[0]])
        outcome.best_bound = search.bound
        outcome.mip_gap = search.gap(self.request.objective)
        if self.request.objective is not Objective.MAX_GMV and len(self.arrays.thresholds):
            outcome.shortfall_proven = search.shortfall_proven
            outcome.shortfall_bound = search.shortfall_bound
        return outcome

    def _outcome(self, status: SolveStatus, plans: list[Candidate] | None = None) -> EngineOutcome:
        return EngineOutcome(self.backend.name, status, plans or [])

    def _polished(self, best: Incumbent, clock: Clock) -> Incumbent:
        """Exact pairwise moves (`optimizer.polish`): what the inner model's headroom left
        (under max_gmv they may drop a tier, and so reach an alternative's excluded set)."""
        moved = polished(self.arrays, self.columns, best, clock, POLISH_SHARE)
        return best if moved[1].achievers in self.outer_repair.excluded else moved

    def seed(self, start: Candidate) -> None:
        """Warm start from another engine's plan (of several, the better is the incumbent
        to beat); its amounts become breakpoints so the inner model represents it exactly."""
        self.warm = better(self.warm, (start, self.score(start)), self.request.objective)
        arrays = self.arrays
        self.approximation.add(start.amounts[arrays.pair_partner, arrays.pair_resource], outer=True)

    def hold_proven(self, floor: float) -> None:
        """The decomposition proved no plan falls short by less than `floor`: a start reaching
        it skips stage 1 (family seed 2, 2,000 partners: CBC's stage 1 took 45 s for it)."""
        self.proven_floor = floor
        self.found = self.found or self.warm is not None  # its start is a plan: no overrun

    def _start_proven(self) -> bool:
        if self.warm is None or self.proven_floor is None:
            return False
        return self.warm[1].shortfall <= self.proven_floor + 1e-9

    def _sharpen_round(
        self,
        inner: tuple[Formulation, MilpResult],
        outer: tuple[Formulation, FloatArray | None] | None,
    ) -> None:
        """Breakpoints at both models' amounts (the outer one also makes pairs exact)."""
        form, result = inner
        if result.x is not None:  # None: stopped once the outer solve had proved its cutoff
            self._sharpen(form, result.x, outer=False)
        if outer is not None and outer[1] is not None:
            self._sharpen(outer[0], outer[1], outer=True)

    def _sharpen(self, form: Formulation, solution: FloatArray, outer: bool) -> None:
        amounts = form.raw_amounts(self.arrays, solution)
        self.approximation.add(amounts, outer, form.claims(self.arrays, solution))
        if outer and self.pool_near is not None:  # pooled classes exact where it went too
            self.pool_near = with_centre(self.pool_near, amounts)


def solve_milp(
    arrays: ProblemArrays,
    backend: MilpBackend,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    warm_start: Candidate | None = None,
    time_limit_s: float | None = None,
    more_starts: Sequence[Candidate] = (),
    proven_shortfall: float | None = None,
    plan_only: bool = False,
    whole_steps_retry: bool = False,
    exact_tier_curves: bool = False,
    crossing_points: bool = False,
    tier_prices: FloatArray | None = None,
    tier_levels: TierLevels | None = None,
    known_bound: float | None = None,
    pool: bool = False,
) -> EngineOutcome:
    """`proven_shortfall`: the least weighted shortfall another engine has proven; with a
    start that reaches it, stage 1 is settled before the first round. `plan_only`: the
    caller wants the plan, not a bound (a neighbourhood's round): stage 2 solves no outer
    model, so it takes one core instead of two, and its rounds end once the inner model is
    solved within the gap; the outcome then reports no bound and is at best `feasible`.
    `whole_steps_retry` (plan-only): when the inner model's bound falls short of the start,
    one more round with fine grids on whole steps, whose rounding hid the gains (family
    seed 2, 600 partners: a 109-partner neighbourhood gained 0%, and 0.1% in 2 s on them).
    The MILP finish's (`optimizer.milp_finish` says what each gains): `exact_tier_curves`,
    S-curves of partners who can cross a tier start exact; `crossing_points`, refined where
    they cross most cheaply (`optimizer.tier_crossings`); `tier_prices`, per resource, GMV
    per request unit pricing tier claims whole in LP relaxations (`optimizer.tier_cuts`);
    `tier_levels`, per partner, the tier levels stage 2 may claim (reduced-cost fixing);
    `known_bound`, another engine's stage-2 bound at `proven_shortfall` (or without
    tiers), against the tighter of which the rounds certify and count stalls; `pool`,
    concave pairs pooled around `warm_start`'s amounts (`optimizer.pooling`)."""
    options = arrays.request.options
    limit = options.time_limit_s if time_limit_s is None else time_limit_s
    clock = Clock(limit, should_stop)
    strategy = MilpStrategy(arrays, backend, progress, exact_tier_curves, tier_levels)
    strategy.plan_only, strategy.whole_steps_retry = plan_only, plan_only and whole_steps_retry
    for start in (*([warm_start] if warm_start is not None else []), *more_starts):
        strategy.seed(start)
    add_tier_crossings(strategy.approximation, warm_start if crossing_points else None)
    strategy.tier_prices = tier_prices
    if pool and warm_start is not None:
        strategy.pool_near = warm_start.amounts[arrays.pair_partner, arrays.pair_resource]
    if proven_shortfall is not None:
        strategy.hold_proven(proven_shortfall)
    first = strategy.run([], clock, known_bound)
    assert first is not None
    if not first.candidates:
        return first
    add_alternatives(strategy, first, options.plans, clock)
    first.seconds = clock.elapsed()
    return first
