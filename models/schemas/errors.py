"""The error every bad input raises: `RequestValidationError`, messages nested by field path."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from models.request import DomainError


class RequestValidationError(DomainError):
    """Bad input, with every problem found.

    `messages` maps field paths to lists of messages, nested like the input
    (``{"resources": {"0": {"budget": ["must be >= 0"]}}}``); list indices are strings so
    the dict is plain JSON. CSV problems use one flat key per cell:
    ``"<file> row <n>, column <c>"`` (rows counted as a spreadsheet shows them: the header
    is row 1, so the first data row is row 2), ``"<file> column <c>"`` for a whole column
    and ``"<file>"`` for the file itself. `flat()` gives ``{"a.b.c": [messages]}``;
    ``str()`` lists every problem on its own line.
    """

    def __init__(
        self, messages: Mapping[str, Any] | Sequence[Any] | str, summary: str = "invalid input"
    ):
        if isinstance(messages, str) or not isinstance(messages, Mapping):
            messages = {"_schema": messages if isinstance(messages, list) else [messages]}
        self.messages: dict[str, Any] = _json_keys(messages)
        self.summary = summary
        super().__init__(str(self))

    def flat(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for path, message in _flatten(self.messages, ()):
            out.setdefault(path, []).append(message)
        return out

    def __str__(self) -> str:
        flat = self.flat()
        count = sum(len(messages) for messages in flat.values())
        lines = [f"{self.summary} ({count} problem{'s' if count != 1 else ''}):"]
        for path, messages in flat.items():
            lines.extend(f"  {path}: {message}" if path else f"  {message}" for message in messages)
        return "\n".join(lines)


def _json_keys(messages: Any) -> Any:
    if isinstance(messages, Mapping):
        return {str(key): _json_keys(value) for key, value in messages.items()}
    if isinstance(messages, list | tuple):
        return [_json_keys(item) for item in messages]
    return messages


def _flatten(messages: Any, path: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from _flatten(value, path if key == "_schema" else (*path, str(key)))
    elif isinstance(messages, list | tuple):
        for item in messages:
            yield from _flatten(item, path)
    else:
        yield ".".join(path), str(messages)
