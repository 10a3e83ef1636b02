"""The Lagrangian: which coupling rows carry prices, and its value and subgradient.

A stage prices budgets (and group_budget rows) and, when tiers count, the tier rows (and
group_count rows); partners then answer separately (`subproblem.respond`). The value at
any prices is an upper bound on the stage's objective; the subgradient says which rows
are over- or under-used there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray
from optimizer.decomposition.dual import golden_section
from optimizer.decomposition.problem import Problem
from optimizer.decomposition.subproblem import Response, respond


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
@dataclass
class Evaluation:
    value: float
    grad: FloatArray
    response: Response
    prices: FloatArray  # (n, R) resource prices
    phi: FloatArray  # (n,) each partner's Lagrangian value
    amounts: FloatArray  # (n, R) the Lagrangian's amounts (a subgradient)


@dataclass
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

    def with_rho(self, prices: FloatArray) -> FloatArray:
        """Prices of this stage without ρ (the attainment price), with the least ρ that
        charges every tier's target at its price (ρ·weight ≥ μ): the dual value is then
        the value without ρ plus ρ times the weighted shortfall, where ρ = 0 would add
        every target times its price."""
        _, _, mu, _ = self.split(np.append(prices, 0.0))
        weights = self.problem.weights[: self.n_tier]
        rho = float(np.max(mu / np.maximum(weights, 1e-12), initial=0.0))
        return np.append(prices, rho)

    def coupling(
        self, z: FloatArray, amounts: FloatArray, value: float
    ) -> tuple[float, list[float]]:
        """`value` plus the budget and group-budget rows' part of the dual value at `z`, and
        their subgradient, when the partners answer with `amounts`. Added to `value` in
        this order: summed the other way round, the value moves in its last bits and the
        price search takes another path (5,000 family partners, seed 2: 11.1 s, not 8.6)."""
        problem = self.problem
        lam, grp, _, _ = self.split(z)
        usage = amounts.sum(axis=0)
        grads: list[float] = []
        for k, r in enumerate(self.budget_rows):
            value += lam[k] * problem.budget[r]
            grads.append(problem.budget[r] - usage[r])
        for g, group in enumerate(problem.group_budgets):
            spent = float(amounts[group.members, group.resource].sum())
            value += grp[2 * g] * group.high - grp[2 * g + 1] * group.low
            grads += [group.high - spent, spent - group.low]
        return value, grads

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
        _, _, mu, kappa = self.split(z)
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
        amounts = chosen_amounts(response, choice)
        value, grads = self.coupling(z, amounts, float(phi.sum()))
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


def chosen_amounts(response: Response, choice: NDArray[np.intp]) -> FloatArray:
    """Each partner's amounts at its level in `choice` (its free amounts at level 0)."""
    amounts = response.x0.copy()
    for level, reach in enumerate(response.reach, start=1):
        if reach is not None:
            chosen = choice[reach.rows] == level
            amounts[reach.rows[chosen]] = reach.amounts[chosen]
    return amounts


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

        def demand(price: float, family=family, usable=usable, r=r) -> float:
            x = family.argmax_slope(np.full(problem.n, price))
            menus = 0.0 if problem.menus is None else problem.menus.demand(r, price)
            return float(np.where(usable, x, 0.0).sum()) + menus

        if demand(0.0) <= budget:
            continue
        hi = float(np.max(np.where(usable, family.top_slope(), 0.0), initial=1.0)) * 2 + 1e-300
        if problem.menus is not None:
            hi = max(hi, 2 * problem.menus.top_price(r))
        lo = hi * 1e-16
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            if demand(mid) <= budget:
                hi = mid
            else:
                lo = mid
        lam[r] = hi
    return lam


def initial_point(
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


# Golden-section steps of `scaled_start` (each one Lagrangian evaluation): the scale's
# bracket of 10^±2 around its first guess narrows to within about 8%.
SCALE_STEPS = 10


def scaled_start(problem: Problem, stage: Stage, attain_prices: FloatArray) -> FloatArray | None:
    """Stage 2's first prices as a multiple of stage 1's, when that beats the usual start.

    When the tiers take most of the budgets, stage 2's prices (GMV per unit) are close to
    stage 1's (attainment per unit) times one factor: on 2,000 family partners the budget
    and tier prices of the two optima differ by factors 1.1–1.4·10^11 each, while the
    usual start (clearing prices) is off by up to 20× and the dual spent 30 of its 80
    steps getting there. The factor is found by golden-section search on the dual value,
    which is convex along the ray. Stage 1's layout is stage 2's without the attainment
    price ρ, which scales with the rest (stage 1 weighs tiers with ρ = 1).
    """
    lagrangian = Lagrangian(problem, stage)
    base = np.append(attain_prices, 1.0) if lagrangian.rho else attain_prices
    if base.size != lagrangian.size or not np.any(base > 0) or stage.kind != "gmv":
        return None
    usual, _ = initial_point(problem, lagrangian, stage)
    positive = (base > 0) & (usual > 0)
    if not np.any(positive):
        return None
    guess = float(np.exp(np.mean(np.log(usual[positive] / base[positive]))))

    def value(log_scale: float) -> float:
        return lagrangian.evaluate(math.exp(log_scale) * base).value

    lo, hi = math.log(guess) - 2 * math.log(10), math.log(guess) + 2 * math.log(10)
    found = golden_section(value, lo, hi, SCALE_STEPS - 2)
    if found is None:
        return None
    best_log, best_value = found
    if best_value >= lagrangian.evaluate(usual).value:
        return None
    return math.exp(best_log) * base
