"""The Markdown result table and the per-engine summary lines."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.orlib.runner import RunResult

HEADER = (
    "| instance | n | m | best known | ours | gap to best known | proven optimal? "
    "| engine | seconds | check |"
)
RULE = "|---|---:|---:|---:|---:|---:|---|---|---:|---|"


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value == round(value) else f"{value:.2f}"


def table_row(result: RunResult) -> str:
    gap = "—" if result.gap is None else f"{100 * result.gap:+.3f}%"
    known = _number(result.best_known) + (" (opt)" if result.known_optimal else "")
    if result.error:
        proven, check = "error", result.error.replace("|", "/")[:120]
    else:
        if result.proven:
            proven = "yes"
        elif result.certified:
            # Happens when the solver's bound exceeds the value by float noise only.
            proven = f"bound = value, but status {result.status}"
        else:
            proven = f"no ({result.status}" + (
                f", gap {100 * result.mip_gap:.3f}%)" if result.mip_gap is not None else ")"
            )
        check = "ok" if not result.violations else "; ".join(result.violations)[:120]
    return (
        f"| {result.instance} | {result.n} | {result.m} | {known} | {_number(result.ours)} "
        f"| {gap} | {proven} | {result.engine} | {result.seconds:.2f} | {check} |"
    )


def summary(results: Sequence[RunResult]) -> list[str]:
    lines = []
    for engine in sorted({r.engine for r in results}):
        rows = [r for r in results if r.engine == engine]
        seconds = [r.seconds for r in rows]
        lines.append(
            f"- {engine}: {len(rows)} instances; matched or beat best known "
            f"{sum(r.matched for r in rows)}; reported optimal {sum(r.proven for r in rows)}; "
            f"bound = value {sum(r.certified for r in rows)}; "
            f"check failures {sum(bool(r.violations) for r in rows)}; errors "
            f"{sum(r.error is not None for r in rows)}; seconds median "
            f"{statistics.median(seconds):.2f}, max {max(seconds):.2f}, total {sum(seconds):.1f}"
        )
    return lines
