"""The decomposition engine: stages, price search, primal plans and the certificate.

Coupling rows (budgets, tier counts, group rows) get prices; partners answer separately
(`subproblem.respond`); `dual.CuttingPlane` moves the prices; `repair` turns prices into
exactly feasible plans. Stage 1 bounds the best weighted attainment (prices on tiers in
[0, weight]); stage 2 keeps the attainment found and bounds GMV (or cost).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from models.plan import SolveStatus
from models.request import AllocationRequest, Objective
from optimizer.decomposition.dual import LevelBundle
from optimizer.decomposition.problem import Problem, build_problem
from optimizer.decomposition.repair import (
    assign_levels,
    bump,
    enforce_group_budgets,
    fill,
    fixed_amounts,
    grid_down,
    rebalance,
)
from optimizer.decomposition.subproblem import Response, respond
from optimizer.outcome import Candidate, EngineOutcome

ENGINE = "decomposition"
Progress = Callable[[str], object] | None
StopCheck = Callable[[], bool] | None


@dataclass
class Stage:
    """One Lagrangian: which rows are priced and what the objective is.

    kind: "attain" (stage 1: max Σ w·min(N, A)), "gmv" (max Σ G) or "cost" (max −cost).
    """

    kind: str
    targets: NDArray[np.int64]  # tier rows: A_t >= targets (gmv / cost); N_t for attain
    price_tiers: bool
    # Stage 2 after a shortfall: keep Σ w·min(N, A) >= attainment (one more price, ρ),
    # rather than per-tier counts, so the bound covers every plan with that shortfall.
    attainment: float | None = None

    @property
    def alpha(self) -> float:
        return 1.0 if self.kind == "gmv" else 0.0


@dataclass
class Evaluation:
    value: float
    grad: FloatArray
    response: Response
    prices: FloatArray  # (n, R) resource prices
    phi: FloatArray  # (n,) each partner's Lagrangian value
    amounts: FloatArray  # (n, R) the Lagrangian's amounts (a subgradient)


@dataclass
class Plan:
    amounts: FloatArray
    shortfall: float
    objective: float  # stage-2 objective (GMV, or cost)
    achieved: NDArray[np.int64]


class Lagrangian:
    def __init__(self, problem: Problem, stage: Stage):
        self.problem, self.stage = problem, stage
        self.budget_rows = [
            r for r in range(problem.n_resources) if math.isfinite(problem.budget[r])
        ]
        self.n_group_budget = len(problem.group_budgets)
        self.n_tier = problem.n_tiers if stage.price_tiers else 0
        self.n_group_count = len(problem.group_counts) if stage.price_tiers else 0
        self.exact_grid: int | None = None  # see subproblem.respond
        self.rho = stage.price_tiers and stage.attainment is not None and stage.kind != "attain"
        self.size = (
            len(self.budget_rows) + 2 * self.n_group_budget + self.n_tier + self.n_group_count
            + int(self.rho)
        )  # fmt: skip

    def split(self, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        a = len(self.budget_rows)
        b = a + 2 * self.n_group_budget
        c = b + self.n_tier
        d = c + self.n_group_count
        return z[:a], z[a:b], z[b:c], z[c:d]

    def rho_price(self, z: FloatArray) -> float:
        return float(z[-1]) if self.rho else 0.0

    def upper(self) -> FloatArray:
        up = np.full(self.size, np.inf)
        if self.stage.kind == "attain":
            lam, grp, _, _ = self.split(up)
            up[len(lam) + len(grp) : len(lam) + len(grp) + self.n_tier] = self.problem.weights
        return up

    def resource_prices(self, z: FloatArray) -> FloatArray:
        problem = self.problem
        lam, grp, _, _ = self.split(z)
        base = problem.unit_cost if self.stage.kind == "cost" else np.zeros(problem.n_resources)
        row = base.copy()
        row[self.budget_rows] += lam
        prices = np.broadcast_to(row, (problem.n, problem.n_resources)).copy()
        for g, group in enumerate(problem.group_budgets):
            prices[group.members, group.resource] += grp[2 * g] - grp[2 * g + 1]
        return prices

    def rewards(self, z: FloatArray, problem: Problem) -> FloatArray:
        """(n, T+1): what reaching each level earns under the tier and group-count prices.

        `problem` may be a row-subset or row-copy of `self.problem` (same group rows).
        """
        _, _, mu, kappa = self.split(z)
        cumulative = np.concatenate([[0.0], np.cumsum(mu)])
        total = np.broadcast_to(cumulative, (problem.n, cumulative.size)).copy()
        for g, row in enumerate(problem.group_counts):
            bonus = np.where(row.members, kappa[g], 0.0)
            total[:, row.tier + 1 :] += bonus[:, None]
        return total

    def evaluate(self, z: FloatArray) -> Evaluation:
        problem, stage = self.problem, self.stage
        lam, grp, mu, kappa = self.split(z)
        prices = self.resource_prices(z)
        response = respond(
            problem, prices, stage.alpha, levels=stage.price_tiers, exact_grid=self.exact_grid
        )
        values = response.values
        if stage.price_tiers and problem.n_tiers:
            total = values + self.rewards(z, problem)
            choice = np.argmax(total, axis=1)
            phi = total[np.arange(problem.n), choice]
        else:
            choice = np.zeros(problem.n, dtype=np.intp)
            phi = values[:, 0]
        amounts = response.x0.copy()
        for level, reach in enumerate(response.reach, start=1):
            if reach is None:
                continue
            chosen = choice[reach.rows] == level
            amounts[reach.rows[chosen]] = reach.amounts[chosen]
        usage = amounts.sum(axis=0)
        value = float(phi.sum())
        grads: list[float] = []
        for k, r in enumerate(self.budget_rows):
            value += lam[k] * problem.budget[r]
            grads.append(problem.budget[r] - usage[r])
        for g, group in enumerate(problem.group_budgets):
            spent = float(amounts[group.members, group.resource].sum())
            value += grp[2 * g] * group.high - grp[2 * g + 1] * group.low
            grads += [group.high - spent, spent - group.low]
        if stage.kind == "gmv":
            value += float(problem.baseline.sum())
        if stage.price_tiers:
            for t in range(self.n_tier):
                achieved = float(np.count_nonzero(choice > t))
                target = float(stage.targets[t])
                if stage.kind == "attain" or self.rho:
                    w = problem.weights[t] * (self.rho_price(z) if self.rho else 1.0)
                    target = float(problem.targets[t])
                    value += target * max(0.0, w - mu[t])
                    grads.append(achieved - (target if mu[t] < w else 0.0))
                else:
                    value -= mu[t] * target
                    grads.append(achieved - target)
            for g, row in enumerate(problem.group_counts):
                achieved = float(np.count_nonzero((choice > row.tier) & row.members))
                value -= kappa[g] * row.minimum
                grads.append(achieved - row.minimum)
            if self.rho:
                rho = self.rho_price(z)
                attainment = float(stage.attainment or 0.0)
                active = rho * problem.weights > mu
                value -= rho * attainment
                grads.append(-attainment + float((problem.targets * problem.weights)[active].sum()))
        return Evaluation(value, np.array(grads), response, prices, phi, amounts)


def clearing_prices(problem: Problem, alpha: float) -> FloatArray:
    """Per resource, the price at which free (level-0) demand fits the budget."""
    n_res = problem.n_resources
    lam = np.zeros(n_res)
    if alpha <= 0:
        return lam
    for r in range(n_res):
        budget = problem.budget[r]
        if not math.isfinite(budget):
            continue
        family = problem.families[r]
        usable = problem.can_use[:, r]

        def demand(price: float, family=family, usable=usable) -> float:
            x = family.argmax_slope(np.full(problem.n, price))
            return float(np.where(usable, x, 0.0).sum())

        if demand(0.0) <= budget:
            continue
        hi = float(np.max(np.where(usable, family.top_slope(), 0.0), initial=1.0)) * 2 + 1e-300
        lo = hi * 1e-16
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            if demand(mid) <= budget:
                hi = mid
            else:
                lo = mid
        lam[r] = hi
    return lam


def _initial_point(
    problem: Problem, lagrangian: Lagrangian, stage: Stage
) -> tuple[FloatArray, FloatArray]:
    z = np.zeros(lagrangian.size)
    scale = np.ones(lagrangian.size)
    n_b = len(lagrangian.budget_rows)
    n_g = 2 * lagrangian.n_group_budget
    gmv_scale = max(float(np.mean(problem.baseline)), 1.0)
    if stage.kind == "gmv":
        lam = clearing_prices(problem, 1.0)[lagrangian.budget_rows]
        z[:n_b] = lam
        scale[:n_b] = np.maximum(lam, 1e-3 * np.maximum(lam.max(initial=0.0), 1e-6))
    else:
        weight = float(problem.weights.max(initial=1.0))
        per_unit = weight * max(float(problem.targets.sum()), 1.0)
        for k, r in enumerate(lagrangian.budget_rows):
            ref = per_unit / problem.budget[r]
            if stage.kind == "cost":
                ref = problem.unit_cost[r] * 0.1
            z[k] = ref * 0.1
            scale[k] = ref
    scale[n_b : n_b + n_g] = np.maximum(scale[:n_b].mean() if n_b else 1.0, 1e-12)
    tier_ref = problem.weights if stage.kind == "attain" else np.full(lagrangian.n_tier, gmv_scale)
    start = n_b + n_g
    z[start : start + lagrangian.n_tier] = 0.5 * tier_ref[: lagrangian.n_tier]
    scale[start : start + lagrangian.n_tier] = tier_ref[: lagrangian.n_tier]
    scale[start + lagrangian.n_tier :] = (
        float(np.mean(tier_ref)) if lagrangian.n_tier else gmv_scale
    )
    if lagrangian.rho:
        z[-1] = 2.0 * gmv_scale / float(problem.weights.min(initial=1.0))
        scale[-1] = z[-1]
    if stage.kind == "gmv" and lagrangian.n_tier:
        z[start : start + lagrangian.n_tier] = _tier_prices(problem, lagrangian, z, stage)
        scale[start : start + lagrangian.n_tier] = np.maximum(
            z[start : start + lagrangian.n_tier], 0.1 * float(problem.thresholds.min())
        )
    return z, scale


def _tier_prices(
    problem: Problem, lagrangian: Lagrangian, z: FloatArray, stage: Stage
) -> FloatArray:
    """Tier prices at which about the target count of partners would reach each tier."""
    prices = lagrangian.resource_prices(z)
    response = respond(problem, prices, stage.alpha)
    values = response.values
    mu = np.zeros(problem.n_tiers)
    # Rewards add up over tiers (level ℓ earns μ_1 + … + μ_ℓ): the marginal partner of
    # each tier should just break even.
    for t in range(1, problem.n_tiers + 1):
        cost = values[:, 0] - values[:, t]
        cost = np.sort(cost[np.isfinite(cost)])
        k = int(stage.targets[t - 1])
        if 0 < k <= cost.size:
            mu[t - 1] = max(float(cost[k - 1]) - mu[: t - 1].sum(), 0.0)
    return mu


def assign_only(
    problem: Problem, evaluation: Evaluation, stage: Stage, targets: NDArray[np.int64]
) -> Plan:
    """Who reaches which tier, with the least amounts: enough to judge a shortfall."""
    _, amounts = assign_levels(problem, evaluation.response, evaluation.prices, targets)
    return evaluate_plan(problem, amounts)


def construct(
    problem: Problem, evaluation: Evaluation, stage: Stage, targets: NDArray[np.int64]
) -> Plan:
    """The best of a few exactly feasible plans built from one set of prices."""
    prices = evaluation.prices
    if problem.n_tiers and np.any(targets > 0):
        levels, mandatory = assign_levels(problem, evaluation.response, prices, targets)
    else:
        levels, mandatory = np.zeros(problem.n, dtype=np.int64), fixed_amounts(problem)
    if stage.kind == "cost" or problem.request.objective is Objective.MIN_COST:
        return _within_groups(problem, evaluate_plan(problem, mandatory), levels)
    hint = prices.mean(axis=0)
    # A: least-priced amounts that reach the tiers, then budgets water-filled on top.
    best = evaluate_plan(problem, fill(problem, mandatory, hint=hint))
    # B: the Lagrangian's own amounts for those levels (they balance resources within
    # each achiever at the prices), made exact, trimmed to the budgets (achievers down to
    # what keeps their tier), then topped up.
    if stage.alpha > 0:
        own = lagrangian_amounts(problem, evaluation.response, levels, mandatory, prices)
        trimmed = trim_to_budgets(problem, own, levels, hint)
        if trimmed is not None:
            candidate = evaluate_plan(problem, fill(problem, trimmed, hint=hint))
            if _better(candidate, best, minimise=False):
                best = candidate
    return _within_groups(problem, polish_lumpy(problem, best, levels), levels)


def _within_groups(problem: Problem, plan: Plan, levels: NDArray[np.int64]) -> Plan:
    """The plan with every group_budget row met (see repair.enforce_group_budgets)."""
    if not problem.group_budgets:
        return plan
    fixed = fixed_amounts(problem)
    keep = fixed.copy()
    for r in range(problem.n_resources):
        keep[:, r] = np.maximum(keep[:, r], minimum_keeping_tier(problem, plan.amounts, levels, r))
    amounts = enforce_group_budgets(problem, plan.amounts, keep)
    if not _groups_hold(problem, amounts):
        # Group shares are hard, tiers are not: give up tier amounts where they collide.
        amounts = enforce_group_budgets(problem, amounts, fixed)
    return evaluate_plan(problem, amounts)


def _broken_rows(problem: Problem, amounts: FloatArray) -> list[str]:
    """Budgets and group_budget rows the amounts break (pins can force that)."""
    broken = []
    spent = amounts.sum(axis=0)
    for r, resource in enumerate(problem.request.resources):
        if spent[r] > problem.budget[r] * (1 + 1e-9):
            broken.append(f"budget {resource.name}")
    for row in problem.group_budgets:
        used = float(amounts[row.members, row.resource].sum())
        if not row.low * (1 - 1e-9) <= used <= row.high * (1 + 1e-9):
            broken.append(row.label)
    if broken:
        broken.append("pin")
    return broken


def _groups_hold(problem: Problem, amounts: FloatArray) -> bool:
    for row in problem.group_budgets:
        spent = float(amounts[row.members, row.resource].sum())
        if not row.low * (1 - 1e-9) <= spent <= row.high * (1 + 1e-9):
            return False
    return True


def polish_lumpy(problem: Problem, plan: Plan, levels: NDArray[np.int64]) -> Plan:
    """Re-split stepped resources exactly among their holders (see `repair.rebalance`)."""
    amounts = plan.amounts
    for r in range(problem.n_resources):
        keep = fixed_amounts(problem)
        keep[:, r] = np.maximum(keep[:, r], minimum_keeping_tier(problem, amounts, levels, r))
        amounts = rebalance(problem, amounts, keep, r)
    if amounts is plan.amounts:
        return plan
    candidate = evaluate_plan(problem, amounts)
    return candidate if _better(candidate, plan, minimise=False) else plan


def trim_to_budgets(
    problem: Problem, x: FloatArray, levels: NDArray[np.int64], hint: FloatArray
) -> FloatArray | None:
    """Cut `x` back to the budgets, most overspent resource first, keeping every tier.

    Each resource is water-filled between what it must keep (pins; for achievers, the
    least amount still reaching their tier with the other resources as they are) and
    its current amount. None when even the amounts that must stay do not fit.
    """
    x = x.copy()
    fixed = fixed_amounts(problem)
    over = x.sum(axis=0) / problem.budget
    for r in np.argsort(-over):
        if over[r] <= 1.0:
            continue
        lower = fixed.copy()
        lower[:, r] = np.maximum(fixed[:, r], minimum_keeping_tier(problem, x, levels, r))
        upper = x.copy()
        only_r = np.where(np.arange(problem.n_resources) == r, upper, lower)
        x[:, r] = fill(problem, np.minimum(lower, only_r), upper=only_r, hint=hint)[:, r]
        if x[:, r].sum() > problem.budget[r] * (1 + 1e-12):
            return None
    return x


def minimum_keeping_tier(
    problem: Problem, x: FloatArray, levels: NDArray[np.int64], r: int
) -> FloatArray:
    """Per partner, the least grid amount of resource r keeping its tier (others fixed)."""
    out = np.zeros(problem.n)
    rows = np.flatnonzero((levels > 0) & (x[:, r] > 0))
    if rows.size == 0:
        return out
    family = problem.families[r].take(rows)
    step = problem.step[r]
    threshold = problem.thresholds[levels[rows] - 1]
    others = problem.baseline[rows].copy()
    for k, f in enumerate(problem.families):
        if k != r:
            others += f.take(rows).value(x[rows, k])
    need = threshold - others
    if_zero = need <= 0
    # Bisection on the (monotone) exact curve between the ticket and the current amount.
    low = np.where(if_zero, 0.0, family.lo)
    high = x[rows, r].copy()
    low_ok = family.value(low) >= need
    for _ in range(60):
        mid = 0.5 * (low + high)
        ok = family.value(mid) >= need
        high = np.where(ok, mid, high)
        low = np.where(ok, low, mid)
    amount = np.where(low_ok, low, high)
    if step > 0:
        amount = np.minimum(np.ceil(amount / step - 1e-9) * step, x[rows, r])
    # Where rounding lost the tier (float edge), keep the current amount.
    amount = np.where(family.value(amount) >= need, amount, x[rows, r])
    out[rows] = amount
    return out


def lagrangian_amounts(
    problem: Problem,
    response: Response,
    levels: NDArray[np.int64],
    mandatory: FloatArray,
    prices: FloatArray,
) -> FloatArray:
    """Each partner's subproblem amounts at its assigned level, on the grid and exact.

    Achievers whose rounded mix falls short of their tier on the exact curve are bumped a
    step at a time; failing that they keep their mandatory amounts.
    """
    x = response.x0.copy()
    for level, reach in enumerate(response.reach, start=1):
        if reach is None:
            continue
        chosen = levels[reach.rows] == level
        x[reach.rows[chosen]] = reach.amounts[chosen]
    for r, family in enumerate(problem.families):
        x[:, r] = np.minimum(grid_down(x[:, r], problem.step[r]), family.hi)
        x[:, r] = np.where(x[:, r] < family.lo, 0.0, x[:, r])
    x = np.maximum(x, fixed_amounts(problem))
    for level in range(1, problem.n_tiers + 1):
        rows = np.flatnonzero(levels == level)
        if rows.size == 0:
            continue
        threshold = problem.thresholds[level - 1]
        gmv = problem.baseline[rows] + sum(
            f.take(rows).value(x[rows, r]) for r, f in enumerate(problem.families)
        )
        ok = gmv >= threshold
        sub, ok = bump(problem, rows, x[rows], threshold, prices[rows], ok)
        sub[~ok] = mandatory[rows[~ok]]
        x[rows] = sub
    return x


def evaluate_plan(problem: Problem, amounts: FloatArray) -> Plan:
    gmv = problem.values(amounts)
    achieved = np.array([np.count_nonzero(gmv >= t) for t in problem.thresholds], dtype=np.int64)
    shortfall = float(np.sum(problem.weights * np.maximum(problem.targets - achieved, 0)))
    if problem.request.objective is Objective.MIN_COST:
        objective = float((amounts.sum(axis=0) * problem.unit_cost).sum())
    else:
        objective = float(gmv.sum())
    return Plan(amounts, shortfall, objective, achieved)


def _better(a: Plan, b: Plan | None, minimise: bool) -> bool:
    if b is None:
        return True
    if a.shortfall != b.shortfall:
        return a.shortfall < b.shortfall
    return a.objective < b.objective if minimise else a.objective > b.objective


def _gap(bound: float, objective: float) -> float:
    return abs(bound - objective) / max(abs(bound), 1e-12)


class _Clock:
    def __init__(self, limit: float, should_stop: StopCheck):
        self.start = time.perf_counter()
        self.limit = limit
        self.should_stop = should_stop
        self.stopped = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def out(self, share: float = 1.0) -> bool:
        if self.should_stop is not None and self.should_stop():
            self.stopped = True
        return self.stopped or self.elapsed() >= self.limit * share


def _run_stage(
    problem: Problem,
    stage: Stage,
    clock: _Clock,
    share: float,
    goal: Callable[[float, Plan | None], bool],
    primal_targets: NDArray[np.int64],
    progress: Progress,
    max_iterations: int = 200,
    polish_tries: int = 40,
    dual_tolerance: float = 1e-6,
    start: FloatArray | None = None,
    refine_steps: int = 0,
) -> tuple[float, Plan | None, FloatArray]:
    """Minimise the stage's dual, building plans on the way; (bound, best plan, best prices).

    Plans are built at improving dual points while that costs no more time than the dual
    itself; once the dual has converged, the rest of the stage's time goes to plans built
    at prices jittered around the best dual point (which partners are marginal, and so who
    reaches which tier, depends finely on the prices).
    """
    lagrangian = Lagrangian(problem, stage)
    z, scale = _initial_point(problem, lagrangian, stage)
    if start is not None and start.size == z.size:
        z, scale = start.copy(), np.maximum(np.abs(start), 1e-3 * scale)
    minimise = stage.kind == "cost"
    bundle = LevelBundle(z, scale, lagrangian.upper())
    bound = math.inf
    best: Plan | None = None
    build = assign_only if stage.kind == "attain" else construct

    def consider(evaluation: Evaluation) -> None:
        nonlocal best
        plan = build(problem, evaluation, stage, primal_targets)
        if _better(plan, best, minimise):
            best = plan

    # Plans are built at improving dual points on a schedule that thins out geometrically
    # (iterations 0, 2, 4, …, then every quarter of the iterations so far): early points
    # are far from the optimum, later ones move little.
    next_plan = 0
    for iteration in range(max_iterations):
        evaluation = lagrangian.evaluate(z)
        improved = evaluation.value < bound
        bound = min(bound, evaluation.value)
        bundle.report(z, evaluation.value, evaluation.grad)
        if iteration == 0 or (improved and iteration >= next_plan):
            consider(evaluation)
            next_plan = iteration + max(2, iteration // 4)
        if progress is not None:
            shown = best.objective if best is not None else float("nan")
            progress(f"{stage.kind} {iteration}: bound {bound:.9g}, best plan {shown:.9g}")
        if goal(bound, best) or clock.out(share):
            return bound, best, bundle.best
        z = bundle.propose()
        # Stop when the dual cannot fall much further, absolutely or next to the gap the
        # best plan leaves (a plan, not the dual, is then what is missing).
        enough = dual_tolerance
        if best is not None and best.shortfall == 0 and stage.kind != "attain":
            enough = max(enough, 0.05 * _gap(bound, best.objective))
        if iteration >= MIN_DUAL_STEPS and bundle.model_gap < enough:
            break
    if refine_steps and not goal(bound, best):
        bound = min(bound, _refine(problem, stage, bundle.best, clock, share, refine_steps))
        if progress is not None:
            progress(f"{stage.kind}: bound with exact tickets {bound:.9g}")
    rng = np.random.default_rng(problem.request.options.seed)
    stale = 0
    for attempt in range(polish_tries):
        if goal(bound, best) or clock.out(share) or stale >= POLISH_PATIENCE:
            break
        before = best
        jitter = (0.002, 0.005, 0.01, 0.02)[attempt % 4]
        trial = bundle.best * np.exp(jitter * rng.standard_normal(bundle.best.size))
        evaluation = lagrangian.evaluate(np.minimum(trial, lagrangian.upper()))
        bound = min(bound, evaluation.value)
        consider(evaluation)
        stale = stale + 1 if best is before else 0
        if progress is not None and best is not None:
            progress(f"{stage.kind} polish {attempt}: best plan {best.objective:.9g}")
    return bound, best, bundle.best


# The box model's predicted decrease means little before this many cuts.
MIN_DUAL_STEPS = 12
# Jittered plans stop after this many in a row bring nothing better.
POLISH_PATIENCE = 4
# Up to this many partners the bound is refined with exact ticket grids (_refine).
REFINE_UP_TO = 150_000
REFINE_STEPS = 8
# Above this many partners the prices are first found on a random sample this big.
SAMPLE_ABOVE = 150_000
SAMPLE_SIZE = 50_000


@dataclass
class _Result:
    plan: Plan
    bound: float  # the stage-2 dual value (−cost bound for min_cost)
    stage1_proven: bool
    prices: FloatArray  # the best stage-2 prices


def solve_decomposition(
    request: AllocationRequest,
    *,
    time_limit_s: float,
    mip_gap: float,
    progress: Progress = None,
    should_stop: StopCheck = None,
) -> EngineOutcome:
    clock = _Clock(time_limit_s, should_stop)
    problem = build_problem(request)
    minimise = request.objective is Objective.MIN_COST
    warm: FloatArray | None = None
    if problem.n > SAMPLE_ABOVE:
        sample = problem.sample(SAMPLE_SIZE, request.options.seed)
        sample_clock = _Clock(time_limit_s * 0.2, should_stop)
        if progress is not None:
            progress(f"pricing on a sample of {SAMPLE_SIZE:,} partners")
        warm = _solve(sample, sample_clock, mip_gap / 4, None, None).prices
    result = _solve(problem, clock, mip_gap, progress, warm)
    best, certified = result.plan, _certified(result.bound, minimise)
    broken = _broken_rows(problem, best.amounts)
    if broken:
        # Only pins can force this (every other amount is the engine's to move).
        return EngineOutcome(
            engine=ENGINE,
            status=SolveStatus.INFEASIBLE,
            candidates=[Candidate(amounts=np.maximum(best.amounts, 0.0))],
            seconds=clock.elapsed(),
            binding_constraints=broken,
        )
    gap = _gap(certified, best.objective) if math.isfinite(certified) else None
    if clock.stopped or (gap is not None and gap > mip_gap and clock.out()):
        status = SolveStatus.TIME_LIMIT
    elif gap is not None and gap <= mip_gap and result.stage1_proven:
        status = SolveStatus.OPTIMAL
    else:
        status = SolveStatus.FEASIBLE
    return EngineOutcome(
        engine=ENGINE,
        status=status,
        candidates=[Candidate(amounts=np.maximum(best.amounts, 0.0))],
        best_bound=certified if math.isfinite(certified) else None,
        mip_gap=gap,
        seconds=clock.elapsed(),
    )


def _solve(
    problem: Problem,
    clock: _Clock,
    mip_gap: float,
    progress: Progress,
    warm: FloatArray | None,
) -> _Result:
    """Both stages on `problem`; `warm` (stage-2 prices) starts the probe and stage 2."""
    objective = problem.request.objective
    minimise = objective is Objective.MIN_COST
    has_tiers = problem.n_tiers > 0 and objective is not Objective.MAX_GMV
    kind = "cost" if minimise else "gmv"

    stage1_proven = True
    targets = problem.targets.copy()
    seed_plan: Plan | None = None
    if has_tiers:
        # Try the targets outright first: a plan meeting them settles stage 1 for free.
        probe = Stage(kind, problem.targets, True)
        lag = Lagrangian(problem, probe)
        z, _ = _initial_point(problem, lag, probe)
        if warm is not None and warm.size == z.size:
            z = warm
        seed_plan = construct(problem, lag.evaluate(z), probe, problem.targets)
        if seed_plan.shortfall > 0:
            weights_total = float((problem.weights * problem.targets).sum())
            integral = bool(np.all(problem.weights == np.round(problem.weights)))

            def settled(bound: float, plan: Plan | None) -> bool:
                if plan is None:
                    return False
                floor = max(weights_total - bound, 0.0)
                if integral:
                    floor = math.ceil(floor - 1e-6)
                return plan.shortfall <= floor + 1e-9

            attain = Stage("attain", problem.targets, True)
            bound1, plan1, _ = _run_stage(
                problem, attain, clock, 0.4, settled, problem.targets, progress
            )
            if plan1 is not None and not minimise:
                # Stage 1 plans carry only what the tiers need; spend the rest on GMV.
                filled = evaluate_plan(problem, fill(problem, plan1.amounts))
                reached = (problem.values(filled.amounts)[:, None] >= problem.thresholds).sum(1)
                plan1 = _within_groups(problem, filled, reached.astype(np.int64))
            if plan1 is not None and _better(plan1, seed_plan, minimise):
                seed_plan = plan1
            stage1_proven = settled(bound1, seed_plan)
            targets = np.minimum(seed_plan.achieved, problem.targets)
        if progress is not None:
            progress(f"stage 1: shortfall {seed_plan.shortfall:g} (proven: {stage1_proven})")

    attainment = None
    if seed_plan is not None and seed_plan.shortfall > 0:
        attainment = float((problem.weights * targets).sum())
    stage = Stage(kind, targets, has_tiers, attainment)
    shortfall_goal = seed_plan.shortfall if seed_plan is not None else 0.0

    def close_enough(bound: float, plan: Plan | None) -> bool:
        if plan is None or plan.shortfall > shortfall_goal:
            return False
        return _gap(_certified(bound, minimise), plan.objective) <= mip_gap

    bound2, plan2, prices = _run_stage(
        problem,
        stage,
        clock,
        0.95,
        close_enough,
        targets,
        progress,
        start=warm,
        refine_steps=REFINE_STEPS if problem.n <= REFINE_UP_TO else 0,
    )
    best = seed_plan
    if plan2 is not None and (best is None or _better(plan2, best, minimise)):
        best = plan2
    if best is None:
        best = evaluate_plan(problem, fixed_amounts(problem))
    return _Result(best, bound2, stage1_proven, prices)


def _refine(
    problem: Problem, stage: Stage, start: FloatArray, clock: _Clock, share: float, steps: int
) -> float:
    """The dual again from `start`, with stepped ticket resources on their exact grid.

    The envelope chord and continuous steps let the plain dual buy "part" of a fund
    ticket to lift a partner over a tier; enumerating the grid amounts for the partners
    reaching for a tier removes that slack (subproblem.reach_on_grid). It is costlier, so
    it only runs a few bundle steps from the plain dual's best prices.
    """
    lumpy = problem.lumpy_resources()
    bound = math.inf
    for r in lumpy:
        lagrangian = Lagrangian(problem, stage)
        lagrangian.exact_grid = r
        scale = np.maximum(np.abs(start), 1e-12)
        bundle = LevelBundle(start, scale, lagrangian.upper())
        z = start
        for _ in range(steps):
            evaluation = lagrangian.evaluate(z)
            bound = min(bound, evaluation.value)
            bundle.report(z, evaluation.value, evaluation.grad)
            if clock.out(share):
                break
            z = bundle.propose()
    return bound


def _certified(dual_value: float, minimise: bool) -> float:
    # Stage "cost" maximises −cost: its dual bounds −cost from above.
    return -dual_value if minimise else dual_value


__all__ = ["ENGINE", "solve_decomposition"]
