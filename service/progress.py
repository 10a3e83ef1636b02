"""Progress as the service passes it on: always an `optimizer.progress.ProgressEvent`.

Engines are moving from plain-string reports to `ProgressEvent`; until every emitter has,
a string is taken as an event with only a message.
"""

from __future__ import annotations

from dataclasses import replace

from optimizer.progress import Progress, ProgressEvent


def as_event(report: ProgressEvent | str) -> ProgressEvent:
    """The event a solver reported; a plain string becomes an event with that message."""
    return report if isinstance(report, ProgressEvent) else ProgressEvent(message=str(report))


def prefixed(progress: Progress | None, name: str) -> Progress | None:
    """`progress`, with every message tagged `[name] ...` (one scenario of a comparison)."""
    if progress is None:
        return None
    sink = progress

    def report(event: ProgressEvent | str) -> object:
        event = as_event(event)
        return sink(replace(event, message=f"[{name}] {event.message}"))

    return report
