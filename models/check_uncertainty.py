"""The checker's half for the uncertainty figures (docs/uncertainty.md): re-derives them
independently.

`models.plan` computes the figures with vectorised ndtr and an FFT product tree; here σ and
each reach probability come from scalar `math` calls and the count distribution from the
plain sequential recursion P_k ← P_k·(1 − p) + P_{k−1}·p, so a bug in one cannot hide in
the other. The recursion is O(m²) in the m partners whose probability is neither 0 nor 1;
above `DIRECT_LIMIT` of them the count figures are recomputed by `models.uncertainty`
instead (still checked: σ, p_reach and expected_achieved stay independent). Monte Carlo
figures are recomputed from the same seed (they are reproducible, not independent), within
one draw (1/draws), or one partner for `achieved_at_confidence`, of the reported ones: the
checker's exactly summed GMV may differ from the plan's by an ulp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from models.forecast import request_outlook
from models.plan import Allocation, Plan, TierUncertainty
from models.request import AllocationRequest, Partner
from models.uncertainty import DEFAULT_REPORT_CONFIDENCE, TRUNCATE, Z90

DIRECT_LIMIT = 4_000
PROBABILITY_TOL = 1e-9  # exact figures: float rounding plus the documented truncation


def partner_sigma(partner: Partner, default: float) -> float:
    low, high = partner.baseline_gmv_p10, partner.baseline_gmv_p90
    if low is None or high is None:
        return default
    return math.log(high / low) / (2.0 * Z90)


def reach(gmv: float, sigma: float, min_gmv: float) -> float:
    if sigma <= 0:
        return 1.0 if gmv >= min_gmv else 0.0
    return 0.5 * math.erfc(-math.log(gmv / min_gmv) / (sigma * math.sqrt(2.0)))


def _survival(probabilities: Sequence[float]) -> list[float] | None:
    """P(count ≥ k), k = 0 … n, by the sequential recursion; None when too many to do."""
    certain = sum(1 for p in probabilities if p >= 1.0 - TRUNCATE)
    middle = [p for p in probabilities if TRUNCATE < p < 1.0 - TRUNCATE]
    if len(middle) > DIRECT_LIMIT:
        return None
    pmf = np.zeros(len(middle) + 1)
    pmf[0] = 1.0
    for j, p in enumerate(middle, start=1):
        pmf[1 : j + 1] = pmf[1 : j + 1] * (1.0 - p) + pmf[:j] * p
        pmf[0] *= 1.0 - p
    tail = np.cumsum(pmf[::-1])[::-1]
    out = [1.0] * (certain + 1) + [float(v) for v in tail[1:]]
    return out + [0.0] * (len(probabilities) + 2 - len(out))


def confidence_counts(request: AllocationRequest, gmv: Sequence[float]) -> dict[str, int] | None:
    """achieved_at_confidence per tier, when the request plans at a confidence and some
    partner has a spread (else None: the deterministic counts apply)."""
    if request.options.confidence is None or not request.tiers:
        return None
    if not any(s > 0 for s in _sigmas(request)):
        return None
    outlook = request_outlook(request, np.asarray(gmv, dtype=np.float64))
    return {t.name: t.achieved_at_confidence for t in outlook.tiers}


def _sigmas(request: AllocationRequest) -> list[float]:
    default = request.options.uncertainty.default_sigma
    return [partner_sigma(p, default) for p in request.partners]


def uncertainty_violations(
    request: AllocationRequest, plan: Plan, gmv: Sequence[float]
) -> list[str]:
    """Every way the plan's `uncertainty` block or `p_reach` values misreport; `gmv` is
    each partner's exactly recomputed projected GMV (request order)."""
    sigmas = _sigmas(request)
    spread = any(s > 0 for s in sigmas) and bool(request.tiers)
    if not spread:
        if plan.uncertainty is not None:
            return ["uncertainty reported but no partner's forecast has a spread"]
        if any(a.p_reach is not None for a in plan.allocations):
            return ["p_reach reported but no partner's forecast has a spread"]
        return []
    if plan.uncertainty is None:
        return ["some partner's forecast has a spread but the plan has no uncertainty block"]
    problems = _allocation_problems(request, plan.allocations, gmv, sigmas)
    return problems + _tier_problems(request, plan, gmv, sigmas)


