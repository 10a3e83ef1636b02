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
        parts = item.path.relative_to(_ROOT).parts if item.path.is_relative_to(_ROOT) else ()
        tier = parts[0] if parts and parts[0] in TIERS else None
        if tier == "unit" and item.get_closest_marker("slow") is not None:
            continue
        if tier is not None:
            item.add_marker(tier)
