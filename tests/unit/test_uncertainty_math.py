"""models.uncertainty: σ, reach probabilities, exact Poisson-binomial and Monte Carlo counts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from models.uncertainty import (
    TierSpec,
    outlook,
    poisson_binomial_pmf,
    reach_probability,
    sigma,
    survival,
)


def _convolution_pmf(p: np.ndarray) -> np.ndarray:
    pmf = np.ones(1)
    for q in p:
        pmf = np.convolve(pmf, [1 - q, q])
    return pmf


def _full_pmf(p: np.ndarray) -> np.ndarray:
    offset, pmf, _ = poisson_binomial_pmf(p)
    full = np.zeros(p.size + 1)
    full[offset : offset + pmf.size] = pmf
    return full


def test_sigma_from_band_and_default() -> None:
    s = sigma([100.0, 100.0], [50.0, None], [200.0, None], default_sigma=0.1)
    assert s[0] == pytest.approx(math.log(4) / (2 * stats.norm.ppf(0.9)), rel=1e-12)
    assert s[1] == 0.1


def test_reach_probability_is_the_lognormal_tail() -> None:
    gmv = np.array([1.2e8, 0.9e8, 1e8, 5e7])
    s = np.array([0.2, 0.3, 0.25, 0.0])
    p = reach_probability(gmv, s, 1e8)
    realised = stats.lognorm(s=s[:3], scale=gmv[:3])
    np.testing.assert_allclose(p[:3], realised.sf(1e8), rtol=1e-12)
    assert p[3] == 0.0


def test_pmf_matches_brute_force_enumeration() -> None:
    p = np.array([0.1, 0.5, 0.93, 0.3, 1e-15, 1 - 1e-15, 0.77, 0.2])
    brute = np.zeros(p.size + 1)
    for outcome in itertools.product([0, 1], repeat=p.size):
        brute[sum(outcome)] += math.prod(q if o else 1 - q for q, o in zip(p, outcome, strict=True))
    np.testing.assert_allclose(_full_pmf(p), brute, atol=1e-12)


@pytest.mark.parametrize("n", [70, 1000, 5000])
def test_product_tree_matches_sequential_convolution(n: int) -> None:
    p = np.random.default_rng(n).uniform(0, 1, n) ** 3
    np.testing.assert_allclose(_full_pmf(p), _convolution_pmf(p), atol=1e-12)


def test_exact_figures_agree_with_a_large_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    gmv = np.exp(rng.normal(np.log(9e7), 0.3, 300))
    s = rng.uniform(0.05, 0.35, 300)
    tiers = [TierSpec("100M", 1e8, 120), TierSpec("150M", 1.5e8, 12)]
    exact = outlook(gmv, s, tiers, confidence=0.9)
    draws = 100_000
    z = rng.standard_normal((draws, gmv.size), dtype=np.float32)
    realised = np.log(gmv)[None, :] + s[None, :] * z
    for tier, figures in zip(tiers, exact.tiers, strict=True):
        counts = np.count_nonzero(realised >= math.log(tier.min_gmv), axis=1)
        sampled = np.mean(counts >= tier.target)
        se = math.sqrt(sampled * (1 - sampled) / draws)
        assert abs(figures.p_target - sampled) <= 5 * se + 1e-4
        assert figures.expected_achieved == pytest.approx(counts.mean(), abs=0.1)
        assert abs(figures.achieved_at_confidence - np.quantile(counts, 0.1)) <= 1


def test_correlated_monte_carlo_matches_quadrature_over_the_shared_shock() -> None:
    rng = np.random.default_rng(5)
    gmv = np.exp(rng.normal(np.log(1e8), 0.25, 60))
    s = rng.uniform(0.1, 0.3, 60)
    rho, target = 0.4, 30
    tier = TierSpec("100M", 1e8, target)
    sampled = outlook(gmv, s, [tier], correlation=rho, draws=100_000, seed=9).tiers[0]
    # P(count ≥ k) = ∫ φ(g) P(count ≥ k | g) dg; given g the partners are independent.
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    exact = 0.0
    for g, w in zip(nodes, weights, strict=True):
        margin = (np.log(gmv / 1e8) / s + math.sqrt(rho) * g) / math.sqrt(1 - rho)
        exact += w * _convolution_pmf(stats.norm.cdf(margin))[target:].sum()
    assert abs(sampled.p_target - exact) <= 5 * sampled.std_error
    assert sampled.std_error == pytest.approx(
        math.sqrt(sampled.p_target * (1 - sampled.p_target) / 100_000)
    )


def test_monte_carlo_is_reproducible_per_seed() -> None:
    gmv = np.linspace(8e7, 1.3e8, 50)
    s = np.full(50, 0.2)
    tiers = [TierSpec("100M", 1e8, 25)]
    one = outlook(gmv, s, tiers, correlation=0.5, draws=5000, seed=1)
    again = outlook(gmv, s, tiers, correlation=0.5, draws=5000, seed=1)
    other = outlook(gmv, s, tiers, correlation=0.5, draws=5000, seed=2)
    assert one == again
    assert one.method == "monte_carlo" and one.draws == 5000
    assert other.tiers[0].p_target != one.tiers[0].p_target


def test_group_shocks_are_shared_within_a_group_only() -> None:
    # Two groups of identical partners: with ρ near 1 each group moves as one block.
    gmv = np.full(40, 1e8)
    s = np.full(40, 0.2)
    groups = np.repeat([0, 1], 20)
    tiers = [TierSpec("100M", 1e8, 20)]
    counts = outlook(gmv, s, tiers, correlation=0.999, groups=groups, draws=20_000, seed=3)
    # Blocks of 20 land together: count ≥ 20 needs one block up (P ≈ 3/4), not a coin toss.
    assert counts.tiers[0].p_target == pytest.approx(0.75, abs=0.03)


amounts = st.lists(
    st.tuples(st.floats(5e7, 3e8), st.floats(0.0, 0.4), st.floats(0.0, 5e7)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(amounts, st.integers(0, 40), st.sampled_from([0.5, 0.8, 0.9, 0.99]))
def test_figures_are_monotone_in_amounts(
    rows: list[tuple[float, float, float]], target: int, confidence: float
) -> None:
    gmv = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    lift = np.array([r[2] for r in rows])
    tiers = [TierSpec("100M", 1e8, target)]
    before = outlook(gmv, s, tiers, confidence=confidence).tiers[0]
    after = outlook(gmv + lift, s, tiers, confidence=confidence).tiers[0]
    assert after.expected_achieved >= before.expected_achieved - 1e-9
    assert after.p_target >= before.p_target - 1e-9
    assert after.achieved_at_confidence >= before.achieved_at_confidence


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1e6, 5e9), min_size=0, max_size=60), st.integers(0, 60))
def test_zero_spread_gives_the_deterministic_counts(gmv_list: list[float], target: int) -> None:
    gmv = np.array(gmv_list, dtype=np.float64)
    tiers = [TierSpec("100M", 1e8, target), TierSpec("1B", 1e9, target)]
    figures = outlook(gmv, np.zeros(gmv.size), tiers, confidence=0.95)
    for tier, report in zip(tiers, figures.tiers, strict=True):
        count = int(np.count_nonzero(gmv >= tier.min_gmv))
        assert report.expected_achieved == count
        assert report.achieved_at_confidence == count
        assert report.p_target == (1.0 if count >= target else 0.0)


def test_survival_is_one_below_the_certain_count() -> None:
    offset, pmf, _ = poisson_binomial_pmf(np.array([1.0, 1.0, 0.5, 0.0]))
    np.testing.assert_allclose(survival(offset, pmf, 4), [1, 1, 1, 0.5, 0, 0])


def test_million_partners_stay_exact_within_the_reported_bound() -> None:
    rng = np.random.default_rng(11)
    gmv = np.exp(rng.normal(np.log(2e7), 1.5, 1_000_000))
    s = rng.uniform(0.05, 0.35, gmv.size)
    figures = outlook(gmv, s, [TierSpec("100M", 1e8, 143_000)]).tiers[0]
    assert figures.truncation_error < 1e-6
    p = reach_probability(gmv, s, 1e8)
    mean, sd = p.sum(), math.sqrt((p * (1 - p)).sum())
    # The count is very nearly normal here: its 10% quantile sits ≈ 1.28 sd below the mean.
    assert abs(figures.achieved_at_confidence - (mean - 1.2816 * sd)) <= 2
