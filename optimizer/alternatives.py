"""Alternative plans (`options.plans` > 1): each from a MILP whose no-good cuts ask,
against every earlier plan, for some partner on a tier that plan left it below.

The MILP engines add them after their best plan. The decomposition has no cuts of its
own, so a programme it certified alone came back with one plan however many were asked
for (family seed 101, 2,000 partners, `max_gmv`: one plan in 0.3 s of 30); such a plan
now seeds a CBC MILP that searches for the alternatives in the time left.

While they are searched for, a job's progress still shows the best plan's figures (its
objective, bound, gap and shortfall): the search's own rounds report an alternative's,
and stored on the job they read as the best plan's (family seed 1, 600 partners,
`max_gmv`: a best plan at 0.099% showed as its first alternative's lower GMV at 0.020%).
Their messages are passed on, marked with the alternative's number.
"""

from __future__ import annotations

from typing import Protocol

from models.request import AllocationRequest, Objective
from optimizer.clock import Clock
from optimizer.outcome import Candidate, EngineOutcome
from optimizer.progress import Progress, ProgressEvent
from optimizer.scoring import Score

STAGE = "alternatives"


class AlternativeSearch(Protocol):
    """What the search needs of a MILP strategy (`optimizer.milp.MilpStrategy`)."""

    request: AllocationRequest
    progress: Progress

    def score(self, cand: Candidate) -> Score: ...

    def run(
        self, exclude: list[set[tuple[int, int]]], clock: Clock, known: float | None = None
    ) -> EngineOutcome | None: ...


def more_wanted(outcome: EngineOutcome, wanted: int, left_s: float) -> bool:
    """Does `outcome` hold a plan to start from, fewer than the `wanted` plans, with time
    left to search for the rest?"""
    return bool(outcome.candidates) and len(outcome.candidates) < wanted and left_s > 0


def add_alternatives(
    search: AlternativeSearch, outcome: EngineOutcome, wanted: int, clock: Clock
) -> None:
    """Append alternatives to `outcome.candidates` until there are `wanted` plans, the
    clock is out, or none is left outside the achiever sets of the plans before it."""
    if len(outcome.candidates) >= wanted:
        return
    scores = [search.score(c) for c in outcome.candidates]  # each plan scored once
    achievers = [score.achievers for score in scores]
    report, objective = search.progress, search.request.objective
    try:
        for alternative in range(len(outcome.candidates) + 1, wanted + 1):
            if clock.out():
                return
            search.progress = _marked(report, outcome, scores[0], objective, alternative - 1)
            more = search.run(list(achievers), clock)
            plan = more.candidates[0] if more is not None and more.candidates else None
            if plan is None:
                return
            found = search.score(plan).achievers
            # (Its plan may have lost the claim its no-good cut counted: on whole steps.)
            if found in achievers:
                return
            plan.label = f"alternative {alternative - 1}"
            outcome.candidates.append(plan)
            achievers.append(found)
    finally:
        search.progress = report


def _marked(
    report: Progress, outcome: EngineOutcome, best: Score, objective: Objective, number: int
) -> Progress:
    """`report` for alternative `number`'s search: its messages, the best plan's figures
    (`best`, its score)."""

    def forward(event: ProgressEvent) -> None:
        report(
            ProgressEvent(
                f"alternative {number}: {event.message}",
                elapsed_s=event.elapsed_s,
                stage=STAGE,
                best_objective=best.final(objective),
                best_bound=outcome.best_bound,
                gap=outcome.mip_gap,
                shortfall=best.shortfall,
                shortfall_proven=outcome.shortfall_proven,
            )
        )

    return forward
