"""Test tiers by directory, so no test can forget its marker: everything under
tests/unit is `unit`, tests/integration `integration`, tests/e2e `e2e`. `unit` is the
quick loop, so a test in tests/unit that is marked `slow` is left out of it (`-m slow`
and a plain `bin/test` still run it).

    bin/test -m unit                  # the quick loop (no servers, under a minute)
    bin/test -m "not e2e and not slow"
"""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e")
_ROOT = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        _unique_nodeid(item)
        parts = item.path.relative_to(_ROOT).parts if item.path.is_relative_to(_ROOT) else ()
        tier = parts[0] if parts and parts[0] in TIERS else None
        if parts and parts[0] != "unit":
            # Under `-n 2 --dist loadgroup` (bin/test) the tests that start servers, workers
            # and browsers share one xdist worker, so they never compete with each other for
            # the two cores; the unit tests fill the other worker.
            item.add_marker(pytest.mark.xdist_group("services"))
        if tier == "unit" and item.get_closest_marker("slow") is not None:
            continue
        if tier is not None:
            item.add_marker(tier)


def _unique_nodeid(item: pytest.Item) -> None:
    """Schemathesis gives every operation's test the same node id (its `name` carries the
    operation); xdist's group scheduler keys work by node id, so all but one would vanish."""
    head, _, last = item.nodeid.rpartition("::")
    if not (head and last != item.name and item.name.startswith(last + "[")):
        return
    unique = f"{head}::{item.name}"
    try:  # pytest >= 9 keeps a structured id
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(unique)  # type: ignore[attr-defined]
    except ImportError:
        item._nodeid = unique
