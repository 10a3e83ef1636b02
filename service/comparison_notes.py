"""What a comparison row says in words: a `caveat` when its plan is not proven optimal,
and a one-line `reason` when a scenario moved a figure against the direction of its
changes (GMV up although a budget fell; a tier's count down although targets rose).

A reason only states what the two plans and their `explanation` blocks show: a changed
objective, a solver gap, the objective's order (weighted shortfall before GMV), a budget
the base did not use up, a trade between tiers. When none of those applies it says the
data does not explain the change rather than guess.
"""

from __future__ import annotations

from typing import Any

from models.figures import is_change, money, percent
from models.plan import Plan, SolveStatus
from models.request import AllocationRequest, Objective
from optimizer.confidence import needs_confidence

# A gap below this is "optimal" for a planner: no caveat, no gap reason.
GAP_TOLERANCE = 1e-4


def caveat(plan: Plan, request: AllocationRequest | None = None) -> str | None:
    """Why this plan's figures are not final, or None for a plan proven optimal. With the
    plan's `request`, a plan short of the requested gap also says what kept it open."""
    status, gap = plan.solver.status, plan.solver.mip_gap
    gap_text = f"a {percent(gap)} gap" if gap is not None else "no proven gap"
    if request is not None and gap is not None:
        gap_text += f", {percent(request.options.mip_gap)} requested"
    if status is SolveStatus.OPTIMAL:
        return None
    if status is SolveStatus.TIME_LIMIT:
        text = f"stopped at the time limit with {gap_text}: figures may improve with more time"
        return _with_shortfall(text, plan)
    if status is SolveStatus.FEASIBLE and request is not None and needs_confidence(request):
        # Its solves certified a scaled request, not the plan at the confidence.
        confidence = percent(request.options.confidence or 0.0)
        text = f"planned at {confidence} confidence, where no gap or bound is proven"
        return _with_shortfall(text, plan)
    if status is SolveStatus.FEASIBLE:
        if request is None or _shortfall(plan) is None:
            return f"valid but not proven optimal ({gap_text}): figures may improve with more time"
        return _open_gap(plan, request, gap_text)
    if status is SolveStatus.INFEASIBLE:
        return "infeasible: no allocation meets every hard rule; see the plan's binding constraints"
    return "the engine failed to produce a proven plan: treat these figures with care"


def _shortfall(plan: Plan) -> float | None:
    """The plan's weighted shortfall when the engine said whether it is proven least."""
    if plan.solver.shortfall_proven is None:
        return None
    return plan.objective.weighted_shortfall


def _shortfall_text(plan: Plan) -> str:
    shortfall, floor = plan.objective.weighted_shortfall, plan.solver.shortfall_bound
    if plan.solver.shortfall_proven:
        return (
            f"the targets are out of reach: a weighted shortfall of {shortfall:g} is proven least"
        )
    least = f" (at least {floor:g} is proven unavoidable)" if floor else ""
    return f"its weighted shortfall of {shortfall:g} is not proven least{least}"


def _with_shortfall(text: str, plan: Plan) -> str:
    shortfall = _shortfall(plan)
    return text if not shortfall else f"{text}; {_shortfall_text(plan)}"


def _open_gap(plan: Plan, request: AllocationRequest, gap_text: str) -> str:
    """A plan that ended before its time limit without the requested gap: whether the
    targets are out of reach (proven or not), and where the gap comes from."""
    limit, seconds = request.options.time_limit_s, plan.solver.seconds
    stopped = (
        f"the engine stopped after {seconds:.0f} s of its {limit:g} s when its searches no "
        "longer improved"
    )
    if not _shortfall(plan):
        return f"valid but not proven optimal ({gap_text}): {stopped}; figures may improve"
    gap = plan.solver.mip_gap
    if gap is not None and gap <= request.options.mip_gap:
        # The GMV search is done; what is open is stage 1 (a smaller shortfall may exist).
        return (
            f"valid but not proven optimal ({gap_text}): the GMV is within the requested gap "
            f"of its bound at this shortfall, but {_shortfall_text(plan)}"
        )
    if plan.solver.engine != "decomposition":
        return f"valid but not proven optimal ({gap_text}): {_shortfall_text(plan)}; {stopped}"
    return (
        f"valid but not proven optimal ({gap_text}): {_shortfall_text(plan)}, and with the tier "
        "counts at the edge of what the budgets buy the GMV bound is loose (it prices tier "
        "places rather than counting them whole), so the gap may overstate how far the GMV is "
        f"from the best; {stopped}"
    )


