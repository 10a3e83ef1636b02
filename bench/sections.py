"""BENCHMARKS.md is written by several scripts; each owns one marked section of it.

A script replaces only the text between its own `<!-- name:begin -->` and
`<!-- name:end -->` markers (appending the section when the file has none yet), so a
rerun of one benchmark never erases the figures another one measured.
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
    if pattern.search(text):
        text = pattern.sub(lambda _match: block, text, count=1)
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    path.write_text(text)
