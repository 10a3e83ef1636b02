"""What a running solve tells its caller, and the clock it measures itself by.

Every engine reports through one `Progress` callback taking a `ProgressEvent`, so the job
runner, the CLI and the web page read the same figures: the best exact plan so far, the
bound, the certified gap and the elapsed time. `str(event)` is the human line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """One report from a running solve. Figures are None until the engine has them."""

    message: str
    elapsed_s: float | None = None
    stage: str | None = None
    best_objective: float | None = None
    best_bound: float | None = None
    gap: float | None = None
    shortfall: float | None = None
    shortfall_proven: bool | None = None

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The non-empty fields, for storing on a job."""
        return {key: value for key, value in asdict(self).items() if value is not None}


Progress = Callable[[ProgressEvent], object]


def timed_from(started: float, progress: Progress | None) -> Progress | None:
    """`progress` with every event's `elapsed_s` measured from `started` (a
    `time.perf_counter()` reading). Engines and their phases each keep a clock of their
    own, so without it a job's elapsed time lagged and jumped back at every handover (on
    `pilot`: the MILP's rounds reported 1.2 and 1.8 s at 2.3 and 3.0 s into the solve)."""
    if progress is None:
        return None
    report = progress

    def timed(event: ProgressEvent) -> object:
        return report(replace(event, elapsed_s=time.perf_counter() - started))

    return timed
