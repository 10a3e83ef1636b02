"""From a model's solution to an exactly feasible allocation and its exact figures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.check import check_plan
from models.curves import CurveColumn, FloatArray
from models.plan import SolverReport, SolveStatus, build_plan, projected_gmv
from models.request import Objective
from optimizer import rounding
from optimizer.arrays import ProblemArrays, count_gaps
from optimizer.formulation import Formulation
from optimizer.outcome import Candidate


@dataclass
class Score:
    """Exact figures of one allocation."""

    shortfall: float
    gmv: float
    cost: float
    achievers: set[tuple[int, int]]
    # group_count places missed: the MILP holds the rules as rows, so a plan missing one
    # (an outer solution's repair can) ranks below every plan that keeps them.
    count_gap: int = 0

    def final(self, objective: Objective) -> float:
        return self.cost if objective is Objective.MIN_COST else self.gmv


Incumbent = tuple[Candidate, Score]


def exact_candidate(
    arrays: ProblemArrays, columns: list[CurveColumn], form: Formulation, solution: FloatArray
) -> Candidate:
    """The solution's amounts on their grids, repaired with the exact curves."""
    amounts = arrays.pinned.copy()
    amounts[arrays.pair_partner, arrays.pair_resource] = form.amounts(arrays, solution)
    choice = form.package_choice(arrays, solution) if arrays.packages else None
    claimed = form.claims(arrays, solution)
    rounding.restore_tiers(arrays, amounts, choice, claimed, columns)
    rounding.trim_to_budgets(arrays, amounts, choice, claimed, columns)
    if arrays.request.objective is not Objective.MIN_COST:
        rounding.spend_leftover(arrays, amounts, choice)
    return Candidate(amounts, choice)


def score(arrays: ProblemArrays, columns: list[CurveColumn], cand: Candidate) -> Score:
    gmv = projected_gmv(arrays.request, cand.amounts, cand.package_choice, columns)
    reached = gmv[:, None] >= arrays.thresholds[None, :]
    achieved = reached.sum(axis=0)
    shortfall = 0.0
    if arrays.request.objective is not Objective.MAX_GMV:
        # Under max_gmv the tiers are reported, not pursued: a plan with more GMV and
        # fewer achievers is the better one (a 7-partner request kept a plan 0.33% below
        # the optimum because the optimum had one achiever fewer).
        shortfall = float(np.sum(arrays.weights * np.maximum(arrays.targets - achieved, 0)))
    spent = rounding.spent(arrays, cand.amounts, cand.package_choice)
    achievers = {(int(i), int(t)) for i, t in zip(*np.nonzero(reached), strict=True)}
    cost = float(np.dot(spent, arrays.unit_cost))
    gaps = count_gaps(arrays.count_rows, arrays.thresholds, gmv)
    return Score(shortfall, float(gmv.sum()), cost, achievers, sum(gaps))


def better(best: Incumbent | None, new: Incumbent, objective: Objective) -> Incumbent:
    """The one missing fewer group_count places, then with less shortfall, then more GMV
    (less cost)."""
    if best is None:
        return new
    (_, old), (_, cur) = best, new
    if cur.count_gap != old.count_gap:
        return new if cur.count_gap < old.count_gap else best
    if cur.shortfall < old.shortfall - 1e-9:
        return new
    if cur.shortfall > old.shortfall + 1e-9:
        return best
    if objective is Objective.MIN_COST:
        return new if cur.cost < old.cost else best
    return new if cur.gmv > old.gmv else best


def better_score(new: Score, old: Score, objective: Objective) -> bool:
    """Fewer group_count places missed, then less shortfall (beyond float noise), then
    more GMV (less cost)."""
    if new.count_gap != old.count_gap:
        return new.count_gap < old.count_gap
    if abs(new.shortfall - old.shortfall) > 1e-9:
        return new.shortfall < old.shortfall
    if objective is Objective.MIN_COST:
        return new.cost < old.cost
    return new.gmv > old.gmv


def valid_plan(arrays: ProblemArrays, columns: list[CurveColumn], cand: Candidate) -> bool:
    """Does the candidate pass the exact checker? For plans repaired from a relaxation,
    which may break a rule the repairs do not watch. (A missed group count is no breach
    to the checker: `Score.count_gap` ranks such plans last.)"""
    report = SolverReport("check", SolveStatus.FEASIBLE)
    plan = build_plan(
        arrays.request, cand.amounts, report, package_choice=cand.package_choice, columns=columns
    )
    return not check_plan(arrays.request, plan)
