"""BENCHMARKS.md is written by several scripts; each owns one marked section of it.

A script replaces only the text between its own `<!-- name:begin -->` and
`<!-- name:end -->` markers (appending the section when the file has none yet), so a
rerun of one benchmark never erases the figures another one measured; it refuses when
headings written by hand have landed between its markers.
"""

from __future__ import annotations

import re
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_section(path: Path, name: str, body: str) -> None:
    """Write `body` as the section `name` of `path`, leaving every other section alone."""
    begin, end = markers(name)
    block = f"{begin}\n{body.strip(chr(10))}\n{end}\n"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end) + "\n?", re.DOTALL)
    found = pattern.search(text)
    if found:
        held = headings(found.group(0))
        if len(held) > 1:
            # Sections written by hand inside the markers would be erased: history added
            # above the generated table once put 767 lines of BENCHMARKS.md in its way.
            raise ValueError(
                f"{path}: the {name!r} section holds more than its own heading "
                f"({', '.join(held)}); move the rest outside {begin} ... {end} first"
            )
        text = pattern.sub(lambda _match: block, text, count=1)
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    path.write_text(text)


def headings(text: str) -> list[str]:
    """The Markdown heading lines of `text`, outside fenced code blocks."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            found.append(line)
    return found
