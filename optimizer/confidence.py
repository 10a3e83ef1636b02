"""Planning at a confidence (docs/uncertainty.md): every tier's `achieved_at_confidence`
reaches its target.

The route reuses every engine unchanged. A partner reaches tier t with probability
p_it = Φ(ln(G_i / min_gmv_t) / σ_i), so p_it ≥ q ⇔ G_i · exp(−z_q σ_i) ≥ min_gmv_t — for all
tiers at once. Scaling partner i's baseline, every curve's output and every package uplift
by c_i = exp(−z_q σ_i) gives a deterministic request whose tier counts are the numbers of
partners that reach each tier with probability ≥ q. Solving it with inflated targets T'
lifts partners to a safety margin; the outer loop then recomputes the exact
`achieved_at_confidence` (and the real GMV, from the real curves) of each inner plan and
moves T' by the exact deficit, or — when budgets bind and T' cannot be
reached — tries a lower q (more partners, each less sure) or a higher one, keeping the best plan:
least weighted shortfall at the confidence, then the objective; `min_cost` whose budgets
bind goes on spending what its cheapest round saved (`spend_step`). At most `MAX_ROUNDS` inner
solves share the request's time limit, so a confidence solve takes about 2–3 deterministic
ones. The returned plans are built from the final amounts on the real request, so every
figure is exact.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtri  # the normal quantile; scipy.stats costs ~1 s to import

from models.check import assert_plan_valid
from models.forecast import partner_sigmas
from models.plan import NO_PACKAGE, Plan, SolverReport, SolveStatus, build_plan
from models.request import (
    AllocationRequest,
    Constraint,
    GroupBudget,
    MaxShare,
    Objective,
    Resource,
    UncertaintyOptions,
)
from models.scenario import scale_curve
from optimizer.diagnosis import exhausted_resources

MAX_ROUNDS = 3
# `min_cost` rounds that bisect the spend may go on past MAX_ROUNDS while the time limit
# leaves room for a round, up to this many in all, until the bisection is this fine.
MAX_SPEND_ROUNDS = 6
MIN_SPEND_STEP = 1 / 16
log = logging.getLogger(__name__)
Solver = Callable[[AllocationRequest], list[Plan]]


def needs_confidence(request: AllocationRequest) -> bool:
    """Does the request plan at a confidence that changes anything?"""
    return (
        request.options.confidence is not None
        and request.objective is not Objective.MAX_GMV
        and bool(request.tiers)
        and bool(np.any(partner_sigmas(request) > 0))
    )


def safe_request(
    request: AllocationRequest, sigmas: np.ndarray, q: float, targets: dict[str, int], rounds: int
) -> AllocationRequest:
    """The deterministic request counting partners that reach a tier with probability ≥ q."""
    factors = np.exp(-ndtri(q) * sigmas)
    partners = tuple(
        replace(partner, baseline_gmv_p10=None, baseline_gmv_p90=None)
        if c == 1.0
        else replace(
            partner,
            baseline_gmv=partner.baseline_gmv * c,
            baseline_gmv_p10=None,
            baseline_gmv_p90=None,
            curves={name: scale_curve(curve, c) for name, curve in partner.curves.items()},
            packages=tuple(replace(p, uplift=p.uplift * c) for p in partner.packages),
        )
        for partner, c in zip(request.partners, factors.tolist(), strict=True)
    )
    tiers = tuple(replace(tier, target=targets[tier.name]) for tier in request.tiers)
    options = replace(
        request.options,
        confidence=None,
        uncertainty=UncertaintyOptions(),
        time_limit_s=request.options.time_limit_s / rounds,
    )
    return replace(request, partners=partners, tiers=tiers, options=options)


# The least per-partner probability a round lifts partners to. A plan that has to hold
# at α = 0.5 could count partners at p = 0.5, but the inner solve puts each lifted partner
# exactly at q, and the count's median is then about half of them: meeting T needs 2T
# partners lifted to their thresholds. Lifting T/0.75 partners each to p = 0.75 costs
# z_0.75·σ ≈ 0.67σ more GMV a partner (7–20% at the spreads we see) instead of a third
# more partners, so it is the cheaper and more reachable start (issue 8: min_cost at
# α = 0.5 cost twice as much as at 0.8 and still missed the 1B target).
MIN_Q = 0.75


def first_q(alpha: float) -> float:
    """The per-partner probability the first round lifts partners to."""
    return max(alpha, MIN_Q)


def initial_targets(request: AllocationRequest, q: float) -> dict[str, int]:
    """T' if every counted partner sat at p = q: L·q − z_α·√(L·q(1−q)) ≥ T, solved for L."""
    alpha = request.options.confidence or 0.5
    z = ndtri(alpha)
    out = {}
    for tier in request.tiers:
        root = z * math.sqrt(q * (1 - q)) + math.sqrt(z * z * q * (1 - q) + 4 * q * tier.target)
        out[tier.name] = min(math.ceil((root / (2 * q)) ** 2), len(request.partners))
    return out


