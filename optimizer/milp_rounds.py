"""What one run of the MILP strategy (`optimizer.milp`) has found: the record of a stage-1
and a stage-2 round, the search state carried between rounds, and the small rules on
bounds and caps they share."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.plan import SolveStatus
from models.request import Objective
from optimizer.clock import Clock, better_than_bound, relative_gap
from optimizer.engines.base import MilpModel, MilpResult, Termination
from optimizer.formulation import Formulation, StageSpec
from optimizer.progress import ProgressEvent
from optimizer.pwl import Approximation
from optimizer.scoring import Incumbent, better

# Stage-1 rounds in a row at one shortfall and bound before stage 2 gets the time: refining
# proves in the third (family seed 3, 600 partners: 1, bound 0, 0, then 1), never in ten.
STAGE1_STALL = 3
# Stage-2 rounds in a row that close less than STAGE2_PROGRESS of the remaining gap (bound
# and plan together) before the search ends: refining on only nudges the bound (family
# seed 4, 300 partners, ambition 0.98: seven rounds, 15 s, 0.002% of the gap between them;
# from the decomposition's stage 1, rounds closing 3.5% and 0.2% of it with the plan
# unchanged, where the neighbourhoods after them gained 0.46%). On 21 family programmes
# of 50-3,000 partners 2 and 5% (were 3 and 1%) left every plan and status as it was.
STAGE2_STALL = 2
STAGE2_PROGRESS = 0.05
# Stage 2's outer solve is cut off this far inside the requested gap from the best plan:
# just inside, so that a cut-off solve certifies the plan despite solver tolerances.
CUTOFF_SHARE = 0.99
# Once a stage-2 round's inner solve has ended, its outer solve with a cutoff may run on for
# this share of the inner's time before it stops at a solution (`OuterGrace`).
OUTER_GRACE = 0.5
# A scouting round's outer solve (`Search.scouts`) stops at a solution once it has run this
# share of the limit (1.8 s of 60 s). Stopped at its very first solution, a short round
# refines where that solution lies, and the next round has more to prove: 1,000 family
# partners (rounds of 1.1-1.5 s) took 0.3-2.2 s longer.
SCOUT_AFTER_SHARE = 0.03


class BackendGap:
    """The MIP gap each backend call is solved to. Early rounds are dominated by
    approximation error: solving them to a tight MIP gap is wasted work. It follows the
    certified gap down to a quarter of the requested one, which leaves room for the
    approximation's share."""

    def __init__(self, mip_gap: float) -> None:
        self.finest = mip_gap / 4
        self.value = mip_gap

    def tighten(self, gap: float | None, approximation: Approximation, approximations: int) -> bool:
        """After a round that missed the gap: the next backend gap or, with no breakpoint
        added since `approximations` (`Approximation.state`), the next lever (the solver's
        gap, integral fine grids); False: none left."""
        finer = min(max(gap / 8, self.finest), self.value) if gap else None
        if approximation.state() == approximations:
            if self.value > self.finest:
                finer = self.finest  # the remaining gap is the solver's own
            elif not approximation.onto_whole_steps():  # or the rounding of fine grids
                return False
        self.value = finer if finer is not None else self.finest
        return True


@dataclass
class ShortfallRound:
    """Stage 1 solved on the current approximations."""

    inner: tuple[Formulation, MilpResult]
    outer: tuple[Formulation, FloatArray] | None  # the outer model's solution, to refine at
    plan: Incumbent
    cap: float  # the inner plan's exact weighted shortfall: stage 2 holds it
    inner_cap: float  # what stage 2's inner model can be held to
    bound: float  # the outer model's bound on the least shortfall
    proven: bool  # no plan has less shortfall than `cap`


@dataclass
class ObjectiveRound:
    """Stage 2 solved on the current approximations, the shortfall held."""

    inner: tuple[Formulation, MilpResult]
    outer: tuple[Formulation, MilpResult]
    plan: Incumbent
    bound: float | None  # on GMV (or cost), request units


