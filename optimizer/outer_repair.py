"""The outer model's solutions as plans: repaired onto the exact curves (`exact_candidate`),
and taken only when better than the plan in hand and valid under the exact checker.

Without the inner model's tier headroom and secants, such a repair can beat the inner
plan by far more than the gap near flat stretches (family seed 2, 300 partners: 0.96%
more GMV, where refining stalled). `exact` scores the inner model's solutions too."""

from __future__ import annotations

from models.curves import CurveColumn, FloatArray
from models.request import Objective
from optimizer.arrays import ProblemArrays
from optimizer.engines.base import MilpResult, Termination
from optimizer.formulation import Formulation
from optimizer.scoring import Incumbent, better, exact_candidate, score, valid_plan


class OuterRepair:
    def __init__(self, arrays: ProblemArrays, columns: list[CurveColumn]) -> None:
        self.arrays, self.columns = arrays, columns
        self.objective: Objective = arrays.request.objective
        # The last outer solution repaired, with its repair: `settles` (or `rescued`) and
        # then `better` see the same solution in a round, and need not repair it twice.
        self._last: tuple[FloatArray, Incumbent] | None = None
        self._taken: FloatArray | None = None  # the solution `settles` took (valid)
        # The achiever sets an alternative must avoid (`MilpStrategy.run`): the outer model
        # keeps its no-good cut with tiers its tangents over-state, which a repair can lose.
        self.excluded: list[set[tuple[int, int]]] = []

    def exact(self, form: Formulation, solution: FloatArray) -> Incumbent:
        candidate = exact_candidate(self.arrays, self.columns, form, solution)
        return candidate, score(self.arrays, self.columns, candidate)

    @staticmethod
    def lost_claim(form: Formulation, solution: FloatArray, plan: Incumbent) -> bool:
        """Did the repair (`plan`, from `exact`) leave a partner under a tier the model
        counted it for?"""
        achievers = plan[1].achievers
        return any(solution[col] > 0.5 and c not in achievers for c, col in form.z_cols.items())

    def _repaired(self, form: Formulation, solution: FloatArray) -> Incumbent:
        if self._last is None or self._last[0] is not solution:
            self._last = (solution, self.exact(form, solution))
        return self._last[1]

    def better(self, plan: Incumbent, form: Formulation, solution: FloatArray) -> Incumbent:
        """`plan`, or `solution` repaired when that is better and valid."""
        other = self._repaired(form, solution)
        if other[1].achievers in self.excluded or better(plan, other, self.objective) is plan:
            return plan
        if self._taken is solution or valid_plan(self.arrays, self.columns, other[0]):
            return other  # (`settles` checked it)
        return plan

    def rescued(self, form: Formulation, solution: FloatArray) -> Incumbent | None:
        """The outer solution repaired, when valid: a plan where the inner model found none.
        CBC (a "devel" build) has called a feasible stage-1 inner model infeasible: two
        partners whose tier claims each need 1,000.000004 of a 2,000-unit budget, where the
        outer model, without the inner's margin, had their plan. (`better` then takes the
        same repair from the cache, not a second one.)"""
        candidate = self._repaired(form, solution)
        if candidate[1].achievers in self.excluded:
            return None
        return candidate if valid_plan(self.arrays, self.columns, candidate[0]) else None

    def settles(self, outer: tuple[Formulation, MilpResult], beats: Incumbent | None) -> bool:
        """Does the outer solve leave the inner one's plan unwanted? When it proves its
        cutoff, or when its solution repairs into a valid plan better than `beats` (the
        round's best so far). The inner solve went on for 0.6-1.3 s after the outer one on
        family programmes of 1,000-1,500 partners, and in the finish's second round on
        1,500 partners (seed 3) for a plan 0.1% below that repair."""
        form, result = outer
        if result.termination is Termination.CUT_OFF:
            return True
        if beats is None or result.x is None:
            return False
        if self.better(beats, form, result.x) is beats:
            return False
        self._taken = result.x
        return True

    def took(self, result: MilpResult) -> bool:
        """Did `settles` take this outer result's solution?"""
        return result.x is not None and self._taken is result.x
