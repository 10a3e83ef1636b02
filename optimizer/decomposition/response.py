"""What the partners answer to one set of prices (`subproblem.respond`, and
`menu_prices.answer` for package partners): level values and amounts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models.curves import FloatArray

IntArray = NDArray[np.intp]


@dataclass
class Reach:
    """Partners that must change their mix to reach a level: their amounts and q."""

    rows: IntArray
    amounts: FloatArray  # (len(rows), R): the Lagrangian maximiser at q (a subgradient)
    q: FloatArray


@dataclass
class Response:
    """Every partner's answer to one set of prices."""

    values: FloatArray  # (n, T+1) level values (upper bounds), -inf when unreachable
    x0: FloatArray  # (n, R) unconstrained (level-0) amounts
    reach: list[Reach | None] = field(default_factory=list)  # per level 1..T
