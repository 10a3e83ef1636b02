"""The `windmaker` command line, end to end through the real service functions and solver.

Requests are small (a handful of partners) so every solve takes well under a second.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result

from cli.main import main

RESOURCES = [{"name": "subsidy", "unit": "CNY", "budget": 40_000_000}]
TIERS = [{"name": "100M", "min_gmv": 100_000_000, "target": 2}]
PARTNERS_CSV = """\
partner_id,name,baseline_gmv,region,subsidy_curve,subsidy_max_uplift,subsidy_scale,subsidy_roi
p1,Alpha Live,95000000,north,saturating,30000000,10000000,
p2,Beta Live,85000000,south,saturating,30000000,10000000,
p3,Gamma Live,20000000,north,linear,,,1.0
"""
PLAN_COLUMNS = [
    "partner_id",
    "name",
    "subsidy",
    "baseline_gmv",
    "tier_before",
    "projected_gmv",
    "tier",
    "incremental_gmv",
]


def scenario(**extra: Any) -> dict[str, Any]:
    return {
        "name": "three partners",
        "resources": RESOURCES,
        "tiers": TIERS,
        "options": {"time_limit_s": 20},
        **extra,
    }


def inline_partners() -> list[dict[str, Any]]:
    saturating = {"curve": "saturating", "max_uplift": 30_000_000, "scale": 10_000_000}
    return [
        {"id": "p1", "baseline_gmv": 95_000_000, "response": {"subsidy": saturating}},
        {"id": "p2", "baseline_gmv": 85_000_000, "response": {"subsidy": saturating}},
        {
            "id": "p3",
            "baseline_gmv": 20_000_000,
            "response": {"subsidy": {"curve": "linear", "roi": 1.0}},
        },
    ]


def write_json(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "partners.csv").write_text(PARTNERS_CSV, encoding="utf-8")
    return {
        "partners": str(tmp_path / "partners.csv"),
        "scenario": write_json(tmp_path / "scenario.json", scenario()),
        "request": write_json(tmp_path / "request.json", scenario(partners=inline_partners())),
    }


# --- solve -----------------------------------------------------------------------------


def test_solve_from_partners_csv_and_scenario_writes_the_plan_csv(
    files: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "plan.csv"
    result = run("solve", files["partners"], "--scenario", files["scenario"], "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    assert list(rows[0]) == [*PLAN_COLUMNS, "region"]
    assert sum(float(row["subsidy"]) for row in rows) <= 40_000_000 * (1 + 1e-9)
    assert sorted(row["partner_id"] for row in rows if row["tier"] == "100M") == ["p1", "p2"]
    for row in rows:
        gain = float(row["projected_gmv"]) - float(row["baseline_gmv"])
        assert float(row["incremental_gmv"]) == pytest.approx(gain)
    # The readable summary: tiers against targets, spend with utilization, solver figures.
    assert "100M" in result.stdout and "achieved" in result.stdout
    assert "¥40M" in result.stdout and "100.00%" in result.stdout
    assert "status optimal" in result.stdout
    assert "TARGETS NOT MET" not in result.stdout
    assert "solving" in result.stderr  # progress goes to stderr


def test_solve_writes_whole_unit_plans_for_every_partner_and_a_workbook(
    files: dict[str, str], tmp_path: Path
) -> None:
    out, book_path = tmp_path / "plan.csv", tmp_path / "books" / "plan.xlsx"
    partners = tmp_path / "with_p4.csv"  # p4 has no curve: the plan cannot fund it
    partners.write_text(PARTNERS_CSV + "p4,Delta Live,5000000,south,,,,\n", encoding="utf-8")
    result = run(
        "solve",
        str(partners),
        "--scenario",
        files["scenario"],
        "--out",
        str(out),
        "--xlsx",
        str(book_path),
        "--all-partners",
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {book_path}" in result.stdout
    rows = read_csv(out)
    assert [row["partner_id"] for row in rows] == ["p1", "p2", "p3", "p4"]
    assert rows[3]["subsidy"] == "0" and rows[3]["projected_gmv"] == "5000000"
    assert rows[3]["tier"] == "" and rows[3]["name"] == "Delta Live"
    assert all(row["subsidy"].isdigit() for row in rows)  # whole yuan, no float noise
    assert [row["tier_before"] for row in rows] == ["", "", "", ""]
    book = openpyxl.load_workbook(book_path)
    assert book.sheetnames == ["Summary", "Plan", "Tiers", "Binding"]
    sheet = list(book["Plan"].iter_rows(values_only=True))
    assert [row[0] for row in sheet[1:]] == ["p1", "p2", "p3", "p4"]
    assert [row[2] for row in sheet[1:]] == [int(row["subsidy"]) for row in rows]


def test_compare_writes_a_workbook(files: dict[str, str], tmp_path: Path) -> None:
    changes = write_json(
        tmp_path / "changes.json", [{"name": "half", "changes": {"budgets": {"subsidy": "x0.5"}}}]
    )
    book_path = tmp_path / "comparison.xlsx"
    result = run(
        "compare", "--request", files["request"], "--changes", changes, "--xlsx", str(book_path)
    )
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(book_path)
    assert book.sheetnames == ["Summary", "Differences", "Plan base", "Plan half"]
    names = [row[0] for row in book["Summary"].iter_rows(min_row=2, values_only=True)]
    assert names == ["base", "half"]


def test_output_folders_are_created_and_an_unwritable_path_is_a_clear_error(
    files: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "new" / "deeper" / "plan.csv"
    result = run("solve", files["partners"], "--scenario", files["scenario"], "--out", str(out))
    assert result.exit_code == 0, result.output
    assert read_csv(out)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    bad = blocker / "plan.csv"
    result = run("solve", files["partners"], "--scenario", files["scenario"], "--out", str(bad))
    assert result.exit_code == 1
    assert "cannot write" in result.output and "Traceback" not in result.output


def test_solve_from_request_writes_the_api_plan_list_as_json(
    files: dict[str, str], tmp_path: Path
) -> None:
    out, as_json = tmp_path / "plan.csv", tmp_path / "plans.json"
    result = run(
        "solve",
        "--request",
        files["request"],
        "--out",
        str(out),
        "--json",
        str(as_json),
        "--plans",
        "2",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    plans = json.loads(as_json.read_text(encoding="utf-8"))
    assert isinstance(plans, list) and 1 <= len(plans) <= 2
    assert [plan["rank"] for plan in plans] == list(range(1, len(plans) + 1))
    best = plans[0]
    assert set(best) >= {
        "rank",
        "label",
        "objective",
        "tiers",
        "resources",
        "solver",
        "allocations",
    }
    assert best["tiers"][0] == {
        "name": "100M",
        "min_gmv": 100_000_000,
        "target": 2,
        "achieved": 2,
        "shortfall": 0,
    }
    assert best["solver"]["status"] in ("optimal", "feasible")
    csv_ids = {row["partner_id"] for row in read_csv(out)}
    assert csv_ids == {a["partner_id"] for a in best["allocations"]}
    if len(plans) == 2:  # alternatives are written next to the best plan
        assert (tmp_path / "plan.rank2.csv").exists()
        assert "Alternatives" in result.stdout


def test_overrides_reach_the_request(files: dict[str, str], tmp_path: Path) -> None:
    as_json = tmp_path / "plans.json"
    result = run(
        "solve", "--request", files["request"], "--engine", "no-such-engine", "--json", str(as_json)
    )
    assert result.exit_code == 1
    assert "no-such-engine" in result.output
    assert not as_json.exists()


def test_packages_csv_puts_a_package_column_in_the_plan(tmp_path: Path) -> None:
    (tmp_path / "partners.csv").write_text(
        "partner_id,baseline_gmv\nq1,90000000\nq2,60000000\n", encoding="utf-8"
    )
    (tmp_path / "packages.csv").write_text(
        "partner_id,package,subsidy,uplift\n"
        "q1,small,5000000,12000000\nq1,large,25000000,30000000\n"
        "q2,large,20000000,45000000\n",
        encoding="utf-8",
    )
    scenario_path = write_json(tmp_path / "s.json", scenario())
    out = tmp_path / "plan.csv"
    result = run(
        "solve",
        str(tmp_path / "partners.csv"),
        "--scenario",
        scenario_path,
        "--packages",
        str(tmp_path / "packages.csv"),
        "--out",
        str(out),
        "-q",
    )
    assert result.exit_code == 0, result.output
    rows = {row["partner_id"]: row for row in read_csv(out)}
    assert "package" in next(iter(rows.values()))
    # Both reach 100M within the 40M budget only with q1 small (5M) and q2 large (20M).
    assert rows["q1"]["package"] == "small" and rows["q2"]["package"] == "large"


def test_a_shortfall_plan_exits_zero_and_says_so_loudly(tmp_path: Path) -> None:
    request = scenario(
        partners=inline_partners(), tiers=[{"name": "100M", "min_gmv": 100_000_000, "target": 3}]
    )
    out = tmp_path / "plan.csv"
    result = run(
        "solve", "--request", write_json(tmp_path / "r.json", request), "--out", str(out), "-q"
    )
    assert result.exit_code == 0
    assert "TARGETS NOT MET" in result.stdout and "100M 2/3 (1 short)" in result.stdout
    assert out.exists()


def test_an_infeasible_request_exits_zero_and_says_so_loudly(tmp_path: Path) -> None:
    # p3 cannot reach 100M with the whole budget, yet a hard constraint demands it.
    unreachable = [{"type": "group_count", "tier": "100M", "where": {"id": "p3"}, "min": 1}]
    request = scenario(partners=inline_partners(), constraints=unreachable)
    as_json = tmp_path / "plans.json"
    result = run(
        "solve", "--request", write_json(tmp_path / "r.json", request), "--json", str(as_json), "-q"
    )
    assert result.exit_code == 0
    assert "INFEASIBLE" in result.stdout
    assert json.loads(as_json.read_text(encoding="utf-8"))[0]["solver"]["status"] == "infeasible"


# --- bad input -------------------------------------------------------------------------


def assert_clean_failure(result: Result, *expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output


def test_spread_forecasts_add_p_reach_and_a_line_per_tier(tmp_path: Path) -> None:
    banded = PARTNERS_CSV.replace(
        "partner_id,name,baseline_gmv,",
        "partner_id,name,baseline_gmv,baseline_gmv_p10,baseline_gmv_p90,",
    )
    rows = banded.splitlines()
    rows[1:] = [
        row.replace(f",{base},", f",{base},{int(base) * 4 // 5},{int(base) * 5 // 4},", 1)
        for row, base in zip(rows[1:], ("95000000", "85000000", "20000000"), strict=True)
    ]
    (tmp_path / "banded.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = write_json(tmp_path / "s.json", scenario(options={"confidence": 0.8}))
    out = tmp_path / "plan.csv"
    result = run("solve", str(tmp_path / "banded.csv"), "--scenario", spec, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert list(read_csv(out)[0]) == [*PLAN_COLUMNS, "p_reach", "region"]
    assert "P(≥ target)" in result.stdout and "at 80%:" in result.stdout


def test_a_bad_confidence_is_named(files: dict[str, str], tmp_path: Path) -> None:
    spec = write_json(tmp_path / "s.json", scenario(options={"confidence": 0.2}))
    result = run("solve", files["partners"], "--scenario", spec, "--out", str(tmp_path / "p.csv"))
    assert result.exit_code == 1
    assert "options.confidence" in result.output


def test_a_bad_csv_cell_is_named_by_row_and_column(files: dict[str, str], tmp_path: Path) -> None:
    bad = PARTNERS_CSV.replace("85000000", "lots")  # p2 is on spreadsheet row 3
    (tmp_path / "bad.csv").write_text(bad, encoding="utf-8")
    result = run("solve", str(tmp_path / "bad.csv"), "--scenario", files["scenario"])
    assert_clean_failure(result, "bad.csv row 3, column baseline_gmv")


def test_a_bad_scenario_field_is_named(files: dict[str, str], tmp_path: Path) -> None:
    bad = scenario(resources=[{"name": "subsidy", "budget": -5}])
    result = run("solve", files["partners"], "--scenario", write_json(tmp_path / "s.json", bad))
    assert_clean_failure(result, "resources.0.budget")


def test_invalid_json_names_line_and_column(files: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"name": "x",\n  "resources": [}', encoding="utf-8")
    result = run("solve", "--request", str(tmp_path / "broken.json"))
    assert_clean_failure(result, "broken.json", "line 2")


def test_an_unknown_fixture_is_named(files: dict[str, str]) -> None:
    result = run("solve", "--request", files["request"].replace("request", "nothing"))
    assert result.exit_code == 2  # click: the file does not exist
    result = run("solve", "--fixture", "no_such_fixture")
    assert_clean_failure(result, "no_such_fixture")


def test_sources_must_be_exactly_one(files: dict[str, str]) -> None:
    result = run("solve", files["partners"], "--request", files["request"])
    assert result.exit_code == 2 and "exactly one" in result.output
    result = run("solve", files["partners"])
    assert result.exit_code == 2 and "--scenario" in result.output


# --- batch and compare -----------------------------------------------------------------


def test_batch_prints_one_table_and_writes_the_summary_csv(
    files: dict[str, str], tmp_path: Path
) -> None:
    short = write_json(
        tmp_path / "short.json",
        scenario(partners=inline_partners(), tiers=[{"name": "100M", "min_gmv": 1e8, "target": 3}]),
    )
    summary = tmp_path / "summary.csv"
    result = run("batch", "--request", files["request"], "--request", short, "--csv", str(summary))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "scenario" in line and "status" in line)
    assert "100M" in header and "shortfall" in header and "spend subsidy" in header
    assert any("request.json" in line and "2/2" in line for line in lines)
    assert any("short.json" in line and "2/3" in line for line in lines)
    assert "TARGETS NOT MET in 1 run(s)" in result.stdout
    rows = {row["scenario"]: row for row in read_csv(summary)}
    assert rows["request.json"]["100M_achieved"] == "2"
    assert float(rows["short.json"]["weighted_shortfall"]) == 1.0
    assert float(rows["request.json"]["spend_subsidy"]) == pytest.approx(4e7)


def test_the_batch_summary_csv_is_formula_safe(files: dict[str, str], tmp_path: Path) -> None:
    hostile = tmp_path / "=HYPERLINK(1).json"
    hostile.write_text(Path(files["request"]).read_text(encoding="utf-8"), encoding="utf-8")
    summary = tmp_path / "summary.csv"
    result = run("batch", "--request", str(hostile), "--csv", str(summary))
    assert result.exit_code == 0, result.output
    (row,) = read_csv(summary)
    assert row["scenario"] == "'=HYPERLINK(1).json"
    assert row["100M_achieved"] == "2"


def test_batch_keeps_going_past_a_bad_run_and_fails_at_the_end(
    files: dict[str, str], tmp_path: Path
) -> None:
    bad = write_json(
        tmp_path / "bad.json",
        scenario(partners=inline_partners(), tiers=[{"name": "100M", "min_gmv": 1e8}]),
    )
    result = run("batch", "--request", bad, "--request", files["request"])
    assert result.exit_code == 1
    assert "1 of 2 runs failed" in result.output and "tiers.0.target" in result.output
    assert any("request.json" in line and "2/2" in line for line in result.stdout.splitlines())


def test_batch_needs_a_fixture_for_partnerless_scenarios(files: dict[str, str]) -> None:
    result = run("batch", "--scenario", files["scenario"])
    assert result.exit_code == 2 and "--fixture" in result.output


def test_compare_puts_kpis_side_by_side_and_lists_differences(
    files: dict[str, str], tmp_path: Path
) -> None:
    changes = write_json(
        tmp_path / "changes.json",
        [
            {"name": "half budget", "changes": {"budgets": {"subsidy": "x0.5"}}},
        ],
    )
    as_json = tmp_path / "comparison.json"
    result = run(
        "compare", "--request", files["request"], "--changes", changes, "--json", str(as_json), "-q"
    )
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert header.index("base") < header.index("half budget")
    assert "100M achieved" in result.stdout and "spend subsidy" in result.stdout
    assert "half budget vs base" in result.stdout
    comparison = json.loads(as_json.read_text(encoding="utf-8"))
    base, half = comparison["scenarios"]
    assert base["kpis"]["spend"]["subsidy"] == pytest.approx(4e7)
    assert half["kpis"]["spend"]["subsidy"] <= 2e7 * (1 + 1e-9)
    assert half["kpis"]["achieved"]["100M"] <= base["kpis"]["achieved"]["100M"]
    (difference,) = comparison["differences"]
    assert difference["scenario"] == "half budget" and difference["partners_changed"] > 0


def test_compare_checks_every_scenario_before_solving(
    files: dict[str, str], tmp_path: Path
) -> None:
    changes = write_json(
        tmp_path / "changes.json",
        [
            {"name": "typo", "changes": {"budgets": {"subsidyy": 1e7}}},
            {"name": "more", "changes": {"budgets": {"subsidy": "x2"}}},
        ],
    )
    result = run(
        "compare", files["partners"], "--scenario", files["scenario"], "--changes", changes
    )
    assert_clean_failure(result, "changes.json", "typo", "subsidyy")
    assert "solving" not in result.stderr and "more vs base" not in result.stdout


# --- the installed console script ------------------------------------------------------


def test_the_console_script_solves_a_request(files: dict[str, str], tmp_path: Path) -> None:
    script = shutil.which("windmaker") or str(Path(sys.executable).parent / "windmaker")
    if not os.path.exists(script):
        pytest.skip("the windmaker console script is not installed (pip install -e .)")
    out = tmp_path / "plan.csv"
    completed = subprocess.run(
        [script, "solve", "--request", files["request"], "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Plan 1 of" in completed.stdout and "solving" in completed.stderr
    assert list(read_csv(out)[0]) == PLAN_COLUMNS
    failed = subprocess.run(
        [script, "solve", "--fixture", "no_such_fixture"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 1 and "Traceback" not in failed.stderr


# --- bundled fixtures ------------------------------------------------------------------


def test_fixtures_lists_every_bundled_fixture() -> None:
    import fixtures

    result = run("fixtures")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    for info in fixtures.list_fixtures():
        line = next(line for line in lines if line.split()[0] == info.name)
        assert str(info.partners) in line.split()


def test_solve_from_a_fixture_uses_its_bundled_scenario(tmp_path: Path) -> None:
    import fixtures

    out, as_json = tmp_path / "plan.csv", tmp_path / "plans.json"
    result = run("solve", "--fixture", "tiny", "--out", str(out), "--json", str(as_json), "-q")
    assert result.exit_code == 0, result.output
    bundled = fixtures.scenario("tiny")
    best = json.loads(as_json.read_text(encoding="utf-8"))[0]
    targets = {tier["name"]: tier["target"] for tier in bundled["tiers"]}
    assert {tier["name"]: tier["target"] for tier in best["tiers"]} == targets
    resources = [resource["name"] for resource in bundled["resources"]]
    assert list(read_csv(out)[0])[: len(resources) + 8] == [
        "partner_id",
        "name",
        *resources,
        "baseline_gmv",
        "tier_before",
        "projected_gmv",
        "tier",
        "incremental_gmv",
        "p_reach",  # the tiny fixture's forecasts have p10/p90 bands (docs/uncertainty.md)
    ]


def test_the_tiny_csv_with_its_scenario_solves_like_the_fixture(tmp_path: Path) -> None:
    import fixtures

    scenario_path = fixtures.scenario_path("tiny")
    assert scenario_path is not None
    from_csv, from_fixture = tmp_path / "csv.json", tmp_path / "fixture.json"
    result = run(
        "solve",
        str(fixtures.partners_path("tiny")),
        "--scenario",
        str(scenario_path),
        "--json",
        str(from_csv),
        "--gap",
        "0.01",
        "-q",
    )
    assert result.exit_code == 0, result.output
    result = run("solve", "--fixture", "tiny", "--json", str(from_fixture), "--gap", "0.01", "-q")
    assert result.exit_code == 0, result.output
    a, b = (json.loads(path.read_text(encoding="utf-8"))[0] for path in (from_csv, from_fixture))
    assert a["tiers"] == b["tiers"]
    assert a["objective"]["weighted_shortfall"] == b["objective"]["weighted_shortfall"]
    assert a["objective"]["total_projected_gmv"] == pytest.approx(
        b["objective"]["total_projected_gmv"], rel=0.02
    )


def test_a_fixture_with_another_scenario_and_batch_over_a_directory(tmp_path: Path) -> None:
    import fixtures

    easier = fixtures.scenario("tiny")
    for tier in easier["tiers"]:
        tier["target"] = 1
    folder = tmp_path / "scenarios"
    folder.mkdir()
    write_json(folder / "easier.json", easier)
    as_json = tmp_path / "plans.json"
    result = run(
        "solve",
        "--fixture",
        "tiny",
        "--scenario",
        str(folder / "easier.json"),
        "--json",
        str(as_json),
        "-q",
    )
    assert result.exit_code == 0, result.output
    best = json.loads(as_json.read_text(encoding="utf-8"))[0]
    assert all(tier["target"] == 1 for tier in best["tiers"])

    summary = tmp_path / "summary.csv"
    result = run("batch", "--fixture", "tiny", "--scenario", str(folder), "--csv", str(summary))
    assert result.exit_code == 0, result.output
    (row,) = read_csv(summary)
    assert (row["fixture"], row["scenario"]) == ("tiny", "easier.json")
    assert all(row[f"{tier['name']}_target"] == "1" for tier in easier["tiers"])


def test_a_fixture_scenario_must_not_bring_partners(tmp_path: Path) -> None:
    bad = write_json(tmp_path / "s.json", scenario(partners=inline_partners()))
    result = run("solve", "--fixture", "tiny", "--scenario", bad)
    assert_clean_failure(result, "s.json", "partners")


# --- keys, serve, worker ---------------------------------------------------------------


def test_keys_create_list_and_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WINDMAKER_DATABASE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    created = run("keys", "create", "--role", "viewer", "--name", "dashboard")
    assert created.exit_code == 0, created.output
    key_id = created.stdout.split("key id:")[1].split()[0]
    token = created.stdout.split("token:")[1].split()[0]
    listed = run("keys", "list")
    line = next(line for line in listed.stdout.splitlines() if key_id in line)
    assert "viewer" in line and "dashboard" in line and "active" in line
    assert token not in listed.stdout
    assert run("keys", "revoke", key_id).exit_code == 0
    assert "revoked" in next(
        line for line in run("keys", "list").stdout.splitlines() if key_id in line
    )
    assert_clean_failure(run("keys", "revoke", key_id), key_id)
    assert run("keys", "create", "--role", "admin").exit_code == 2


def test_serve_and_worker_delegate_with_their_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import api.server
    import cli.serve

    execs: list[list[str]] = []
    workers: list[dict[str, Any]] = []
    monkeypatch.setattr(cli.serve.os, "execv", lambda _path, argv: execs.append(argv))
    monkeypatch.setattr(cli.serve, "run_worker", lambda **kwargs: workers.append(kwargs))
    assert run("serve", "--host", "0.0.0.0", "--port", "9001").exit_code == 0
    assert run("worker", "--concurrency", "3", "--pool", "solo").exit_code == 0
    # `serve` becomes the API's server program; that program reads the same options.
    ((_python, flag, module, *server_argv),) = execs
    assert (flag, module) == ("-m", "api.server")
    served: list[tuple[Any, ...]] = []
    monkeypatch.setattr(api.server, "run", lambda *args, **kwargs: served.append(args))
    api.server.main(server_argv)
    assert served[0][:2] == ("0.0.0.0", 9001)
    (worker_kwargs,) = workers
    assert worker_kwargs["concurrency"] == 3 and worker_kwargs["pool"] == "solo"
    assert run("serve", "--port", "70000").exit_code == 2


def test_progress_shows_every_stage_but_thins_iterations(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service import solving

    real_solve = solving.solve_request

    def chatty(request: Any, *, progress: Any = None, should_stop: Any = None) -> Any:
        progress("stage 1: shortfall 0 (proven)")
        progress("stage 2 (round 1): GMV 3.1e+09, gap 0.5%")
        for iteration in range(50):
            progress(f"gmv it {iteration}: bound {1e11 + iteration:g}")
        progress("stage 2 (round 2): GMV 3.2e+09, gap 0.01%")
        return real_solve(request)

    monkeypatch.setattr(solving, "solve_request", chatty)
    quiet = run("solve", "--request", files["request"])
    assert quiet.exit_code == 0, quiet.output
    shown = [line for line in quiet.stderr.splitlines() if "gmv it" in line]
    assert 1 <= len(shown) < 50 and "gmv it 0:" in shown[0]
    # Stages differ in words, not only numbers: each is shown however fast they come.
    assert "stage 1: shortfall 0" in quiet.stderr and "GMV 3.1e+09" in quiet.stderr
    loud = run("solve", "--request", files["request"], "--verbose")
    assert len([line for line in loud.stderr.splitlines() if "gmv it" in line]) == 50