def _allocation_problems(
    request: AllocationRequest,
    allocations: list[Allocation],
    gmv: Sequence[float],
    sigmas: list[float],
) -> list[str]:
    index = {p.id: i for i, p in enumerate(request.partners)}
    lowest = min(request.tiers, key=lambda t: t.min_gmv)
    problems = []
    for allocation in allocations:
        i = index.get(allocation.partner_id)
        if i is None:
            continue  # the main checker reports unknown partners
        tier = request.tier(allocation.tier) if allocation.tier is not None else lowest
        expected = reach(gmv[i], sigmas[i], tier.min_gmv)
        got = allocation.p_reach
        if got is None or not abs(got - expected) <= PROBABILITY_TOL:
            problems.append(
                f"partner {allocation.partner_id!r}: p_reach {got!r}, exact {expected!r}"
            )
    return problems


def _tier_problems(
    request: AllocationRequest, plan: Plan, gmv: Sequence[float], sigmas: list[float]
) -> list[str]:
    report = plan.uncertainty
    assert report is not None
    spread = request.options.uncertainty
    confidence = request.options.confidence or DEFAULT_REPORT_CONFIDENCE
    problems = []
    expected_head = (confidence, spread.correlation, _method(request))
    if (report.confidence, report.correlation, report.method) != expected_head:
        problems.append(
            f"uncertainty (confidence, correlation, method) "
            f"{(report.confidence, report.correlation, report.method)}, expected {expected_head}"
        )
    reported = {t.name: t for t in report.tiers}
    if set(reported) != {t.name for t in request.tiers}:
        return [*problems, f"uncertainty tiers {sorted(reported)} are not the request's tiers"]
    recomputed = None
    for tier in request.tiers:
        figures = reported[tier.name]
        probabilities = [reach(g, s, tier.min_gmv) for g, s in zip(gmv, sigmas, strict=True)]
        expected = math.fsum(probabilities)
        if abs(figures.expected_achieved - expected) > 1e-9 * max(1.0, expected):
            problems.append(
                f"tier {tier.name!r}: expected_achieved {figures.expected_achieved!r}, "
                f"exact {expected!r}"
            )
        surv = _survival(probabilities) if report.method == "exact" else None
        if surv is None:
            recomputed = recomputed or {
                t.name: t for t in request_outlook(request, np.asarray(gmv)).tiers
            }
            again = recomputed[tier.name]
            # Recomputed GMV may differ from the plan's by an ulp: allow one draw's worth.
            slack = PROBABILITY_TOL if report.draws is None else 1.0 / report.draws
            if (
                abs(figures.p_target - again.p_target) > slack + PROBABILITY_TOL
                or abs(figures.achieved_at_confidence - again.achieved_at_confidence) > 1
                or abs(figures.std_error - again.std_error) > slack + PROBABILITY_TOL
            ):
                problems.append(
                    f"tier {tier.name!r}: p_target {figures.p_target!r} / "
                    f"achieved_at_confidence {figures.achieved_at_confidence} do not recompute "
                    f"({again.p_target!r} / {again.achieved_at_confidence})"
                )
            continue
        problems += _exact_problems(tier.name, tier.target, figures, surv, confidence)
    return problems


def _exact_problems(
    name: str, target: int, figures: TierUncertainty, surv: list[float], confidence: float
) -> list[str]:
    p_target = surv[min(max(target, 0), len(surv) - 1)]
    k = figures.achieved_at_confidence
    problems = []
    if abs(figures.p_target - p_target) > PROBABILITY_TOL:
        problems.append(f"tier {name!r}: p_target {figures.p_target!r}, exact {p_target!r}")
    holds = 0 <= k < len(surv) and surv[k] >= confidence - PROBABILITY_TOL
    next_fails = k + 1 >= len(surv) or surv[k + 1] < confidence + PROBABILITY_TOL
    if not (holds and next_fails):
        problems.append(
            f"tier {name!r}: achieved_at_confidence {k} is not the largest count "
            f"reached with probability ≥ {confidence}"
        )
    return problems


def _method(request: AllocationRequest) -> str:
    return "exact" if request.options.uncertainty.correlation == 0 else "monte_carlo"
