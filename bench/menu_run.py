"""One family programme with package menus through `optimizer.solve`, for A/B timings
(BENCHMARKS.md, "Package menus in the decomposition"):

    python -m bench.menu_run SEED PARTNERS AMBITION LIMIT_S [--share S] [--engine E]

Builds `fixtures.families.family_programme(seed, partners, ambition)` (gap 0.1%), then
gives a seeded share `S` of its partners (default 0.3) a menu in place of their curves: up
to three packages at a quarter, half and all of each resource the partner may receive (on
the resource's step, at least its minimum ticket), each worth the partner's exact curve
uplift at those amounts. Prints the line of `bench.family_run.summary`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bench.family_run import programme_parser, summary
from fixtures.families import family_programme
from models.request import AllocationRequest, Options, Package, Partner
from optimizer import solve

FRACTIONS = (0.25, 0.5, 1.0)


def with_menus(request: AllocationRequest, share: float, seed: int) -> AllocationRequest:
    """`request` with a seeded `share` of its partners on menus priced from their curves."""
    rng = np.random.default_rng([seed, 20261205])
    chosen = rng.random(len(request.partners)) < share
    partners = [
        _on_menu(request, partner) if pick else partner
        for partner, pick in zip(request.partners, chosen, strict=True)
    ]
    return replace(request, partners=tuple(partners))


def _on_menu(request: AllocationRequest, partner: Partner) -> Partner:
    packages = []
    for k, fraction in enumerate(FRACTIONS):
        amounts: dict[str, float] = {}
        uplift = 0.0
        for name, curve in partner.curves.items():
            if not request.eligible(partner, name):
                continue
            low, high = request.amount_range(partner, name)
            if not math.isfinite(high) or high <= 0:
                continue
            step = request.resource(name).step or 0.0
            amount = fraction * high
            amount = math.floor(amount / step) * step if step > 0 else amount
            amount = max(amount, low)
            if amount <= 0 or amount > high:
                continue
            amounts[name] = amount
            uplift += float(curve.value(amount))
        if amounts and uplift > 0:
            packages.append(Package(f"menu{k}", amounts, uplift))
    if not packages:
        return partner
    return replace(partner, curves={}, bounds={}, packages=tuple(packages))


def main(argv: Sequence[str] | None = None) -> str:
    parser = programme_parser(__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.3)
    parser.add_argument("--engine", default="auto")
    args = parser.parse_args(argv)
    request = family_programme(
        args.seed, args.partners, args.ambition, time_limit_s=args.limit_s
    ).request()
    request = with_menus(request, args.share, args.seed)
    options: Options = replace(request.options, engine=args.engine)
    request = replace(request, options=options)
    started = time.perf_counter()
    plan = solve(request)[0]
    line = summary(plan, time.perf_counter() - started)
    print(line, flush=True)
    return line


if __name__ == "__main__":
    main()