@dataclass
class Search:
    """What the rounds of one run have found so far."""

    best: Incumbent | None
    shortfall_proven: bool
    shortfall_bound: float | None = None
    proven_caps: tuple[float, float] | None = None  # (cap, inner_cap) once proven
    # Stage 1 rounds that moved neither the shortfall nor its bound, in a row; at
    # STAGE1_STALL the caps are held unproven and the time goes to stage 2.
    stalled: int = 0
    held_caps: tuple[float, float] | None = None
    retried_stage1: bool = False  # stage 1 had its one more round after stage 2 certified
    stage2_stalled: int = 0  # stage-2 rounds in a row that closed next to nothing
    last_room: float | None = None  # bound minus plan (plan minus bound: cost) after a round
    last_stage1: tuple[float, float] | None = None  # (shortfall, bound) of the last round
    bound: float | None = None
    status: SolveStatus = SolveStatus.FEASIBLE
    scouted: bool = False  # see `scouts`

    def keep(self, plan: Incumbent, objective: Objective) -> None:
        self.best = better(self.best, plan, objective)

    def take_stage_one(self, shortfall: ShortfallRound, objective: Objective) -> bool:
        """Record a stage-1 round; True once its caps are settled: proven, or held unproven
        after STAGE1_STALL rounds that moved nothing (else the round refines further)."""
        self.keep(shortfall.plan, objective)
        caps = (shortfall.cap, shortfall.inner_cap)
        self.last_room, self.stage2_stalled = None, 0  # a new cap, a new gap
        self.shortfall_proven, self.shortfall_bound = shortfall.proven, shortfall.bound
        figures = (shortfall.cap, shortfall.bound)
        if self.last_stage1 is not None and self.last_stage1[0] != shortfall.cap:
            self.bound = None  # stage 2's bounds held the old shortfall
        self.stalled = self.stalled + 1 if figures == self.last_stage1 else 0
        self.last_stage1 = figures
        if shortfall.proven:
            self.proven_caps = caps
        elif self.stalled + 1 >= STAGE1_STALL:
            self.held_caps = caps
        return shortfall.proven or self.held_caps is not None

    def gap(self, objective: Objective) -> float | None:
        """The best plan's relative gap to the bound (None: no plan, or no bound)."""
        if self.best is None:
            return None
        minimise = objective is Objective.MIN_COST
        return relative_gap(self.best[1].final(objective), self.bound, minimise)

    def certified(self, objective: Objective, mip_gap: float) -> bool:
        """Is the best plan within `mip_gap` of the bound?"""
        gap = self.gap(objective)
        # A solver's bound can sit a rounding error above an optimum it proved.
        return gap is not None and gap <= mip_gap + 1e-9

    def undervalues_start(self, start: Incumbent | None, objective: Objective) -> bool:
        """Is `start` still the best plan, and better than the bound? Then the model behind
        the bound cannot even represent the start."""
        if start is None or self.best is not start or self.bound is None:
            return False
        minimise = objective is Objective.MIN_COST
        return better_than_bound(start[1].final(objective), self.bound, minimise)

    def scouts(self) -> bool:
        """Does the next stage-2 round scout? The first one does when a bound from
        elsewhere stands (the finish's, from the decomposition): its outer solve stops at its
        first solution past the cutoff once it has run SCOUT_AFTER_SHARE of the limit, and
        the inner one with it. Such a solution shows the round cannot certify the plan held,
        and the next round refines where it lies. 4 resources, 3,000 family partners, seed
        5: the first round's outer solve ran 4 s to an optimum above the Lagrangian's bound,
        its inner one 4.6 s to a plan below the start's; scouting, both stopped after 2 s,
        and the second round proved the cutoff as before. (Call once per stage-2 round
        that has a cutoff.)"""
        scouts = self.bound is not None and not self.scouted
        self.scouted = True
        return scouts

    def cutoff(self, objective: Objective, mip_gap: float) -> float | None:
        """The stage-2 bound (request units) that would certify the best plan within
        `mip_gap`. An outer solve told that only solutions beyond it matter proves there are
        none far sooner than it closes its own gap (3,000 family partners, CBC: 6.7 s where
        the round before took 10 s), and that proof is the certificate."""
        if self.best is None:
            return None
        value, room = self.best[1].final(objective), CUTOFF_SHARE * mip_gap
        if objective is Objective.MIN_COST:
            return value / (1 + room)
        return value / (1 - room) if value > 0 else None

    def stalled_in_stage_two(
        self, objective: Objective, lever: Callable[[], bool] = lambda: False
    ) -> bool:
        """Has the remaining gap shrunk by less than STAGE2_PROGRESS in STAGE2_STALL
        rounds in a row? (Call once per stage-2 round.) A round that closed too little
        first pulls `lever` (True: pulled now, for the first time); its rounds then start
        afresh."""
        if self.best is None or self.bound is None:
            return False
        exact = self.best[1].final(objective)
        minimise = objective is Objective.MIN_COST
        room = exact - self.bound if minimise else self.bound - exact
        last, self.last_room = self.last_room, room
        if last is None or room < last - STAGE2_PROGRESS * abs(last):
            self.stage2_stalled = 0
            return False
        self.stage2_stalled += 1
        if lever():
            self.stage2_stalled = 0
            return False
        return self.stage2_stalled >= STAGE2_STALL