@dataclass
class Step:
    q: float
    targets: dict[str, int]
    # `min_cost` spending (see `spend_step`): the inner solve is `max_attainment` with
    # each resource's spend capped at this; None: the request's own objective.
    caps: dict[str, float] | None = None
    # Where the caps sit between the `min_cost` round's spend (0) and the budgets (1).
    share: float = 0.0


@dataclass
class Round:
    step: Step
    plans: list[Plan]  # built on the real request
    inner_short: bool  # the inner plan missed its safe targets T' (budgets bind)

    @property
    def q(self) -> float:
        return self.step.q

    @property
    def targets(self) -> dict[str, int]:
        return self.step.targets

    @property
    def deficits(self) -> dict[str, int]:
        block = self.plans[0].uncertainty
        assert block is not None
        return {t.name: t.target - t.achieved_at_confidence for t in block.tiers}

    @property
    def met(self) -> bool:
        return all(d <= 0 for d in self.deficits.values())

    @property
    def spent(self) -> dict[str, float]:
        return {r.name: r.allocated for r in self.plans[0].resources}

    def key(self, objective: Objective) -> tuple[float, float]:
        figures = self.plans[0].objective
        second = (
            figures.total_cost if objective is Objective.MIN_COST else -figures.total_projected_gmv
        )
        return (figures.weighted_shortfall, second)


def solve_at_confidence(request: AllocationRequest, inner: Solver) -> list[Plan]:
    """The best plan (and its alternatives) of at most MAX_ROUNDS inner solves of `inner`."""
    started = time.perf_counter()
    sigmas = partner_sigmas(request)
    q = first_q(request.options.confidence or 0.5)
    step: Step | None = Step(q, initial_targets(request, q))
    rounds: list[Round] = []
    limit = request.options.time_limit_s
    while step is not None and (
        len(rounds) < MAX_ROUNDS
        or (
            step.caps is not None
            and len(rounds) < MAX_SPEND_ROUNDS
            and time.perf_counter() - started + limit / MAX_ROUNDS <= limit
        )
    ):
        safe = safe_request(request, sigmas, step.q, step.targets, MAX_ROUNDS)
        if step.caps is not None:
            safe = spending(safe, step.caps)
        inner_plans = inner(safe)
        short = inner_plans[0].objective.weighted_shortfall > 0
        rounds.append(Round(step, [rebuild(request, p) for p in inner_plans], short))
        log.info(
            "confidence round q=%.3f T'=%s spend share %s: deficits %s",
            step.q,
            step.targets,
            None if step.caps is None else step.share,
            rounds[-1].deficits,
        )
        step = spend_step(request, rounds) or next_step(request, rounds)
    best = min(rounds, key=lambda r: r.key(request.objective))
    seconds = time.perf_counter() - started
    for plan in best.plans:
        plan.solver = replace(
            at_confidence(plan.solver, plan.objective.weighted_shortfall), seconds=seconds
        )
    return best.plans


def at_confidence(report: SolverReport, shortfall: float) -> SolverReport:
    """What an inner solve's report certifies of a plan at the confidence: nothing. It
    certified the scaled request with raised targets, so its gap and bound are that
    request's (a family plan 7 short at 90% was reported `optimal`, its shortfall "proven
    least" under a bound of 21). Only a plan meeting every target at the confidence has a
    shortfall proven least: 0."""
    status = SolveStatus.FEASIBLE if report.status is SolveStatus.OPTIMAL else report.status
    met = shortfall <= 0
    return replace(
        report,
        status=status,
        mip_gap=None,
        best_bound=None,
        shortfall_proven=met,
        shortfall_bound=0.0 if met else None,
    )


def spending(safe: AllocationRequest, caps: dict[str, float]) -> AllocationRequest:
    """The safe request as `max_attainment` with each budget lowered to its cap. Shares
    (`max_share`, `group_budget`) are of the budget, so they are scaled up to keep the
    amounts they allow: only the total spend is capped."""
    ratios = {
        r.name: r.budget / cap
        for r in safe.resources
        if r.budget and 0 < (cap := _whole(caps[r.name], r)) < r.budget
    }

    def scaled(share: float, resource: str) -> float:
        return min(1.0, share * ratios.get(resource, 1.0))

    constraints: list[Constraint] = []
    for rule in safe.constraints:
        if isinstance(rule, MaxShare):
            rule = replace(rule, max_share=scaled(rule.max_share, rule.resource))
        elif isinstance(rule, GroupBudget):
            rule = replace(
                rule,
                min_share=scaled(rule.min_share, rule.resource),
                max_share=scaled(rule.max_share, rule.resource),
            )
        constraints.append(rule)
    resources = tuple(
        replace(r, budget=r.budget / ratios[r.name]) if r.name in ratios and r.budget else r
        for r in safe.resources
    )
    return replace(
        safe,
        objective=Objective.MAX_ATTAINMENT,
        resources=resources,
        constraints=tuple(constraints),
    )


