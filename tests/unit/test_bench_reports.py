"""BENCHMARKS.md is written by two scripts: neither may wipe the other's section."""

from __future__ import annotations

from pathlib import Path

from bench.hard_targets import SECTION, write_section
from bench.run import write_report


def test_hard_targets_section_survives_a_main_rewrite_and_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    write_report(out, "# Benchmarks\n\nmain table v1\n")
    write_section(out, f"{SECTION}\n\nhard table v1\n")
    assert out.read_text() == f"# Benchmarks\n\nmain table v1\n\n{SECTION}\n\nhard table v1\n"
    write_report(out, "# Benchmarks\n\nmain table v2\n")
    write_section(out, f"{SECTION}\n\nhard table v2\n")
    text = out.read_text()
    assert "main table v2" in text and "hard table v2" in text
    assert "v1" not in text and text.count(SECTION) == 1


def test_a_section_is_appended_to_a_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "NEW.md"
    write_section(out, f"{SECTION}\n\nrows\n")
    assert out.read_text() == f"{SECTION}\n\nrows\n"
