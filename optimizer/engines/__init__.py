"""Solver backends behind one interface, and which of them this machine has."""

from __future__ import annotations

from optimizer.engines.base import MilpBackend
from optimizer.engines.cbc import CbcBackend
from optimizer.engines.cpsat import CpSatBackend
from optimizer.engines.highs import HighsBackend
from optimizer.errors import EngineUnavailable

MILP_BACKENDS: dict[str, MilpBackend] = {
    backend.name: backend for backend in (HighsBackend(), CbcBackend(), CpSatBackend())
}
DECOMPOSITION = "decomposition"


def milp_backend(name: str) -> MilpBackend:
    backend = MILP_BACKENDS.get(name)
    if backend is None:
        raise EngineUnavailable(f"unknown engine {name!r}; known: {', '.join(known_engines())}")
    if not backend.is_available():
        raise EngineUnavailable(f"engine {name!r} is not installed on this machine")
    return backend


def known_engines() -> list[str]:
    return ["auto", *MILP_BACKENDS, DECOMPOSITION]


def available_engines() -> list[str]:
    """Named engines usable here (not 'auto')."""
    names = [name for name, backend in MILP_BACKENDS.items() if backend.is_available()]
    # The decomposition needs nothing beyond numpy and scipy, so it is always here.
    return [*names, DECOMPOSITION]
