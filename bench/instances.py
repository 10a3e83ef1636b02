"""Benchmark instances: the bundled programme fixture and generated larger ones.

Size n uses the bundled 5,000-partner CSV when it exists (n = 5000), otherwise
`fixtures.generate.generate_partners(n, seed)`; the scenario is the bundled programme
scenario with budgets and tier targets scaled by n / 5000, so every size is the same
programme, only bigger.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

from models.csvio import read_partners_csv
from models.request import AllocationRequest
from models.schemas import parse_request

DATA = Path(__file__).resolve().parent.parent / "fixtures" / "data"
SCENARIO = DATA / "programme.scenario.json"
PARTNERS = DATA / "programme.csv"
REFERENCE_SIZE = 5000
DEFAULT_SEED = 7


def scenario(n: int) -> dict[str, Any]:
    """The programme scenario scaled to n partners (budgets and targets ∝ n)."""
    data: dict[str, Any] = json.loads(SCENARIO.read_text())
    if n == REFERENCE_SIZE:
        return data
    factor = n / REFERENCE_SIZE
    data = copy.deepcopy(data)
    for resource in data["resources"]:
        if resource.get("budget") is not None:
            resource["budget"] = float(round(resource["budget"] * factor))
    for tier in data["tiers"]:
        tier["target"] = max(1, round(tier["target"] * factor))
    data["name"] = f"{data.get('name', 'programme')} scaled to {n:,} partners"
    return data


def load(n: int, seed: int = DEFAULT_SEED) -> AllocationRequest:
    if n == REFERENCE_SIZE and PARTNERS.exists():
        partners = read_partners_csv(PARTNERS)
    else:
        from fixtures.generate import generate_partners, write_partners_csv

        buffer = io.StringIO()
        write_partners_csv(generate_partners(n, seed), buffer)
        buffer.seek(0)
        partners = read_partners_csv(buffer, label=f"generated-{n}.csv")
    return parse_request(scenario(n), partners=partners)
