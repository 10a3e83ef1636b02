"""Starting a solve from a nearby request's answer (a what-if scenario from its base).

A `WarmStart` names amounts by partner id and resource name, so it survives partners
leaving and resources being reordered, and may carry the engine's prices. `start_candidate`
turns its amounts into an exactly valid allocation of *this* request — pins and
eligibility applied, amounts put back within each pair's bounds, minimum tickets and step
grids, budgets cut back where they shrank (partners no tier depends on first) — or says
there is none. What an engine cannot use it ignores; `optimizer.solve` keeps the start's
plan when it beats the engine's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.check import check_plan
from models.curves import CurveColumn, FloatArray
from models.plan import SolverReport, SolveStatus, build_plan, projected_gmv
from models.request import GroupBudget, Objective
from optimizer import rounding
from optimizer.arrays import ProblemArrays
from optimizer.outcome import Candidate


@dataclass(frozen=True)
class WarmStart:
    """`amounts[partner_id][resource]`: a plan's curve amounts (outside packages);
    `prices`: the dual prices the decomposition ended with for that plan's request (a
    start for its price search; any prices give a valid bound, so stale ones cost only
    time)."""

    amounts: Mapping[str, Mapping[str, float]]
    prices: tuple[float, ...] | None = None


def start_candidate(
    arrays: ProblemArrays, columns: list[CurveColumn], start: WarmStart
) -> Candidate | None:
    """The start's amounts repaired into this request, or None when the request uses
    package menus (a choice the start does not carry) or no valid allocation comes out."""
    request = arrays.request
    if arrays.packages or not start.amounts:
        return None
    names = [resource.name for resource in request.resources]
    given = np.zeros((arrays.n_partners, arrays.n_resources))
    for i, partner in enumerate(request.partners):
        row = start.amounts.get(partner.id)
        if row:
            given[i] = [float(row.get(name, 0.0)) for name in names]
    amounts = repaired(arrays, columns, given)
    plan = build_plan(request, amounts, SolverReport("warm start", SolveStatus.FEASIBLE))
    if check_plan(request, plan):
        return None
    return Candidate(amounts, label="warm start")


def repaired(arrays: ProblemArrays, columns: list[CurveColumn], given: FloatArray) -> FloatArray:
    """`given` (n, m) put within this request's rules: only variable pairs keep an amount
    (pins are set, ineligible pairs get none), each within its bounds, on its step grid
    and 0 or at least its minimum ticket; then every overspent budget is cut back, from
    partners no tier depends on first (`rounding.trim_to_budgets`), and so is every group
    over its share of a budget (a share of a smaller budget is smaller)."""
    amounts = arrays.pinned.copy()
    pp, pr = arrays.pair_partner, arrays.pair_resource
    x = np.clip(np.nan_to_num(given[pp, pr]), 0.0, arrays.pair_max)
    step = arrays.step[pr]
    stepped = step > 0
    # A hair under a grid point is that point (the start was on its own grid).
    x[stepped] = np.floor(x[stepped] / step[stepped] + 1e-9) * step[stepped]
    x[x < arrays.pair_min * (1 - 1e-12)] = 0.0
    amounts[pp, pr] = x
    gmv = projected_gmv(arrays.request, amounts, None, columns)
    reached = gmv[:, None] >= arrays.thresholds[None, :]
    # The GMV each partner's highest tier needs: what the budget cut tries to keep.
    claimed = np.where(reached, arrays.thresholds[None, :], 0.0).max(axis=1, initial=0.0)
    rounding.trim_to_budgets(arrays, amounts, None, claimed, columns)
    _trim_tickets(arrays, amounts, claimed)
    _trim_group_caps(arrays, amounts, claimed)
    if arrays.request.objective is not Objective.MIN_COST:
        rounding.spend_leftover(arrays, amounts, None)
    return amounts


def _trim_group_caps(arrays: ProblemArrays, amounts: FloatArray, claimed: FloatArray) -> None:
    """Cut each group_budget group down to its cap (`_cut`). A group under its floor is
    left to the exact check (the start is then dropped)."""
    request = arrays.request
    names = [resource.name for resource in request.resources]
    for rule in request.constraints:
        if isinstance(rule, GroupBudget):
            r = names.index(rule.resource)
            members = np.array([rule.where.matches(p) for p in request.partners], dtype=bool)
            excess = float(amounts[members, r].sum() - rule.max_share * arrays.budget[r])
            _cut(arrays, amounts, claimed, members, r, excess)


def _trim_tickets(arrays: ProblemArrays, amounts: FloatArray, claimed: FloatArray) -> None:
    """What `rounding.trim_to_budgets` leaves over a budget: it cuts tickets only down to
    their minimum, so a start with too many tickets loses whole ones (`_cut`)."""
    spent = rounding.spent(arrays, amounts, None)
    everyone = np.ones(arrays.n_partners, dtype=bool)
    for r in np.flatnonzero(spent > arrays.budget):
        _cut(arrays, amounts, claimed, everyone, int(r), float(spent[r] - arrays.budget[r]))


def _cut(
    arrays: ProblemArrays,
    amounts: FloatArray,
    claimed: FloatArray,
    members: NDArray[np.bool_],
    r: int,
    excess: float,
) -> None:
    """Take `excess` of resource r from `members`: from those no tier depends on first,
    largest amounts first, then from tier members (a rule outranks a tier); cuts keep the
    step grid, and an amount cut below its minimum ticket goes to 0."""
    if not excess > 0:
        return
    pairs = np.flatnonzero((arrays.pair_resource == r) & members[arrays.pair_partner])
    owners = arrays.pair_partner[pairs]
    step = float(arrays.step[r])
    for k in pairs[np.lexsort((-amounts[owners, r], claimed[owners] > 0))]:
        if excess <= 0:
            break
        i = arrays.pair_partner[k]
        current = float(amounts[i, r])
        cut = min(np.ceil(excess / step - 1e-9) * step if step > 0 else excess, current)
        if current - cut < arrays.pair_min[k] * (1 - 1e-12):
            cut = current
        amounts[i, r] = current - cut
        excess -= cut
