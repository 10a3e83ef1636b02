"""Alternative plans (`options.plans` > 1): each from a MILP whose no-good cuts ask,
against every earlier plan, for some partner on a tier that plan left it below.

The MILP engines add them after their best plan. The decomposition has no cuts of its
own, so a programme it certified alone came back with one plan however many were asked
for (family seed 101, 2,000 partners, `max_gmv`: one plan in 0.3 s of 30); such a plan
now seeds a CBC MILP that searches for the alternatives in the time left.
"""

from __future__ import annotations

from typing import Protocol

from optimizer.clock import Clock
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.scoring import Score


class AlternativeSearch(Protocol):
    """What the search needs of a MILP strategy (`optimizer.milp.MilpStrategy`)."""

    def score(self, cand: Candidate) -> Score: ...

    def run(
        self, exclude: list[set[tuple[int, int]]], clock: Clock, known: float | None = None
    ) -> EngineOutcome | None: ...


def add_alternatives(
    search: AlternativeSearch, outcome: EngineOutcome, wanted: int, clock: Clock
) -> None:
    """Append alternatives to `outcome.candidates` until there are `wanted` plans, the
    clock is out, or none is left outside the achiever sets of the plans before it."""
    for alternative in range(len(outcome.candidates) + 1, wanted + 1):
        if clock.out():
            return
        exclude = [search.score(c).achievers for c in outcome.candidates]
        more = search.run(exclude, clock)
        plan = more.candidates[0] if more is not None and more.candidates else None
        # (Its plan may have lost the claim its no-good cut counted: on whole steps, say.)
        if plan is None or search.score(plan).achievers in exclude:
            return
        plan.label = f"alternative {alternative - 1}"
        outcome.candidates.append(plan)
