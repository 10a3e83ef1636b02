"""OR-Library MKP / MMKP validation: the parsers read the published files correctly, the
mapping onto packages survives the JSON schema, and the optimizer reproduces published
optima through its public entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import orlib
from models.request import Objective, OnePackage, Options, Where
from models.schemas import parse_request, request_to_dict

ROOT = orlib.data_dir()
pytestmark = pytest.mark.skipif(
    not (ROOT / "best_known.csv").is_file(),
    reason=f"OR-Library data not found at {ROOT} (set {orlib.DATA_ENV})",
)


@pytest.fixture(scope="module")
def references() -> dict[str, orlib.Reference]:
    return orlib.read_references(ROOT)


# -- data location -----------------------------------------------------------------------


def test_data_dir_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(orlib.DATA_ENV, "/somewhere/else")
    assert orlib.data_dir() == Path("/somewhere/else")
    monkeypatch.delenv(orlib.DATA_ENV)
    assert orlib.data_dir() == orlib.REPO_ROOT.parent / "shared" / "benchmarks" / "orlib"


# -- parsers ------------------------------------------------------------------------------


def test_mknap1_problems_and_first_values() -> None:
    instances = orlib.load_mkp("mknap1", ROOT)
    assert [i.id for i in instances] == [f"mknap1/{k}" for k in range(1, 8)]
    first = instances[0]
    assert (first.n, first.m, first.stated_optimum) == (6, 10, 3800)
    assert first.profits.tolist() == [100, 600, 1200, 2400, 500, 2000]
    assert first.weights[0].tolist() == [8, 12, 13, 64, 22, 41]
    assert first.weights[:, 0].tolist() == [8, 8, 3, 5, 5, 5, 0, 3, 3, 3]
    assert first.capacities.tolist() == [80, 96, 20, 36, 44, 48, 10, 18, 22, 24]
    assert instances[1].stated_optimum == pytest.approx(8706.1)
    assert instances[1].profits[0] == pytest.approx(600.1)
    assert [(i.n, i.m) for i in instances[5:]] == [(39, 5), (50, 5)]


@pytest.mark.parametrize(
    ("name", "n", "m"), [("mknapcb1", 100, 5), ("mknapcb4", 100, 10), ("mknapcb9", 500, 30)]
)
def test_mknapcb_names_and_sizes(name: str, n: int, m: int) -> None:
    instances = orlib.load_mkp(name, ROOT)
    assert len(instances) == 30
    assert instances[0].id == f"{name}/{m}.{n}-00"
    assert instances[29].id == f"{name}/{m}.{n}-29"
    assert {(i.n, i.m) for i in instances} == {(n, m)}
    assert all(i.stated_optimum is None for i in instances)  # the files give 0: unknown


def test_mknapcb1_first_values() -> None:
    first = orlib.load_mkp("mknapcb1", ROOT)[0]
    assert first.profits[:3].tolist() == [504, 803, 667]
    # Chu-Beasley tightness: problems 00-09 have capacities a quarter of each row sum.
    assert first.capacities == pytest.approx(0.25 * first.weights.sum(axis=1), abs=1)


def test_mknap2_problems() -> None:
    instances = orlib.load_mkp("mknap2", ROOT)
    assert len(instances) == 48
    assert instances[0].id == "mknap2/SENTO1"
    assert instances[-1].id == "mknap2/HP2"
    weing1 = next(i for i in instances if i.id == "mknap2/WEING1")
    assert (weing1.n, weing1.m, weing1.stated_optimum) == (28, 2, 141278)
    assert weing1.profits[:2].tolist() == [1898, 440]
    assert weing1.capacities.tolist() == [600, 600]
    assert weing1.weights[1, :3].tolist() == [30, 20, 125]


def test_khan_files() -> None:
    instances = orlib.load_mmkp("mmkp-khan", ROOT)
    assert [i.id for i in instances] == [f"khan/I{k:02d}" for k in range(1, 14)]
    i01 = instances[0]
    assert (i01.n, i01.options, i01.m) == (5, 5, 5)
    assert i01.capacities.tolist() == [25] * 5
    assert i01.values[0].tolist() == [7, 17, 25, 35, 36]
    assert i01.weights[0, 0].tolist() == [1, 3, 1, 1, 6]
    assert i01.stated_choice == (3, 4, 1, 2, 3)
    assert i01.stated_optimum == 173
    assert [(i.n, i.options, i.m) for i in instances[6:]] == [
        (g, 10, 10) for g in (100, 150, 200, 250, 300, 350, 400)
    ]
    assert all(i.stated_optimum is None for i in instances[6:])


def test_khan_stated_exact_solutions_recompute() -> None:
    for instance in orlib.load_mmkp("mmkp-khan", ROOT)[:6]:
        assert instance.stated_choice is not None
        value, problems = orlib.choice_value(instance, instance.stated_choice)
        assert problems == []
        assert value == pytest.approx(instance.stated_optimum)


def test_hifi_files() -> None:
    instances = orlib.load_mmkp("mmkp-hifi", ROOT)
    assert len(instances) == 20
    first = instances[0]
    assert first.id == "hifi/INST01"
    assert (first.n, first.options, first.m) == (50, 10, 10)
    assert first.capacities[:3].tolist() == [207, 205, 203]
    assert first.values[0, :3].tolist() == [129, 182, 183]
    assert first.weights[0, 1].tolist() == [1, 5, 3, 7, 7, 2, 2, 5, 8, 1]
    assert (instances[19].n, instances[19].options) == (350, 20)


def test_references(references: dict[str, orlib.Reference]) -> None:
    assert len(references) == 358
    assert references["mknap1/2"].best_known == 8706.1
    assert references["mknap1/2"].is_optimal is True
    assert references["mknap1/2"].upper_bound == pytest.approx(8706.1)
    assert references["mknapcb1/5.100-00"].best_known == 24381
    assert references["khan/I07"].is_optimal is False
    assert all(r.upper_bound is not None for r in references.values())
    optimal = [k for k, r in references.items() if r.is_optimal]
    assert len(optimal) == 92


def test_truncated_file_names_the_file_and_the_part(tmp_path: Path) -> None:
    path = tmp_path / "mknapcb1.txt"
    path.write_text("1\n3 2 0\n10 20 30\n1 2 3\n4 5\n")
    with pytest.raises(orlib.OrlibDataError, match=r"mknapcb1\.txt.*problem 1: consumption"):
        orlib.read_orlib_mkp(path)


def test_non_numeric_token_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "INST99.txt"
    path.write_text("1-2-1\n10\n5-3\nx-4\n")
    with pytest.raises(orlib.OrlibDataError, match=r"INST99\.txt: options: not a number"):
        orlib.read_hifi(path)


def test_unknown_set() -> None:
    with pytest.raises(orlib.OrlibDataError, match="unknown set 'mknap3'"):
        orlib.load_set("mknap3", ROOT)


# -- mapping ------------------------------------------------------------------------------


def test_mkp_maps_items_to_single_package_partners() -> None:
    instance = orlib.load_mkp("mknap1", ROOT)[0]
    request = orlib.mkp_request(instance, Options(mip_gap=0.0))
    assert request.objective is Objective.MAX_GMV
    assert request.tiers == ()
    assert [(r.name, r.budget) for r in request.resources][:2] == [("c1", 80), ("c2", 96)]
    item4 = request.partners[3]
    assert (item4.id, item4.baseline_gmv) == ("item4", 0.0)
    (package,) = item4.packages
    assert package.uplift == 2400
    assert [package.amounts[f"c{i}"] for i in range(1, 11)] == instance.weights[:, 3].tolist()
    assert parse_request(request_to_dict(request)) == request


def test_mmkp_maps_groups_to_menus_with_exactly_one() -> None:
    instance = orlib.load_mmkp("mmkp-khan", ROOT)[0]
    request = orlib.mmkp_request(instance, Options(mip_gap=0.0))
    assert request.constraints == (OnePackage(where=Where()),)
    group2 = request.partners[1]
    assert group2.id == "group2"
    assert [p.name for p in group2.packages] == [f"option{k}" for k in range(5)]
    assert group2.packages[4].uplift == 44
    assert dict(group2.packages[4].amounts) == {"c1": 8, "c2": 7, "c3": 0, "c4": 8, "c5": 2}
    assert orlib.through_json(request) == request


# -- solving ------------------------------------------------------------------------------


def test_mknap1_all_published_optima_proven(references: dict[str, orlib.Reference]) -> None:
    for instance in orlib.load_mkp("mknap1", ROOT):
        result = orlib.run_instance(instance, engine="highs", references=references)
        assert result.error is None
        assert result.violations == []
        assert result.ours == pytest.approx(instance.stated_optimum, rel=1e-12)
        assert result.proven, f"{instance.id}: status {result.status}"


# Quick ones (about 2 s each with HiGHS), one per tightness class 0.25, 0.5, 0.75.
@pytest.mark.parametrize("position", [6, 15, 26])
def test_mknapcb1_best_known_matched(position: int, references: dict[str, orlib.Reference]) -> None:
    instance = orlib.load_mkp("mknapcb1", ROOT)[position]
    result = orlib.run_instance(instance, engine="highs", time_limit_s=60, references=references)
    assert result.error is None
    assert result.violations == []
    assert result.ours == references[instance.id].best_known
    # The bound proves it: these 30 are known optima (best_known.csv is_optimal=true).
    assert result.certified


def test_bound_equal_to_value_is_reported_optimal(references: dict[str, orlib.Reference]) -> None:
    instance = next(i for i in orlib.load_mkp("mknap2", ROOT) if i.id == "mknap2/WEISH11")
    result = orlib.run_instance(instance, engine="highs", references=references)
    assert result.proven, f"status {result.status}, best bound {result.best_bound!r}"


def test_auto_engine_solves_a_large_package_menu(references: dict[str, orlib.Reference]) -> None:
    instance = orlib.read_hifi(ROOT / "mmkp" / "hifi" / "INST14.txt")  # 150 groups x 30
    result = orlib.run_instance(
        instance, engine="auto", time_limit_s=5, references=references, round_trip=False
    )
    assert result.error is None
    assert result.violations == []


@pytest.mark.parametrize("name", ["I01", "I02"])
def test_khan_exact_one_per_group_matches_known_optimum(
    name: str, references: dict[str, orlib.Reference]
) -> None:
    instance = orlib.read_khan(ROOT / "mmkp" / "khan" / name)
    result = orlib.run_instance(instance, engine="highs", references=references)
    assert result.violations == []  # includes "every group has exactly one option"
    assert result.ours == references[f"khan/{name}"].best_known == instance.stated_optimum
    assert result.proven


# -- command line ------------------------------------------------------------------------


def test_cli_prints_and_appends_the_table(tmp_path: Path) -> None:
    lines: list[str] = []
    out = tmp_path / "results.md"
    code = orlib.main(
        ["--set", "mknap1", "--instances", "0-1", "--out", str(out), "--data-dir", str(ROOT)],
        out=lines.append,
    )
    assert code == 0
    rows = [line for line in lines if line.startswith("| mknap1/")]
    assert [row.split("|")[1].strip() for row in rows] == ["mknap1/1", "mknap1/2"]
    assert "| 3800 (opt) | 3800 | +0.000% | yes | highs |" in rows[0]
    written = out.read_text()
    assert "### `python -m bench.orlib --set mknap1 --instances 0-1" in written
    assert rows[1] in written


def test_cli_reports_missing_data(tmp_path: Path) -> None:
    lines: list[str] = []
    code = orlib.main(["--data-dir", str(tmp_path / "absent")], out=lines.append)
    assert code == 2
    assert "benchmark data not found" in lines[0]


def test_cli_rejects_bad_selection(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        orlib.main(["--instances", "4-2"])
    assert stop.value.code == 2
    assert "range '4-2' runs backwards" in capsys.readouterr().err


def test_selection_ranges() -> None:
    assert orlib.parse_selection("0-2,10") == [0, 1, 2, 10]