def _not_optimal(plan: Plan) -> bool:
    gap = plan.solver.mip_gap
    return plan.solver.status is not SolveStatus.OPTIMAL or (gap or 0.0) > GAP_TOLERANCE


def _cut_budgets(base: AllocationRequest, request: AllocationRequest) -> list[str]:
    cuts = []
    for resource in request.resources:
        before = base.resource(resource.name).budget if _has(base, resource.name) else None
        after = resource.budget
        if after is not None and (before is None or after < before):
            cuts.append(resource.name)
    return cuts


def _raised_budgets(base: AllocationRequest, request: AllocationRequest) -> list[str]:
    raised = []
    for resource in request.resources:
        before = base.resource(resource.name).budget if _has(base, resource.name) else None
        if before is not None and (resource.budget is None or resource.budget > before):
            raised.append(resource.name)
    return raised


def _has(request: AllocationRequest, resource: str) -> bool:
    return any(r.name == resource for r in request.resources)


def _targets(request: AllocationRequest) -> dict[str, int]:
    return {tier.name: tier.target for tier in request.tiers}


def _achieved(plan: Plan) -> dict[str, int]:
    return {tier.name: tier.achieved for tier in plan.tiers}


def _unused_in_base(
    base: AllocationRequest, base_plan: Plan, request: AllocationRequest, resource: str
) -> str | None:
    """'subsidy did not bind in the base (¥10M spent)' when the base plan left that budget
    partly unused and spent no more than the scenario's smaller budget: the cut then
    leaves the base plan itself possible."""
    binding = (base_plan.explanation or {}).get("binding") or []
    if any(e.get("kind") == "budget" and e.get("resource") == resource for e in binding):
        return None
    report = next((r for r in base_plan.resources if r.name == resource), None)
    budget = request.resource(resource).budget
    if report is None or budget is None or report.allocated > budget:
        return None
    unit = base.resource(resource).unit
    return f"{resource} did not bind in the base ({money(report.allocated, unit)} spent)"


def reason(
    base_request: AllocationRequest,
    base_plan: Plan,
    request: AllocationRequest,
    plan: Plan,
) -> str | None:
    """One line on a surprising change of this scenario against the base, or None."""
    surprise = _surprise(base_request, base_plan, request, plan)
    if surprise is None:
        return None
    return f"{surprise}: {_cause(base_request, base_plan, request, plan, surprise)}"


def _forecast_moves(base: AllocationRequest, request: AllocationRequest) -> set[str]:
    """How the scenario moved the partners' outlook: `down` (a lower baseline, a partner
    excluded), `up` (a higher baseline), `changed` (response curves differ: no one
    direction)."""
    before = {partner.id: partner for partner in base.partners}
    moves = {"down"} if len(request.partners) < len(before) else set()
    for partner in request.partners:
        old = before.get(partner.id)
        if old is None or partner.baseline_gmv > old.baseline_gmv:
            moves.add("up")
        elif partner.baseline_gmv < old.baseline_gmv:
            moves.add("down")
        if old is not None and partner.curves != old.curves:
            moves.add("changed")
    return moves


