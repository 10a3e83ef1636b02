"""BENCHMARKS.md is written by several scripts: none may wipe another's section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.family_run import main
from bench.hard_targets import SECTION, write_section
from bench.run import write_report
from bench.sections import headings, replace_section


def test_hard_targets_section_survives_a_main_rewrite_and_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    write_report(out, "# Benchmarks\n\nmain table v1\n")
    write_section(out, f"{SECTION}\n\nhard table v1\n")
    first = out.read_text()
    assert first.index("main table v1") < first.index("hard table v1")
    write_report(out, "# Benchmarks\n\nmain table v2\n")
    write_section(out, f"{SECTION}\n\nhard table v2\n")
    text = out.read_text()
    assert "main table v2" in text and "hard table v2" in text
    assert "v1" not in text and text.count(SECTION) == 1


def test_a_section_is_appended_to_a_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "NEW.md"
    write_section(out, f"{SECTION}\n\nrows\n")
    assert f"{SECTION}\n\nrows\n" in out.read_text()


def test_text_outside_every_section_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "B.md"
    out.write_text("# Title\n\nhand-written notes\n")
    replace_section(out, "a", "alpha 1")
    replace_section(out, "b", "beta 1")
    replace_section(out, "a", "alpha 2")
    text = out.read_text()
    assert text.startswith("# Title\n\nhand-written notes\n")
    assert "alpha 2" in text and "alpha 1" not in text and "beta 1" in text
    assert text.index("alpha 2") < text.index("beta 1")


def test_a_family_run_reports_the_plan_it_solved(capsys: pytest.CaptureFixture[str]) -> None:
    line = main(["1", "50", "0.6", "10", "2", "--progress"])
    out = capsys.readouterr().out
    assert out.rstrip().endswith(line)
    assert "stage" in out, "progress events were printed"
    seconds, engine, status = line.split("  ")[:3]
    assert float(seconds.removesuffix(" s")) > 0
    assert engine in {"cbc", "highs", "decomposition", "cpsat"}
    assert status in {"optimal", "feasible", "time_limit"}
    assert "shortfall" in line and "GMV" in line and "cost" in line


def test_a_section_with_hand_written_text_inside_its_markers_is_not_overwritten(
    tmp_path: Path,
) -> None:
    out = tmp_path / "B.md"
    replace_section(out, "a", "## Alpha\n\ntable v1")
    text = out.read_text().replace("## Alpha", "### History written here\n\nnotes\n\n## Alpha")
    out.write_text(text)
    with pytest.raises(ValueError, match="History written here"):
        replace_section(out, "a", "## Alpha\n\ntable v2")
    assert out.read_text() == text  # nothing erased


def test_headings_in_code_blocks_are_not_sections() -> None:
    text = "## Title\n\n```\n# a comment in a command\n```\n\n#not-a-heading\n### Real\n"
    assert headings(text) == ["## Title", "### Real"]


@pytest.mark.parametrize("name", ["BENCHMARKS.md", "BENCHMARKS-1M.md"])
def test_every_generated_section_of_the_repository_holds_only_its_own_heading(
    name: str,
) -> None:
    """A history section added inside a generator's markers is erased by its next run."""
    text = (Path(__file__).resolve().parents[2] / name).read_text()
    sections = re.findall(r"<!-- (\S+):begin -->(.*?)<!-- \1:end -->", text, re.DOTALL)
    assert sections
    for section, body in sections:
        assert len(headings(body)) == 1, (section, headings(body))


def test_a_family_run_with_plans_reports_each_alternative(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["1", "200", "0.9", "10", "2", "--plans", "2", "--objective", "max_gmv"])
    out = capsys.readouterr().out
    assert "  alternative 1: feasible" in out
    assert "2 plans, 2 distinct sets of tier achievers" in out


def test_a_family_run_names_the_engine_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    line = main(["1", "50", "0.6", "4", "2", "--engine", "decomposition"])
    assert line.split("  ")[1] == "decomposition"
