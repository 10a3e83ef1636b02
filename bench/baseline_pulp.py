"""The baseline: the plain PuLP MIP a competent user would write from the request and
curve definitions (docs/reference.md).

* Each (partner, resource) amount is a variable (an integer count of steps where the
  resource has a step), semi-continuous through an on/off binary when the partner has a
  min ticket; pins fix it; eligibility and max_share shape its range.
* Each curve is a 16-segment secant piecewise-linear function of the amount (incremental
  form; concave curves need no binaries, S-shaped ones get segment-order binaries).
* Each tier a partner could reach gets a binary indicator; counts feed shortfall
  variables. Two stages, lexicographic: minimise the weighted shortfall, then fix it and
  maximise GMV (or minimise cost).

Solved with CBC (the binary of PuLP's cbc extra) or HiGHS through PuLP. The amounts it returns are
evaluated with the exact curves afterwards, like every engine's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pulp

from models.curves import Curve, FloatArray
from models.request import AllocationRequest, Objective
from optimizer.engines.cbc import cbc_path

SEGMENTS = 16


@dataclass
class BaselineResult:
    amounts: FloatArray
    status: str  # "optimal", "feasible" (time limit with a solution) or "failed"
    model_bound: float | None  # the solver's stage-2 bound on its PWL model (not exact)
    seconds: float


def _solver(name: str, seconds: float) -> pulp.LpSolver:
    limit = max(1.0, seconds)
    if name == "cbc":
        return pulp.COIN_CMD(path=cbc_path(), msg=False, timeLimit=limit, threads=1)
    if name == "highs":
        return pulp.HiGHS(msg=False, timeLimit=limit, threads=1)
    raise ValueError(f"unknown baseline solver {name!r}")


def solve_baseline(request: AllocationRequest, solver: str, time_cap_s: float) -> BaselineResult:
    started = time.perf_counter()
    partners, resources = request.partners, request.resources
    tiers = request.sorted_tiers()
    pins = request.pins()
    minimise_cost = request.objective is Objective.MIN_COST
    has_tiers = bool(tiers) and request.objective is not Objective.MAX_GMV

    model = pulp.LpProblem("allocation", pulp.LpMinimize)
    amount: dict[tuple[int, int], pulp.LpAffineExpression | float] = {}
    uplift: dict[int, list[pulp.LpAffineExpression]] = {i: [] for i in range(len(partners))}
    spend: dict[int, list[pulp.LpAffineExpression | float]] = {r: [] for r in range(len(resources))}
    for i, partner in enumerate(partners):
        for r, resource in enumerate(resources):
            curve = partner.curves.get(resource.name)
            if (partner.id, resource.name) in pins:
                fixed = pins[(partner.id, resource.name)]
                amount[i, r] = fixed
                spend[r].append(fixed)
                if curve is not None:
                    uplift[i].append(pulp.LpAffineExpression(constant=float(curve.value(fixed))))
                continue
            if curve is None or not request.eligible(partner, resource.name):
                continue
            low, high = request.amount_range(partner, resource.name)
            step = resource.step or 0.0
            if not math.isfinite(high):
                high = _useful_max(curve)
            if step > 0:
                high = math.floor(high / step + 1e-9) * step
                low = math.ceil(low / step - 1e-9) * step
            if high <= 0 or low > high:
                continue
            x = _amount_variable(model, i, r, low, high, step)
            amount[i, r] = x
            spend[r].append(x)
            uplift[i].append(_pwl(model, i, r, curve, x, high))

    for r, resource in enumerate(resources):
        if resource.budget is not None and spend[r]:
            model += pulp.lpSum(spend[r]) <= resource.budget, f"budget_{r}"

    gmv = {i: pulp.lpSum(uplift[i]) for i in uplift}
    shortfall_terms = []
    if has_tiers:
        for t, tier in enumerate(tiers):
            count: list[pulp.LpVariable] = []
            already = 0
            for i, partner in enumerate(partners):
                if partner.baseline_gmv >= tier.min_gmv:
                    already += 1
                    continue
                reach = sum(_curve_max(request, partner, res.name) for res in resources)
                if partner.baseline_gmv + reach < tier.min_gmv:
                    continue
                z = model.add_variable(f"tier_{t}_{i}", cat="Binary")
                model += gmv[i] >= (tier.min_gmv - partner.baseline_gmv) * z, f"reach_{t}_{i}"
                count.append(z)
            short = model.add_variable(f"short_{t}", lowBound=0)
            model += pulp.lpSum(count) + already + short >= tier.target, f"count_{t}"
            shortfall_terms.append(tier.weight * short)

    deadline = started + time_cap_s
    status = "optimal"
    if shortfall_terms:
        model.setObjective(pulp.lpSum(shortfall_terms))
        state = model.solve(_solver(solver, (deadline - time.perf_counter()) * 0.4))
        if pulp.value(model.objective) is None:
            return BaselineResult(_zeros(request), "failed", None, time.perf_counter() - started)
        status = "optimal" if state == pulp.LpStatusOptimal else "feasible"
        best_shortfall = float(pulp.value(model.objective))
        model += pulp.lpSum(shortfall_terms) <= best_shortfall + 1e-6, "stage1"
    cost = pulp.lpSum(
        resources[r].unit_cost * pulp.lpSum(terms) for r, terms in spend.items() if terms
    )
    if minimise_cost:
        model.setObjective(cost)
    else:
        model.setObjective(-pulp.lpSum(gmv.values()))
    remaining = deadline - time.perf_counter()
    if remaining <= 1.0:
        return BaselineResult(
            _values(request, amount), "feasible", None, time.perf_counter() - started
        )
    state = model.solve(_solver(solver, remaining))
    if pulp.value(model.objective) is None:
        return BaselineResult(_zeros(request), "failed", None, time.perf_counter() - started)
    if state != pulp.LpStatusOptimal:
        status = "feasible"
    bound = None
    if state == pulp.LpStatusOptimal:
        baseline = sum(p.baseline_gmv for p in partners)
        objective = float(pulp.value(model.objective))
        bound = objective if minimise_cost else baseline - objective
    return BaselineResult(_values(request, amount), status, bound, time.perf_counter() - started)


def _amount_variable(
    model: pulp.LpProblem, i: int, r: int, low: float, high: float, step: float
) -> pulp.LpAffineExpression:
    if step > 0:
        units = model.add_variable(f"n_{i}_{r}", 0, round(high / step), cat="Integer")
        x = step * units
    else:
        x = model.add_variable(f"x_{i}_{r}", 0, high)
    if low > 0:
        on = model.add_variable(f"on_{i}_{r}", cat="Binary")
        model += x >= low * on, f"min_{i}_{r}"
        model += x <= high * on, f"max_{i}_{r}"
    return pulp.LpAffineExpression(x)


def _pwl(
    model: pulp.LpProblem, i: int, r: int, curve: Curve, x: pulp.LpAffineExpression, high: float
) -> pulp.LpAffineExpression:
    """Secant interpolation of the curve on 16 equal segments of [0, high]."""
    points = np.linspace(0.0, high, SEGMENTS + 1)
    values = curve.value(points)
    widths = np.diff(points)
    slopes = np.diff(values) / widths
    pieces = [model.add_variable(f"d_{i}_{r}_{k}", 0, float(widths[k])) for k in range(SEGMENTS)]
    model += pulp.lpSum(pieces) == x, f"split_{i}_{r}"
    if not curve.is_concave:
        # Segments must fill in order: y_k = 1 lets segment k+1 start only once k is full.
        order = [model.add_variable(f"y_{i}_{r}_{k}", cat="Binary") for k in range(SEGMENTS - 1)]
        for k in range(SEGMENTS - 1):
            model += pieces[k] >= float(widths[k]) * order[k], f"full_{i}_{r}_{k}"
            model += pieces[k + 1] <= float(widths[k + 1]) * order[k], f"next_{i}_{r}_{k}"
    return pulp.lpSum(float(slopes[k]) * pieces[k] for k in range(SEGMENTS))


def _curve_max(request: AllocationRequest, partner: object, resource: str) -> float:
    curves = partner.curves  # type: ignore[attr-defined]
    curve = curves.get(resource)
    if curve is None or not request.eligible(partner, resource):  # type: ignore[arg-type]
        return 0.0
    _, high = request.amount_range(partner, resource)  # type: ignore[arg-type]
    if not math.isfinite(high):
        high = _useful_max(curve)
    return float(curve.value(high))


def _useful_max(curve: Curve) -> float:
    """An unlimited amount capped where the curve has (nearly) saturated."""
    if math.isfinite(curve.supremum):
        upper = 1.0
        while float(curve.value(upper)) < curve.supremum * (1 - 1e-6) and upper < 1e18:
            upper *= 2.0
        return upper
    return 1e12


def _zeros(request: AllocationRequest) -> FloatArray:
    return np.zeros((len(request.partners), len(request.resources)))


def _values(
    request: AllocationRequest, amount: dict[tuple[int, int], pulp.LpAffineExpression | float]
) -> FloatArray:
    out = _zeros(request)
    for (i, r), expression in amount.items():
        value = expression if isinstance(expression, float) else pulp.value(expression)
        out[i, r] = float(value or 0.0)
    step = np.array([res.step or 0.0 for res in request.resources])
    # Integer counts come back as floats like 3.0000000001: put them back on the grid.
    out = np.maximum(
        np.where(step > 0, np.round(out / np.where(step > 0, step, 1.0)) * step, out), 0
    )
    # Solver tolerances: an amount switched "off" may come back as a crumb below its min,
    # and a budget may be overrun by a hair; clean up as a user reading the result would.
    for (i, r), expression in amount.items():
        if isinstance(expression, float):
            continue
        partner, resource = request.partners[i], request.resources[r]
        low, high = request.amount_range(partner, resource.name)
        if 0 < out[i, r] < low * (1 - 1e-9):
            out[i, r] = 0.0
        out[i, r] = min(out[i, r], high)
    for r, resource in enumerate(request.resources):
        if resource.budget is not None and out[:, r].sum() > resource.budget:
            biggest = int(np.argmax(out[:, r]))
            excess = out[:, r].sum() - resource.budget
            cut = excess if not step[r] else math.ceil(excess / step[r]) * step[r]
            out[biggest, r] = max(out[biggest, r] - cut, 0.0)
    return out