def _whole(amount: float, resource: Resource) -> float:
    """`amount` down to whole units: a cap between two steps is out of every plan's reach
    once whole-unit rounding has run."""
    unit = resource.step or 1.0
    return math.floor(amount / unit) * unit


def spend_step(request: AllocationRequest, rounds: list[Round]) -> Step | None:
    """`min_cost` rounds that spend the money the first round saved, or None.

    When the budgets bind and the targets still fail at α, the inner `min_cost` has put
    each lifted partner exactly on its safe threshold and left the rest of the budgets
    unspent; `max_attainment` spends it lifting partners past their thresholds, and a
    partner further past is likelier to reach it, so the count at α rises (issue 8:
    `min_cost` missed targets that `max_attainment` met with the same budgets). Least
    shortfall comes first, then least cost, so the spend is bisected between the
    `min_cost` round's spend and the budgets: halfway first, the whole budgets when that
    misses, then halfway between the dearest cap that missed and the cheapest that met.
    """
    budgets = {r.name: r.budget for r in request.resources}
    if request.objective is not Objective.MIN_COST or any(b is None for b in budgets.values()):
        return None
    last = rounds[-1]
    full = {name: float(b or 0.0) for name, b in budgets.items()}
    if last.step.caps is None:
        if last.met or not last.inner_short:
            return None
        return Step(last.q, last.targets, _between(last.spent, full, 0.5), 0.5)
    first = max(n for n, r in enumerate(rounds) if r.step.caps is None)
    spending_rounds = rounds[first + 1 :]
    low = max((r.step.share for r in spending_rounds if not r.met), default=0.0)
    high = min((r.step.share for r in spending_rounds if r.met), default=None)
    if high is None:
        share = 1.0 if low < 1.0 else None
    else:
        share = (low + high) / 2 if high - low > MIN_SPEND_STEP else None
    if share is None:
        return None
    floor = rounds[first].spent
    return Step(last.q, last.targets, _between(floor, full, share), share)


def _between(low: dict[str, float], high: dict[str, float], share: float) -> dict[str, float]:
    return {name: low[name] + (high[name] - low[name]) * share for name in high}


def next_step(request: AllocationRequest, rounds: list[Round]) -> Step | None:
    """The next (q, T'), or None when the last round cannot be improved on."""
    last = rounds[-1]
    caps, share = last.step.caps, last.step.share
    deficits = last.deficits
    if all(d <= 0 for d in deficits.values()):
        if request.objective is not Objective.MIN_COST or all(d == 0 for d in deficits.values()):
            return None
        # Every tier holds with room to spare: fewer safe partners cost less.
        return Step(
            last.q,
            {name: max(0, last.targets[name] + d) for name, d in deficits.items()},
            caps,
            share,
        )
    if not last.inner_short:  # the safe targets were met but are too few: raise them
        return Step(
            last.q,
            {
                name: last.targets[name] + max(0, math.ceil(d / last.q))
                for name, d in deficits.items()
            },
            caps,
            share,
        )
    # Budgets bind, so raising T' gains nothing: try more partners at a lower probability
    # each, or fewer at a higher one, going on in the direction that helped. A lower q
    # that no round has tried comes first; when there is none (the lower side was tried),
    # a higher one.
    best = min(rounds, key=lambda r: r.key(request.objective))
    lower = 0.5 + (best.q - 0.5) / 2
    higher = best.q + (0.999 - best.q) / 2
    going_up = len(rounds) > 1 and best.q >= rounds[0].q and best is not rounds[0]
    for q in (higher, lower) if going_up else (lower, higher):
        if all(abs(q - r.q) >= 1e-3 for r in rounds):
            return Step(q, initial_targets(request, q), caps, share)
    return None


def rebuild(request: AllocationRequest, plan: Plan) -> Plan:
    """The inner plan's amounts on the real request: exact GMV, tiers and uncertainty."""
    index = {p.id: i for i, p in enumerate(request.partners)}
    amounts = np.zeros((len(request.partners), len(request.resources)))
    choice = np.full(len(request.partners), NO_PACKAGE, dtype=np.intp)
    names = [r.name for r in request.resources]
    for allocation in plan.allocations:
        i = index[allocation.partner_id]
        partner = request.partners[i]
        package = None
        if allocation.package is not None:
            k = next(k for k, p in enumerate(partner.packages) if p.name == allocation.package)
            choice[i], package = k, partner.packages[k]
        for r, name in enumerate(names):
            inside = package.amounts.get(name, 0.0) if package is not None else 0.0
            amounts[i, r] = allocation.amounts.get(name, 0.0) - inside
    rebuilt = build_plan(
        request,
        amounts,
        SolverReport(**vars(plan.solver)),
        package_choice=choice if request.uses_packages else None,
        rank=plan.rank,
        label=plan.label,
        binding_constraints=plan.binding_constraints,
    )
    if rebuilt.objective.weighted_shortfall > 0 and not rebuilt.binding_constraints:
        rebuilt.binding_constraints = exhausted_resources(rebuilt)
    assert_plan_valid(request, rebuilt)
    return rebuilt