def _surprise(
    base_request: AllocationRequest, base_plan: Plan, request: AllocationRequest, plan: Plan
) -> str | None:
    """What moved against the scenario's changes, when everything in them points one way."""
    base_gmv, gmv = base_plan.objective.total_projected_gmv, plan.objective.total_projected_gmv
    cuts = _cut_budgets(base_request, request)
    moves = _forecast_moves(base_request, request)
    falls = [f"the {', '.join(cuts)} budget"] if cuts else []
    falls += ["the forecast"] if moves == {"down"} else []
    only_down = not _raised_budgets(base_request, request) and moves <= {"down"}
    if falls and only_down and gmv > base_gmv and is_change(base_gmv, gmv):
        return f"projected GMV rose although {' and '.join(falls)} fell"
    before_targets, after_targets = _targets(base_request), _targets(request)
    raised = [t for t, n in after_targets.items() if n > before_targets.get(t, n)]
    lowered = [t for t, n in after_targets.items() if n < before_targets.get(t, n)]
    if raised and not lowered and not cuts and not moves:
        before, after = _achieved(base_plan), _achieved(plan)
        fell = [t for t, n in after.items() if n < before.get(t, n)]
        if fell:
            return f"{', '.join(fell)} achieved fell although targets rose"
    return None


def _cause(
    base_request: AllocationRequest,
    base_plan: Plan,
    request: AllocationRequest,
    plan: Plan,
    surprise: str,
) -> str:
    if request.objective != base_request.objective:
        return (
            f"the objective changed from {base_request.objective} to {request.objective}, "
            "so the two plans optimise different things"
        )
    for label, which in (("the base", base_plan), ("this scenario's", plan)):
        if _not_optimal(which):
            gap = which.solver.mip_gap
            gap_text = f"a {percent(gap)} gap" if gap is not None else "no proven gap"
            return (
                f"{label} plan is not proven optimal ({which.solver.status}, {gap_text}), "
                "so part of the difference may come from the search, not the changes"
            )
    ws_before, ws_after = base_plan.objective.weighted_shortfall, plan.objective.weighted_shortfall
    if surprise.startswith("projected GMV"):
        if request.objective is Objective.MAX_ATTAINMENT and ws_after > ws_before + 1e-9:
            return (
                f"the plan meets fewer targets (weighted shortfall {ws_before:g} → {ws_after:g}); "
                "max_attainment ranks targets before GMV, and budget no longer spent lifting "
                "partners over tier thresholds buys more GMV elsewhere"
            )
        unused = [
            text
            for name in _cut_budgets(base_request, request)
            if (text := _unused_in_base(base_request, base_plan, request, name)) is not None
        ]
        if unused:
            return "; ".join(unused) + ", so the cut did not constrain the plan"
        return "the plans' data does not explain it"
    return _tier_trade(base_request, base_plan, request, plan)


def _tier_trade(
    base_request: AllocationRequest, base_plan: Plan, request: AllocationRequest, plan: Plan
) -> str:
    before, after = _achieved(base_plan), _achieved(plan)
    moved = [f"{t} {before[t]} → {n}" for t, n in after.items() if t in before and n != before[t]]
    rose = [t for t, n in after.items() if t in before and n > before[t]]
    ws_after = plan.objective.weighted_shortfall
    if rose:
        return (
            f"the plan trades one tier for another ({', '.join(moved)}), "
            f"for a weighted shortfall of {ws_after:g} against the new targets"
        )
    if request.options.confidence is None:
        # The base plan scored against the scenario's targets: what keeping it would cost.
        weights = {tier.name: tier.weight for tier in request.tiers}
        kept = sum(
            weights[name] * max(0, target - before.get(name, 0))
            for name, target in _targets(request).items()
        )
        if ws_after <= kept + 1e-9:
            return (
                f"against the new targets the base plan would leave a weighted shortfall of "
                f"{kept:g}, this plan {ws_after:g}: the objective ranks that first"
            )
    return "the plans' data does not explain it"


def scenario_notes(
    base: tuple[AllocationRequest, Plan] | None,
    request: AllocationRequest | None,
    plan: Plan | None,
) -> dict[str, Any]:
    """The `caveat` and `reason` of a comparison row (None where they do not apply)."""
    if plan is None:
        return {"caveat": None, "reason": None}
    why = None
    if base is not None and request is not None and base[1] is not plan:
        why = reason(base[0], base[1], request, plan)
    return {"caveat": caveat(plan, request), "reason": why}
