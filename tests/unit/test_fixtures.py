"""The fixture generator, the bundled fixtures and their calibration."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fixtures
from fixtures import calibrate
from fixtures.bundled import BUILDERS, build
from fixtures.generate import (
    CAPABILITIES,
    COLUMNS,
    FUND_MAX_CAP,
    FUND_MIN_RANGE,
    FUND_STEP,
    GMV_CEILING,
    GMV_FLOOR,
    TRAFFIC_SCALE_RANGE,
    TRAFFIC_STEP,
    generate_partners,
    main,
    write_partners_csv,
)
from models.curves import CurveColumn
from models.schemas import parse_request

PARAMETERS: dict[str, dict[str, tuple[str, ...]]] = {
    "subsidy": {"saturating": ("max_uplift", "scale"), "log": ("coef", "scale")},
    "traffic": {"saturating": ("max_uplift", "scale"), "log": ("coef", "scale")},
    "fund": {
        "saturating": ("max_uplift", "scale"),
        "hill": ("max_uplift", "shape", "half_saturation"),
        "": (),
    },
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_partners(20_000, 3)


def _read_back(source: Path | io.StringIO) -> pd.DataFrame:
    return pd.read_csv(source)


def _assert_same(generated: pd.DataFrame, stored: pd.DataFrame) -> None:
    assert list(stored.columns) == list(generated.columns)
    assert len(stored) == len(generated)
    for column in generated.columns:
        left, right = generated[column], stored[column]
        if not pd.api.types.is_numeric_dtype(left):
            assert left.fillna("").astype(str).tolist() == right.fillna("").astype(str).tolist(), (
                column
            )
        else:
            np.testing.assert_allclose(
                right.to_numpy(np.float64), left.to_numpy(np.float64), rtol=1e-12, err_msg=column
            )


# --- the generator ----------------------------------------------------------------------


def test_same_seed_gives_an_identical_frame() -> None:
    pd.testing.assert_frame_equal(generate_partners(500, 11), generate_partners(500, 11))


def test_different_seeds_give_different_partners() -> None:
    a, b = generate_partners(500, 11), generate_partners(500, 12)
    assert not np.allclose(a["baseline_gmv"], b["baseline_gmv"])


def test_columns_follow_the_partners_csv_format(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == COLUMNS
    for required in ("partner_id", "baseline_gmv", "baseline_gmv_p10", "baseline_gmv_p90"):
        assert required in frame
    assert frame["partner_id"].is_unique
    assert frame["partner_id"].str.fullmatch(r"P\d{7}").all()


@pytest.mark.parametrize("resource", ["subsidy", "traffic", "fund"])
def test_each_curve_has_exactly_its_kinds_parameters(frame: pd.DataFrame, resource: str) -> None:
    kinds = frame[f"{resource}_curve"]
    assert set(kinds.unique()) == set(PARAMETERS[resource])
    # Not every `{resource}_…` column: `traffic_marketing` is a capability score.
    parameter_columns = [
        f"{resource}_{name}"
        for name in ("max_uplift", "scale", "coef", "shape", "half_saturation")
        if f"{resource}_{name}" in frame
    ]
    for kind, needed in PARAMETERS[resource].items():
        rows = frame[kinds == kind]
        for column in parameter_columns:
            present = rows[column].notna()
            if column.removeprefix(f"{resource}_") in needed:
                assert present.all() and (rows[column] > 0).all(), (kind, column)
            else:
                assert not present.any(), (kind, column)


def test_values_are_in_realistic_ranges(frame: pd.DataFrame) -> None:
    gmv = frame["baseline_gmv"]
    assert gmv.between(GMV_FLOOR, GMV_CEILING).all()
    assert (frame["baseline_gmv_p10"] <= gmv).all() and (gmv <= frame["baseline_gmv_p90"]).all()
    assert (frame["baseline_gmv_p10"] > 0).all()
    for column in CAPABILITIES:
        assert frame[column].dtype.kind == "i" and frame[column].between(0, 100).all()
    assert frame["traffic_scale"].between(*TRAFFIC_SCALE_RANGE).all()
    assert (frame["traffic_max"] % TRAFFIC_STEP == 0).all()
    assert (frame["traffic_max"] >= 3 * frame["traffic_scale"]).all()
    funded = frame[frame["fund_curve"] != ""]
    assert funded["fund_min"].between(*FUND_MIN_RANGE).all()
    assert (funded["fund_min"] % FUND_STEP == 0).all() and (
        funded["fund_max"] % FUND_STEP == 0
    ).all()
    assert (funded["fund_max"] >= funded["fund_min"]).all()
    assert (funded["fund_max"] <= FUND_MAX_CAP).all()
    assert funded["fund_shape"].dropna().between(1.5, 3.0).all()
    unfunded = frame[frame["fund_curve"] == ""]
    assert unfunded[["fund_min", "fund_max", "fund_max_uplift"]].isna().all().all()


def test_money_is_rounded_to_whole_units(frame: pd.DataFrame) -> None:
    for column in ("baseline_gmv", "subsidy_max_uplift", "traffic_scale", "fund_half_saturation"):
        values = frame[column].dropna()
        assert (values == np.round(values)).all(), column


def test_baseline_gmv_is_heavy_tailed(frame: pd.DataFrame) -> None:
    gmv = frame["baseline_gmv"]
    assert gmv.mean() > 3 * gmv.median()
    share_1b, share_100m = (gmv >= 1e9).mean(), (gmv >= 1e8).mean()
    assert 0.007 < share_1b < 0.018
    assert 0.03 < share_100m < 0.06
    assert share_100m > 2.5 * share_1b


@pytest.mark.slow
def test_response_follows_capabilities_and_size(frame: pd.DataFrame) -> None:
    size = np.log10(frame["baseline_gmv"])
    assert np.corrcoef(size, frame[list(CAPABILITIES)].mean(axis=1))[0, 1] > 0.3

    subsidy_skill = frame["live_ops"] + frame["traffic_marketing"]
    subsidy_reach = (
        frame["subsidy_max_uplift"].fillna(frame["subsidy_coef"]) / frame["baseline_gmv"]
    )
    assert subsidy_reach.corr(subsidy_skill, method="spearman") > 0.3

    fund_skill = frame["supply_chain"] + frame["fulfilment"]
    fund_reach = frame["fund_max_uplift"] / frame["baseline_gmv"]
    assert fund_reach.corr(fund_skill, method="spearman") > 0.3

    offered = frame["fund_curve"] != ""
    assert offered[size >= 8.5].mean() > 0.7 > 0.25 > offered[size < 7].mean()
    assert frame["fund_min"].corr(size, method="spearman") > 0.5


def test_curve_kind_mix(frame: pd.DataFrame) -> None:
    assert 0.6 < (frame["subsidy_curve"] == "saturating").mean() < 0.9
    funded = frame["fund_curve"] != ""
    assert 0.12 < funded.mean() < 0.35  # mostly the bigger partners: see _fund
    assert 0.45 < (frame.loc[funded, "fund_curve"] == "hill").mean() < 0.75


@pytest.mark.parametrize(
    ("n", "seed", "field"), [(-1, 0, "n"), (2.5, 0, "n"), (True, 0, "n"), (5, -3, "seed")]
)
def test_bad_arguments_name_the_argument(n: object, seed: object, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        generate_partners(n, seed)  # type: ignore[arg-type]


def test_zero_partners_is_an_empty_frame_with_every_column() -> None:
    empty = generate_partners(0, 1)
    assert empty.empty and tuple(empty.columns) == COLUMNS


def test_the_csv_round_trips_exactly() -> None:
    generated = generate_partners(300, 4)
    buffer = io.StringIO()
    write_partners_csv(generated, buffer)
    text = buffer.getvalue()
    assert ".0," not in text  # whole numbers are written without a trailing .0
    _assert_same(generated, _read_back(io.StringIO(text)))


def test_a_hundred_thousand_partners_generate() -> None:
    # How fast (up to 1,000,000 partners) is measured by bench.run, not here.
    big = generate_partners(100_000, 9)
    assert len(big) == 100_000 and big["partner_id"].is_unique


def test_cli_writes_what_the_generator_produces(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "p.csv"
    assert main(["--n", "40", "--seed", "5", "--out", str(out)]) == 0
    _assert_same(generate_partners(40, 5), _read_back(out))


def test_cli_rejects_a_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--n", "-4"]) == 2
    assert "n must be a non-negative integer" in capsys.readouterr().err


# --- the bundled fixtures ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDERS))
def test_bundled_data_is_what_the_code_generates(name: str) -> None:
    partners, packages = build(name)
    _assert_same(partners, _read_back(fixtures.partners_path(name)))
    stored_packages = fixtures.packages_path(name)
    if packages is None:
        assert stored_packages is None
    else:
        assert stored_packages is not None
        _assert_same(packages, _read_back(stored_packages))


def test_bundled_files_stay_small() -> None:
    for path in fixtures.DATA_DIR.iterdir():
        assert path.stat().st_size < 5_000_000, path


def test_list_fixtures_describes_every_bundled_fixture() -> None:
    infos = {info.name: info for info in fixtures.list_fixtures()}
    assert set(infos) == {"programme", "pilot", "tiny", "bundles"}
    for name, info in infos.items():
        assert info.partners == len(fixtures.load_partners(name))
        assert info.resources == ("subsidy", "traffic", "fund")
        assert info.has_scenario and info.description == fixtures.scenario(name)["name"]
        assert info.has_packages == (name == "bundles")
    assert infos["programme"].partners == 5000 and infos["tiny"].partners == 8
    assert dict(infos["tiny"])["partners"] == 8  # the API serialises it with dict()


@pytest.mark.parametrize(
    "lookup",
    [
        fixtures.partners_path,
        fixtures.packages_path,
        fixtures.scenario,
        fixtures.load_partners,
        fixtures.fixture_info,
    ],
)
@pytest.mark.parametrize("name", ["nope", "../data/programme", "programme.csv", ""])
def test_an_unknown_fixture_is_a_key_error(lookup: object, name: str) -> None:
    with pytest.raises(KeyError, match="unknown fixture"):
        lookup(name)  # type: ignore[operator]


def test_scenario_returns_a_fresh_copy() -> None:
    first = fixtures.scenario("tiny")
    first["tiers"].clear()
    assert fixtures.scenario("tiny")["tiers"]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_scenario_is_a_valid_request_with_its_partners(name: str) -> None:
    request = parse_request(fixtures.scenario(name), partners=fixtures.load_partners(name))
    assert {r.name for r in request.resources} == {"subsidy", "traffic", "fund"}
    assert [t.name for t in request.sorted_tiers()] == ["100M", "1B"]


def test_loaded_partners_carry_curves_bounds_and_attributes() -> None:
    partners = fixtures.load_partners("tiny")
    frame = build("tiny")[0].set_index("partner_id")
    for partner in partners:
        row = frame.loc[partner.id]
        assert partner.baseline_gmv == row["baseline_gmv"]
        assert partner.attributes["region"] == row["region"]
        assert set(partner.curves) == {"subsidy", "traffic"} | (
            {"fund"} if row["fund_curve"] else set()
        )
        if "fund" in partner.curves:
            assert partner.bounds["fund"].min == row["fund_min"] > 0


def test_bundle_partners_take_packages_instead_of_curves() -> None:
    partners = fixtures.load_partners("bundles")
    assert len(partners) == 30
    for partner in partners:
        assert not partner.curves
        assert 2 <= len(partner.packages) <= 4
        assert all(package.uplift > 0 for package in partner.packages)


def test_package_uplift_is_the_partners_own_curves_at_the_package_amounts() -> None:
    _, packages = build("bundles")
    assert packages is not None
    programme = {partner.id: partner for partner in fixtures.load_partners("programme")}
    for item in packages.to_dict("records"):
        curves = programme[item["partner_id"]].curves
        total = sum(
            float(curves[resource].value(item[resource]))
            for resource in ("subsidy", "traffic", "fund")
            if item[resource] > 0
        )
        assert item["uplift"] == pytest.approx(total, abs=1.0)


# --- calibration ------------------------------------------------------------------------


def test_calibration_evaluates_curves_like_the_domain() -> None:
    frame = build("programme")[0].head(400)
    partners = fixtures.load_partners("programme")[:400]
    amounts = np.random.default_rng(0).uniform(0, 3e7, len(frame))
    for curves in calibrate.resource_curves(frame, fixtures.scenario("programme")):
        domain = CurveColumn([p.curves.get(curves.name) for p in partners]).value(amounts)
        np.testing.assert_allclose(curves.value(amounts), domain, rtol=1e-12, err_msg=curves.name)


def test_programme_starts_near_sixty_percent_of_each_target() -> None:
    counts = calibrate.baseline_counts(build("programme")[0], fixtures.scenario("programme"))
    targets = {t["name"]: t["target"] for t in fixtures.scenario("programme")["tiers"]}
    assert targets == {"1B": 100, "100M": 300}
    for tier, target in targets.items():
        assert 0.45 * target <= counts[tier] <= 0.8 * target, tier


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "grid"),
    [
        ("programme", (1.41, 2.0)),  # the full grid's best prices, without the slow search
        ("pilot", calibrate.PRICE_MULTIPLIERS),
        ("tiny", calibrate.PRICE_MULTIPLIERS),
    ],
)
def test_targets_are_reachable_but_only_just(name: str, grid: tuple[float, ...]) -> None:
    partners, scenario = build(name)[0], fixtures.scenario(name)
    counts = calibrate.baseline_counts(partners, scenario)
    targets = {t["name"]: t["target"] for t in scenario["tiers"]}
    assert all(counts[tier] < target for tier, target in targets.items())

    reachable = calibrate.best_greedy(partners, scenario, multipliers=grid)
    assert reachable.meets_targets, reachable.achieved
    assert max(reachable.utilization.values()) > 0.85

    bound, _ = calibrate.best_lower_bound(partners, scenario, multipliers=grid)
    assert 0.8 < bound <= 1.0

    naive = calibrate.naive_allocation(partners, scenario)
    assert not naive.meets_targets, naive.achieved


def test_bundles_are_reachable_with_most_of_the_budget_and_naive_falls_short() -> None:
    partners, packages = build("bundles")
    assert packages is not None
    scenario = fixtures.scenario("bundles")
    greedy = calibrate.best_package_greedy(partners, packages, scenario)
    assert greedy.meets_targets
    assert max(greedy.utilization.values()) > 0.85
    forced = calibrate.select(partners, scenario["constraints"][0]["where"])
    assert set(partners["partner_id"][forced]) <= set(greedy.amounts.index)
    assert not calibrate.package_naive(partners, packages, scenario).meets_targets


def test_greedy_allocations_keep_every_rule() -> None:
    partners, scenario = build("programme")[0], fixtures.scenario("programme")
    estimate = calibrate.greedy_allocation(partners, scenario, calibrate.default_prices(scenario))
    budgets = {r["name"]: r["budget"] for r in scenario["resources"]}
    for resource, amounts in estimate.amounts.items():
        assert amounts.sum() <= budgets[resource]
    assert (estimate.amounts["subsidy"] <= 0.025 * budgets["subsidy"] + 1e-6).all()
    assert (estimate.amounts["traffic"] % 1e6 == 0).all()
    funded = estimate.amounts[estimate.amounts["fund"] > 0].join(partners.set_index("partner_id"))
    assert (funded["supply_chain"] >= 40).all()
    assert (funded["fund"] >= funded["fund_min"]).all() and (
        funded["fund"] <= funded["fund_max"]
    ).all()


def test_calibration_rejects_constraints_it_does_not_model() -> None:
    scenario = fixtures.scenario("tiny")
    scenario["constraints"].append({"type": "group_count", "tier": "1B", "where": {}, "min": 1})
    with pytest.raises(ValueError, match="group_count"):
        calibrate.resource_curves(build("tiny")[0], scenario)