def held_shortfall(
    caps: tuple[float, float] | None, exclude: list[set[tuple[int, int]]]
) -> tuple[StageSpec, StageSpec]:
    """Stage 2 for the outer and the inner model, each held at its shortfall cap."""
    cap, inner_cap = caps if caps is not None else (None, None)
    return (
        StageSpec(False, shortfall_cap=cap, exclude_sets=exclude),
        StageSpec(False, shortfall_cap=inner_cap, exclude_sets=exclude),
    )


def tighter(old: float | None, new: float, objective: Objective) -> float:
    """The tighter of two bounds on stage 2's objective (upper on GMV, lower on cost)."""
    if old is None:
        return new
    return max(old, new) if objective is Objective.MIN_COST else min(old, new)


def stopped_status(clock: Clock) -> SolveStatus:
    """Why a run that is out of time or cancelled ended: a cancel is not a time limit."""
    return SolveStatus.INTERRUPTED if clock.stopped else SolveStatus.TIME_LIMIT


def integral(weights: NDArray[np.float64]) -> bool:
    """Whole tier weights: a shortfall bound rounds up to the next whole number."""
    return bool(np.all(np.abs(weights - np.round(weights)) < 1e-12))


def objective_event(
    search: Search, round_number: int, objective: Objective, clock: Clock
) -> ProgressEvent:
    """A stage-2 round's progress: the best plan's figures, the bound and the gap."""
    assert search.best is not None
    minimise = objective is Objective.MIN_COST
    exact = search.best[1].final(objective)
    gap = search.gap(objective)
    bound = search.bound
    shown = "n/a" if gap is None else f"{100 * gap:.3f}%"
    return ProgressEvent(
        f"stage 2 (round {round_number}): {'cost' if minimise else 'GMV'} {exact:,.0f}, "
        f"bound {bound if bound is None else f'{bound:,.0f}'}, gap {shown}",
        elapsed_s=clock.elapsed(),
        stage="cost" if minimise else "gmv",
        best_objective=exact,
        best_bound=bound,
        gap=gap,
        shortfall=search.best[1].shortfall,
        shortfall_proven=search.shortfall_proven,
    )


def empty_model_result(model: MilpModel) -> MilpResult:
    """A model with nothing to decide: the empty allocation, if it fits."""
    if np.any(model.row_lo > 0) or np.any(model.row_hi < 0):
        return MilpResult(Termination.INFEASIBLE)
    return MilpResult(Termination.OPTIMAL, np.zeros(0), model.offset, model.offset)


def shortfall_event(
    round_number: int, shortfall: float, bound: float, proven: bool, elapsed_s: float
) -> ProgressEvent:
    """A stage-1 round's report: the plan's weighted shortfall and the bound under it."""
    return ProgressEvent(
        f"stage 1 (round {round_number}): weighted shortfall {shortfall:g}, "
        f"bound {bound:g}{' (proven)' if proven else ''}",
        elapsed_s=elapsed_s,
        stage="shortfall",
        shortfall=shortfall,
        shortfall_proven=proven,
    )


class OuterGrace:
    """When a stage-2 outer solve with a cutoff may stop at a solution (the backend's
    `stop_at_solution`): a solution beyond the cutoff shows the cutoff out of reach, and the
    next round refines the approximations where that solution lies. But the round's best
    plan may have moved since the cutoff was set (the inner plan, the outer solution
    repaired), and the full outer solve's bound may certify that plan: so only once the
    inner solve has ended and the outer one has run on for OUTER_GRACE of its time.
    4 resources, 3,000 family partners, seed 6: the outer solve ran 22 s past the inner's
    6 s for a 0.02% better solution (52 s in all; stopped at once, 21-23 s). 5,000
    partners, seed 6: it ended 2.1 s after the inner's 9.5 s, its solution repaired into a
    plan its bound certified; stopped at once, a second round took 23 s to 29-38 s."""

    def __init__(self, scout_after_s: float = math.inf) -> None:
        """`scout_after_s`: a scouting round's (`Search.scouts`), SCOUT_AFTER_SHARE of the
        limit: its outer solve may stop at a solution from then on, whatever the inner one."""
        self.started = time.monotonic()
        self.inner_s: float | None = None
        self.scout_after_s = scout_after_s

    def inner_ended(self) -> None:
        self.inner_s = time.monotonic() - self.started

    def scouted(self, outer: MilpResult) -> bool:
        """Did a scouting round's outer solve stop at a solution? Then the inner one stops."""
        return math.isfinite(self.scout_after_s) and outer.termination is Termination.FEASIBLE

    def __call__(self) -> bool:
        ran = time.monotonic() - self.started
        inner_s = self.inner_s
        return ran >= self.scout_after_s or (
            inner_s is not None and ran >= (1 + OUTER_GRACE) * inner_s
        )
