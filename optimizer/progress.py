"""What a running solve tells its caller, and the clock it measures itself by.

Every engine reports through one `Progress` callback taking a `ProgressEvent`, so the job
runner, the CLI and the web page read the same figures: the best exact plan so far, the
bound, the certified gap and the elapsed time. `str(event)` is the human line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
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
