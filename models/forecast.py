"""The request's forecast spread (docs/uncertainty.md) as arrays, and a plan's outlook from its GMV.

Glue between `models.request` and the pure math of `models.uncertainty`: σ per partner,
the shock group of each partner, and the tier outlook of projected GMVs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from models.request import AllocationRequest, Tier
from models.uncertainty import (
    DEFAULT_REPORT_CONFIDENCE,
    FloatArray,
    Outlook,
    TierSpec,
    outlook,
    sigma,
)


def partner_sigmas(request: AllocationRequest) -> FloatArray:
    partners = request.partners
    return sigma(
        [p.baseline_gmv for p in partners],
        [p.baseline_gmv_p10 for p in partners],
        [p.baseline_gmv_p90 for p in partners],
        request.options.uncertainty.default_sigma,
    )


def shock_groups(request: AllocationRequest) -> NDArray[np.intp] | None:
    """Partner i's shock group (0 … g−1) by `group_by`; None: one group for everyone.

    Partners lacking the attribute share one group of their own.
    """
    attribute = request.options.uncertainty.group_by
    if attribute is None:
        return None
    labels = [repr(p.attributes.get(attribute)) for p in request.partners]
    _, groups = np.unique(np.array(labels, dtype=object), return_inverse=True)
    return np.asarray(groups, dtype=np.intp)


def reporting_confidence(request: AllocationRequest) -> float:
    confidence = request.options.confidence
    return DEFAULT_REPORT_CONFIDENCE if confidence is None else confidence


def tier_specs(tiers: Sequence[Tier]) -> list[TierSpec]:
    return [TierSpec(tier.name, tier.min_gmv, tier.target) for tier in tiers]


def request_outlook(
    request: AllocationRequest,
    gmv: FloatArray,
    sigmas: FloatArray | None = None,
    tiers: Sequence[Tier] | None = None,
) -> Outlook:
    """Every tier's figures (in `tiers` order, default lowest threshold first) for `gmv`."""
    if sigmas is None:
        sigmas = partner_sigmas(request)
    spread = request.options.uncertainty
    return outlook(
        gmv,
        sigmas,
        tier_specs(request.sorted_tiers() if tiers is None else tiers),
        confidence=reporting_confidence(request),
        correlation=spread.correlation,
        groups=shock_groups(request),
        draws=spread.draws,
        seed=request.options.seed,
    )
