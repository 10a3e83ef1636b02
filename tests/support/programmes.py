"""Seeded generated programmes (`fixtures.generate`) with the bundled programme's resources,
small enough for the MILP to prove optimality in a second or two."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

from fixtures.generate import generate_partners, write_partners_csv
from models.csvio import read_partners_csv
from models.request import AllocationRequest
from models.schemas import parse_request

GENERATED = 1500


def generated_request(
    n: int,
    seed: int,
    *,
    budgets: tuple[float, float, float] = (30e6, 4e9, 40e6),
    targets: tuple[int, int] = (6, 20),
    max_share: float = 0.3,
    time_limit_s: float = 10.0,
    **options: Any,
) -> AllocationRequest:
    """The first `n` of 1,500 generated partners (seed `seed`) with a baseline between
    ¥40M and ¥1.2B, under subsidy, traffic and fund budgets, with
    1B and 100M targets, a `max_share` on subsidy and the fund's eligibility rule."""
    frame = generate_partners(GENERATED, seed)
    # The partners within reach of a tier: most generated ones are far below ¥100M.
    near = frame[(frame["baseline_gmv"] >= 4e7) & (frame["baseline_gmv"] <= 1.2e9)]
    buffer = io.StringIO()
    write_partners_csv(near.head(n), buffer)
    buffer.seek(0)
    partners = read_partners_csv(buffer, label=f"generated-{n}-{seed}.csv")
    subsidy, traffic, fund = budgets
    scenario = {
        "name": f"generated {n} partners, seed {seed}",
        "resources": [
            {"name": "subsidy", "unit": "CNY", "budget": subsidy},
            {"name": "traffic", "unit": "impressions", "budget": traffic, "unit_cost": 0.02,
             "step": 1e6},
            {"name": "fund", "unit": "CNY", "budget": fund, "step": 1e6},
        ],
        "tiers": [
            {"name": "1B", "min_gmv": 1e9, "target": targets[0]},
            {"name": "100M", "min_gmv": 1e8, "target": targets[1]},
        ],
        "constraints": [
            {"type": "max_share", "resource": "subsidy", "max_share": max_share},
            {"type": "eligibility", "resource": "fund", "where": {"supply_chain": {">=": 40}}},
        ],
        "options": {"time_limit_s": time_limit_s, "mip_gap": 1e-3, **options},
    }  # fmt: skip
    request = parse_request(scenario, partners=partners)
    return replace(request, name=scenario["name"])
